"""The same rows in the same order from each store, where a sort key may be NULL.

SQLite sorts NULL first in ascending order, PostgreSQL last (its manual, 7.5
Sorting Rows: "NULLS LAST is the default for ascending order"): a call record that
has no time yet (one the router wrote first: a rejection, a chat's answer) was
listed first on one store and last on the other, and ``homeline calls --limit N``
showed other calls. The store's ORDER BY says where NULL goes (first, as SQLite
always had it) and ends on a unique key."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pg_kit import StoreMaker

from store import CallRecord

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_calls_without_a_time_come_first_on_each_store(make_store: StoreMaker) -> None:
    with make_store() as s:
        s.record_call(CallRecord("b-late", caller="+1", arrived_at=T0 + timedelta(minutes=5)))
        s.record_call(CallRecord("a-early", caller="+1", arrived_at=T0))
        s.record_call(CallRecord("z-none", caller="+1", outcome="rejected-no-agent"))
        s.record_call(CallRecord("y-none", caller="+1", wrap_up_s=3.0))
        s.record_call(CallRecord("c-ended", caller="+2", ended_at=T0 + timedelta(minutes=1)))
        assert [r.call_id for r in s.calls()] == ["y-none", "z-none", "a-early", "c-ended",
                                                  "b-late"]
        assert [r.call_id for r in s.calls(limit=3)] == ["y-none", "z-none", "a-early"]
        # with a since, calls with no time at all are not in it (on both)
        assert [r.call_id for r in s.calls(since=T0)] == ["a-early", "c-ended", "b-late"]
        assert s.customer_contacts("+1")["calls"] == ["y-none", "z-none", "a-early", "b-late"]
