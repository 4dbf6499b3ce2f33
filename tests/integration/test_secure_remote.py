"""A home agent on another network, behind a NAT: SIP over TLS and SRTP on the wire.

The agent's pjsua2 softphone runs as `homeline softphone agent --tls` inside a
network namespace of the test's own (netns.py: a masquerading NAT between it
and the PBX when nft is there); Asterisk listens for TLS and the agents' media
on the host end of the veth. A scripted caller dials the support line on
loopback, the router offers the call to the agent, audio is proven both ways
with the DTMF probe, and tshark, capturing on the veth (the project's own
ports only), shows what a network in between would see: TLS records and no
SIP in clear, RTP whose payloads carry SRTP's authentication tag (RFC 3711
section 3.1) and none of the probe's tones.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from homeline.paths import REPO_ROOT
from homeline.stack import SecureAccess
from prompts.audio_proof import probe_samples, verify_heard, verify_samples
from prompts.dtmf import to_int16
from prompts.g711 import ulaw_decode

from .conftest import dial_and_press, wait_for
from .netns import capture, nat_network

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]

CALLER_PROBE, AGENT_PROBE = "1397", "2580"


def _probe(path: Path, digits: str) -> Path:
    # a second of silence after the tones: pjmedia's player drops its last buffer
    samples = np.concatenate([probe_samples(digits), np.zeros(8000, dtype=np.float32)])
    sf.write(str(path), to_int16(samples), 8000, subtype="PCM_16")
    return path


def _tshark(pcap: Path, *args: str) -> list[str]:
    done = subprocess.run(["tshark", "-n", "-r", str(pcap), *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.strip()]


def test_agent_behind_nat_registers_over_tls_and_takes_a_call_with_srtp(live_factory,
                                                                        tmp_path):
    with nat_network() as net:
        live = live_factory({"amy": {"skills": {"billing": 4}, "phone": "tls"}},
                            secure=SecureAccess(bind=net.host_addr))
        stack = live.stack
        ca = stack.tls_files().cafile
        agent_probe = _probe(tmp_path / "agent-probe.wav", AGENT_PROBE)
        caller_probe = _probe(tmp_path / "caller-probe.wav", CALLER_PROBE)
        heard_by_agent = tmp_path / "agent-heard-{n}.wav"
        pcap = tmp_path / "veth.pcapng"
        ports = stack.ports
        bpf = f"tcp port {ports.tls} or udp portrange {ports.rtp_start}-{ports.rtp_end}"
        with capture(net.host_if, bpf, pcap):
            argv = net.command([
                sys.executable, "-m", "homeline", "softphone", "agent", "--tls", "--ca", str(ca),
                "--server", f"{net.host_addr}:{ports.tls}", "--user", "amy",
                "--password", stack.agent_secret("amy"), "--bind", net.agent_addr,
                "--answer-delay", "0.3", "--play", str(agent_probe), "--play-loop",
                "--record", str(heard_by_agent)])
            env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
            with open(tmp_path / "agent.out", "w") as out:
                agent = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL)
            try:
                live.wait_registered("amy", timeout=20)
                # for a failed run's post-mortem: the SIP Asterisk sent and received,
                # as it saw it inside TLS (log/sip-debug.log, kept by stack.stop)
                stack.instance.cli("logger add channel sip-debug.log verbose(3)")
                stack.instance.cli("pjsip set logger on")
                contacts = stack.instance.cli("pjsip show contacts")
                # rewrite_contact: reached through where the REGISTER came from (the
                # NAT's outside address), over TLS, not at the agent's private Contact
                assert f"@{net.public_addr}:" in contacts and "transport=tls" in contacts.lower(), \
                    contacts
                if net.nat:
                    assert net.agent_addr not in contacts

                caller, leg = dial_and_press(live, "+15550401", "1")
                with caller:
                    assert wait_for(lambda: (t := live.timeline_of("+15550401")) and t.answered,
                                    30), live.engine.timelines()
                    heard_by_caller = leg.record(tmp_path / "caller-heard.wav")
                    time.sleep(0.5)
                    seconds = leg.play(caller_probe)
                    time.sleep(seconds + 3.0)  # the agent's looped probe plays meanwhile
                    leg.stop_recording()
                    leg.hangup()
                    leg.wait_disconnected(10)
                assert wait_for(lambda: live.channel_count() == 0, 10)
            finally:
                if agent.poll() is None:
                    agent.send_signal(signal.SIGINT)  # the CLI hangs up and unregisters
                    try:
                        agent.wait(15)
                    except subprocess.TimeoutExpired:
                        agent.kill()
                        agent.wait(5)
        output = (tmp_path / "agent.out").read_text()
        assert agent.returncode == 0, output

    # audio both ways, through the NAT, encrypted
    to_caller = verify_heard(heard_by_caller, AGENT_PROBE)
    to_agent = verify_heard(Path(str(heard_by_agent).replace("{n}", "1")), CALLER_PROBE)
    assert to_caller.ok, to_caller.detail
    assert to_agent.ok, (to_agent.detail, output)

    # SIP: TLS records only; no SIP message and no SDES key in clear anywhere
    raw = pcap.read_bytes()
    assert _tshark(pcap, "-Y", "tls.record.content_type == 23"), "no TLS application data"
    assert _tshark(pcap, "-Y", "sip") == []
    for clear in (b"INVITE sip:", b"REGISTER sip:", b"SIP/2.0 200", b"a=crypto"):
        assert clear not in raw, f"{clear!r} seen in clear on the veth"

    # RTP: every packet from the agent's side carries PCMU's payload type (0) in
    # its clear header, but 160 bytes of audio plus SRTP's authentication tag
    # (10 bytes for AES_CM_128_HMAC_SHA1_80, RFC 4568 section 6.2.1), and decoded
    # as plain mu-law it holds none of the agent's probe tones
    rows = _tshark(pcap, "-o", "rtp.heuristic_rtp:TRUE", "-Y",
                   f"rtp && ip.src == {net.public_addr}", "-T", "fields", "-e", "rtp.p_type",
                   "-e", "rtp.payload")
    assert len(rows) > 100, f"only {len(rows)} RTP packets from the agent on the veth"
    payloads = [bytes.fromhex(row.split("\t")[1].replace(":", "")) for row in rows]
    assert {row.split("\t")[0] for row in rows} == {"0"}
    sizes = sorted({len(p) for p in payloads})
    assert all(size > 160 for size in sizes), f"RTP payload sizes {sizes}: not SRTP"
    audio = ulaw_decode(np.frombuffer(b"".join(p[:160] for p in payloads), dtype=np.uint8))
    as_plain = verify_samples(audio.astype(np.float32) / 32768.0, 8000, AGENT_PROBE)
    assert as_plain.heard == "", f"tones decodable from the wire: {as_plain.detail}"
