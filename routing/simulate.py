"""A seeded, pure simulation of one week of calls through the router.

Used by the fair-share test and ``homeline route simulate``: agents with the
same skill sign up for different hours (12-30 h, in different zones); calls
arrive as a Poisson process whose rate follows the number of agents signed up
at that moment (a centre whose staffing follows its forecast) at a target
occupancy; agents answer after 2-6 s; handle times are log-normal. Everything
runs on simulated time: no clock, no sleeping, no threads.
"""
from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from routing.directory import Directory
from routing.events import (
    AgentRegistered,
    CallArrived,
    CallEnded,
    Event,
    OfferAnswered,
    OfferCall,
    TimerFired,
    WakeAt,
)
from routing.model import Agent, Queue, RoutingPolicy
from routing.router import Router
from routing.windows import HoursPolicy, HourWindow

__all__ = ["SimResult", "simulate_week", "sim_directory"]

ZONES = ("Europe/Paris", "America/New_York", "America/Sao_Paulo", "Asia/Kolkata",
         "Europe/London", "Australia/Sydney", "America/Los_Angeles", "Africa/Casablanca")


@dataclass(frozen=True, slots=True)
class SimResult:
    rule: str
    calls: int
    answered: int
    per_agent: tuple[tuple[str, int, float, float], ...]  # id, calls, signed_h, calls/hour
    spread_pct: float  # largest deviation of calls per signed-up hour from the mean, in %
    mean_rate: float

    def summary(self) -> str:
        return (f"{self.rule}: {self.answered}/{self.calls} calls answered by "
                f"{len(self.per_agent)} agents; calls per signed-up hour mean "
                f"{self.mean_rate:.3f}, spread +-{self.spread_pct:.1f}%")


def sim_directory(rng: random.Random, n_agents: int, rule: str, min_h: int = 8) -> Directory:
    agents = []
    for i in range(n_agents):
        target_h = rng.randint(min_h, 30)
        windows: list[HourWindow] = []
        days = list(range(7))
        rng.shuffle(days)
        left = target_h * 60
        for d in days:
            if left <= 0:
                break
            length = min(left, rng.choice((180, 240, 300, 360)))
            if length < 60:
                break
            start = rng.randrange(0, 24 * 60 - length + 1, 30)
            windows.append(HourWindow(d, start, start + length))
            left -= length
        agents.append(Agent(f"a{i:02d}", skills={"billing": rng.randint(2, 5)},
                            languages={"en": 5}, zone=ZONES[i % len(ZONES)],
                            windows=tuple(windows)))
    q = Queue("billing", skills={"billing": 2}, languages=("en",), aht_s=240, wrap_up_s=0,
              selection=rule)  # type: ignore[arg-type]
    policy = RoutingPolicy(ring_timeout_s=15, hours=HoursPolicy(max_weekly_hours=40))
    return Directory(tuple(agents), (q,), policy, "<simulation>")


def simulate_week(seed: int = 7, *, rule: str = "fair-share", n_agents: int = 20,
                  occupancy: float = 0.7, aht_s: float = 240.0, aht_cv: float = 0.3,
                  min_h: int = 12,
                  start: datetime = datetime(2026, 3, 23, tzinfo=UTC)) -> SimResult:
    """Simulate the week starting ``start`` (a Monday 00:00 UTC) with ``rule`` in use."""
    rng = random.Random(seed)
    directory = sim_directory(rng, n_agents, rule, min_h)
    router = Router(directory, now=start)
    end = start + timedelta(days=7)
    t0 = start.timestamp()
    pending: list[tuple[float, int, Event]] = []
    seq = 0

    def push(t: float, ev: Event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(pending, (t, seq, ev))

    for a in directory.agents:
        push(t0, AgentRegistered(a.id))
    # arrivals: thinning of a Poisson process at the full-staffing rate
    from routing.windows import Schedule, load_zone

    scheds = [Schedule(load_zone(a.zone), a.windows) for a in directory.agents]
    lam_max = n_agents * occupancy / aht_s
    t, n_calls = t0, 0
    while True:
        t += rng.expovariate(lam_max)
        if t >= end.timestamp():
            break
        at = datetime.fromtimestamp(t, UTC)
        staffed = sum(1 for s in scheds if s.state_at(at)[0])
        if rng.random() < staffed / n_agents:
            n_calls += 1
            push(t, CallArrived(f"c{n_calls:05d}", "billing", "en", "balance",
                                f"+1555{n_calls:06d}"))
    sigma = math.sqrt(math.log(1 + aht_cv * aht_cv))
    mu = math.log(aht_s) - sigma * sigma / 2
    wake: float | None = None
    handled: dict[str, int] = {a.id: 0 for a in directory.agents}
    answered = 0
    while pending:
        t, _, ev = heapq.heappop(pending)
        if t >= end.timestamp():
            break  # window timers would go on forever; calls still up at the end do not count
        if isinstance(ev, TimerFired) and t != wake:
            continue
        for d in router.handle(ev, datetime.fromtimestamp(t, UTC)):
            if isinstance(d, WakeAt):
                wake = d.at.timestamp()
                push(wake, TimerFired())
            elif isinstance(d, OfferCall):
                ans = t + rng.uniform(2, 6)
                push(ans, OfferAnswered(d.call_id, d.agent_id))
                push(ans + rng.lognormvariate(mu, sigma), CallEnded(d.call_id, "caller"))
                handled[d.agent_id] += 1
                answered += 1
    rows = []
    for a in directory.agents:
        signed = router.agent_status(a.id)["signed_h"]
        rows.append((a.id, handled[a.id], signed, handled[a.id] / signed if signed else 0.0))
    rates = [r[3] for r in rows if r[2] > 0]
    mean = sum(rates) / len(rates)
    spread = max(abs(r - mean) for r in rates) / mean * 100
    return SimResult(rule, n_calls, answered, tuple(rows), spread, mean)
