"""Shared builders for the routing tests (directories built in code, a small driver)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from routing import (
    Agent,
    Directory,
    ExpansionStep,
    HoursPolicy,
    HourWindow,
    OfferCall,
    Queue,
    RoutingPolicy,
)
from routing.router import Router

# Monday 2026-11-30 18:00 UTC = 19:00 in Paris
MONDAY_18_UTC = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)


def w(text: str) -> HourWindow:
    return HourWindow.parse(text)


def all_week(start: str = "00:00", end: str = "24:00") -> tuple[HourWindow, ...]:
    return tuple(w(f"{d} {start}-{end}") for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
                                                   "Sun"))


def small_directory(**queue_kw: object) -> Directory:
    """alice (billing 4, fr/en, Paris, Mon 18:00-21:00), bob (billing 2, en, London,
    Mon-Wed all day), carol (tech 5 + billing 3, en, New York, Tue 09:00-17:00: outside
    her window on Monday 18:00 UTC)."""
    agents = (
        Agent("alice", "Alice", {"billing": 4}, {"fr": 5, "en": 4}, "Europe/Paris",
              (w("Mon 18:00-21:00"),)),
        Agent("bob", "Bob", {"billing": 2}, {"en": 5}, "Europe/London", all_week("00:00",
                                                                                  "24:00")[:3]),
        Agent("carol", "Carol", {"tech": 5, "billing": 3}, {"en": 5}, "America/New_York",
              (w("Tue 09:00-17:00"),)),
    )
    kw: dict[str, object] = dict(skills={"billing": 3}, languages=("en", "fr"), aht_s=240,
                                 wrap_up_s=10, selection="longest-idle")
    kw.update(queue_kw)
    q = Queue("billing", **kw)  # type: ignore[arg-type]
    policy = RoutingPolicy(ring_timeout_s=15, max_misses=2, miss_cooldown_s=5,
                           hours=HoursPolicy(notice_hours=0, max_weekly_hours=30))
    return Directory(agents, (q, Queue("general", languages=("en",), aht_s=120)), policy,
                     "<test>")


def expansion_queue() -> Queue:
    return Queue("billing", skills={"billing": 4}, languages=("en",), aht_s=240,
                 expansion=(ExpansionStep(30, min_level=2), ExpansionStep(60, any_skill=True)))


def offers(decisions: list[object]) -> list[OfferCall]:
    return [d for d in decisions if isinstance(d, OfferCall)]


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return MONDAY_18_UTC + timedelta(minutes=minutes, seconds=seconds)


def router_for(directory: Directory, now: datetime = MONDAY_18_UTC) -> Router:
    return Router(directory, now=now)
