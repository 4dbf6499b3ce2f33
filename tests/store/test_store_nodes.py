"""The nodes' outboxes and the exactly-once check (store/nodes.py, store.sql), on
SQLite and on PostgreSQL (the ``make_store`` fixture runs each test on both)."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from pg_kit import StoreMaker
from router_writer import START, directory

from routing import AgentRegistered, CallArrived, OfferCall
from routing.router import Router
from store import DoubleBooking, FencedOut, open_store
from store.nodes import doorbell_channel
from store.postgres import PostgresStore


def test_a_followers_events_reach_the_leader_in_order_and_a_new_leader_goes_on_from_where_the_last_stopped(  # noqa: E501
        make_store: StoreMaker) -> None:
    with make_store() as store:
        assert store.node_events_since(0) == []
        s1 = store.send_node_event("b", {"type": "AgentRegistered", "agent_id": "amy"}, START)
        s2 = store.send_node_event("b", {"type": "CallArrived", "call_id": "c1",
                                         "queue_id": "billing"}, START)
        s3 = store.send_node_event("c", {"type": "CallerAbandoned", "call_id": "c9"}, START)
        rows = store.node_events_since(0)
        assert [(r.seq, r.node, r.body["type"]) for r in rows] == [
            (s1, "b", "AgentRegistered"), (s2, "b", "CallArrived"), (s3, "c", "CallerAbandoned")]
        assert [r.seq for r in store.node_events_since(s1)] == [s2, s3]
        assert store.call_node("c1") == "b" and store.call_node("c9") is None
        store.fence(store.take_leadership("a", START))
        assert store.node_events_read() == 0
        store.set_node_events_read(s2)
        assert store.node_events_read() == s2
        # another leader takes over: the first one's progress is refused from then on
        with make_store() as other:
            other.fence(other.take_leadership("c", START + timedelta(seconds=5)))
            with pytest.raises(FencedOut, match="deposed"):
                store.set_node_events_read(s3)
            assert other.node_events_read() == s2  # the new leader goes on from here


def test_decisions_reach_their_node_once_and_a_deposed_leaders_are_refused_or_skipped(
        make_store: StoreMaker) -> None:
    with make_store() as leader, make_store() as follower:
        leader.fence(leader.take_leadership("a", START))
        assert follower.node_cursor("b") is None and follower.node_decisions_end("b") == 0
        d1 = leader.send_node_decisions("b", [{"type": "CallQueued", "call_id": "c1"}], START)
        leader.send_node_decisions("c", [{"type": "OfferCall", "call_id": "c2"}], START)
        got = follower.node_decisions_since("b", 0)
        assert [(r.seq, r.body) for r in got] == [(d1, [{"type": "CallQueued",
                                                         "call_id": "c1"}])]
        follower.set_node_cursor("b", d1)
        assert follower.node_cursor("b") == d1  # a restarted follower goes on from here
        assert follower.node_decisions_since("b", d1) == []
        d3 = leader.send_node_decisions("b", [{"type": "OfferCall", "call_id": "c3"}], START)
        # the follower leads now (epoch 2): what epoch 1 wrote and nobody carried out is
        # skipped, and epoch 1 writes nothing more
        follower.fence(follower.take_leadership("b", START + timedelta(seconds=5)))
        assert follower.node_decisions_since("b", d1) == []
        with pytest.raises(FencedOut):
            leader.send_node_decisions("b", [{"type": "CancelOffer", "call_id": "c3"}], START)
        d4 = follower.send_node_decisions("b", [{"type": "OfferCall", "call_id": "c4"}],
                                          START)
        assert [r.seq for r in follower.node_decisions_since("b", d1)] == [d4]
        assert d4 > d3


def test_an_agents_nodes_are_the_ones_their_phone_is_registered_on(
        make_store: StoreMaker) -> None:
    with make_store() as store:
        store.set_agent_node("amy", "a", True, START)
        store.set_agent_node("bob", "b", True, START)
        store.set_agent_node("amy", "b", True, START + timedelta(seconds=1))
        assert store.agent_nodes("amy") == ["b", "a"]  # latest first
        store.set_agent_node("amy", "b", False, START + timedelta(seconds=2))
        assert store.agent_nodes("amy") == ["a"]
        assert store.registered_agents_by_node() == {"a": ["amy"], "b": ["bob"]}
        store.node_seen("a", "127.0.0.1:5060", START)
        assert [(n, sip) for n, sip, _at in store.nodes()] == [("a", "127.0.0.1:5060")]


def test_a_write_that_would_ring_one_agent_on_two_voice_calls_is_refused(
        make_store: StoreMaker) -> None:
    router = Router(directory(), now=START)
    router.handle(AgentRegistered("a0"), START)
    out = router.handle(CallArrived("c1", "billing", "en", caller="+1"), START)
    offer = next(d for d in out if isinstance(d, OfferCall))
    changes = router.snapshot_changes(START)
    ringing = next(c for c in changes.calls if c.call_id == "c1")
    assert ringing.phase == "ringing" and ringing.agent == offer.agent_id
    with make_store() as store:
        store.save_router_changes(changes)
        # a second voice call ringing the same agent: as a split brain would write it
        twin = dataclasses.replace(ringing, arrival=dataclasses.replace(ringing.arrival,
                                                                         call_id="c2"))
        with pytest.raises(DoubleBooking, match=f"agent {offer.agent_id} would ring or talk "
                           "on 2 voice calls at once"):
            store.save_router_changes(dataclasses.replace(changes, calls=(twin,), full=False))
        loaded = store.load_router_snapshot()
        assert loaded is not None and [c.call_id for c in loaded.calls] == ["c1"]
        # a chat offered to the same agent is not a second voice call
        chat = dataclasses.replace(twin, arrival=dataclasses.replace(
            twin.arrival, call_id="r1", channel="sms"), channel="sms")
        store.save_router_changes(dataclasses.replace(changes, calls=(chat,), full=False))


def test_on_postgresql_a_write_to_an_outbox_rings_its_readers_doorbell(
        pg_database: Callable[[str], str]) -> None:
    """LISTEN/NOTIFY: the leader's reader wakes when a follower writes an event, a
    node's when the leader writes it a decision; nobody else's rings."""
    url = pg_database("doorbell")
    leader, follower = open_store(url), open_store(url)
    assert isinstance(leader, PostgresStore)
    stop = threading.Event()
    rang: dict[str, list[float]] = {"leader": [], "b": [], "c": []}
    threads = [threading.Thread(target=leader.wait_doorbell, daemon=True,
                                args=(doorbell_channel(who), stop,
                                      lambda who=who: rang[who].append(time.monotonic())))
               for who in rang]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # the LISTENs are in place
        sent = time.monotonic()
        follower.send_node_event("b", {"type": "CallerAbandoned", "call_id": "c1"}, START)
        assert _until(lambda: rang["leader"], 5), "the leader's doorbell did not ring"
        leader.send_node_decisions("b", [{"type": "CallQueued", "call_id": "c1"}], START)
        assert _until(lambda: rang["b"], 5), "node b's doorbell did not ring"
        print(f"\ndoorbell: the leader woke {rang['leader'][0] - sent:.3f} s after the write")
        time.sleep(0.5)
        assert rang["c"] == [] and len(rang["leader"]) == 1 and len(rang["b"]) == 1
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        leader.close()
        follower.close()
    assert not any(t.is_alive() for t in threads)


def _until(predicate: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := predicate():
            return got
        time.sleep(0.02)
    return None
