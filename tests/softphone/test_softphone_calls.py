"""Direct calls between an AgentPhone and a TestCaller in one process (no registrar).

Every call here is real SIP over UDP loopback with real RTP; audio is checked in
the WAV files each side recorded.
"""
from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from softphone import (
    AgentPhone,
    CallError,
    CallStateChanged,
    DtmfReceived,
    IncomingCall,
    SoftphoneHost,
    TestCaller,
    dominant_frequency,
    read_wav,
    rms_dbfs,
    tone_power_ratio,
    write_tone_wav,
)

pytestmark = pytest.mark.pjsua2


def _connected(host: SoftphoneHost, **agent_kw: object) -> tuple[AgentPhone, TestCaller]:
    agent = AgentPhone(host, "agent", **agent_kw)  # type: ignore[arg-type]
    caller = TestCaller(host, "alice", display_name="Alice")
    return agent, caller


def _loudest_window_dbfs(samples: np.ndarray, rate: int, window_s: float = 0.1) -> float:
    n = int(rate * window_s)
    chunks = [samples[i:i + n] for i in range(0, samples.size - n + 1, n)]
    return max(rms_dbfs(c) for c in chunks)


def test_audio_flows_both_ways_and_only_within_the_call(host: SoftphoneHost,
                                                         tmp_path: Path) -> None:
    agent, caller = _connected(host)
    leg = caller.call(agent.uri, record=tmp_path / "caller-heard.wav")
    leg.wait_confirmed(5)
    agent_leg = agent.wait_call(2, index=0)
    agent_leg.record(tmp_path / "agent-heard.wav")
    leg.wait_audio(2)
    agent_leg.wait_audio(2)

    # agent -> caller: a WAV file; caller -> agent: a generated tone
    agent_wav = write_tone_wav(tmp_path / "agent-says.wav", 1200, 1.2, amplitude=0.5)
    assert agent_leg.play(agent_wav) == pytest.approx(1.2)
    leg.play_tone(700, 1.2)
    time.sleep(1.6)
    caller_file = leg.stop_recording()
    agent_file = agent_leg.stop_recording()
    leg.hangup()
    leg.wait_disconnected(3)
    assert caller_file == tmp_path / "caller-heard.wav"
    assert agent_file == tmp_path / "agent-heard.wav"

    for path in (caller_file, agent_file):
        with wave.open(str(path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)

    heard_by_caller, rate = read_wav(caller_file)
    heard_by_agent, _ = read_wav(agent_file)
    figures = {
        "caller_heard_hz": dominant_frequency(heard_by_caller, rate),
        "agent_heard_hz": dominant_frequency(heard_by_agent, rate),
        "caller_1200_share": tone_power_ratio(heard_by_caller, rate, 1200),
        "agent_700_share": tone_power_ratio(heard_by_agent, rate, 700),
        "caller_own_700_share": tone_power_ratio(heard_by_caller, rate, 700),
        "caller_peak_dbfs": _loudest_window_dbfs(heard_by_caller, rate),
        "agent_peak_dbfs": _loudest_window_dbfs(heard_by_agent, rate),
        "caller_heard_s": heard_by_caller.size / rate,
    }
    print({k: round(v, 3) for k, v in figures.items()})
    assert figures["caller_heard_hz"] == pytest.approx(1200, abs=10)
    assert figures["agent_heard_hz"] == pytest.approx(700, abs=10)
    assert figures["caller_1200_share"] > 0.8
    assert figures["agent_700_share"] > 0.8
    # each side hears the other, not itself (conference bridge connections per call)
    assert figures["caller_own_700_share"] < 0.02
    # amplitude 0.5 is -9 dBFS; G.711 both ways keeps it within a few dB
    assert -14 < figures["caller_peak_dbfs"] < -6
    assert -14 < figures["agent_peak_dbfs"] < -6


def test_rfc4733_digits_arrive_in_order_with_timestamps(host: SoftphoneHost) -> None:
    agent, caller = _connected(host)
    leg = caller.call(agent.uri)
    leg.wait_confirmed(5)
    leg.wait_audio(2)
    agent_leg = agent.wait_call(2, index=0)
    digits = "159#*0D"
    t_send = time.monotonic()
    leg.send_dtmf(digits, interval=0.2)
    assert agent_leg.wait_dtmf(len(digits), 3) == digits
    events = [e for e in agent_leg.events.snapshot() if isinstance(e, DtmfReceived)]
    assert [e.method for e in events] == ["rfc4733"] * len(digits)
    assert all(e.call_id == leg.call_id for e in events)
    gaps = np.diff([e.at for e in events])
    print({"first_digit_latency_s": round(events[0].at - t_send, 3),
           "gaps_s": [round(g, 3) for g in gaps]})
    assert events[0].at - t_send < 0.5
    assert all(0.1 < g < 0.4 for g in gaps)
    # the agent's account log has the same digits
    assert "".join(e.digit for e in agent.events.snapshot()
                   if isinstance(e, DtmfReceived)) == digits
    leg.hangup()
    leg.wait_disconnected(3)


def test_sip_info_dtmf_and_agent_sends_dtmf_back(host: SoftphoneHost) -> None:
    agent, caller = _connected(host)
    leg = caller.call(agent.uri)
    leg.wait_confirmed(5)
    agent_leg = agent.wait_call(2, index=0)
    agent_leg.wait_audio(2)
    leg.send_dtmf("42", method="sip-info", interval=0.1)
    assert agent_leg.wait_dtmf(2, 3) == "42"
    assert {e.method for e in agent_leg.events.snapshot() if isinstance(e, DtmfReceived)} \
        == {"sip-info"}
    agent_leg.send_dtmf("7", interval=0.1)
    assert leg.wait_dtmf(1, 3) == "7"
    with pytest.raises(CallError, match="invalid DTMF digit"):
        leg.send_dtmf("1x")
    leg.hangup()
    leg.wait_disconnected(3)


def test_incoming_call_event_names_caller_and_call_id(host: SoftphoneHost) -> None:
    agent, caller = _connected(host)
    leg = caller.call(agent.uri)
    leg.wait_confirmed(5)
    incoming = agent.events.wait_for(lambda e: isinstance(e, IncomingCall), 2)
    assert isinstance(incoming, IncomingCall)
    assert incoming.call_id == leg.call_id != ""
    assert "sip:alice@127.0.0.1" in incoming.from_uri and '"Alice"' in incoming.from_uri
    assert "sip:agent@127.0.0.1" in incoming.to_uri
    agent.calls[0].wait_state("CONFIRMED", 2)  # the ACK may still be in flight
    states = [e.state for e in agent.calls[0].events.snapshot()
              if isinstance(e, CallStateChanged)]
    assert states[:2] == ["INCOMING", "EARLY"] and states[-1] == "CONFIRMED"
    leg.hangup()
    leg.wait_disconnected(3)


@pytest.mark.parametrize("who", ["caller", "agent"])
def test_either_side_hangs_up(host: SoftphoneHost, who: str) -> None:
    agent, caller = _connected(host)
    leg = caller.call(agent.uri)
    leg.wait_confirmed(5)
    agent_leg = agent.wait_call(2, index=0)
    agent_leg.wait_state("CONFIRMED", 2)
    (leg if who == "caller" else agent_leg).hangup()
    ended_caller = leg.wait_disconnected(3)
    ended_agent = agent_leg.wait_disconnected(3)
    assert leg.ended and agent_leg.ended
    assert ended_caller.call_id == ended_agent.call_id == leg.call_id
    # the side that hung up sees the 200 to its BYE; the other the BYE itself
    print({"caller": (ended_caller.status, ended_caller.reason),
           "agent": (ended_agent.status, ended_agent.reason)})
    assert ended_caller.status == 200 and ended_agent.status == 200
    with pytest.raises(CallError, match="has ended"):
        leg.send_dtmf("1")
    leg.hangup()  # no-op once ended


def test_answer_delay_rings_first(host: SoftphoneHost) -> None:
    agent, caller = _connected(host, answer_delay=0.5)
    leg = caller.call(agent.uri)
    early = leg.wait_state("EARLY", 2)
    confirmed = leg.wait_confirmed(3)
    assert early.status == 180
    print({"ringing_s": round(confirmed.at - early.at, 3)})
    assert 0.45 < confirmed.at - early.at < 1.0
    leg.hangup()
    leg.wait_disconnected(3)


def test_no_answer_keeps_ringing_until_the_caller_cancels(host: SoftphoneHost) -> None:
    agent, caller = _connected(host, no_answer=True)
    leg = caller.call(agent.uri)
    assert leg.wait_state("EARLY", 2).status == 180
    agent_leg = agent.wait_call(2, index=0)
    time.sleep(1.0)
    assert leg.state == "EARLY" and agent_leg.state == "EARLY"
    leg.hangup()  # CANCEL (RFC 3261 section 9)
    with pytest.raises(CallError) as info:
        leg.wait_confirmed(3)
    assert info.value.status == 487
    assert agent_leg.wait_disconnected(3).status == 487


def test_agent_can_answer_by_hand(host: SoftphoneHost) -> None:
    agent, caller = _connected(host, auto_answer=False)
    leg = caller.call(agent.uri)
    agent_leg = agent.wait_call(2)
    leg.wait_state("EARLY", 2)
    agent_leg.answer()
    assert leg.wait_confirmed(3).status == 200
    agent_leg.hangup()
    leg.wait_disconnected(3)


def test_calls_an_account_must_not_take_are_refused(host: SoftphoneHost) -> None:
    agent, caller = _connected(host)
    # pjsua would hand an INVITE for an unknown user to some account: the agent says 404
    leg = caller.call(f"sip:nobody@127.0.0.1:{agent.port}")
    with pytest.raises(CallError, match="404") as info:
        leg.wait_confirmed(3)
    assert info.value.status == 404
    # a TestCaller declines calls to itself
    other = TestCaller(host, "bob")
    leg = other.call(f"sip:alice@127.0.0.1:{caller.port}")
    with pytest.raises(CallError, match="603"):
        leg.wait_confirmed(3)
    assert [c.state for c in agent.calls] == ["DISCONNECTED"]


def test_many_agents_and_callers_in_one_process(host: SoftphoneHost, tmp_path: Path) -> None:
    agents = [AgentPhone(host, f"agent{i}", record=tmp_path / f"agent{i}-{{n}}.wav")
              for i in range(1, 5)]
    callers = [TestCaller(host, f"caller{i}") for i in range(1, 5)]
    assert len({a.port for a in agents}) == 4  # one transport each
    legs = [c.call(a.uri) for c, a in zip(callers, agents, strict=True)]
    for leg in legs:
        leg.wait_confirmed(5)
        leg.wait_audio(2)
    for i, leg in enumerate(legs):
        leg.play_tone(400 + 200 * i, 0.8)
    time.sleep(1.0)
    for leg in legs:
        leg.hangup()
    heard = []
    for i, agent in enumerate(agents):
        agent_leg = agent.calls[0]
        agent_leg.wait_disconnected(3)
        assert f"sip:caller{i + 1}@" in agent_leg.remote_uri
        recording = agent_leg.stop_recording()
        assert recording == tmp_path / f"agent{i + 1}-1.wav"
        samples, rate = read_wav(recording)
        heard.append(dominant_frequency(samples, rate))
    print({"heard_hz": heard})
    assert heard == pytest.approx([400, 600, 800, 1000], abs=10)


def test_in_band_dtmf_probe_survives_g711_both_ways(host: SoftphoneHost, tmp_path: Path) -> None:
    from prompts.audio_proof import verify_heard, write_probe

    agent, caller = _connected(host)
    leg = caller.call(agent.uri)
    leg.wait_confirmed(5)
    agent_leg = agent.wait_call(2)
    leg.wait_audio(2)
    agent_leg.wait_audio(2)
    heard_by_agent = agent_leg.record(tmp_path / "agent-heard.wav")
    heard_by_caller = leg.record(tmp_path / "caller-heard.wav")
    seconds = max(leg.play(write_probe(tmp_path / "caller-probe.wav", "1379")),
                  agent_leg.play(write_probe(tmp_path / "agent-probe.wav", "2468")))
    time.sleep(seconds + 0.3)
    agent_leg.stop_recording()
    leg.stop_recording()
    leg.hangup()
    leg.wait_disconnected(3)
    by_agent = verify_heard(heard_by_agent, "1379")
    by_caller = verify_heard(heard_by_caller, "2468")
    print(by_agent.detail, "|", by_caller.detail)
    assert (by_agent.ok, by_agent.heard) == (True, "1379")
    assert (by_caller.ok, by_caller.heard) == (True, "2468")
