"""The engine's in-memory call timelines stay bounded, live calls included."""
from __future__ import annotations

from homeline.timelines import Timelines


def test_ended_calls_are_forgotten_beyond_keep_but_live_ones_never():
    timelines = Timelines()
    timelines.KEEP = 5
    live = timelines.of("live-1")  # never ends
    for n in range(20):
        t = timelines.of(f"done-{n}")
        t.ended = True
    kept = [t.call_id for t in timelines.all()]
    assert "live-1" in kept and timelines.get("live-1") is live
    assert len(kept) <= timelines.KEEP + timelines.SKIP_LIVE
    assert "done-0" not in kept and "done-19" in kept


def test_many_live_calls_do_not_stop_the_eviction_of_ended_ones():
    timelines = Timelines()
    timelines.KEEP = 10
    for n in range(10):
        timelines.of(f"live-{n}")  # ten callers waiting for ever
    for n in range(200):
        timelines.of(f"done-{n}").ended = True
    kept = [t.call_id for t in timelines.all()]
    assert all(f"live-{n}" in kept for n in range(10))
    # bounded: about KEEP (a new call may look past SKIP_LIVE live ones before it
    # evicts), not KEEP plus the 200 ended calls
    assert len(kept) <= timelines.KEEP + timelines.SKIP_LIVE, len(kept)
