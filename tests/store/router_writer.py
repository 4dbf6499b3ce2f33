"""A deterministic busy day for a router whose every change goes to the store.

``python router_writer.py DB [STEPS]`` runs it (DB: an SQLite path or a
``postgresql://`` URL), saving ``snapshot_changes`` after
each event and printing ``saved I`` once step I is committed (the kill -9 test
reads that, then kills the process while it writes). `events` gives the same
day to the test, which replays it to see what state each step left.
"""
from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from routing import (
    Agent,
    AgentMadeAvailable,
    AgentRegistered,
    CallArrived,
    CallEnded,
    CallerAbandoned,
    Directory,
    Event,
    HourWindow,
    OfferAnswered,
    OfferCall,
    Queue,
    RoutingPolicy,
    TimerFired,
)
from routing.router import Router

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday


def directory() -> Directory:
    days = tuple(HourWindow(d, 0, 1440) for d in range(7))
    agents = tuple(Agent(f"a{i}", skills={"billing": 1 + i % 3}, languages={"en": 5},
                         windows=days) for i in range(4))
    queues = (Queue("billing", skills={"billing": 1}, aht_s=120, wrap_up_s=15,
                    selection="fair-share"),)
    return Directory(agents, queues, RoutingPolicy(ring_timeout_s=60), "<writer>")


def events(router: Router) -> Iterator[tuple[datetime, Event]]:
    """The day's events; answers and hang-ups follow the router's own offers."""
    rng = random.Random(8)
    now = START
    for a in router.agent_ids():
        yield now, AgentRegistered(a)
    ringing: dict[str, str] = {}
    connected: list[str] = []
    n = 0
    while True:
        now += timedelta(seconds=rng.randint(1, 20))
        r = rng.random()
        if r < 0.35:
            n += 1
            ev: Event = CallArrived(f"c{n}", "billing", "en", caller=f"+{n % 5}",
                                    priority=rng.randint(0, 1))
        elif r < 0.7 and ringing:
            cid = sorted(ringing)[0]
            ev = OfferAnswered(cid, ringing.pop(cid))
            connected.append(cid)
        elif r < 0.85 and connected:
            ev = CallEnded(connected.pop(0))
        elif r < 0.88 and n:
            ev = CallerAbandoned(f"c{rng.randint(1, n)}")
        elif r < 0.92:
            ev = AgentMadeAvailable(rng.choice(router.agent_ids()))
        else:
            ev = TimerFired()
        yield now, ev
        for d in router.last_decisions:
            if isinstance(d, OfferCall):
                ringing[d.call_id] = d.agent_id
        ringing = {c: a for c, a in ringing.items() if router.call_phase(c) == "ringing"}


class Driven(Router):
    """The router plus what the driver needs to see (decisions, a call's phase)."""

    last_decisions: list[object] = []

    def handle(self, event: Event, now: datetime) -> list:  # type: ignore[type-arg]
        out = super().handle(event, now)
        self.last_decisions = list(out)
        return out

    def call_phase(self, call_id: str) -> str | None:
        call = self._calls.get(call_id)
        return call.phase if call is not None else None


def main(db: str, steps: int) -> None:
    from store import open_store

    router = Driven(directory(), now=START)
    with open_store(db) as store:
        store.save_router_changes(router.snapshot(START).as_changes())
        router.take_dirty()
        for i, (now, ev) in enumerate(events(router)):
            if i >= steps:
                break
            router.handle(ev, now)
            store.save_router_changes(router.snapshot_changes(now))
            print(f"saved {i}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10**9)
