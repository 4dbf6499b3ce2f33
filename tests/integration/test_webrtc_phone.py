"""The phone in the page on a real call: Debian's headless Chromium logs into the
portal served by `homeline engine run`, JsSIP registers over secure WebSocket to
the real Asterisk, the router offers a real caller's call to the browser, the
agent answers with a click, and audio is proven both ways with the DTMF probe.

- The engine and the web app are one process, `homeline engine run --stack DIR`
  (as an admin runs it), stopped with SIGTERM by its PID at the end.
- The browser's microphone is Chromium's fake capture device playing a WAV of
  the agent's probe (``--use-file-for-fake-audio-capture``); the pjsua2 caller
  records what it hears and the project's DTMF detector finds the probe there.
- The caller plays its probe; in the page, the remote MediaStream (what the
  page's <audio> element plays) is tapped with WebAudio into PCM, handed to the
  test with ``page.evaluate`` and run through the same detector. Nothing is put
  into the browser's storage.
- The media is DTLS-SRTP (RFC 5764, webrtc=yes): Asterisk's own
  ``CHANNEL(rtp,secure)`` of the agent's channel says so (chan_pjsip's dialplan
  functions), read over AMI.
- Trust: Chromium headless cannot be given a CA of our own without an NSS
  database tool (certutil, libnss3-tools, not installed by the project), so
  the test pins the server certificate's key instead:
  ``--ignore-certificate-errors-spki-list`` with the SHA-256 of its
  SubjectPublicKeyInfo accepts exactly that key, for this temporary profile
  only (Chromium honours it only with ``--user-data-dir``); any other
  certificate error is still an error.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from homeline.stack import free_port
from prompts.audio_proof import probe_samples, verify_heard, verify_samples
from prompts.dtmf import detect, to_int16
from softphone import TestCaller, rms_dbfs
from store import SqliteStore

from .conftest import Live, directory_data, wait_for

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("HOMELINE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "screenshots"
CALLER_PROBE, AGENT_PROBE = "1397", "2580"
AGENT = "wendy"
PASSWORD = "wendy-browser-password"
RING_TIMEOUT_S = 30

pytestmark = [
    pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason="needs Debian's chromium (/usr/bin/chromium): "
                              "scripts/bootstrap.sh installs it"),
]

# what the page runs to tap the remote audio: the <audio> element's stream (the
# caller, as the agent hears it) into a ScriptProcessor that keeps the PCM in a
# page variable (no storage); a ScriptProcessor only runs when connected onward
TAP_START = """async () => {
  const stream = document.getElementById("phone-audio").srcObject;
  if (!stream || stream.getAudioTracks().length === 0) return null;
  const ctx = new AudioContext();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(stream);
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  src.connect(proc);
  proc.connect(ctx.destination);
  window.homelineTap = { ctx, src, proc, chunks };
  return ctx.sampleRate;
}"""
TAP_STOP = """async () => {
  const t = window.homelineTap;
  t.proc.disconnect(); t.src.disconnect();
  const n = t.chunks.reduce((a, c) => a + c.length, 0);
  const pcm = new Int16Array(n);
  let i = 0;
  for (const c of t.chunks) {
    for (const v of c) pcm[i++] = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
  }
  const bytes = new Uint8Array(pcm.buffer);
  let s = "";
  for (let j = 0; j < bytes.length; j += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(j, j + 0x8000));
  }
  const rate = t.ctx.sampleRate;
  await t.ctx.close();
  delete window.homelineTap;
  return { rate, pcm: btoa(s) };
}"""


def spki_sha256(cert_pem: Path) -> str:
    """Base64 SHA-256 of the certificate's SubjectPublicKeyInfo (what Chromium's
    --ignore-certificate-errors-spki-list takes, as HPKP pins, RFC 7469 2.4)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def probe_wav(path: Path, digits: str, rate: int) -> Path:
    import soundfile as sf

    samples = np.concatenate((probe_samples(digits, rate), np.zeros(rate // 2, np.float32)))
    sf.write(str(path), to_int16(samples), rate, subtype="PCM_16")
    return path


def write_agents_yaml(path: Path, data: dict[str, Any]) -> Path:
    # JSON is YAML, and never has the aliases PyYAML writes for shared values
    # (which the directory loader refuses: [yaml-alias])
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def shot(page: Any, name: str, taken: list[Path]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path), full_page=True)
    taken.append(path)


def port_outside_ephemeral_range() -> int:
    """A free TCP port on 127.0.0.1 below the kernel's ephemeral range: the engine
    binds it seconds after it is chosen, and a port from that range (what binding
    to port 0 gives) can meanwhile be taken by any outgoing connection (seen once
    in CI: "address already in use")."""
    import random
    import socket

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10_000, max(10_001, low))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


class EngineProcess:
    """`homeline engine run` in a process of its own (its own session: stopped by
    its PID, never by name)."""

    def __init__(self, argv: list[str], work: Path) -> None:
        self.out = work / "engine.out"
        self.err = work / "engine.err"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "homeline", *argv],
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, cwd=REPO, start_new_session=True)

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.out.read_text(errors="replace"))
            if found:
                return found
            assert self.proc.poll() is None, f"the engine exited:\n{self.output()}"
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} from the engine in {timeout} s:\n{self.output()}")

    def stop(self) -> int | None:
        """SIGTERM, as a service manager stops it; its exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                return None
        return self.proc.returncode


def ami_getvar(live: Live, channel: str, variable: str) -> str:
    """A channel variable or function, as Asterisk evaluates it (AMI Getvar)."""
    from homeline.stack import AMI_USER
    from voice.ami import AmiConnection

    ami = AmiConnection("127.0.0.1", live.stack.ports.ami, AMI_USER, live.stack.ami_secret(),
                        on_event=lambda _event: None)
    ami.start(wait_s=10)
    try:
        reply = ami.action("Getvar", Channel=channel, Variable=variable)
        return str(reply.fields.get("Value", ""))
    finally:
        ami.stop()


def agent_channel(live: Live) -> str | None:
    text = live.stack.instance.cli("core show channels concise")
    for line in text.splitlines():
        if line.startswith(f"PJSIP/{AGENT}-"):
            return line.split("!", 1)[0]
    return None


def test_browser_agent_answers_a_routed_call_with_audio_both_ways(live_factory, tmp_path):
    now = datetime.now(UTC)
    agents = {AGENT: {"skills": {"billing": 4}, "phone": "webrtc"}}
    live: Live = live_factory(agents, engine=False, ring_timeout_s=RING_TIMEOUT_S)
    stack = live.stack
    endpoint = stack.instance.cli(f"pjsip show endpoint {AGENT}")
    assert re.search(r"webrtc\s*:\s*yes", endpoint), endpoint
    agents_yaml = write_agents_yaml(tmp_path / "agents.yaml",
                                    directory_data(agents, now, RING_TIMEOUT_S))
    db = tmp_path / "engine.sqlite3"
    added = subprocess.run(
        [sys.executable, "-m", "homeline", "user", "add", AGENT, "--role", "agent",
         "--directory", str(agents_yaml), "--db", str(db)],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout  # a given password is never echoed

    work = Path(tempfile.mkdtemp(prefix="homeline-webrtc-"))
    agent_probe = probe_wav(work / "agent-probe.wav", AGENT_PROBE, 48000)
    caller_probe = probe_wav(work / "caller-probe.wav", CALLER_PROBE, 8000)
    web_port = port_outside_ephemeral_range()
    engine = EngineProcess(["engine", "run", "--stack", str(stack.state_dir), "--agents",
                            str(agents_yaml), "--db", str(db), "--flow", "main-menu",
                            "--web-port", str(web_port)], work)
    taken: list[Path] = []
    try:
        url = engine.wait_line(r"web app on (https://\S+)/", 60).group(1)
        assert url == f"https://127.0.0.1:{web_port}", url
        engine.wait_line(r"engine serving", 30)
        figures = run_browser_call(live, url, agent_probe, caller_probe, work, taken)
    finally:
        exit_status = engine.stop()
        output = engine.output()
        shutil.rmtree(work, ignore_errors=True)
    assert exit_status == 0, f"`homeline engine run` did not stop cleanly:\n{output}"
    assert "Traceback" not in output, output
    with pytest.raises(OSError):  # the web app stopped with the engine
        import socket

        socket.create_connection(("127.0.0.1", web_port), timeout=2).close()
    assert not work.exists()
    print("webrtc phone:", figures)

    # the engine recorded the call as answered by the browser agent
    with SqliteStore(db) as store:
        records = [r for r in store.calls(since=now - timedelta(minutes=5))
                   if r.caller == "+15550401"]
    assert [r.agent_id for r in records] == [AGENT], records
    assert records[0].answered_at is not None
    assert [p.name for p in taken] == ["webrtc-01-registered.png", "webrtc-02-ringing.png",
                                       "webrtc-03-on-a-call.png", "webrtc-04-after-call.png"]
    assert all(p.stat().st_size > 0 for p in taken)


def chromium_args(pin: str, microphone: Path) -> list[str]:
    """Headless Chromium for the phone in the page: the fake microphone playing
    ``microphone`` (looped), ICE on loopback, and Asterisk's certificate accepted by
    its key ``pin`` only (`spki_sha256`)."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic",
            # the microphone: no prompt, Chromium's fake device playing the probe (looped)
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
            # the remote audio plays without a prior user gesture (the click on Answer is
            # one, but the <audio> element's autoplay may come first)
            "--autoplay-policy=no-user-gesture-required",
            # ICE on loopback: Chromium leaves loopback addresses out of its host
            # candidates unless told (webrtc's BasicNetworkManager), and Asterisk's
            # media is on 127.0.0.1 here; real IPs, not mDNS names (RFC 8828 section
            # 5.2 mode 2 allows them with the microphone granted), so Asterisk's ICE
            # can pair them
            "--allow-loopback-in-peer-connection",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            f"--ignore-certificate-errors-spki-list={pin}"]


def run_browser_call(live: Live, url: str, agent_probe: Path, caller_probe: Path, work: Path,
                     taken: list[Path]) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    stack = live.stack
    pin = spki_sha256(Path(stack.tls_files().certfile))
    args = chromium_args(pin, agent_probe)
    profile = Path(tempfile.mkdtemp(prefix="homeline-chromium-"))
    problems: list[str] = []
    refused: list[tuple[int, str]] = []
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True, args=args,
                viewport={"width": 1100, "height": 900})
            try:
                page = ctx.new_page()
                page.set_default_timeout(20_000)
                # a failed fetch is also a console error without its URL: those are the
                # `refused` responses (asserted empty below) and the browser's own
                # /favicon.ico (404: the app has none), which the page never sees
                page.on("console", lambda m: problems.append(m.text)
                        if m.type == "error"
                        and not m.text.startswith("Failed to load resource") else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("response", lambda r: refused.append((r.status, r.url))
                        if r.status >= 400 else None)
                page.goto(url + "/login")
                page.fill("input[name=user]", AGENT)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/agent")
                status = page.locator("#phone-status")
                expect(status).to_have_attribute("data-state", "registered")
                contacts = wait_for(lambda: (lambda t: t if f"{AGENT}/" in t else "")(
                    stack.instance.cli("pjsip show contacts")), 10)
                # the CLI's table cuts the URI at its column width ("transport=w"); the
                # AOR shows it whole: JsSIP's Contact says transport=ws (RFC 7118 section 5)
                assert re.search(rf"{AGENT}/sip:\S+;transport=w", contacts), contacts
                aor = stack.instance.cli(f"pjsip show aor {AGENT}")
                assert re.search(r"contact\s*:\s*sip:\S+;transport=ws\b", aor, re.I), aor
                # the router made the registered agent available; the page shows it
                expect(page.locator("#state-name")).to_have_text("available")
                shot(page, "webrtc-01-registered", taken)
                figures = call_and_prove(live, page, caller_probe, work, taken)
                # the call ended: the page is idle and registered again
                expect(status).to_have_attribute("data-state", "registered")
                expect(page.locator("#phone-answer")).to_be_disabled()
                shot(page, "webrtc-04-after-call", taken)
                assert page.evaluate("""async () => [localStorage.length, sessionStorage.length,
                    (await indexedDB.databases()).length]""") == [0, 0, 0]
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert not profile.exists()
    assert not problems, problems  # no script error, no CSP violation
    assert refused == [], refused
    return figures


def call_and_prove(live: Live, page: Any, caller_probe: Path, work: Path,
                   taken: list[Path]) -> dict[str, Any]:
    from playwright.sync_api import expect

    status = page.locator("#phone-status")
    caller = TestCaller(live.host, "+15550401")
    try:
        leg = caller.call(live.support_uri)
        leg.wait_confirmed(15)
        time.sleep(1.0)
        leg.send_dtmf("1")  # main menu: billing
        expect(status).to_have_attribute("data-state", "ringing", timeout=30_000)
        assert "Ringing" in page.locator("#phone-call").inner_text()
        shot(page, "webrtc-02-ringing", taken)
        page.click("#phone-answer")
        expect(status).to_have_attribute("data-state", "in-call")
        channel = wait_for(lambda: agent_channel(live), 10)
        assert channel, live.stack.instance.cli("core show channels concise")
        # both directions at once: the browser's looped probe plays from the answer on
        heard_by_caller = leg.record(work / "caller-heard.wav")
        rate = wait_for(lambda: page.evaluate(TAP_START), 10, 0.5)
        assert rate, "the page has no remote audio stream"
        time.sleep(0.5)
        seconds = leg.play(caller_probe)
        time.sleep(seconds + 1.5)
        tapped = page.evaluate(TAP_STOP)
        leg.stop_recording()
        shot(page, "webrtc-03-on-a-call", taken)
        secure = ami_getvar(live, channel, "CHANNEL(rtp,secure)")
        # the channel's native formats, e.g. "(ulaw)"
        codec = ami_getvar(live, channel, "CHANNEL(audionativeformat)").strip("()")
        stats = live.stack.instance.cli("pjsip show channelstats")
        opus = live.stack.instance.cli("module show like opus")
        page.click("#phone-hangup")  # the agent ends the call from the page
        leg.wait_disconnected(15)
    finally:
        caller.close()

    pcm = np.frombuffer(base64.b64decode(tapped["pcm"]), dtype=np.int16)
    browser_rate = int(tapped["rate"])
    to_browser = verify_samples(pcm, browser_rate, CALLER_PROBE)
    to_caller = verify_heard(heard_by_caller, AGENT_PROBE)
    import soundfile as sf

    caller_pcm, caller_rate = sf.read(str(heard_by_caller), dtype="int16")
    found = detect(pcm, browser_rate)
    figures = {
        "codec": codec, "rtp_secure": secure,
        "codec_opus_loaded": "codec_opus" in opus,
        "browser_heard": to_browser.heard, "browser_rate_hz": browser_rate,
        "browser_seconds": round(len(pcm) / browser_rate, 2),
        "browser_rms_dbfs": round(float(rms_dbfs(pcm.astype(np.float32) / 32768)), 1),
        "browser_first_digit_at_s": round(found.events[0].start_s, 2) if found.events else None,
        "caller_heard": to_caller.heard, "caller_rate_hz": caller_rate,
        "caller_seconds": round(len(caller_pcm) / caller_rate, 2),
        "caller_rms_dbfs": round(float(rms_dbfs(caller_pcm.astype(np.float32) / 32768)), 1),
    }
    assert to_browser.ok, (to_browser.detail, figures)
    assert to_caller.ok, (to_caller.detail, figures)
    # DTLS-SRTP on the agent's leg: Asterisk says the RTP instance is encrypted
    assert secure == "1", (secure, figures)
    assert codec in ("ulaw", "opus"), codec
    assert channel.split("/")[1].split("-")[0] in stats, stats
    figures["channelstats"] = [line.strip() for line in stats.splitlines()
                               if AGENT in line or "Receive" in line]
    return figures
