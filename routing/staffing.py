"""Weekly staffing: agents needed (Erlang C) vs agents signed up, per 30-minute interval.

The forecast is a CSV with a header ``interval,skill,calls,aht_s`` where
``interval`` is the start of a 30-minute interval in the centre's zone, e.g.
``Mon 09:00``. Signed-up agents for an interval are those with the skill whose
hour windows (in their own zones, DST included for the concrete week asked
for) cover the whole interval.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from adminfiles import ENCODING, Problem, read_bytes
from routing.directory import Directory
from routing.erlang import agents_needed
from routing.errors import RoutingError
from routing.windows import DAYS, HourWindow, Schedule, format_hhmm, load_zone

__all__ = ["ForecastRow", "IntervalStaffing", "OpenSlot", "read_forecast", "week_staffing",
           "open_slots", "ForecastError"]

INTERVAL_S = 1800
MAX_FORECAST_BYTES = 4 * 1024 * 1024  # a week is 336 rows per skill: far below this


class ForecastError(RoutingError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class ForecastRow:
    day: int
    minute: int  # start of the interval, minutes after local midnight
    skill: str
    calls: float
    aht_s: float


@dataclass(frozen=True, slots=True)
class IntervalStaffing:
    day: int
    minute: int
    skill: str
    calls: float
    aht_s: float
    needed: int
    signed_up: int
    service_level_signed: float | None

    @property
    def gap(self) -> int:
        return max(0, self.needed - self.signed_up)

    @property
    def label(self) -> str:
        return f"{DAYS[self.day]} {format_hhmm(self.minute)}"


@dataclass(frozen=True, slots=True)
class OpenSlot:
    skill: str
    window: HourWindow
    agents: int  # the largest gap inside the slot

    def __str__(self) -> str:
        return f"{self.skill}: {self.window} (+{self.agents} agent(s))"


def read_forecast(path: str | Path) -> list[ForecastRow]:
    p = Path(path)
    probs: list[Problem] = []
    rows: list[ForecastRow] = []
    raw, problems = read_bytes(p, max_bytes=MAX_FORECAST_BYTES, what="forecast")
    if raw is None:
        raise ForecastError(problems)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ForecastError([Problem(str(p), "-", "-", f"not UTF-8 text (byte {exc.start})",
                                     ENCODING)]) from exc
    reader = csv.DictReader(text.splitlines())
    need = ["interval", "skill", "calls", "aht_s"]
    if reader.fieldnames is None or any(k not in reader.fieldnames for k in need):
        raise ForecastError([Problem(str(p), "line 1", "header", f"columns must include "
                                     f"{', '.join(need)}; got {reader.fieldnames}", "header")])
    for i, r in enumerate(reader, start=2):
        node = f"line {i}"
        try:
            w = HourWindow.parse(f"{r['interval']}-24:00")
        except ValueError as exc:
            probs.append(Problem(str(p), node, "interval", f"{exc}; use e.g. 'Mon 09:00'",
                                 "interval"))
            continue
        if w.start % 30 or w.start >= 1440:
            probs.append(Problem(str(p), node, "interval", "intervals start on :00 or :30",
                                 "interval"))
            continue
        try:
            calls, aht = float(r["calls"]), float(r["aht_s"])
            if calls < 0 or aht <= 0:
                raise ValueError("calls >= 0 and aht_s > 0")
        except (TypeError, ValueError) as exc:
            probs.append(Problem(str(p), node, "calls", f"bad numbers: {exc}", "number"))
            continue
        rows.append(ForecastRow(w.day, w.start, (r["skill"] or "").strip(), calls, aht))
    if probs:
        raise ForecastError(probs)
    return rows


def week_staffing(directory: Directory, forecast: Iterable[ForecastRow], monday: date, *,
                  zone: str, sl_target: float = 0.8, answer_s: float = 20.0
                  ) -> list[IntervalStaffing]:
    """Needed vs signed-up agents for each forecast row of the week starting ``monday``."""
    if monday.weekday() != 0:
        raise ValueError(f"{monday} is not a Monday")
    cz = load_zone(zone)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=cz).astimezone(UTC)
    end = start + timedelta(days=8)
    open_ivs = {a.id: Schedule(load_zone(a.zone), a.windows, a.changes).intervals(start, end)
                for a in directory.agents}
    out: list[IntervalStaffing] = []
    for row in sorted(forecast, key=lambda r: (r.day, r.minute, r.skill)):
        d = monday + timedelta(days=row.day)
        t0 = datetime(d.year, d.month, d.day, row.minute // 60, row.minute % 60,
                      tzinfo=cz).astimezone(UTC)
        t1 = t0 + timedelta(seconds=INTERVAL_S)
        signed = sum(1 for a in directory.agents if a.skills.get(row.skill, 0) > 0
                     and any(s <= t0 and t1 <= e for s, e in open_ivs[a.id]))
        need = agents_needed(row.calls, INTERVAL_S, row.aht_s, sl_target, answer_s)
        sl_signed = None
        if row.calls > 0:
            from routing.erlang import erlang_figures

            sl_signed = erlang_figures(row.calls, INTERVAL_S, row.aht_s, signed,
                                       answer_s).service_level
        out.append(IntervalStaffing(row.day, row.minute, row.skill, row.calls, row.aht_s,
                                    need.agents, signed, sl_signed))
    return out


def open_slots(rows: Sequence[IntervalStaffing]) -> list[OpenSlot]:
    """Consecutive understaffed intervals of a skill merged into windows agents could pick."""
    slots: list[OpenSlot] = []
    by_skill: dict[str, list[IntervalStaffing]] = {}
    for r in rows:
        if r.gap > 0:
            by_skill.setdefault(r.skill, []).append(r)
    for skill in sorted(by_skill):
        cur: list[IntervalStaffing] = []
        for r in sorted(by_skill[skill], key=lambda r: (r.day, r.minute)):
            if cur and (r.day != cur[-1].day or r.minute != cur[-1].minute + 30):
                slots.append(_slot(skill, cur))
                cur = []
            cur.append(r)
        if cur:
            slots.append(_slot(skill, cur))
    return slots


def _slot(skill: str, run: list[IntervalStaffing]) -> OpenSlot:
    return OpenSlot(skill, HourWindow(run[0].day, run[0].minute, run[-1].minute + 30),
                    max(r.gap for r in run))
