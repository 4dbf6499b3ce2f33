"""What one store keeps the other keeps: a text with a NUL character in it, a NaN, a
limit.

PostgreSQL's text cannot hold U+0000 (psycopg refuses it), SQLite's can: before
`store.dbapi.portable`, an agent's break reason or an SMS with a ``%00`` in it was
kept on SQLite and refused on PostgreSQL (StoreError: the agent's request lost).
Both stores keep U+FFFD in its place, and find the row again by the same text. A
float NaN was NULL on SQLite and NaN on PostgreSQL: NULL on both. ``LIMIT -1`` was
every row on SQLite and an error on PostgreSQL: refused on both."""
from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from pg_kit import StoreMaker

from routing import AgentWentOnBreak
from store import CallRecord, StoreError
from store.dbapi import NUL_STANDS_IN, portable

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_portable_replaces_only_what_a_store_cannot_keep() -> None:
    params = ("a", 1, None, 2.5)
    assert portable(params) is params  # nothing to change: the same sequence
    assert portable(["tea\x00", b"\x00", 3, math.nan, math.inf]) == (
        f"tea{NUL_STANDS_IN}", b"\x00", 3, None, math.inf)


def test_a_nul_in_what_agents_and_callers_send_is_kept_the_same_on_each_store(
        make_store: StoreMaker) -> None:
    with make_store() as s:
        seq = s.agent_requests_seq()
        s.request_agent_state("ana", "break", "tea\x00time", NOW)
        events, _ = s.agent_requests_since(seq)
        assert events == [AgentWentOnBreak("ana", f"tea{NUL_STANDS_IN}time")]

        s.record_call(CallRecord("c1", caller="+1555\x00", reason="why\x00"))
        s.add_call_event("c1", NOW, "enter", None, {"note": "a\x00b"})
        rec = s.call_record("c1")
        assert rec is not None and (rec.caller, rec.reason) == (
            f"+1555{NUL_STANDS_IN}", f"why{NUL_STANDS_IN}")
        # JSON data escapes it (\u0000): kept as it was on both
        assert s.call_events(["c1"])["c1"][0].data == {"note": "a\x00b"}

        route = s.route_chat("sms:+34600\x00", "sms", "+34600\x00", "general", "es", None,
                             NOW)
        assert route.customer == f"+34600{NUL_STANDS_IN}"
        # looked up by the same text as it came: found
        found = s.open_chat_route("sms:+34600\x00")
        assert found is not None and found.route_id == route.route_id


def test_a_nan_is_null_and_a_negative_limit_refused_on_each_store(
        make_store: StoreMaker) -> None:
    with make_store() as s:
        route = s.route_chat("sms:+1", "sms", "+1", "general", "en", None, NOW)
        s.update_chat_route(route.route_id, NOW, expected_wait_s=math.inf)
        got = s.chat_route(route.route_id)
        assert got is not None and got.expected_wait_s == math.inf  # kept by both
        s.update_chat_route(route.route_id, NOW, expected_wait_s=math.nan)
        got = s.chat_route(route.route_id)
        assert got is not None and got.expected_wait_s is None
        s.record_call(CallRecord("c1", wrap_up_s=math.nan))
        rec = s.call_record("c1")
        assert rec is not None and rec.wrap_up_s is None
        with pytest.raises(StoreError, match="must be 0 or more"):
            s.calls(limit=-1)
        assert [r.call_id for r in s.calls(limit=0)] == []
