"""`homeline softphone agent|call` as a user runs them (subprocesses, real SIP)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softphone import AgentPhone, DtmfReceived, SoftphoneHost, TestCaller

pytestmark = pytest.mark.pjsua2

HOMELINE = [sys.executable, "-m", "homeline"]


def test_call_command_prints_timeline_and_exits_0_when_answered(host: SoftphoneHost) -> None:
    agent = AgentPhone(host, "agent")
    out = subprocess.run(
        [*HOMELINE, "softphone", "call", agent.uri, "--from", "carol", "--dtmf", "12#",
         "--dtmf-delay", "0", "--dtmf-interval", "0.15", "--duration", "0.3"],
        capture_output=True, text=True, timeout=30,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stderr
    assert "CONFIRMED (200 OK)" in out.stdout
    assert "sent DTMF '12#'" in out.stdout
    assert "answered: yes" in out.stdout
    leg = agent.calls[0]
    assert leg.wait_dtmf(3, 2) == "12#"
    assert "sip:carol@" in leg.remote_uri
    assert leg.wait_disconnected(3)
    assert all(isinstance(e, DtmfReceived) for e in leg.events.snapshot()
               if getattr(e, "digit", None))


def test_call_command_exits_1_when_not_answered(host: SoftphoneHost) -> None:
    agent = AgentPhone(host, "agent", no_answer=True)
    out = subprocess.run(
        [*HOMELINE, "softphone", "call", agent.uri, "--answer-timeout", "0.5"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 1
    assert "not answered" in out.stderr
    assert agent.calls[0].wait_disconnected(3).status == 487  # CANCELled on exit


def test_agent_command_prints_events_until_interrupted(host: SoftphoneHost,
                                                      tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*HOMELINE, "softphone", "agent", "--user", "dave", "--answer-delay", "0.2",
         "--record", str(tmp_path / "call-{n}.wav")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("dave listening at sip:dave@127.0.0.1:"), first
        uri = first.split()[-1]
        leg = TestCaller(host, "erin").call(uri)
        leg.wait_confirmed(5)
        leg.wait_audio(2)
        leg.play_tone(900, 0.3)
        leg.send_dtmf("5", interval=0.1)
        time.sleep(0.5)
        leg.hangup()
        leg.wait_disconnected(3)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    print(stdout)
    assert proc.returncode == 0, stderr
    assert "incoming call from <sip:erin@127.0.0.1>" in stdout
    assert "DTMF '5' via rfc4733" in stdout
    assert "DISCONNECTED" in stdout
    assert (tmp_path / "call-1.wav").stat().st_size > 44
