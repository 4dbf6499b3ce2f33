"""Router core scenarios: who gets the call, and why."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from routing_testkit import all_week, at, offers, router_for, small_directory, w

from routing import (
    Agent,
    AgentHoursChanged,
    AgentMadeAvailable,
    AgentPutOnBreak,
    AgentRegistered,
    AgentUnregistered,
    AgentWentOnBreak,
    CallArrived,
    CallbackAccepted,
    CallEnded,
    CallerAbandoned,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CancelOffer,
    Directory,
    EventIgnored,
    ExpansionStep,
    OfferAnswered,
    OfferCall,
    OfferCallback,
    OfferNotAnswered,
    Queue,
    RoutingPolicy,
    TimerFired,
    TransitionError,
    WakeAt,
)
from routing.router import Router
from routing.states import AgentState, next_state


def register_all(r: Router, when: datetime) -> None:
    for a in r.agent_ids():
        r.handle(AgentRegistered(a), when)


def test_naive_now_is_refused() -> None:
    r = router_for(small_directory())
    with pytest.raises(ValueError, match="aware"):
        r.handle(TimerFired(), datetime(2026, 11, 30, 18, 0))


def test_offer_goes_to_the_agent_with_skill_language_and_open_window() -> None:
    r = router_for(small_directory())
    register_all(r, at(0))
    ds = r.handle(CallArrived("c1", "billing", "fr", "refund", "+331"), at(1))
    (offer,) = offers(ds)
    assert offer.agent_id == "alice" and offer.endpoint == "alice"
    assert offer.ring_timeout_s == 15
    assert offer.reason.rule == "longest-idle"
    assert offer.reason.window == "Mon 18:00-21:00 Europe/Paris"
    assert offer.reason.idle_s == 60
    # bob lacks billing>=3 and French; carol (New York) is outside her window
    text = offer.reason.text
    assert "alice chosen by longest-idle" in text
    assert "carol: outside window" in text and "bob: lacks billing>=3" in text
    assert any(isinstance(d, WakeAt) for d in ds)


def test_agent_outside_window_is_never_chosen_even_if_only_match() -> None:
    r = router_for(small_directory())
    register_all(r, at(0))
    ds = r.handle(CallArrived("c1", "billing", "en", "x", ""), at(1))
    assert offers(ds)[0].agent_id == "alice"
    # tech skill only carol has; her window is Tue in New York -> queue, no offer
    ds = r.handle(CallArrived("c2", "billing", "en", "x", "", required_skills=(("tech", 3),)),
                  at(1))
    assert offers(ds) == []
    (q,) = [d for d in ds if isinstance(d, CallQueued)]
    assert q.position == 1 and "carol: outside window (opens Tue 09:00" in q.reason.text


def test_window_needs_enough_time_left_for_a_typical_call() -> None:
    r = router_for(small_directory())
    register_all(r, at(0))
    # alice's window closes 20:00 UTC; at 19:57 only 3 min are left, AHT is 4 min
    ds = r.handle(CallArrived("c1", "billing", "fr", "x", ""), at(117))
    assert offers(ds) == []
    (queued,) = [d for d in ds if isinstance(d, CallQueued)]
    assert "alice: window closes in 3 min, 4 min needed" in queued.reason.text


def test_queued_call_goes_to_the_agent_who_frees_up() -> None:
    r = router_for(small_directory())
    register_all(r, at(0))
    (o1,) = offers(r.handle(CallArrived("c1", "billing", "fr", "x", ""), at(1)))
    r.handle(OfferAnswered("c1", "alice"), at(1, 5))
    ds = r.handle(CallArrived("c2", "billing", "fr", "x", ""), at(2))
    (queued,) = [d for d in ds if isinstance(d, CallQueued)]
    assert queued.position == 1 and queued.expected_wait_s == 240
    r.handle(CallEnded("c1", "caller"), at(5))
    assert r.agent_status("alice")["state"] == "wrap_up"
    ds = r.handle(TimerFired(), at(5, 10))  # wrap-up of 10 s is over
    (o2,) = offers(ds)
    assert o2.call_id == "c2" and o2.agent_id == "alice"
    assert o2.reason.rule == "call-selection"
    assert r.agent_status("alice")["handled_s"] == pytest.approx(3 * 60 + 55)


def test_ring_no_answer_reroutes_and_misses_put_agent_on_break() -> None:
    d = small_directory(skills={"billing": 2}, languages=("en",))
    r = router_for(d)
    register_all(r, at(0))
    (o,) = offers(r.handle(CallArrived("c1", "billing", "en", "x", ""), at(1)))
    first = o.agent_id
    ds = r.handle(TimerFired(), at(1, 15))
    assert any(isinstance(x, CancelOffer) and x.agent_id == first for x in ds)
    (o2,) = offers(ds)
    assert o2.agent_id != first and first in o2.reason.text  # "skipped after missing"
    assert r.agent_status(first)["state"] == "missed"
    # second agent rejects: goes back to the queue; nobody else is eligible
    ds = r.handle(OfferNotAnswered("c1", o2.agent_id, "rejected"), at(1, 20))
    assert [type(x) for x in ds if isinstance(x, CallQueued)] == [CallQueued]
    # the first agent cools down, misses again -> second miss -> break (max_misses=2)
    ds = r.handle(CallArrived("c2", "billing", "en", "x", ""), at(2))
    victim = [o for o in offers(ds)]
    assert victim and victim[0].agent_id == first
    ds = r.handle(OfferNotAnswered("c2", first, "no-answer"), at(2, 10))
    (brk,) = [x for x in ds if isinstance(x, AgentPutOnBreak)]
    assert brk.agent_id == first and "missed 2 offers in a row" in brk.why
    assert r.agent_status(first)["state"] == "break"


def test_stale_answer_is_ignored_not_raised() -> None:
    r = router_for(small_directory())
    register_all(r, at(0))
    ds = r.handle(OfferAnswered("nope", "alice"), at(1))
    assert isinstance(ds[0], EventIgnored)
    ds = r.handle(AgentRegistered("zed"), at(1))
    assert isinstance(ds[0], EventIgnored)


def test_expansion_steps_relax_the_requirement_over_time() -> None:
    q = Queue("billing", skills={"billing": 5}, languages=("en",), aht_s=120,
              expansion=(ExpansionStep(30, min_level=3), ExpansionStep(60, any_skill=True)))
    agents = (Agent("lvl3", skills={"billing": 3}, windows=all_week()),
              Agent("noskill", skills={"sales": 5}, windows=all_week()))
    r = Router(Directory(agents, (q,)), now=at(0))
    register_all(r, at(0))
    r.handle(AgentWentOnBreak("lvl3"), at(0))
    ds = r.handle(CallArrived("c1", "billing", "en"), at(1))
    assert offers(ds) == []
    r.handle(AgentMadeAvailable("lvl3"), at(1, 10))  # not yet: step 0 needs level 5
    ds = r.handle(TimerFired(), at(1, 30))
    (o,) = offers(ds)
    assert o.agent_id == "lvl3" and o.reason.step == 1
    r.handle(OfferAnswered("c1", "lvl3"), at(1, 32))
    ds = r.handle(CallArrived("c2", "billing", "en"), at(2))
    assert offers(ds) == []
    ds = r.handle(TimerFired(), at(3))
    (o,) = offers(ds)
    assert o.agent_id == "noskill" and o.reason.step == 2


def test_priority_with_aging_then_longest_wait() -> None:
    q = Queue("q", languages=("en",), aht_s=60, wrap_up_s=0)
    r = Router(Directory((Agent("a", windows=all_week()),), (q,),
                         RoutingPolicy(aging_s_per_priority=60)), now=at(0))
    r.handle(AgentRegistered("a"), at(0))
    r.handle(OfferAnswered("c0", "a"), at(0))  # ignored
    r.handle(CallArrived("c0", "q", "en"), at(0))
    r.handle(OfferAnswered("c0", "a"), at(0, 1))
    r.handle(CallArrived("old", "q", "en", priority=0), at(1))   # virtual arrival 1:00
    r.handle(CallArrived("vip", "q", "en", priority=1), at(1, 30))  # virtual 0:30 -> first
    r.handle(CallArrived("late", "q", "en", priority=1), at(2, 30))  # virtual 1:30 -> last
    assert r.waiting_calls("q") == ["vip", "old", "late"]
    ds = r.handle(CallEnded("c0"), at(3))
    assert offers(ds)[0].call_id == "vip"


def test_preferred_agent_for_returning_caller() -> None:
    q = Queue("q", languages=("en",), aht_s=60, wrap_up_s=0)
    agents = (Agent("a", windows=all_week()), Agent("b", windows=all_week()))
    r = Router(Directory(agents, (q,)), now=at(0))
    r.handle(AgentRegistered("b"), at(0))
    r.handle(AgentRegistered("a"), at(0, 1))
    (o,) = offers(r.handle(CallArrived("c1", "q", "en", caller="+1"), at(1)))
    assert o.agent_id == "b"  # longest idle
    r.handle(OfferAnswered("c1", "b"), at(1, 2))
    r.handle(CallEnded("c1"), at(2))
    (o,) = offers(r.handle(CallArrived("c2", "q", "en", caller="+1"), at(3)))
    assert o.agent_id == "b" and o.reason.rule == "preferred-agent"
    assert o.reason.others == ("a",)


def test_trainee_gets_simple_intents_at_low_load_and_not_complex_ones() -> None:
    q = Queue("q", languages=("en",), aht_s=60, simple_intents=("balance",))
    agents = (Agent("pro", windows=all_week()),
              Agent("newbie", windows=all_week(), trainee=True))
    r = Router(Directory(agents, (q,)), now=at(0))
    r.handle(AgentRegistered("pro"), at(0))
    r.handle(AgentRegistered("newbie"), at(0, 30))
    (o,) = offers(r.handle(CallArrived("c1", "q", "en", "balance"), at(1)))
    assert o.agent_id == "newbie" and o.reason.rule == "trainee-protection"
    r.handle(CallerAbandoned("c1"), at(1, 1))
    (o,) = offers(r.handle(CallArrived("c2", "q", "en", "dispute"), at(2)))
    assert o.agent_id == "pro" and "non-trainees first" in o.reason.text


def test_unknown_queue_rejected_and_unservable_call_overflows() -> None:
    r = router_for(small_directory(overflow="general"))
    register_all(r, at(0))
    (rej,) = r.handle(CallArrived("c1", "nope", "en"), at(1))[:1]
    assert isinstance(rej, CallRejected) and rej.code == "unknown-queue"
    ds = r.handle(CallArrived("c2", "billing", "en", required_skills=(("nosuch", 1),)), at(1))
    (ov,) = [d for d in ds if isinstance(d, CallOverflowed)]
    assert ov.target == "general"
    assert offers(ds)[0].agent_id in {"alice", "bob"}


def test_max_wait_overflows_to_external_target() -> None:
    r = router_for(small_directory(max_wait_s=60, overflow="ext:voicemail",
                                   languages=("fr",)))
    register_all(r, at(0))
    r.handle(AgentWentOnBreak("alice"), at(0))
    ds = r.handle(CallArrived("c1", "billing", "fr"), at(1))
    assert offers(ds) == []
    ds = r.handle(TimerFired(), at(2))
    (ov,) = [d for d in ds if isinstance(d, CallOverflowed)]
    assert ov.target == "ext:voicemail" and "max wait" in ov.why
    assert r.waiting_calls("billing") == []


def test_callback_keeps_place_in_line() -> None:
    r = router_for(small_directory(callback_after_s=100, languages=("fr",)))
    register_all(r, at(0))
    r.handle(AgentWentOnBreak("alice"), at(0))
    r.handle(CallArrived("c1", "billing", "fr", caller="+33"), at(1))
    ds = r.handle(CallArrived("c2", "billing", "fr"), at(1, 1))
    assert any(isinstance(d, OfferCallback) for d in ds)  # 2 * 240 s expected > 100 s
    r.handle(CallbackAccepted("c1"), at(1, 5))
    r.handle(CallerAbandoned("c1"), at(1, 6))  # hangs up, keeps place
    assert r.waiting_calls("billing") == ["c1", "c2"]
    (o,) = offers(r.handle(AgentMadeAvailable("alice"), at(2)))
    assert o.call_id == "c1" and o.callback and o.caller == "+33"


def test_window_closing_mid_call_finishes_call_then_unavailable() -> None:
    r = router_for(small_directory(languages=("fr",)))
    register_all(r, at(0))
    r.handle(CallArrived("c1", "billing", "fr"), at(110))  # 19:50 UTC, 10 min left
    r.handle(OfferAnswered("c1", "alice"), at(110, 3))
    r.handle(TimerFired(), at(121))  # window closed at 20:00 UTC, still on the call
    assert r.agent_status("alice")["state"] == "on_call"
    r.handle(CallEnded("c1", "agent"), at(125))
    r.handle(TimerFired(), at(126))
    st = r.agent_status("alice")
    assert st["state"] == "available" and not st["in_window"]
    ds = r.handle(CallArrived("c2", "billing", "fr"), at(127))
    assert offers(ds) == []


def test_hours_change_takes_effect_immediately() -> None:
    r = router_for(small_directory(languages=("fr",)))
    register_all(r, at(0))
    r.handle(AgentHoursChanged("alice", (w("Tue 18:00-21:00"),)), at(0, 30))
    ds = r.handle(CallArrived("c1", "billing", "fr"), at(1))
    assert offers(ds) == []
    ds = r.handle(AgentHoursChanged("alice", (w("Mon 17:00-23:00"),)), at(2))
    (o,) = offers(ds)
    assert o.call_id == "c1" and o.agent_id == "alice"


def test_unregister_while_ringing_cancels_and_requeues() -> None:
    r = router_for(small_directory(languages=("fr",)))
    register_all(r, at(0))
    r.handle(CallArrived("c1", "billing", "fr"), at(1))
    ds = r.handle(AgentUnregistered("alice"), at(1, 2))
    assert any(isinstance(d, CancelOffer) for d in ds)
    assert any(isinstance(d, CallQueued) for d in ds)
    assert r.agent_status("alice")["state"] == "offline"
    (o,) = offers(r.handle(AgentRegistered("alice"), at(2)))
    assert o.call_id == "c1"


def test_transition_table_missing_pair_names_both() -> None:
    with pytest.raises(TransitionError, match="'offline' on 'answered'"):
        next_state(AgentState.OFFLINE, "answered")
    assert next_state(AgentState.RESERVED, "missed_limit") is AgentState.BREAK


def test_wake_at_asks_for_the_ring_timeout() -> None:
    r = router_for(small_directory(languages=("fr",)))
    register_all(r, at(0))
    ds = r.handle(CallArrived("c1", "billing", "fr"), at(1))
    wakes = [d for d in ds if isinstance(d, WakeAt)]
    assert wakes and wakes[-1].at == at(1, 15)
    assert isinstance(offers(ds)[0], OfferCall)
    assert r.handle(TimerFired(), at(1, 14)) == [WakeAt(at(1, 15))]
    assert at(1, 15) - at(1) == timedelta(seconds=15)
