"""A seeded, pure simulation of one week of calls through the router.

Used by the fairness tests and ``homeline route simulate``: agents with the
same skill sign up for different hours (12-30 h, in different zones); calls
arrive as a Poisson process whose rate follows the number of agents signed up
at that moment (a centre whose staffing follows its forecast) at a target
occupancy; agents answer after 2-6 s; handle times are log-normal; callers
hang up after an exponentially distributed patience. Everything runs on
simulated time: no clock, no sleeping, no threads.

Every call's ring delay, handle time and patience are drawn when it arrives,
from a stream of their own, so each rule sees exactly the same callers (common
random numbers): the differences between rules are the rules', not the dice's.
"""
from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from routing.directory import Directory
from routing.events import (
    AgentRegistered,
    CallArrived,
    CallEnded,
    CallerAbandoned,
    Event,
    OfferAnswered,
    OfferCall,
    TimerFired,
    WakeAt,
)
from routing.fairness import GroupFairness, HandledCall, group_fairness, spread_pct
from routing.model import SELECTION_RULES, Agent, Queue, RoutingPolicy
from routing.router import Router
from routing.windows import HoursPolicy, HourWindow, Schedule, load_zone

__all__ = ["SimResult", "simulate_week", "sim_directory"]

ZONES = ("Europe/Paris", "America/New_York", "America/Sao_Paulo", "Asia/Kolkata",
         "Europe/London", "Australia/Sydney", "America/Los_Angeles", "Africa/Casablanca")
GROUP = "billing/en"  # the simulated centre's one queue and language


@dataclass(frozen=True, slots=True)
class SimResult:
    rule: str
    seed: int
    calls: int  # arrived and either answered or abandoned within the week
    answered: int
    abandoned: int
    answered_in_sl: int  # answered within the queue's service-level time
    sl_answer_s: float
    wait_answered_s: float  # total wait of the answered calls (for ASA)
    per_agent: tuple[tuple[str, int, float, float, float], ...]  # id, calls, signed h,
    # handled min, fair-share min
    groups: tuple[GroupFairness, ...] = field(default=())

    @property
    def overall(self) -> GroupFairness:
        """Both measures over all groups: an agent's handled and fair share summed."""
        return GroupFairness("all", {a: m * 60 for a, _, _, m, _ in self.per_agent},
                             {a: f * 60 for a, _, _, _, f in self.per_agent},
                             {a: h for a, _, h, _, _ in self.per_agent})

    @property
    def share_spread_pct(self) -> float:
        """Spread of handled / fair share (see `routing.fairness`)."""
        return self.overall.share_spread_pct

    @property
    def hourly_spread_pct(self) -> float:
        """Spread of handled minutes per signed-up hour."""
        return self.overall.hourly_spread_pct

    @property
    def calls_spread_pct(self) -> float:
        """Spread of calls per signed-up hour (the figure issue 12 started from)."""
        return spread_pct(n / h for _, n, h, _, _ in self.per_agent if h > 0)

    @property
    def service_level(self) -> float:
        """Answered within ``sl_answer_s`` / (answered + abandoned)."""
        return self.answered_in_sl / self.calls if self.calls else 1.0

    @property
    def asa_s(self) -> float:
        """Average speed of answer: mean wait of the answered calls, s."""
        return self.wait_answered_s / self.answered if self.answered else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.calls if self.calls else 0.0

    def summary(self) -> str:
        return (f"{self.rule} (seed {self.seed}): {self.answered}/{self.calls} calls answered "
                f"by {len(self.per_agent)} agents, {self.abandoned} abandoned; SL "
                f"{self.service_level:.1%} in {self.sl_answer_s:g} s, ASA {self.asa_s:.1f} s; "
                f"spread +-{self.share_spread_pct:.1f}% against fair share, "
                f"+-{self.hourly_spread_pct:.1f}% per signed-up hour "
                f"(calls per signed-up hour +-{self.calls_spread_pct:.1f}%)")


def sim_directory(rng: random.Random, n_agents: int, rule: str, min_h: int = 8,
                  policy: RoutingPolicy | None = None) -> Directory:
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
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; allowed: {', '.join(SELECTION_RULES)}")
    q = Queue("billing", skills={"billing": 2}, languages=("en",), aht_s=240, wrap_up_s=0,
              selection=rule)  # type: ignore[arg-type]
    pol = policy or RoutingPolicy(ring_timeout_s=15, hours=HoursPolicy(max_weekly_hours=40))
    return Directory(tuple(agents), (q,), pol, "<simulation>")


@dataclass(slots=True)
class _SimCall:
    arrived: float
    ring_s: float
    handle_s: float
    gives_up: float  # when the caller hangs up unless answered by then
    answered: float | None = None
    abandoned: bool = False


def simulate_week(seed: int = 7, *, rule: str = "fair-share", n_agents: int = 20,
                  occupancy: float = 0.7, aht_s: float = 240.0, aht_cv: float = 0.3,
                  patience_s: float | None = 300.0, min_h: int = 12,
                  policy: RoutingPolicy | None = None,
                  start: datetime = datetime(2026, 3, 23, tzinfo=UTC)) -> SimResult:
    """Simulate the week starting ``start`` (a Monday 00:00 UTC) with ``rule`` in use.

    ``patience_s``: mean caller patience (exponential); None: nobody hangs up.
    """
    rng = random.Random(seed)
    directory = sim_directory(rng, n_agents, rule, min_h, policy)
    router = Router(directory, now=start)
    end = start + timedelta(days=7)
    t0, t_end = start.timestamp(), end.timestamp()
    pending: list[tuple[float, int, Event]] = []
    seq = 0

    def push(t: float, ev: Event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(pending, (t, seq, ev))

    for a in directory.agents:
        push(t0, AgentRegistered(a.id))
    # arrivals: thinning of a Poisson process at the full-staffing rate
    scheds = [Schedule(load_zone(a.zone), a.windows) for a in directory.agents]
    lam_max = n_agents * occupancy / aht_s
    sigma = math.sqrt(math.log(1 + aht_cv * aht_cv))
    mu = math.log(aht_s) - sigma * sigma / 2
    per_call = random.Random(seed * 1_000_003 + 17)  # the callers' own stream
    calls: dict[str, _SimCall] = {}
    t = t0
    while True:
        t += rng.expovariate(lam_max)
        if t >= t_end:
            break
        at = datetime.fromtimestamp(t, UTC)
        staffed = sum(1 for s in scheds if s.state_at(at)[0])
        if rng.random() < staffed / n_agents:
            cid = f"c{len(calls) + 1:05d}"
            ring = per_call.uniform(2, 6)
            handle = per_call.lognormvariate(mu, sigma)
            patience = per_call.expovariate(1 / patience_s) if patience_s else math.inf
            calls[cid] = _SimCall(t, ring, handle, t + patience)
            push(t, CallArrived(cid, "billing", "en", "balance", f"+1555{len(calls):06d}"))
            if patience_s:
                push(t + patience, CallerAbandoned(cid))
    wake: float | None = None
    handled: list[HandledCall] = []
    by_agent: dict[str, int] = {a.id: 0 for a in directory.agents}
    while pending:
        t, _, ev = heapq.heappop(pending)
        if t >= t_end:
            break  # window timers would go on forever; calls still up at the end do not count
        if isinstance(ev, TimerFired) and t != wake:
            continue
        if isinstance(ev, CallerAbandoned):
            c = calls[ev.call_id]
            if c.answered is not None:
                continue  # answered in time: the caller did not hang up
            c.abandoned = True
        for d in router.handle(ev, datetime.fromtimestamp(t, UTC)):
            if isinstance(d, WakeAt):
                wake = d.at.timestamp()
                push(wake, TimerFired())
            elif isinstance(d, OfferCall):
                c = calls[d.call_id]
                ans = t + c.ring_s
                if ans >= c.gives_up:
                    continue  # rings, but the caller hangs up first (CallerAbandoned queued)
                c.answered = ans
                push(ans, OfferAnswered(d.call_id, d.agent_id))
                push(ans + c.handle_s, CallEnded(d.call_id, "caller"))
                if ans < t_end:
                    handled.append(HandledCall(GROUP, d.agent_id, ans, ans + c.handle_s))
                    by_agent[d.agent_id] += 1
    return _result(rule, seed, directory, router, calls, handled, by_agent, t0, t_end)


def _result(rule: str, seed: int, directory: Directory, router: Router,
            calls: dict[str, _SimCall], handled: Sequence[HandledCall],
            by_agent: dict[str, int], t0: float, t_end: float) -> SimResult:
    q = directory.queues[0]
    done = [c for c in calls.values()
            if (c.answered is not None and c.answered < t_end) or c.abandoned]
    answered = [c for c in done if c.answered is not None]
    waits = [(c.answered or 0.0) - c.arrived for c in answered]
    signed: dict[str, list[tuple[float, float]]] = {}
    for a in directory.agents:
        sched = Schedule(load_zone(a.zone), a.windows, a.changes)
        ivs = sched.intervals(datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t_end, UTC))
        signed[a.id] = [(x.timestamp(), y.timestamp()) for x, y in ivs]
    # every simulated agent has billing >= 2 and English: all are eligible for the one group
    g = group_fairness(GROUP, signed, handled, t0, t_end)
    rows = tuple((a, by_agent[a], g.signed_h[a], g.handled_s[a] / 60, g.fair_s[a] / 60)
                 for a in sorted(signed))
    assert all(abs(router.agent_status(a)["signed_h"] - h) < 1e-6 for a, _, h, _, _ in rows)
    return SimResult(rule, seed, len(done), len(answered), sum(c.abandoned for c in done),
                     sum(w <= q.sl_answer_s for w in waits), q.sl_answer_s, sum(waits), rows,
                     (g,))
