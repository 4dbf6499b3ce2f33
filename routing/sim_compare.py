"""Every selection rule on the same seeded weeks: fairness and service side by side.

``homeline route simulate --compare`` prints this. Per rule, over the seeds:
the spread of both fairness measures (`routing.fairness`; mean and worst
week), service level, average speed of answer and abandonment over all calls
of all weeks, and each spread as a ratio of longest-idle's (the rule most
centres use) in the same run.

Targets (issue 12), judged on the means over the seeds: fair-share's spread
against fair share <= 3 % and <= 0.4x longest-idle's; fair-share's service
level and ASA within 2 % of longest-idle's (SL >= 0.98x, ASA <= 1.02x).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from routing.model import SELECTION_RULES
from routing.simulate import SimResult, simulate_week

__all__ = ["RuleFigures", "Comparison", "compare_rules", "BASELINE"]

BASELINE = "longest-idle"
MAX_SHARE_SPREAD_PCT = 3.0
MAX_SPREAD_RATIO = 0.4
SERVICE_TOLERANCE = 0.02


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


@dataclass(frozen=True, slots=True)
class RuleFigures:
    rule: str
    weeks: tuple[SimResult, ...]

    @property
    def share_spread_pct(self) -> float:
        return _mean([w.share_spread_pct for w in self.weeks])

    @property
    def share_spread_worst_pct(self) -> float:
        return max(w.share_spread_pct for w in self.weeks)

    @property
    def hourly_spread_pct(self) -> float:
        return _mean([w.hourly_spread_pct for w in self.weeks])

    @property
    def calls_spread_pct(self) -> float:
        return _mean([w.calls_spread_pct for w in self.weeks])

    @property
    def calls(self) -> int:
        return sum(w.calls for w in self.weeks)

    @property
    def service_level(self) -> float:
        return sum(w.answered_in_sl for w in self.weeks) / max(1, self.calls)

    @property
    def asa_s(self) -> float:
        answered = sum(w.answered for w in self.weeks)
        return sum(w.wait_answered_s for w in self.weeks) / max(1, answered)

    @property
    def abandon_rate(self) -> float:
        return sum(w.abandoned for w in self.weeks) / max(1, self.calls)


@dataclass(frozen=True, slots=True)
class Comparison:
    seeds: tuple[int, ...]
    rules: tuple[RuleFigures, ...]

    def rule(self, name: str) -> RuleFigures:
        for r in self.rules:
            if r.rule == name:
                return r
        raise KeyError(name)

    def ratio(self, name: str, measure: str = "share") -> float:
        """``name``'s mean spread over longest-idle's, for ``measure`` share|hourly."""
        attr = f"{measure}_spread_pct"
        base = getattr(self.rule(BASELINE), attr)
        return float(getattr(self.rule(name), attr)) / base if base else 0.0

    def targets(self) -> dict[str, bool]:
        fair, base = self.rule("fair-share"), self.rule(BASELINE)
        return {
            "share_spread_le_3pct": fair.share_spread_pct <= MAX_SHARE_SPREAD_PCT,
            "share_spread_le_0.4x_longest_idle": self.ratio("fair-share") <= MAX_SPREAD_RATIO,
            "sl_within_2pct": fair.service_level >= (1 - SERVICE_TOLERANCE) * base.service_level,
            "asa_within_2pct": fair.asa_s <= (1 + SERVICE_TOLERANCE) * base.asa_s,
        }

    def table(self) -> list[str]:
        lines = [f"seeds {', '.join(map(str, self.seeds))}: {self.rules[0].calls} calls per "
                 "rule; spreads are means over the weeks (worst week in brackets)",
                 f"{'rule':<17} {'vs fair share':>17} {'per signed-up h':>16} "
                 f"{'x idle':>7} {'SL':>6} {'ASA s':>6} {'aband.':>6}"]
        for r in self.rules:
            lines.append(
                f"{r.rule:<17} {r.share_spread_pct:>6.1f}% ({r.share_spread_worst_pct:>5.1f}%)"
                f" {r.hourly_spread_pct:>15.1f}% {self.ratio(r.rule):>6.2f}x"
                f" {r.service_level:>6.1%} {r.asa_s:>6.1f} {r.abandon_rate:>6.1%}")
        return lines

    def to_json(self) -> dict[str, Any]:
        rules: dict[str, Any] = {}
        for r in self.rules:
            rules[r.rule] = {
                "share_spread_pct": round(r.share_spread_pct, 2),
                "share_spread_worst_pct": round(r.share_spread_worst_pct, 2),
                "hourly_spread_pct": round(r.hourly_spread_pct, 2),
                "calls_per_h_spread_pct": round(r.calls_spread_pct, 2),
                "share_spread_ratio": round(self.ratio(r.rule), 3),
                "hourly_spread_ratio": round(self.ratio(r.rule, "hourly"), 3),
                "service_level": round(r.service_level, 4),
                "asa_s": round(r.asa_s, 2),
                "abandon_rate": round(r.abandon_rate, 4),
                "per_seed_share_spread_pct": [round(w.share_spread_pct, 2) for w in r.weeks],
            }
        targets = self.targets()
        return {"seeds": list(self.seeds), "calls_per_rule": self.rules[0].calls,
                "baseline": BASELINE, "rules": rules, "targets": targets,
                "targets_met": all(targets.values())}


def compare_rules(seeds: Sequence[int], rules: Sequence[str] = SELECTION_RULES,
                  n_agents: int = 20) -> Comparison:
    """Simulate each seed's week once per rule (same agents, same callers)."""
    if BASELINE not in rules or "fair-share" not in rules:
        raise ValueError(f"the comparison needs {BASELINE} and fair-share; got {list(rules)}")
    out = [RuleFigures(r, tuple(simulate_week(s, rule=r, n_agents=n_agents) for s in seeds))
           for r in rules]
    return Comparison(tuple(seeds), tuple(out))
