"""Every way a call can leave the router or the IVR, carried out on a real call:
overflow to voicemail, rejection, the IVR's own voicemail after hours, and a
hold that ends even when the engine is gone. Real Asterisk, real SIP, real
app_voicemail boxes; nothing stands in for them. Those that go through the store
(an agent's own break, put on break and back, the call records) run on SQLite and
on PostgreSQL (`make_store`, asked for before `live_factory`: the
database outlives the engine that uses it)."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from routing.events import CallOverflowed, CallRejected, OfferCall
from softphone import TestCaller

from .conftest import Live, dial_and_press, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]


def _decisions(live: Live, kind: type) -> list:
    return [p for k, p in live.events if k == "decision" and isinstance(p, kind)]


def _leave_message(leg: object, after_s: float, speak_s: float = 4.0) -> None:
    """Talk (a tone) through the prompt and the beep, then hang up: the message is kept."""
    leg.play_tone(440.0, after_s + speak_s)  # type: ignore[attr-defined]
    time.sleep(after_s + speak_s)
    leg.hangup()  # type: ignore[attr-defined]


def _message_from(live: Live, box: str, caller_id: str, timeout: float = 15) -> str:
    found = wait_for(lambda: live.stack.voicemail_messages(box), timeout)
    assert found, f"no voicemail message in box {box!r}"
    text = found[-1].read_text(encoding="utf-8", errors="replace")
    assert caller_id in text, text
    assert f"origmailbox={box}" in text, text
    return text


def test_a_caller_past_the_queue_max_wait_overflows_to_a_real_voicemail_box(live_factory):
    # amy could take billing calls (open hours) but her phone is not registered
    live = live_factory({"amy": {"skills": {"billing": 3}}},
                        queues={"billing": {"max_wait_s": 3, "overflow": "ext:voicemail"}})
    caller, leg = dial_and_press(live, "+15550301", "1")
    with caller:
        assert wait_for(lambda: _decisions(live, CallOverflowed), 25), live.events
        overflow = _decisions(live, CallOverflowed)[0]
        assert overflow.target == "ext:voicemail" and overflow.from_queue == "billing"
        _leave_message(leg, after_s=9)
    text = _message_from(live, "billing", "+15550301")
    duration = int(next(line.split("=")[1] for line in text.splitlines()
                        if line.startswith("duration=")))
    assert duration >= 1, text
    assert _decisions(live, OfferCall) == []


def test_a_call_nobody_can_serve_hears_why_and_leaves_a_message(live_factory):
    # menu key 2 asks for tech; nobody in this directory has the skill at all
    live = live_factory({"amy": {"skills": {"billing": 3}}})
    caller, leg = dial_and_press(live, "+15550302", "2")
    with caller:
        assert wait_for(lambda: _decisions(live, CallRejected), 25), live.events
        rejected = _decisions(live, CallRejected)[0]
        assert rejected.queue_id == "tech" and rejected.code == "no-agent"
        _leave_message(leg, after_s=10)
    _message_from(live, "tech", "+15550302")
    timeline = live.timeline_of("+15550302")
    assert any("rejected (no-agent)" in what for _t, what in timeline.steps), timeline.steps


def test_the_support_line_after_hours_reaches_voicemail_without_ringing_anyone(live_factory):
    # one clock for the engine, the router and the IVR: a Sunday night in London,
    # when the shipped support line is closed (its calendar: Mon-Sat daytime)
    start = datetime.now(UTC)
    sunday = datetime(2026, 12, 6, 23, 0, tzinfo=ZoneInfo("Europe/London")).astimezone(UTC)

    def clock() -> datetime:
        return sunday + (datetime.now(UTC) - start)

    live = live_factory({"amy": {"skills": {"billing": 3, "tech": 3}}}, flow="support-line",
                        clock=clock)
    amy = live.agent("amy")
    live.wait_registered("amy")
    caller, leg = dial_and_press(live, "+15550303", "")
    with caller:
        assert wait_for(lambda: (t := live.timeline_of("+15550303")) and t.outcome, 30)
        assert live.timeline_of("+15550303").outcome == "voicemail"
        _leave_message(leg, after_s=4)
    _message_from(live, "support", "+15550303")
    assert amy.calls == [], "an agent's phone rang after hours"
    # a call that ends in the IVR has its record too
    rec = wait_for(lambda: [r for r in live.store.calls() if r.caller == "+15550303"], 10)
    assert rec and rec[0].outcome == "ivr-voicemail" and rec[0].flow == "support-line", rec
    assert rec[0].ended_at is not None and rec[0].queue_id is None
    assert _decisions(live, OfferCall) == []


def test_a_caller_on_hold_leaves_the_music_when_the_engine_is_gone(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}}, hold_s=4)
    caller, leg = dial_and_press(live, "+15550304", "1")
    with caller:
        assert wait_for(lambda: (t := live.timeline_of("+15550304")) and t.outcome == "routed",
                        20)
        live.engine.stop()  # the engine dies: nothing will ever redirect this caller
        stopped = time.monotonic()
        # amy registers now: no router to offer her the call, only the fallback rings her
        amy = live.agent("amy", answer_delay=0.2)
        agent_leg = amy.wait_call(30)
        rang_after = time.monotonic() - stopped
        assert not leg.ended  # type: ignore[attr-defined]
        agent_leg.wait_confirmed(10)
        leg.hangup()  # type: ignore[attr-defined]
    assert rang_after >= 2, f"the fallback rang after {rang_after:.1f} s, before the hold bound"
    assert _decisions(live, OfferCall) == []
    log = (live.stack.instance.log_dir / "messages.log").read_text(errors="replace")
    assert "on hold 4 s with no word from the engine" in log


def test_hold_bound_follows_the_queue_max_wait(tmp_path):
    from homeline.stack import PbxStack

    from .conftest import directory_for

    now = datetime.now(UTC)
    directory = directory_for({"amy": {"skills": {"billing": 3}}}, now,
                              queues={"billing": {"max_wait_s": 300}})
    stack = PbxStack("unit", directory, tmp_path)
    assert stack.hold_s("billing") == 300 + PbxStack.HOLD_MARGIN_S
    assert stack.hold_s("general") == PbxStack.DEFAULT_HOLD_S + PbxStack.HOLD_MARGIN_S
    assert stack.hold_s("billing") > timedelta(minutes=5).total_seconds()
    boxes = stack.voicemail_boxes()
    assert {"billing", "tech", "general", "support"} <= set(boxes)


@pytest.mark.parametrize("hangs_up", ["agent", "caller"])
def test_a_callback_rings_the_agent_first_then_calls_the_caller_back(live_factory,
                                                                     hangs_up: str):
    """Then one side hangs up: the call ends by that side (the word the hanging-up
    leg sends, [homeline-callback]; the two legs' Hangups reach AMI in either order)."""
    import socket

    from homeline.stack import free_port
    from routing.events import CallEnded, OfferAnswered, OfferCallback

    port = free_port(socket.SOCK_DGRAM)
    # billing offers a callback at once (expected wait 60 s > 1 s); numbers outside
    # (the callback) go through a trunk whose contact is the caller's own phone
    live = live_factory({"amy": {"skills": {"billing": 3}}},
                        queues={"billing": {"callback_after_s": 1}},
                        external_contact=f"sip:127.0.0.1:{port}")
    caller = TestCaller(live.host, "+15550305", own_transport=True, port=port,
                        answer_after=0.5)
    with caller:
        leg = caller.call(live.support_uri)
        leg.wait_confirmed(15)
        time.sleep(0.8)
        leg.send_dtmf("1")
        assert wait_for(lambda: (t := live.timeline_of("+15550305")) and any(
            "callback offered" in what for _t, what in t.steps), 25), live.events
        time.sleep(1.0)  # into the offer prompt, which the key interrupts
        leg.send_dtmf("1")
        leg.wait_disconnected(20)  # confirmed, then Asterisk hangs up: place kept
        assert _decisions(live, OfferCallback)
        assert _decisions(live, OfferCall) == []

        amy = live.agent("amy", answer_delay=0.3)
        agent_leg = amy.wait_call(20)
        agent_leg.wait_confirmed(10)
        (offer,) = _decisions(live, OfferCall)
        assert offer.callback and offer.agent_id == "amy" and offer.caller == "+15550305"
        # only now, with the agent on the line, is the caller's phone rung
        back = wait_for(lambda: [c for c in caller.calls if c.direction == "incoming"], 20)
        assert back, "the caller was never called back"
        back[0].wait_confirmed(10)
        answered = [p for k, p in live.events if k == "event" and isinstance(p, OfferAnswered)]
        assert [a.call_id for a in answered] == [offer.call_id]
        time.sleep(1.0)
        (agent_leg if hangs_up == "agent" else back[0]).hangup()
        assert wait_for(lambda: [p for k, p in live.events
                                 if k == "event" and isinstance(p, CallEnded)], 15)
    ended = [p for k, p in live.events if k == "event" and isinstance(p, CallEnded)]
    assert ended[0].call_id == offer.call_id and ended[0].by == hangs_up, ended
    assert len(ended) == 1, ended
    assert wait_for(lambda: live.channel_count() == 0, 10)


def test_an_agent_goes_on_break_and_comes_back_through_the_store(make_store, live_factory):
    from homeline.agent_api import request_agent_state
    from routing.events import AgentStateChanged

    live = live_factory({"amy": {"skills": {"billing": 3}}}, store_address=make_store.address())
    amy = live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    request_agent_state(live.store, live.directory, "amy", "break", datetime.now(UTC),
                        why="lunch")
    assert wait_for(lambda: [p for k, p in live.events if k == "decision"
                             and isinstance(p, AgentStateChanged) and p.new == "break"], 10)
    caller, leg = dial_and_press(live, "+15550306", "1")
    with caller:
        assert wait_for(lambda: (t := live.timeline_of("+15550306")) and t.outcome == "routed",
                        20)
        time.sleep(1.5)
        assert _decisions(live, OfferCall) == [], "an agent on break was offered a call"
        request_agent_state(live.store, live.directory, "amy", "available",
                            datetime.now(UTC))
        agent_leg = amy.wait_call(15)
        agent_leg.wait_confirmed(10)
        (offer,) = _decisions(live, OfferCall)
        assert offer.agent_id == "amy"
        leg.hangup()  # type: ignore[attr-defined]


def test_each_call_leaves_one_record_with_its_queue_log_events(make_store, live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}}, store_address=make_store.address())
    amy = live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    caller, leg = dial_and_press(live, "+15550307", "1")
    with caller:
        agent_leg = amy.wait_call(20)
        agent_leg.wait_confirmed(10)
        time.sleep(1.0)
        agent_leg.hangup()
        leg.wait_disconnected(10)  # type: ignore[attr-defined]
    # the call record is written off the router thread: wait for its last parts
    def record() -> object:
        rows = [r for r in live.store.calls() if r.caller == "+15550307"]
        return rows[0] if rows and rows[0].wrap_up_s is not None else None

    rec = wait_for(record, 10)
    assert rec, live.store.calls()
    assert rec.queue_id == "billing" and rec.agent_id == "amy"
    assert rec.outcome == "ended-by-agent" and rec.flow == "main-menu" and rec.flow_version
    assert rec.intent == "billing" and rec.language == "en"
    assert rec.arrived_at <= rec.queued_at <= rec.answered_at <= rec.ended_at
    assert 0.5 <= rec.wrap_up_s <= 5  # the test queue's wrap-up is 1 s
    events = [e.event for e in live.store.call_events([rec.call_id])[rec.call_id]]
    # the offer may be decided while the IVR still speaks (it is carried out after)
    assert sorted(events) == sorted(["enter", "offered", "ivr-ended", "connected",
                                     "completed"]), events
    assert events[0] == "enter" and events[-2:] == ["connected", "completed"], events


def test_a_caller_on_hold_hears_their_place_in_line_as_it_changes(live_factory, tmp_path):
    from homeline.paths import DIALPLANS_DIR

    text = (DIALPLANS_DIR / "flows" / "main-menu.yaml").read_text(encoding="utf-8")
    assert "    intent: billing\n" in text
    flow = tmp_path / "main-menu.yaml"
    flow.write_text(text.replace("    intent: billing\n",
                                 "    intent: billing\n    announce_every_s: 2\n"),
                    encoding="utf-8")
    live = live_factory({"amy": {"skills": {"billing": 3}}}, flow=flow)

    def told(caller_id: str) -> list[str]:
        timeline = live.timeline_of(caller_id)
        return [w for _t, w in timeline.steps if w.startswith("on hold: told")] \
            if timeline else []

    first, first_leg = dial_and_press(live, "+15550308", "1")
    second, second_leg = dial_and_press(live, "+15550309", "1")
    with first, second:
        assert wait_for(lambda: told("+15550309"), 20), live.timeline_of("+15550309").steps
        assert told("+15550309")[0].startswith("on hold: told position 2"), told("+15550309")
        assert told("+15550308")[0].startswith("on hold: told position 1")
        first_leg.hangup()  # type: ignore[attr-defined]
        seen = len(told("+15550309"))
        assert wait_for(lambda: len(told("+15550309")) > seen + 1, 20)
        assert told("+15550309")[-1].startswith("on hold: told position 1"), told("+15550309")
        assert not second_leg.ended  # type: ignore[attr-defined]


def test_an_agent_put_on_break_after_missed_offers_is_told_why_and_can_come_back(
        make_store, live_factory):
    from homeline.agent_api import request_agent_state
    from routing.events import AgentPutOnBreak, AgentStateChanged
    from softphone import MessageReceived

    live = live_factory({"amy": {"skills": {"billing": 3}}}, ring_timeout_s=2,
                        policy={"max_misses": 2, "miss_cooldown_s": 1},
                        store_address=make_store.address())
    amy = live.agent("amy", no_answer=True)  # rings, never answers
    live.wait_registered("amy")
    # two callers, each offered to amy once (a call never goes back to an agent who
    # let it ring out): two misses in a row
    caller, leg = dial_and_press(live, "+15550310", "1")
    other, other_leg = dial_and_press(live, "+15550311", "1")
    with caller, other:
        assert wait_for(lambda: _decisions(live, AgentPutOnBreak), 30), live.events
        (brk,) = _decisions(live, AgentPutOnBreak)
        assert brk.agent_id == "amy" and "missed 2 offers" in brk.why
        told = amy.events.wait_for(lambda e: isinstance(e, MessageReceived), 10,
                                   what="a SIP MESSAGE")
        assert "You are on break: missed 2 offers" in told.body, told  # type: ignore[union-attr]
        # the break lasts until amy herself says she is back
        request_agent_state(live.store, live.directory, "amy", "available", datetime.now(UTC))
        assert wait_for(lambda: [d for d in _decisions(live, AgentStateChanged)
                                 if d.agent_id == "amy" and d.old == "break"
                                 and d.new == "available"], 10)
        leg.hangup()  # type: ignore[attr-defined]
        other_leg.hangup()  # type: ignore[attr-defined]


def _outside_phone(live_port: int, host: object, number: str) -> TestCaller:
    """A phone outside the contact centre, reached through the external trunk."""
    return TestCaller(host, number, own_transport=True, port=live_port,  # type: ignore[arg-type]
                      answer_after=0.3)


def test_overflow_to_a_number_and_a_transfer_node_dial_out_through_the_trunk(
        live_factory, tmp_path):
    import socket

    from homeline.paths import DIALPLANS_DIR
    from homeline.stack import free_port

    port = free_port(socket.SOCK_DGRAM)
    text = (DIALPLANS_DIR / "flows" / "main-menu.yaml").read_text(encoding="utf-8")
    flow = tmp_path / "main-menu.yaml"
    flow.write_text(text.replace('      "3": choose-language\n',
                                 '      "3": choose-language\n      "9": front-desk\n')
                    + "\n  front-desk:\n    type: transfer\n    destination: \"5550199\"\n",
                    encoding="utf-8")
    live = live_factory({"amy": {"skills": {"billing": 3}}}, flow=flow,
                        queues={"billing": {"max_wait_s": 2, "overflow": "ext:5550188"}},
                        external_contact=f"sip:127.0.0.1:{port}")
    outside = _outside_phone(port, live.host, "desk")
    with outside:
        # a billing caller nobody answers: after 2 s the queue overflows to 5550188
        caller, leg = dial_and_press(live, "+15550312", "1")
        with caller:
            first = wait_for(
                lambda: [c for c in outside.calls if c.direction == "incoming"], 20)[0]
            first.wait_confirmed(10)
            assert "5550188@" in first.local_uri, first.local_uri
            (ov,) = _decisions(live, CallOverflowed)
            assert ov.target == "ext:5550188"
            leg.hangup()  # type: ignore[attr-defined]
        # a caller who presses 9 is transferred by the flow to 5550199
        caller2, leg2 = dial_and_press(live, "+15550313", "9")
        with caller2:
            second = wait_for(lambda: [c for c in outside.calls
                                       if c.direction == "incoming"][1:], 20)
            assert second, outside.calls
            second[0].wait_confirmed(10)
            assert "5550199@" in second[0].local_uri, second[0].local_uri
            assert live.timeline_of("+15550313").outcome == "transfer"
            leg2.hangup()  # type: ignore[attr-defined]
