"""A supervisor's WebRTC phone in the desk page, on a real call, proven by audio.

Supervisor sam's own endpoint is ``phone: webrtc`` (dialplans/supervisors.yaml):
his desk page carries the phone in the page (web/static/phone.js, as the agent
portal's), registered over secure WebSocket to the real Asterisk with his own
credentials (``GET /api/desk/phone``). A scripted pjsua2 caller reaches agent amy
(a udp softphone) through the IVR; sam clicks Listen on amy's call in the agents
table; the engine's AMI Originate rings ``PJSIP/sam``, which is the page; sam
clicks Answer, ChanSpy joins him, and the call's record says ``joined``.

Audio, with the DTMF probe (prompts/audio_proof.py): the page's remote stream is
tapped with WebAudio (as tests/integration/test_webrtc_phone.py does) while the
caller and amy play their probes: sam's browser hears both. Sam's microphone is
Chromium's fake capture device looping the supervisor's probe; in listen mode
neither the caller nor amy hears it. Sam hangs up from the page to stop (the
page's phone is idle and registered again), then whispers on the same call: amy
hears his browser's probe, the caller does not. The call's record page shows
both actions, ``ringing-supervisor`` then ``joined``. Screenshots go to
``$HOMELINE_TEST_ARTIFACTS/screenshots`` (default ``test-artifacts/screenshots``).
"""
from __future__ import annotations

import base64
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from homeline.supervisors import Supervisor
from prompts.audio_proof import verify_heard, verify_samples

from .conftest import Live, wait_for
from .test_desk_browser import log_in, serve_desk, watch
from .test_supervise import AGENT_PROBE, CALLER_PROBE, SUPERVISOR_PROBE, connected_call
from .test_webrtc_phone import (
    CHROMIUM,
    TAP_START,
    TAP_STOP,
    ami_getvar,
    chromium_args,
    probe_wav,
    shot,
    spki_sha256,
)

pytestmark = [
    pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason="needs Debian's chromium (/usr/bin/chromium): "
                              "scripts/bootstrap.sh installs it"),
]

def sam_channel(live: Live) -> str | None:
    for line in live.stack.instance.cli("core show channels concise").splitlines():
        if line.startswith("PJSIP/sam-"):
            return line.split("!", 1)[0]
    return None


def supervisor_events(live: Live, call_id: str) -> list[tuple[str, str, str | None]]:
    assert live.store is not None
    return [(str(e.data["action"]), str(e.data["by"]), e.data.get("result"))
            for e in live.store.call_events([call_id])[call_id] if e.event == "supervisor"]


def test_a_webrtc_supervisor_listens_and_whispers_from_the_desk_page(
        live_factory: Callable[..., Live]) -> None:
    from playwright.sync_api import expect, sync_playwright

    live = live_factory({"amy": {"skills": {"billing": 4}}},
                        supervisors=(Supervisor("sam", "Sam Lead", "webrtc"),))
    stack = live.stack
    assert re.search(r"webrtc\s*:\s*yes", stack.instance.cli("pjsip show endpoint sam"))
    web = serve_desk(live)
    live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")

    work = Path(tempfile.mkdtemp(prefix="homeline-deskphone-"))
    profile = Path(tempfile.mkdtemp(prefix="homeline-chromium-"))
    microphone = probe_wav(work / "supervisor-probe.wav", SUPERVISOR_PROBE, 48000)
    caller_probe = probe_wav(work / "caller-probe.wav", CALLER_PROBE, 8000)
    agent_probe = probe_wav(work / "agent-probe.wav", AGENT_PROBE, 8000)
    pin = spki_sha256(Path(stack.tls_files().certfile))
    taken: list[Path] = []
    problems: list[str] = []
    refused: list[tuple[int, str]] = []
    figures: dict[str, Any] = {}
    call_id = ""
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True,
                args=chromium_args(pin, microphone), viewport={"width": 1280, "height": 1000})
            try:
                page = log_in(ctx, web.url, "sam",
                              lambda p: watch(p, problems, refused, web.url))
                page.set_default_timeout(20_000)

                # the page's phone registers as sam's own endpoint, over WebSocket
                status = page.locator("#phone-status")
                expect(status).to_have_attribute("data-state", "registered")
                expect(page.locator("#my-phone")).to_contain_text("the WebRTC phone in this page")
                aor = wait_for(lambda: (lambda t: t if "transport=ws" in t else "")(
                    stack.instance.cli("pjsip show aor sam")), 10)
                assert re.search(r"contact\s*:\s*sip:\S+;transport=ws\b", aor, re.I), aor
                shot(page, "deskphone-01-registered", taken)

                caller, leg, agent_leg, timeline = connected_call(live, "+15550321")
                call_id = timeline.call_id
                with caller:
                    row = page.locator('#desk-agents tr[data-agent="amy"]')
                    expect(row.locator(".agent-call")).to_contain_text("+15550321")
                    row.locator('button.spy[data-mode="listen"]').click()
                    expect(page.locator("#desk-said")).to_contain_text(
                        "listen on amy's call")
                    # the desk's Originate rings PJSIP/sam: the phone in this page
                    expect(status).to_have_attribute("data-state", "ringing", timeout=20_000)
                    assert "Ringing" in page.locator("#phone-call").inner_text()
                    assert supervisor_events(live, call_id) == [
                        ("listen", "sam", "ringing-supervisor")]
                    shot(page, "deskphone-02-ringing", taken)
                    page.click("#phone-answer")
                    expect(status).to_have_attribute("data-state", "in-call")
                    joined = wait_for(lambda: ("listen", "sam", "joined")
                                      in supervisor_events(live, call_id), 15)
                    assert joined, supervisor_events(live, call_id)
                    expect(row.locator(".supervised")).to_contain_text("listen by sam")
                    channel = wait_for(lambda: sam_channel(live), 10)
                    assert channel, stack.instance.cli("core show channels concise")
                    time.sleep(1.0)  # ChanSpy attaches its audiohooks once the app runs

                    # audio: the browser hears the caller and amy; they do not hear sam
                    caller_heard = leg.record(work / "caller-heard.wav")
                    agent_heard = agent_leg.record(work / "agent-heard.wav")
                    rate = wait_for(lambda: page.evaluate(TAP_START), 10, 0.5)
                    assert rate, "the desk page has no remote audio stream"
                    time.sleep(0.3)
                    for who, probe in ((leg, caller_probe), (agent_leg, agent_probe)):
                        # twice over: a digit lost in ChanSpy's mix in one pass still
                        # leaves a whole probe in the other
                        seconds = who.play(probe, loop=True)
                        time.sleep(2 * seconds + 0.6)
                        who.stop_playing()
                    tapped = page.evaluate(TAP_STOP)
                    leg.stop_recording()
                    agent_leg.stop_recording()
                    shot(page, "deskphone-03-listening", taken)
                    stats = stack.instance.cli("pjsip show channelstats")
                    # DTLS-SRTP on sam's leg: Asterisk says its RTP instance is encrypted
                    rtp_secure = ami_getvar(live, channel, "CHANNEL(rtp,secure)")

                    # hang up from the page to stop listening; the call goes on
                    page.click("#phone-hangup")
                    assert wait_for(lambda: sam_channel(live) is None, 10), \
                        stack.instance.cli("core show channels concise")
                    expect(status).to_have_attribute("data-state", "registered")
                    expect(page.locator("#phone-answer")).to_be_disabled()
                    expect(page.locator("#phone-hangup")).to_be_disabled()
                    shot(page, "deskphone-04-hung-up", taken)

                    # whisper on the same call: the page's microphone reaches amy only
                    row.locator('button.spy[data-mode="whisper"]').click()
                    expect(status).to_have_attribute("data-state", "ringing", timeout=20_000)
                    page.click("#phone-answer")
                    expect(status).to_have_attribute("data-state", "in-call")
                    assert wait_for(lambda: ("whisper", "sam", "joined")
                                    in supervisor_events(live, call_id), 15), \
                        supervisor_events(live, call_id)
                    expect(row.locator(".supervised")).to_contain_text("whisper by sam")
                    time.sleep(1.0)
                    caller_whisper = leg.record(work / "caller-whisper.wav")
                    agent_whisper = agent_leg.record(work / "agent-whisper.wav")
                    time.sleep(6.0)  # the fake microphone loops sam's probe (about 2 s)
                    leg.stop_recording()
                    agent_leg.stop_recording()
                    shot(page, "deskphone-05-whispering", taken)
                    page.click("#phone-hangup")
                    expect(status).to_have_attribute("data-state", "registered")
                    leg.hangup()
                    leg.wait_disconnected(10)
                    agent_leg.wait_disconnected(10)
                expect(row.locator(".agent-call")).to_have_text("-")

                # the call's record shows the supervisor's action, joined
                page.goto(f"{web.url}/supervisor/calls/{call_id}")
                events = page.locator("#events tr.event-supervisor")
                expect(events).to_have_count(4)
                for i, (mode, result) in enumerate((("listen", "ringing-supervisor"),
                                                    ("listen", "joined"),
                                                    ("whisper", "ringing-supervisor"),
                                                    ("whisper", "joined"))):
                    expect(events.nth(i).locator("code")).to_have_text(
                        f'{{"action": "{mode}", "by": "sam", "result": "{result}"}}')
                shot(page, "deskphone-06-call-record", taken)
                assert page.evaluate("""async () => [localStorage.length, sessionStorage.length,
                    (await indexedDB.databases()).length]""") == [0, 0, 0]
            finally:
                ctx.close()

        pcm = np.frombuffer(base64.b64decode(tapped["pcm"]), dtype=np.int16)
        browser_rate = int(tapped["rate"])
        hears_caller = verify_samples(pcm, browser_rate, CALLER_PROBE)
        hears_agent = verify_samples(pcm, browser_rate, AGENT_PROBE)
        caller_hears_sam = verify_heard(caller_heard, SUPERVISOR_PROBE)
        agent_hears_sam = verify_heard(agent_heard, SUPERVISOR_PROBE)
        caller_hears_agent = verify_heard(caller_heard, AGENT_PROBE)
        agent_hears_whisper = verify_heard(agent_whisper, SUPERVISOR_PROBE)
        caller_hears_whisper = verify_heard(caller_whisper, SUPERVISOR_PROBE)
        figures = {"rtp_secure": rtp_secure, "browser_heard": hears_caller.heard,
                   "browser_rate_hz": browser_rate,
                   "browser_seconds": round(len(pcm) / browser_rate, 2),
                   "caller_heard": caller_hears_sam.heard, "agent_heard": agent_hears_sam.heard,
                   "whisper_agent_heard": agent_hears_whisper.heard,
                   "whisper_caller_heard": caller_hears_whisper.heard,
                   "channelstats": [line.strip() for line in stats.splitlines()
                                    if "sam" in line or "Receive" in line]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(profile, ignore_errors=True)
    print("desk webrtc phone:", figures)
    assert rtp_secure == "1", figures
    assert hears_caller.ok, (hears_caller.detail, figures)  # sam's browser hears the caller
    assert hears_agent.ok, (hears_agent.detail, figures)  # and amy
    assert caller_hears_agent.ok, figures  # the call itself goes on
    # listen: sam's microphone (looping his probe) reaches neither the caller nor amy
    assert not caller_hears_sam.ok and not agent_hears_sam.ok, figures
    assert not set(caller_hears_sam.heard + agent_hears_sam.heard) & set(SUPERVISOR_PROBE), \
        figures
    # whisper: sam's browser microphone reaches amy, and not the caller
    assert agent_hears_whisper.ok, (agent_hears_whisper.detail, figures)
    assert not set(caller_hears_whisper.heard) & set(SUPERVISOR_PROBE), figures
    assert supervisor_events(live, call_id) == [
        (mode, "sam", result) for mode in ("listen", "whisper")
        for result in ("ringing-supervisor", "joined")]
    assert not problems, problems
    assert refused == [], refused
    assert [p.name for p in taken] == [f"deskphone-0{i}-{n}.png" for i, n in enumerate(
        ("registered", "ringing", "listening", "hung-up", "whispering", "call-record"),
        start=1)]
    assert all(p.stat().st_size > 5000 for p in taken)
