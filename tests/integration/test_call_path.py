"""The real call path end to end: SIP caller -> Asterisk -> FastAGI IVR ->
router -> AMI redirect -> the home agent's pjsua2 softphone. No doubles."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from homeline.demo import DemoCall, place_call
from routing.events import (
    AgentRegistered,
    CallerAbandoned,
    CancelOffer,
    OfferCall,
    OfferNotAnswered,
)
from softphone import TestCaller

from .conftest import Live, dial_and_press, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]


def _offers(live: Live) -> list[OfferCall]:
    return [p for kind, p in live.events if kind == "decision" and isinstance(p, OfferCall)]


def test_menu_choice_reaches_the_one_matching_agent_with_audio_both_ways(live_factory):
    live = live_factory({
        "amy": {"skills": {"billing": 4}},
        "bob": {"skills": {"tech": 4}},
        "dora": {"skills": {"tech": 5, "billing": 5}, "open": False},
    })
    phones = {a: live.agent(a, answer_delay=0.3) for a in ("amy", "bob", "dora")}
    live.wait_registered("amy", "bob", "dora")

    record = place_call(DemoCall("+15550201", "2", "tech", "en"), live.host, live.engine,
                        phones, live.stack.ports.sip, live.work, set())

    assert record["agent"] == "bob", record
    assert live.timeline_of("+15550201").digits == "2"  # the menu key, as the IVR heard it
    assert record["answered"] is True
    assert record["audio_verified"] is True, record.get("audio")
    assert record["ok"] is True, record
    assert "dora" not in [o.agent_id for o in _offers(live)]
    assert phones["amy"].calls == [] and phones["dora"].calls == []
    assert wait_for(lambda: live.channel_count() == 0, 10)


def test_no_eligible_agent_caller_hears_hold_music_until_an_agent_registers(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}})
    caller, leg = dial_and_press(live, "+15550202", "1")
    with caller:
        assert wait_for(lambda: (t := live.timeline_of("+15550202")) and t.outcome == "routed",
                        15)
        time.sleep(1.0)  # let the IVR's last prompt finish and the hold music start
        heard = leg.record(live.work / "on-hold.wav")
        time.sleep(2.5)
        leg.stop_recording()
        wait_for(lambda: Path(heard).exists() and Path(heard).stat().st_size > 20000, 3)
        samples, rate = sf.read(str(heard), dtype="float32")
        rms = float(np.sqrt(np.mean(np.square(samples[rate // 2:]))))
        assert rms > 0.005, f"the waiting caller heard silence (rms {rms:.4f})"
        assert _offers(live) == []

        amy = live.agent("amy", answer_delay=0.2)
        agent_leg = amy.wait_call(15)
        agent_leg.wait_confirmed(10)
        assert wait_for(lambda: live.timeline_of("+15550202").answered, 10)
        assert live.timeline_of("+15550202").agent == "amy"
        assert any(isinstance(p, AgentRegistered) and p.agent_id == "amy"
                   for _k, p in live.events)
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)


def test_ring_no_answer_reroutes_within_the_ring_timeout_and_marks_the_miss(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 5}}, "cid": {"skills": {"billing": 2}}},
                        ring_timeout_s=3)
    amy = live.agent("amy", no_answer=True)
    cid = live.agent("cid", answer_delay=0.2)
    live.wait_registered("amy", "cid")
    caller, leg = dial_and_press(live, "+15550203", "1")
    with caller:
        assert wait_for(lambda: (t := live.timeline_of("+15550203")) and t.answered, 25)
        timeline = live.timeline_of("+15550203")
        assert timeline.offers == ["amy", "cid"], timeline.steps
        assert timeline.agent == "cid"
        assert amy.calls and cid.calls
        # one Redirect per move: none of them may have failed on the way
        assert not [what for _t, what in timeline.steps if "failed" in what], timeline.steps
        steps = {what.split(":")[0]: t for t, what in timeline.steps}
        gap = steps["offered to cid"] - steps["offered to amy"]
        assert 2.0 <= gap <= 3 + 3.0, f"re-routed after {gap:.1f} s (ring timeout 3 s)"
        # the router's own ring timer (CancelOffer) or Asterisk's Dial timeout
        # (DialEnd NOANSWER -> OfferNotAnswered), whichever comes first
        missed = [p for _k, p in live.events
                  if isinstance(p, OfferNotAnswered | CancelOffer) and p.agent_id == "amy"]
        assert missed, "amy's missed offer was never reported"
        states = [p for k, p in live.events if k == "decision"
                  and type(p).__name__ == "AgentStateChanged" and p.agent_id == "amy"]
        assert any(s.new in ("missed", "break") for s in states), states
        leg.hangup()
        leg.wait_disconnected(10)


def test_engine_down_the_fallback_route_still_reaches_a_human(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}}, engine=False)
    amy = live.agent("amy", answer_delay=0.2)
    with TestCaller(live.host, "+15550204") as caller:
        leg = caller.call(live.support_uri)
        leg.wait_confirmed(15)
        agent_leg = amy.wait_call(20)
        agent_leg.wait_confirmed(10)
        assert leg.state == "CONFIRMED"
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)
    text = (live.stack.instance.log_dir / "messages.log").read_text(errors="replace")
    assert "Homeline fallback: AGISTATUS=FAILURE" in text


def test_caller_hangs_up_in_the_ivr_and_while_an_agent_rings(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}})
    amy = live.agent("amy", no_answer=True)
    live.wait_registered("amy")
    # 1. hang up during the greeting
    with TestCaller(live.host, "+15550205") as caller:
        leg = caller.call(live.support_uri)
        leg.wait_confirmed(15)
        time.sleep(0.5)
        leg.hangup()
        leg.wait_disconnected(10)
    assert wait_for(lambda: (t := live.timeline_of("+15550205")) and t.outcome, 10)
    assert live.timeline_of("+15550205").outcome in ("caller-hangup", "hangup")
    # 2. hang up while amy's phone rings
    caller, leg = dial_and_press(live, "+15550206", "1")
    with caller:
        ringing = amy.wait_call(15)
        leg.hangup()
        leg.wait_disconnected(10)
        ringing.wait_disconnected(10)
    assert wait_for(lambda: any(isinstance(p, CallerAbandoned) for _k, p in live.events), 10)
    assert wait_for(lambda: live.channel_count() == 0, 10)
    assert live.engine.errors == []


def test_ami_drop_mid_call_recovers_and_nothing_is_lost(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}})
    caller, leg = dial_and_press(live, "+15550207", "1")
    with caller:
        assert wait_for(lambda: (t := live.timeline_of("+15550207")) and t.outcome == "routed",
                        15)
        connects = live.engine.ami.connects
        live.engine.ami.drop()
        amy = live.agent("amy", answer_delay=0.2)  # registers while AMI may be down
        assert wait_for(lambda: live.engine.ami.connects > connects, 15), "AMI did not reconnect"
        agent_leg = amy.wait_call(20)
        agent_leg.wait_confirmed(10)
        assert wait_for(lambda: live.timeline_of("+15550207").answered, 10)
        leg.hangup()
        leg.wait_disconnected(10)


def test_hours_an_agent_adds_take_effect_for_a_waiting_caller_and_calls_are_recorded(
        live_factory):
    from datetime import UTC, datetime, timedelta

    from routing.hours import add_hours

    live = live_factory({"amy": {"skills": {"billing": 3}, "open": False}})
    amy = live.agent("amy", answer_delay=0.2)
    live.wait_registered("amy")
    caller, leg = dial_and_press(live, "+15550208", "1")
    with caller:
        assert wait_for(lambda: (t := live.timeline_of("+15550208")) and t.outcome == "routed",
                        15)
        time.sleep(1.5)
        assert _offers(live) == [], "amy is outside her hours and must not be offered the call"
        # changes never apply to the past: the earliest is the next whole minute
        now = datetime.now(UTC)
        opens = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
        closes = min(opens + timedelta(hours=1),
                     opens.replace(hour=0, minute=0) + timedelta(days=1))
        if closes - opens < timedelta(minutes=30):  # just before midnight: open tomorrow
            pytest.skip("too close to midnight UTC for a same-day window")
        end = "24:00" if closes.day != opens.day else f"{closes:%H:%M}"
        add_hours(live.store, live.directory, "amy", opens.date(), f"{opens:%H:%M}", end, now)
        agent_leg = amy.wait_call(75)
        agent_leg.wait_confirmed(10)
        assert wait_for(lambda: live.timeline_of("+15550208").answered, 10)
        leg.hangup()
        leg.wait_disconnected(10)
    call_id = live.timeline_of("+15550208").call_id
    # records are written off the router thread: wait until the call's end is in
    assert wait_for(lambda: [r for r in live.store.calls()
                             if r.call_id == call_id and r.outcome], 10)
    record = next(r for r in live.store.calls() if r.call_id == call_id)
    assert record.agent_id == "amy" and record.queue_id == "billing"
    assert record.caller == "+15550208" and record.answered_at is not None
    assert record.outcome in ("ended-by-caller", "ended-by-agent")
