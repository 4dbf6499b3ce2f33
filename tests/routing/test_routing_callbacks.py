"""Callbacks in the router core: the caller keeps their place, a missed dial-back
costs the agent nothing and is tried again, and the entry ends after the attempts."""
from __future__ import annotations

from dataclasses import replace

from routing_testkit import at, offers, router_for, small_directory

from routing import (
    AgentMadeAvailable,
    AgentRegistered,
    AgentWentOnBreak,
    CallArrived,
    CallbackAccepted,
    CallbackNotAnswered,
    CallerAbandoned,
    CallOverflowed,
    CallRejected,
    Directory,
    EventIgnored,
    OfferAnswered,
    OfferCallback,
    TimerFired,
)
from routing.router import Router


def _router(attempts: int = 2, retry_s: float = 60) -> Router:
    d = small_directory(callback_after_s=100, languages=("fr",), wrap_up_s=5)
    d = Directory(d.agents, d.queues, replace(d.policy, callback_attempts=attempts,
                                              callback_retry_s=retry_s), d.source)
    r = router_for(d)
    for a in ("alice", "bob", "carol"):
        r.handle(AgentRegistered(a), at(0))
    r.handle(AgentWentOnBreak("alice"), at(0))
    return r


def _accept_callback(r: Router) -> None:
    r.handle(CallArrived("c1", "billing", "fr", caller="+33"), at(1))
    ds = r.handle(CallArrived("c2", "billing", "fr"), at(1, 1))
    assert any(isinstance(d, OfferCallback) for d in ds)
    r.handle(CallbackAccepted("c1"), at(1, 5))
    r.handle(CallerAbandoned("c1"), at(1, 6))


def test_a_missed_dial_back_keeps_the_place_and_costs_the_agent_no_miss() -> None:
    r = _router()
    _accept_callback(r)
    (o,) = offers(r.handle(AgentMadeAvailable("alice"), at(2)))
    assert o.call_id == "c1" and o.callback
    r.handle(OfferAnswered("c1", "alice"), at(2, 3))
    r.handle(CallbackNotAnswered("c1", "no-answer"), at(2, 30))
    status = r.agent_status("alice")
    assert status["state"] == "wrap_up" and status["misses"] == 0
    # after wrap-up alice takes c2: c1 waits for its retry, off the line
    ds = r.handle(TimerFired(), at(2, 36))
    assert [x.call_id for x in offers(ds)] == ["c2"]
    r.handle(OfferAnswered("c2", "alice"), at(2, 37))
    assert r.waiting_calls("billing") == []
    # at the retry time c1 is back, in its original place (it arrived first)
    r.handle(CallArrived("c3", "billing", "fr"), at(3))
    r.handle(TimerFired(), at(3, 31))
    assert r.waiting_calls("billing") == ["c1", "c3"]


def test_the_callback_ends_after_the_attempts_with_a_reason() -> None:
    r = _router(attempts=2, retry_s=10)
    _accept_callback(r)
    (o,) = offers(r.handle(AgentMadeAvailable("alice"), at(2)))
    r.handle(OfferAnswered("c1", "alice"), at(2, 1))
    r.handle(CallbackNotAnswered("c1"), at(2, 20))
    r.handle(TimerFired(), at(2, 26))  # alice's wrap-up ends: she takes c2
    r.handle(OfferAnswered("c2", "alice"), at(2, 27))
    ds = r.handle(TimerFired(), at(2, 31))  # retry due: only bob (en) is free, no fr
    assert r.waiting_calls("billing") == ["c1"], ds
    r.handle(AgentMadeAvailable("carol"), at(2, 32))
    # nobody fr-speaking until alice ends c2
    from routing import CallEnded
    r.handle(CallEnded("c2", "agent"), at(3))
    (o2,) = offers(r.handle(TimerFired(), at(3, 6)))
    assert o2.call_id == "c1" and o2.agent_id == "alice"
    r.handle(OfferAnswered("c1", "alice"), at(3, 7))
    ds = r.handle(CallbackNotAnswered("c1", "busy"), at(3, 30))
    (rej,) = [d for d in ds if isinstance(d, CallRejected)]
    assert rej.code == "callback-unanswered" and rej.queue_id == "billing"
    assert "2 callbacks" in rej.why and "busy" in rej.why
    assert r.waiting_calls("billing") == []


def test_callback_not_answered_for_a_call_that_is_not_a_callback_is_ignored() -> None:
    r = _router()
    r.handle(AgentMadeAvailable("alice"), at(0, 30))
    (o,) = offers(r.handle(CallArrived("c9", "billing", "fr"), at(1)))
    r.handle(OfferAnswered("c9", o.agent_id), at(1, 2))
    ds = r.handle(CallbackNotAnswered("c9"), at(1, 9))
    assert any(isinstance(d, EventIgnored) for d in ds)
    assert r.agent_status(o.agent_id)["state"] == "on_call"


def test_route_node_skills_add_to_the_queue_requirement() -> None:
    r = _router()
    r.handle(AgentMadeAvailable("alice"), at(0, 30))
    # alice has billing 4 but no tech: a flow asking for tech on top finds nobody in fr
    ds = r.handle(CallArrived("c5", "billing", "fr", skills=("billing", "tech")), at(1))
    assert offers(ds) == []
    ds = r.handle(CallArrived("c6", "billing", "fr", skills=("billing",),
                              data=(("customer_tier", "gold"),)), at(1, 1))
    assert [o.agent_id for o in offers(ds)] == ["alice"]


def test_a_callback_past_max_wait_keeps_its_promise_when_the_overflow_needs_a_caller() -> None:
    # ext:voicemail (or a refusal) needs someone on the line; a caller who hung up for a
    # callback is not, so the entry stays queued and is still called back
    d = small_directory(callback_after_s=100, languages=("fr",), max_wait_s=300,
                        overflow="ext:voicemail")
    r = router_for(d)
    r.handle(AgentRegistered("alice"), at(0))
    r.handle(AgentWentOnBreak("alice"), at(0))
    _accept_callback(r)
    ds = r.handle(TimerFired(), at(7))  # c1 and c2 queued at 1:00, max wait 300 s
    c1 = [x for x in ds if getattr(x, "call_id", None) == "c1"]
    c2 = [type(x).__name__ for x in ds if getattr(x, "call_id", None) == "c2"]
    assert c1 == [] and c2 == ["CallOverflowed"]
    (o,) = offers(r.handle(AgentMadeAvailable("alice"), at(8)))
    assert o.call_id == "c1" and o.callback


def test_a_callback_past_max_wait_overflows_to_another_queue_still_a_callback() -> None:
    d = small_directory(callback_after_s=100, languages=("fr",), max_wait_s=300,
                        overflow="general")
    d = Directory(d.agents, (d.queues[0], replace(d.queues[1], languages=("fr",))),
                  d.policy, d.source)
    r = router_for(d)
    r.handle(AgentRegistered("alice"), at(0))
    r.handle(AgentWentOnBreak("alice"), at(0))
    _accept_callback(r)
    ds = r.handle(TimerFired(), at(7))
    moved = [(x.from_queue, x.target) for x in ds
             if isinstance(x, CallOverflowed) and x.call_id == "c1"]
    assert moved == [("billing", "general")]
    assert not any(isinstance(x, CallRejected) for x in ds)
    # still a callback in its new queue: the agent who takes it dials the caller back
    d2 = r.handle(AgentMadeAvailable("alice"), at(8))
    assert [(o.call_id, o.callback) for o in offers(d2)][:1] == [("c1", True)]
