"""The router's waiting lines stay as large as the calls in them (the soak's finding:
the arrivals heap kept every call that came and went behind one that waited)."""
from __future__ import annotations

from routing.pools import WaitingLine


def test_the_arrivals_heap_stays_bounded_behind_a_call_that_waits_long() -> None:
    line = WaitingLine()
    first = (0.0, 0.0, 0, "c-first")  # waits the whole time, at the top of the heap
    line.add(first)
    largest = 0
    for n in range(1, 10_001):
        key = (float(n), float(n), n, f"c{n}")
        line.add(key)
        line.remove(key)  # the caller hung up
        largest = max(largest, len(line.arrivals))
    assert largest <= 2 * 1 + 16 + 1
    assert line.oldest_arrival() == 0.0
    line.remove(first)
    assert line.oldest_arrival() is None and line.keys == [] and not line.present


def test_oldest_arrival_is_right_after_the_heap_is_rebuilt() -> None:
    line = WaitingLine()
    keys = [(float(n), float(100 - n), n, f"c{n}") for n in range(60)]
    for k in keys:
        line.add(k)
    for k in keys[40:]:  # the oldest arrivals leave: their entries are stale in the heap
        line.remove(k)
    for k in keys[:25]:
        line.remove(k)  # enough removals to rebuild
    assert len(line.arrivals) <= 2 * len(line.keys) + 16
    remaining = keys[25:40]
    assert line.oldest_arrival() == min(k[1] for k in remaining)
    assert sorted(line.keys) == line.keys == sorted(remaining)
