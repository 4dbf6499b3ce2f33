"""Chat routes and the web app's requests about them (store.chats), on a real SQLite store."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pg_kit import StoreMaker

from store.errors import StoreError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_route_waits_and_tells_the_engine(make_store: StoreMaker) -> None:
    store = make_store()
    seq0 = store.chat_requests_seq()
    r = store.route_chat("sms:+1555:1", "sms", "+1555", "general", "es", "order-status", T0,
                         skills=("billing",))
    assert (r.route_id, r.state, r.queue_id, r.open) == ("sms:+1555:1#1", "waiting",
                                                         "general", True)
    got, seq = store.chat_requests_since(seq0)
    assert [(q.kind, q.route_id) for q in got] == [("route", "sms:+1555:1#1")]
    assert got[0].data == {"channel": "sms", "customer": "+1555", "queue_id": "general",
                           "language": "es", "intent": "order-status", "skills": ["billing"]}
    assert store.chat_requests_since(seq) == ([], seq)
    # a transfer: the same conversation's second route has its own id
    store.update_chat_route(r.route_id, T0, state="ended", ended_by="transfer", ended_at=T0)
    r2 = store.route_chat("sms:+1555:1", "sms", "+1555", "tech", "es", None, T0)
    assert r2.route_id == "sms:+1555:1#2"
    assert store.open_chat_route("sms:+1555:1") == r2


def test_compare_and_set_keeps_a_timed_out_offer_from_being_accepted(
        make_store: StoreMaker) -> None:
    store = make_store()
    r = store.route_chat("m:42:1", "messenger", "42", "general", None, None, T0)
    later = T0 + timedelta(seconds=5)
    assert store.update_chat_route(r.route_id, T0, expect_states=("waiting",), state="offered",
                                   agent_id="alice", offered_at=T0, offer_expires_at=later)
    # the offer passes (engine) before alice's accept (web) is written
    assert store.update_chat_route(r.route_id, later, expect_states=("offered",),
                                   expect_agent="alice", state="waiting", agent_id=None)
    assert not store.update_chat_route(r.route_id, later, expect_states=("offered",),
                                       expect_agent="alice", state="accepted",
                                       accepted_at=later)
    now = store.chat_route(r.route_id)
    assert now is not None and (now.state, now.agent_id, now.accepted_at) == ("waiting", None,
                                                                               None)
    assert [c.route_id for c in store.chat_routes(states=("waiting",))] == [r.route_id]
    assert store.chat_routes(agent_id="alice") == []


def test_bad_writes_are_refused(make_store: StoreMaker) -> None:
    store = make_store()
    r = store.route_chat("m:42:1", "messenger", "42", "general", None, None, T0)
    with pytest.raises(StoreError, match="cannot set conversation_id"):
        store.update_chat_route(r.route_id, T0, conversation_id="x")
    with pytest.raises(StoreError, match="state 'lost'"):
        store.update_chat_route(r.route_id, T0, state="lost")
    with pytest.raises(StoreError, match="chat request 'route'"):
        store.request_chat(r.route_id, "route", None, T0)
    seq = store.request_chat(r.route_id, "accept", "alice", T0, {"x": 1})
    got, _ = store.chat_requests_since(seq - 1)
    assert [(q.kind, q.agent_id, q.data) for q in got] == [("accept", "alice", {"x": 1})]
