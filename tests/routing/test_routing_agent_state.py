"""Agents end their own wrap-up (AgentEndedWrapUp): only wrap-up, and the asked-for break."""
from __future__ import annotations

from routing_testkit import at, offers, router_for, small_directory

from routing import (
    AgentEndedWrapUp,
    AgentPutOnBreak,
    AgentRegistered,
    AgentStateChanged,
    AgentWentOnBreak,
    CallArrived,
    CallEnded,
    EventIgnored,
    OfferAnswered,
    TimerFired,
)
from routing.journal import decode_event, encode
from routing.router import Router


def talking_alice() -> Router:
    router = router_for(small_directory(wrap_up_s=120))
    router.handle(AgentRegistered("alice"), at())
    (o,) = offers(router.handle(CallArrived("c1", "billing", "fr"), at()))
    assert o.agent_id == "alice"
    router.handle(OfferAnswered("c1", "alice"), at(seconds=5))
    return router


def test_ending_wrap_up_makes_the_agent_available_at_once() -> None:
    router = talking_alice()
    router.handle(CallEnded("c1"), at(minutes=3))
    assert router.agent_status("alice")["state"] == "wrap_up"
    router.handle(CallArrived("c2", "billing", "fr"), at(minutes=3, seconds=10))
    ds = router.handle(AgentEndedWrapUp("alice"), at(minutes=3, seconds=20))
    assert AgentStateChanged("alice", "wrap_up", "available", "wrap_done") in ds
    (o,) = offers(ds)
    assert (o.call_id, o.agent_id) == ("c2", "alice")
    router.handle(OfferAnswered("c2", "alice"), at(minutes=3, seconds=25))
    # the wrap-up timer of c1 (due at 5:00) no longer applies
    later = router.handle(TimerFired(), at(minutes=5, seconds=1))
    assert [d for d in later if isinstance(d, AgentStateChanged)] == []
    assert router.agent_status("alice")["state"] == "on_call"


def test_a_break_asked_for_during_the_call_starts_when_wrap_up_ends() -> None:
    router = talking_alice()
    router.handle(AgentWentOnBreak("alice", "lunch"), at(minutes=1))
    router.handle(CallEnded("c1"), at(minutes=3))
    ds = router.handle(AgentEndedWrapUp("alice"), at(minutes=3, seconds=20))
    assert AgentPutOnBreak("alice", "lunch") in ds
    assert router.agent_status("alice")["state"] == "break"


def test_outside_wrap_up_it_is_ignored_and_changes_nothing() -> None:
    router = router_for(small_directory())
    router.handle(AgentRegistered("alice"), at())
    router.handle(AgentWentOnBreak("alice", "tea"), at())
    ds = router.handle(AgentEndedWrapUp("alice"), at(seconds=1))
    assert ds == [EventIgnored("AgentEndedWrapUp", "alice is break, not in wrap-up")]
    assert router.agent_status("alice")["state"] == "break"
    assert router.handle(AgentEndedWrapUp("nobody"), at(seconds=2)) == [
        EventIgnored("AgentEndedWrapUp", "unknown agent nobody")]


def test_it_is_journaled_like_the_other_events() -> None:
    assert decode_event(encode(AgentEndedWrapUp("alice"))) == AgentEndedWrapUp("alice")
