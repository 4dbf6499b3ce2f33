"""Listen, whisper and barge on a real call, proven by audio.

A caller reaches agent amy through the IVR; supervisor sam (an endpoint of his
own, from a supervisors list) asks for each mode through the store's feed, as the
desk does. The engine rings sam's phone (AMI Originate into [homeline-supervise]),
and ChanSpy joins him to amy's leg. Each party records what it hears while, one
at a time, the supervisor, the caller and the agent play a DTMF probe; the DTMF
detector on the three recordings says who heard whom:

- whisper: the agent hears the supervisor, the caller does not;
- listen: neither hears the supervisor; the supervisor hears both;
- barge: both hear the supervisor.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from homeline.supervisors import Supervisor
from prompts.audio_proof import AudioProof, verify_heard, write_probe

from .conftest import Live, dial_and_press, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]

# the supervisor's digits are in neither other probe, so any one of them heard is a leak
SUPERVISOR_PROBE, CALLER_PROBE, AGENT_PROBE = "4*6#", "1397", "2580"


def _heard(path: Path, digits: str) -> AudioProof:
    """The recorder finishes its WAV on pjsua2's thread shortly after stopping."""
    got = wait_for(lambda: (p := verify_heard(path, digits)).ok and p, 2, 0.2)
    return got or verify_heard(path, digits)


def connected_call(live: Live, caller_id: str) -> tuple[Any, Any, Any, Any]:
    """A caller connected to amy: (caller, caller's leg, amy's leg, the call's timeline)."""
    caller, leg = dial_and_press(live, caller_id, "1")
    timeline = wait_for(lambda: (t := live.timeline_of(caller_id)) and t.answered and t, 30)
    assert timeline, f"no agent answered {caller_id}"
    agent_leg = live.phones["amy"].wait_call(10)
    agent_leg.wait_confirmed(10)
    return caller, leg, agent_leg, timeline


def supervise(live: Live, call_id: str, mode: str, index: int) -> Any:
    """Ask as the desk does (the store's feed); sam's phone rings and answers."""
    assert live.store is not None
    live.store.request_supervision("sam", "amy", call_id, mode, datetime.now(UTC))
    sam_leg = live.phones["sam"].wait_call(15, index=index)
    sam_leg.wait_confirmed(10)
    time.sleep(1.0)  # ChanSpy attaches its audiohooks once the channel runs the app
    return sam_leg


def probe_round(work: Path, tag: str, legs: dict[str, Any]) -> dict[str, dict[str, AudioProof]]:
    """Every leg records; the supervisor, the caller, the agent play their probe in
    turn (twice each). Returns ``{listener: {player: proof}}``."""
    probes = {"supervisor": SUPERVISOR_PROBE, "caller": CALLER_PROBE, "agent": AGENT_PROBE}
    wavs = {who: write_probe(work / f"probe-{who}.wav", digits)
            for who, digits in probes.items()}
    heard = {who: leg.record(work / f"{tag}-{who}-heard.wav") for who, leg in legs.items()}
    time.sleep(0.3)
    for who in ("supervisor", "caller", "agent"):
        # twice over: a digit lost in the mix (ChanSpy's audiohooks, jitter) in one
        # pass still leaves a whole probe in the other
        seconds = legs[who].play(wavs[who], loop=True)
        time.sleep(2 * seconds + 0.6)
        legs[who].stop_playing()
    for leg in legs.values():
        leg.stop_recording()
    return {listener: {player: _heard(path, probes[player])
                       for player in probes if player != listener}
            for listener, path in heard.items()}


def _supervisor_events(live: Live, call_id: str) -> list[dict[str, Any]]:
    assert live.store is not None
    return [dict(e.data) for e in live.store.call_events([call_id])[call_id]
            if e.event == "supervisor"]


@pytest.mark.parametrize("mode", ["whisper", "listen", "barge"])
def test_supervisor_mode_proven_by_who_hears_whom(live_factory, mode: str) -> None:
    live = live_factory({"amy": {"skills": {"billing": 4}}},
                        supervisors=(Supervisor("sam", "Sam Lead"),))
    live.agent("amy", answer_delay=0.3)
    live.agent("sam", answer_delay=0.2)
    live.wait_registered("amy")
    caller, leg, agent_leg, timeline = connected_call(live, "+15550301")
    with caller:
        sam_leg = supervise(live, timeline.call_id, mode, 0)
        heard = probe_round(live.work, mode, {"supervisor": sam_leg, "caller": leg,
                                               "agent": agent_leg})
        detail = {who: {p: h.detail for p, h in got.items()} for who, got in heard.items()}
        # the caller and the agent always hear each other: spying changes nothing there
        assert heard["agent"]["caller"].ok and heard["caller"]["agent"].ok, detail
        # the supervisor hears both sides in every mode
        assert heard["supervisor"]["caller"].ok, detail
        assert heard["supervisor"]["agent"].ok, detail
        expected = {"whisper": (True, False), "listen": (False, False), "barge": (True, True)}
        agent_hears, caller_hears = expected[mode]
        assert heard["agent"]["supervisor"].ok is agent_hears, detail
        assert heard["caller"]["supervisor"].ok is caller_hears, detail
        if not agent_hears:  # not a single digit of the supervisor's probe leaked
            assert not set(heard["agent"]["supervisor"].heard) & set(SUPERVISOR_PROBE), detail
        if not caller_hears:
            assert not set(heard["caller"]["supervisor"].heard) & set(SUPERVISOR_PROBE), detail

        sam_leg.hangup()
        sam_leg.wait_disconnected(10)
        # the call goes on after the supervisor left
        assert leg.state == "CONFIRMED" and agent_leg.state == "CONFIRMED"
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)
    events = wait_for(lambda: len(_supervisor_events(live, timeline.call_id)) >= 2
                      and _supervisor_events(live, timeline.call_id), 5)
    # sent, then Asterisk's OriginateResponse: sam answered and joined
    assert events == [{"action": mode, "by": "sam", "result": "ringing-supervisor"},
                      {"action": mode, "by": "sam", "result": "joined"}], events
    assert any(f"supervisor sam: {mode}" in what for _t, what in timeline.steps), \
        timeline.steps
    assert wait_for(lambda: live.channel_count() == 0, 10)


def test_a_request_for_a_call_not_with_that_agent_rings_nobody(live_factory) -> None:
    live = live_factory({"amy": {"skills": {"billing": 4}}, "bob": {"skills": {"tech": 4}}},
                        supervisors=(Supervisor("sam", "Sam Lead"),))
    live.agent("amy", answer_delay=0.3)
    live.agent("bob", answer_delay=0.3)
    sam = live.agent("sam", answer_delay=0.2)
    live.wait_registered("amy", "bob")
    caller, leg, agent_leg, timeline = connected_call(live, "+15550302")
    assert live.store is not None
    with caller:
        now = datetime.now(UTC)
        live.store.request_supervision("sam", "bob", timeline.call_id, "barge", now)
        live.store.request_supervision("eve", "amy", timeline.call_id, "listen", now)
        events = wait_for(lambda: len(_supervisor_events(live, timeline.call_id)) >= 2
                          and _supervisor_events(live, timeline.call_id), 5)
        assert [(e["by"], e["action"], e["result"]) for e in events] == [
            ("sam", "barge", "refused"), ("eve", "listen", "refused")], events
        assert "not bob" in events[0]["why"] and "no supervisor endpoint" in events[1]["why"]
        time.sleep(1.0)
        assert sam.calls == [], "a refused request rang the supervisor"
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)


def test_a_supervisor_whose_phone_is_not_there_is_recorded_as_not_reached(live_factory) -> None:
    live = live_factory({"amy": {"skills": {"billing": 4}}},
                        supervisors=(Supervisor("sam", "Sam Lead"),))
    live.agent("amy", answer_delay=0.3)  # sam's phone never registers
    live.wait_registered("amy")
    caller, leg, agent_leg, timeline = connected_call(live, "+15550303")
    assert live.store is not None
    with caller:
        live.store.request_supervision("sam", "amy", timeline.call_id, "listen",
                                       datetime.now(UTC))
        events = wait_for(lambda: len(_supervisor_events(live, timeline.call_id)) >= 2
                          and _supervisor_events(live, timeline.call_id), 10)
        assert [(e["action"], e["result"]) for e in events] == [
            ("listen", "ringing-supervisor"), ("listen", "not-reached")], events
        assert any("not reached" in what for _t, what in timeline.steps), timeline.steps
        # the call goes on
        assert leg.state == "CONFIRMED" and agent_leg.state == "CONFIRMED"
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)
