"""Weekly hour windows chosen by home agents, evaluated in the agent's own zone.

An agent picks windows such as ``Mon 18:00-21:00`` in local wall-clock time
(their ``zoneinfo`` zone) plus one-off changes for a date (``add`` or
``cancel``). Wall-clock times are turned into instants with ``zoneinfo``'s
PEP 495 rules: on a spring-forward day a wall time inside the gap does not
exist (validation refuses it); on a fall-back day ``fold=0`` picks the first of
the two repeated times, so a window ``01:00-03:00`` on that day lasts three real
hours. Signed-up hours (budget, fair share) count wall-clock minutes, which is
what the agent chose.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adminfiles import Problem

__all__ = [
    "DAYS",
    "HourWindow",
    "HoursChange",
    "HoursPolicy",
    "Schedule",
    "check_aware",
    "load_zone",
    "parse_hhmm",
    "format_hhmm",
    "validate_weekly",
    "validate_change",
    "weekly_minutes",
    "week_minutes",
]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_INDEX = {d.lower(): i for i, d in enumerate(DAYS)}
_WINDOW_RE = re.compile(r"^\s*([A-Za-z]{3})[a-z]*\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
_CHANGE_RE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
_HHMM_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
DAY_MINUTES = 24 * 60


def check_aware(now: datetime, what: str = "now") -> None:
    """Cores take an aware `now`; a naive datetime is a caller bug."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (with tzinfo), got {now!r}")


def parse_hhmm(text: str) -> int:
    """``"18:30"`` -> 1110 minutes after midnight; ``"24:00"`` is allowed as an end."""
    m = _HHMM_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time HH:MM")
    hh, mm = int(m.group(1)), int(m.group(2))
    if mm > 59 or hh > 24 or (hh == 24 and mm != 0):
        raise ValueError(f"{text!r} is not a time between 00:00 and 24:00")
    return hh * 60 + mm


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def load_zone(name: str) -> ZoneInfo:
    """A ``zoneinfo`` zone by IANA name; ValueError naming the zone when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r} "
                         "(use an IANA name like 'Europe/Paris')") from exc


@dataclass(frozen=True, slots=True)
class HourWindow:
    """A weekly window: ``day`` 0=Mon..6=Sun, ``start``/``end`` minutes after local midnight.

    ``end`` may be 1440 (24:00). Windows never cross midnight: write
    ``Mon 22:00-24:00`` and ``Tue 00:00-02:00``; adjacent windows merge.
    """

    day: int
    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> HourWindow:
        m = _WINDOW_RE.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a window like 'Mon 18:00-21:00'")
        day = _DAY_INDEX.get(m.group(1).lower())
        if day is None:
            raise ValueError(f"{text!r}: unknown day {m.group(1)!r} (allowed: {', '.join(DAYS)})")
        return cls(day, parse_hhmm(m.group(2)), parse_hhmm(m.group(3)))

    @property
    def minutes(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{DAYS[self.day]} {format_hhmm(self.start)}-{format_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class HoursChange:
    """A one-off change for one local date: ``add`` extra hours or ``cancel`` some."""

    date: date
    start: int
    end: int
    kind: Literal["add", "cancel"]

    @classmethod
    def parse(cls, text: str, kind: Literal["add", "cancel"]) -> HoursChange:
        m = _CHANGE_RE.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a dated window like '2026-12-01 18:00-21:00'")
        return cls(date.fromisoformat(m.group(1)), parse_hhmm(m.group(2)),
                   parse_hhmm(m.group(3)), kind)

    def __str__(self) -> str:
        span = f"{format_hhmm(self.start)}-{format_hhmm(self.end)}"
        return f"{self.kind} {self.date.isoformat()} {span}"


@dataclass(frozen=True, slots=True)
class HoursPolicy:
    """What agents may choose. Defaults: 1-30 h a week, windows >= 30 min, 12 h notice."""

    min_weekly_hours: float = 1.0
    max_weekly_hours: float = 30.0
    min_window_minutes: int = 30
    notice_hours: float = 12.0


def _subtract(intervals: list[tuple[int, int]], cut: tuple[int, int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in intervals:
        if cut[1] <= s or cut[0] >= e:
            out.append((s, e))
            continue
        if s < cut[0]:
            out.append((s, cut[0]))
        if cut[1] < e:
            out.append((cut[1], e))
    return out


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def day_intervals(windows: Sequence[HourWindow], changes: Sequence[HoursChange],
                  d: date) -> list[tuple[int, int]]:
    """Local minute intervals open on date ``d``: weekly windows + adds - cancels, merged."""
    wd = d.weekday()
    ivs = [(w.start, w.end) for w in windows if w.day == wd]
    ivs += [(c.start, c.end) for c in changes if c.kind == "add" and c.date == d]
    merged = _merge(ivs)
    for c in changes:
        if c.kind == "cancel" and c.date == d:
            merged = _subtract(merged, (c.start, c.end))
    return merged


def weekly_minutes(windows: Sequence[HourWindow]) -> int:
    return sum(e - s for d in range(7)
               for s, e in _merge((w.start, w.end) for w in windows if w.day == d))


def week_minutes(windows: Sequence[HourWindow], changes: Sequence[HoursChange],
                 monday: date) -> int:
    """Signed-up wall-clock minutes in the local week starting ``monday``, changes included."""
    return sum(e - s for i in range(7)
               for s, e in day_intervals(windows, changes, monday + timedelta(days=i)))


def local_instant(zone: ZoneInfo, d: date, minute: int) -> datetime:
    """The UTC instant of wall time ``minute`` on ``d`` in ``zone`` (fold=0, PEP 495)."""
    if minute >= DAY_MINUTES:
        d, minute = d + timedelta(days=1), minute - DAY_MINUTES
    return datetime.combine(d, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)


def nonexistent(zone: ZoneInfo, d: date, minute: int) -> bool:
    """True when wall time ``minute`` on ``d`` falls in a spring-forward gap of ``zone``."""
    if minute >= DAY_MINUTES:
        d, minute = d + timedelta(days=1), minute - DAY_MINUTES
    local = datetime.combine(d, time(minute // 60, minute % 60), tzinfo=zone)
    back = local.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) != local.replace(tzinfo=None)


class Schedule:
    """Open intervals of one agent as UTC instants, with a small cache.

    ``state_at(now)`` answers "open now, and until when" or "closed, opens when";
    the answer is valid until the returned boundary, so the router only asks
    again once ``now`` passes it.
    """

    __slots__ = ("zone", "windows", "changes", "_cache_from", "_cache_to", "_ivs")
    HORIZON_DAYS = 9

    def __init__(self, zone: ZoneInfo, windows: Sequence[HourWindow],
                 changes: Sequence[HoursChange] = ()) -> None:
        self.zone = zone
        self.windows = tuple(windows)
        self.changes = tuple(changes)
        self._cache_from: datetime | None = None
        self._cache_to: datetime | None = None
        self._ivs: list[tuple[datetime, datetime]] = []

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Merged UTC open intervals overlapping [start, end)."""
        d0 = start.astimezone(self.zone).date() - timedelta(days=1)
        d1 = end.astimezone(self.zone).date() + timedelta(days=1)
        out: list[tuple[datetime, datetime]] = []
        d = d0
        while d <= d1:
            for s, e in day_intervals(self.windows, self.changes, d):
                a, b = local_instant(self.zone, d, s), local_instant(self.zone, d, e)
                if b <= a:
                    continue  # wholly inside a DST gap
                if out and a <= out[-1][1]:
                    out[-1] = (out[-1][0], max(b, out[-1][1]))
                else:
                    out.append((a, b))
            d += timedelta(days=1)
        return [(a, b) for a, b in out if b > start and a < end]

    def state_at(self, now: datetime) -> tuple[bool, datetime | None]:
        """(open, boundary): open now and closing at boundary, or closed and opening then.

        ``boundary`` is None when the agent has no hours in the next week.
        """
        if self._cache_from is None or not (self._cache_from <= now < self._cache_to):  # type: ignore[operator]
            self._cache_from = now
            self._cache_to = now + timedelta(days=self.HORIZON_DAYS - 2)
            self._ivs = self.intervals(now - timedelta(days=1),
                                       now + timedelta(days=self.HORIZON_DAYS))
        for a, b in self._ivs:
            if b <= now:
                continue
            if a <= now:
                return True, b
            return False, a
        return False, None


def _zone_problem(zone_name: str, source: str, node: str) -> tuple[ZoneInfo | None, list[Problem]]:
    try:
        return load_zone(zone_name), []
    except ValueError as exc:
        return None, [Problem(source, node, "zone", str(exc), "zone-unknown")]


def validate_weekly(windows: Sequence[HourWindow], zone_name: str, policy: HoursPolicy, *,
                    source: str = "<hours>", node: str = "agent", field: str = "windows",
                    now: datetime | None = None, check_budget: bool = True) -> list[Problem]:
    """Every problem with a weekly pattern (order, length, overlap, budget, DST gaps).

    DST gaps are checked for each occurrence in the 53 weeks after ``now``
    (skipped when ``now`` is None, e.g. when a file is checked offline).
    """
    probs: list[Problem] = []
    zone, zp = _zone_problem(zone_name, source, node)
    probs += zp

    def bad(msg: str, code: str) -> None:
        probs.append(Problem(source, node, field, msg, code))

    for w in windows:
        if not (0 <= w.day <= 6 and 0 <= w.start <= DAY_MINUTES and 0 <= w.end <= DAY_MINUTES):
            bad(f"{w!r} is out of range (day 0-6, times 00:00-24:00)", "window-range")
        elif w.end <= w.start:
            bad(f"{w}: end is not after start (windows cannot cross midnight; "
                "split at 24:00)", "window-order")
        elif w.minutes < policy.min_window_minutes:
            bad(f"{w}: {w.minutes} min is shorter than the minimum "
                f"{policy.min_window_minutes} min", "window-short")
    ordered = sorted((w for w in windows if w.end > w.start), key=lambda w: (w.day, w.start))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.day == b.day and b.start < a.end:
            bad(f"{a} overlaps {b}", "window-overlap")
    if check_budget:
        total = sum(w.minutes for w in ordered) / 60
        if total > policy.max_weekly_hours:
            bad(f"{total:g} h a week is over the maximum of {policy.max_weekly_hours:g} h",
                "budget-over")
        elif total < policy.min_weekly_hours:
            bad(f"{total:g} h a week is under the minimum of {policy.min_weekly_hours:g} h",
                "budget-under")
    if zone is not None and now is not None:
        check_aware(now)
        start_local = now.astimezone(zone).date()
        for w in ordered:
            first = start_local + timedelta(days=(w.day - start_local.weekday()) % 7)
            for k in range(53):
                d = first + timedelta(weeks=k)
                hit = next((m for m in (w.start, w.end) if nonexistent(zone, d, m)), None)
                if hit is not None:
                    bad(f"{w}: {format_hhmm(hit)} does not exist in {zone_name} on "
                        f"{d.isoformat()} (clocks go forward)", "time-nonexistent")
                    break
    return probs


def validate_change(change: HoursChange, windows: Sequence[HourWindow],
                    changes: Sequence[HoursChange], zone_name: str, policy: HoursPolicy,
                    now: datetime, *, source: str = "<hours>",
                    node: str = "agent") -> list[Problem]:
    """Problems with one dated change: order, length, gaps, notice, overlap, week budget."""
    check_aware(now)
    probs: list[Problem] = []
    zone, zp = _zone_problem(zone_name, source, node)
    probs += zp

    def bad(msg: str, code: str) -> None:
        probs.append(Problem(source, node, change.kind, msg, code))

    if not (0 <= change.start < change.end <= DAY_MINUTES):
        bad(f"{change}: end is not after start (or out of 00:00-24:00)", "window-order")
        return probs
    if change.kind == "add" and change.end - change.start < policy.min_window_minutes:
        bad(f"{change}: shorter than the minimum {policy.min_window_minutes} min", "window-short")
    if zone is None:
        return probs
    for m in (change.start, change.end):
        if nonexistent(zone, change.date, m):
            bad(f"{change}: {format_hhmm(m)} does not exist in {zone_name} on that date "
                "(clocks go forward)", "time-nonexistent")
    starts = local_instant(zone, change.date, change.start)
    earliest = now + timedelta(hours=policy.notice_hours)
    if starts < earliest:
        bad(f"{change}: starts {starts.isoformat()}, changes need {policy.notice_hours:g} h "
            f"notice (earliest {earliest.astimezone(zone).isoformat(timespec='minutes')})",
            "notice")
    current = day_intervals(windows, changes, change.date)
    if change.kind == "add":
        if any(s < change.end and change.start < e for s, e in current):
            bad(f"{change}: overlaps hours already signed up that day "
                f"({', '.join(format_hhmm(s) + '-' + format_hhmm(e) for s, e in current)})",
                "window-overlap")
        monday = change.date - timedelta(days=change.date.weekday())
        total = (week_minutes(windows, changes, monday) + change.end - change.start) / 60
        if total > policy.max_weekly_hours:
            bad(f"{change}: the week of {monday.isoformat()} would have {total:g} h, over the "
                f"maximum of {policy.max_weekly_hours:g} h", "budget-over")
    elif not any(s < change.end and change.start < e for s, e in current):
        bad(f"{change}: no signed-up hours to cancel in that time", "cancel-nothing")
    return probs
