"""Fairness measures: handled work against each agent's fair share of the offered load.

Pure arithmetic over intervals (seconds since any epoch); the simulator and
reports use it, the router keeps its own running version of the same sums
(`routing.router`, "fair-share" selection). README, section "Fairness", gives
the reasoning; in short:

- **per signed-up hour**: handled minutes / signed-up hours. Simple, but it
  cannot tell a quiet night hour from a Monday-morning peak hour.
- **fair share**: at every instant the work being done in a group (agents on a
  call of that group) is split equally among the group's agents who are signed
  up at that instant; an agent's fair share is the sum of their parts. Sum of
  fair shares = work done (whenever someone was signed up), and an agent who
  only signs up for quiet hours is owed only the quiet hours' work.

A group is a set of calls (say one queue and language) and the agents eligible
for them. The *spread* of a measure is the largest deviation of an agent's
figure from the mean over agents, in percent of the mean (``+-x %``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["HandledCall", "GroupFairness", "fair_shares", "group_fairness", "spread_pct"]

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class HandledCall:
    """One answered call: the agent talked from ``start`` to ``end``."""

    group: str
    agent: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class GroupFairness:
    """Both measures for one group. Per agent: handled s, fair share s, signed-up h."""

    group: str
    handled_s: Mapping[str, float]
    fair_s: Mapping[str, float]
    signed_h: Mapping[str, float]

    def share_ratios(self) -> dict[str, float]:
        """Handled / fair share, for agents with a fair share."""
        return {a: self.handled_s.get(a, 0.0) / f for a, f in sorted(self.fair_s.items())
                if f > 0}

    def hourly_rates(self) -> dict[str, float]:
        """Handled minutes per signed-up hour, for agents who signed up."""
        return {a: self.handled_s.get(a, 0.0) / 60 / h for a, h in sorted(self.signed_h.items())
                if h > 0}

    @property
    def share_spread_pct(self) -> float:
        return spread_pct(self.share_ratios().values())

    @property
    def hourly_spread_pct(self) -> float:
        return spread_pct(self.hourly_rates().values())


def spread_pct(values: Iterable[float]) -> float:
    """Largest |x - mean| / mean over ``values``, in percent (0 for no or zero values)."""
    xs = list(values)
    if not xs:
        return 0.0
    mean = sum(xs) / len(xs)
    if mean <= 0:
        return 0.0
    return max(abs(x - mean) for x in xs) / mean * 100


def _clip(ivs: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    return [(max(a, lo), min(b, hi)) for a, b in ivs if min(b, hi) > max(a, lo)]


def fair_shares(signed: Mapping[str, Sequence[Interval]], calls: Iterable[HandledCall],
                lo: float, hi: float) -> dict[str, float]:
    """Each agent's fair share (s) of the work in ``calls`` over ``[lo, hi)``.

    ``signed``: the agents eligible for these calls and when they were signed up.
    Between two consecutive instants at which someone signs in or out or a call
    starts or ends, ``busy`` calls are being handled by ``n`` signed-up agents:
    each of them is owed ``dt * busy / n``. Kept as one running clock (work per
    signed-up agent so far) read when an agent signs in and out, so the cost is
    O(changes log changes), not O(changes x agents). Work done while nobody
    eligible was signed up (a call running past its agent's window) is owed to
    nobody.
    """
    points: list[tuple[float, int, int, str]] = []  # (t, order, delta kind, agent)
    for agent, ivs in signed.items():
        for a, b in _clip(ivs, lo, hi):
            points.append((a, 1, 1, agent))
            points.append((b, 0, -1, agent))
    for c in calls:
        for a, b in _clip([(c.start, c.end)], lo, hi):
            points.append((a, 1, 2, ""))
            points.append((b, 0, -2, ""))
    points.sort()
    clock = 0.0
    last = lo
    busy = n = 0
    joined: dict[str, float] = {}
    owed = dict.fromkeys(signed, 0.0)
    for t, _order, kind, agent in points:
        if n and busy:
            clock += (t - last) * busy / n
        last = t
        if kind == 1:
            joined[agent] = clock
            n += 1
        elif kind == -1:
            owed[agent] += clock - joined.pop(agent)
            n -= 1
        else:
            busy += 1 if kind == 2 else -1
    return owed


def group_fairness(group: str, signed: Mapping[str, Sequence[Interval]],
                   calls: Iterable[HandledCall], lo: float, hi: float) -> GroupFairness:
    """Both measures for the calls of ``group`` and the agents eligible for it."""
    mine = [c for c in calls if c.group == group]
    handled = dict.fromkeys(signed, 0.0)
    for c in mine:
        for a, b in _clip([(c.start, c.end)], lo, hi):
            handled[c.agent] = handled.get(c.agent, 0.0) + b - a
    hours = {a: sum(b - s for s, b in _clip(ivs, lo, hi)) / 3600 for a, ivs in signed.items()}
    return GroupFairness(group, handled, fair_shares(signed, mine, lo, hi), hours)
