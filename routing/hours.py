"""Agents manage their own hours: the operations behind ``homeline agent hours``.

The same plain functions serve the CLI and (later) the web portal. Each one
validates against the directory's `HoursPolicy` (budget, minimum window length,
notice period, overlaps, DST gaps in the agent's zone), stores the result and
returns the `AgentHoursChanged` event to feed to a running router (an engine in
another process picks it up with ``Store.hours_events_since``). Refusals raise
`HoursError` listing every problem.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from adminfiles import Problem
from routing.directory import Directory
from routing.errors import HoursError
from routing.events import AgentHoursChanged
from routing.model import Agent
from routing.windows import (
    DAY_MINUTES,
    HoursChange,
    HourWindow,
    Schedule,
    check_aware,
    day_intervals,
    load_zone,
    parse_hhmm,
    validate_change,
    validate_weekly,
    week_minutes,
)

__all__ = ["HoursStore", "HoursView", "show_hours", "set_hours", "add_hours", "cancel_hours"]


class HoursStore(Protocol):
    """Where the hours are kept: what these functions need of a store.

    The routing core owns this small interface and never imports a store;
    `store.SqliteStore` (and any `store.Store`) has these methods.
    """

    def hours(self, agent_id: str
              ) -> tuple[tuple[HourWindow, ...], tuple[HoursChange, ...]] | None: ...

    def save_hours(self, agent_id: str, windows: Sequence[HourWindow],
                   changes: Sequence[HoursChange], now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class HoursView:
    agent_id: str
    zone: str
    windows: tuple[HourWindow, ...]
    changes: tuple[HoursChange, ...]
    weekly_hours: float
    this_week_hours: float  # this local week, one-off changes included
    source: str  # "store" or the directory file
    open_now: bool
    boundary: datetime | None  # closes at (open) or opens at (closed)

    def as_dict(self) -> dict[str, object]:
        """The view as JSON-ready values (``homeline agent hours --json``, the web API)."""
        return {"agent": self.agent_id, "zone": self.zone,
                "windows": [str(w) for w in self.windows],
                "changes": [str(c) for c in self.changes],
                "weekly_hours": self.weekly_hours, "this_week_hours": self.this_week_hours,
                "source": self.source, "open_now": self.open_now,
                "boundary": self.boundary.isoformat() if self.boundary else None}

    def lines(self) -> list[str]:
        out = [f"{self.agent_id} ({self.zone}), hours from {self.source}: "
               f"{self.weekly_hours:g} h a week, {self.this_week_hours:g} h this week"]
        out += [f"  {w}" for w in self.windows]
        out += [f"  {c}" for c in self.changes]
        if self.boundary is not None:
            local = self.boundary.astimezone(load_zone(self.zone))
            verb = "open now, closes" if self.open_now else "closed now, opens"
            out.append(f"  {verb} {local.strftime('%a %Y-%m-%d %H:%M %Z')}")
        else:
            out.append("  no hours in the coming week")
        return out


def _agent(directory: Directory, agent_id: str) -> Agent:
    try:
        return directory.agent(agent_id)
    except KeyError:
        known = ", ".join(a.id for a in directory.agents)
        raise HoursError([Problem(directory.source, agent_id, "id",
                                  f"unknown agent; known: {known}", "unknown-agent")]) from None


def _current(store: HoursStore, agent: Agent) -> tuple[tuple[HourWindow, ...],
                                                    tuple[HoursChange, ...], str]:
    h = store.hours(agent.id)
    if h is None:
        return agent.windows, agent.changes, ""
    return h[0], h[1], "store"


def show_hours(store: HoursStore, directory: Directory, agent_id: str, now: datetime) -> HoursView:
    check_aware(now)
    agent = _agent(directory, agent_id)
    windows, changes, src = _current(store, agent)
    zone = load_zone(agent.zone)
    is_open, boundary = Schedule(zone, windows, changes).state_at(now)
    local = now.astimezone(zone).date()
    monday = local - timedelta(days=local.weekday())
    weekly = sum(w.minutes for w in windows) / 60
    return HoursView(agent.id, agent.zone, windows, changes, weekly,
                     week_minutes(windows, changes, monday) / 60, src or directory.source,
                     is_open, boundary)


def _save(store: HoursStore, agent_id: str, windows: Sequence[HourWindow],
          changes: Sequence[HoursChange], now: datetime) -> AgentHoursChanged:
    store.save_hours(agent_id, windows, changes, now)
    return AgentHoursChanged(agent_id, tuple(windows), tuple(changes))


def _prune(changes: Sequence[HoursChange], today: date) -> list[HoursChange]:
    """Dated changes more than a week in the past no longer matter."""
    return [c for c in changes if c.date >= today - timedelta(days=7)]


def set_hours(store: HoursStore, directory: Directory, agent_id: str,
              windows: Sequence[str | HourWindow], now: datetime) -> AgentHoursChanged:
    """Replace the agent's weekly pattern (e.g. ``["Mon 18:00-21:00", "Sat 09:00-13:00"]``).

    Within the notice period nothing may change: the new pattern must give the
    same open times as the old one until ``now + notice``.
    """
    check_aware(now)
    agent = _agent(directory, agent_id)
    policy = directory.policy.hours
    src = "<hours>"
    probs: list[Problem] = []
    parsed: list[HourWindow] = []
    for i, w in enumerate(windows):
        if isinstance(w, HourWindow):
            parsed.append(w)
            continue
        try:
            parsed.append(HourWindow.parse(w))
        except ValueError as exc:
            probs.append(Problem(src, agent_id, f"windows[{i}]", str(exc), "window-format"))
    probs += validate_weekly(parsed, agent.zone, policy, source=src, node=agent_id, now=now)
    old_w, old_c, _ = _current(store, agent)
    today = now.astimezone(load_zone(agent.zone)).date()
    kept = _prune(old_c, today)
    if not probs:
        # one-off additions already agreed still count towards their week's budget
        for monday in sorted({c.date - timedelta(days=c.date.weekday()) for c in kept}):
            total = week_minutes(parsed, kept, monday) / 60
            if total > policy.max_weekly_hours:
                probs.append(Problem(src, agent_id, "windows",
                                     f"with the one-off hours already added, the week of "
                                     f"{monday.isoformat()} would have {total:g} h, over the "
                                     f"maximum of {policy.max_weekly_hours:g} h", "budget-over"))
    if not probs and policy.notice_hours > 0:
        zone = load_zone(agent.zone)
        until = now + timedelta(hours=policy.notice_hours)
        before = Schedule(zone, old_w, old_c).intervals(now, until)
        after = Schedule(zone, parsed, old_c).intervals(now, until)
        clip = [(max(a, now), min(b, until)) for a, b in before]
        clip2 = [(max(a, now), min(b, until)) for a, b in after]
        if clip != clip2:
            probs.append(Problem(src, agent_id, "windows",
                                 f"the new hours change what is signed up before "
                                 f"{until.astimezone(zone).isoformat(timespec='minutes')} "
                                 f"({policy.notice_hours:g} h notice); keep those hours or "
                                 "change them later", "notice"))
    if probs:
        raise HoursError(probs)
    return _save(store, agent_id, parsed, kept, now)


def _span(start: str | None, end: str | None) -> tuple[int, int]:
    s = parse_hhmm(start) if start else 0
    e = parse_hhmm(end) if end else DAY_MINUTES
    return s, e


def add_hours(store: HoursStore, directory: Directory, agent_id: str, day: date | str, start: str,
              end: str, now: datetime) -> AgentHoursChanged:
    """Add one-off hours on a local date (e.g. ``2026-12-05``, ``"14:00"``, ``"17:00"``)."""
    return _change(store, directory, agent_id, day, start, end, now, "add")


def cancel_hours(store: HoursStore, directory: Directory, agent_id: str, day: date | str,
                 start: str | None, end: str | None, now: datetime) -> AgentHoursChanged:
    """Cancel signed-up hours on a local date (the whole day when no times are given)."""
    return _change(store, directory, agent_id, day, start, end, now, "cancel")


def _change(store: HoursStore, directory: Directory, agent_id: str, day: date | str,
            start: str | None, end: str | None, now: datetime, kind: str) -> AgentHoursChanged:
    check_aware(now)
    agent = _agent(directory, agent_id)
    try:
        d = date.fromisoformat(day) if isinstance(day, str) else day
        s, e = _span(start, end)
    except ValueError as exc:
        raise HoursError([Problem("<hours>", agent_id, kind, str(exc), "change-format")]) from exc
    windows, changes, _ = _current(store, agent)
    if kind == "cancel" and start is None and end is None:
        ivs = day_intervals(windows, changes, d)
        if ivs:
            s, e = ivs[0][0], ivs[-1][1]
    change = HoursChange(d, s, e, "add" if kind == "add" else "cancel")
    probs = validate_change(change, windows, changes, agent.zone, directory.policy.hours, now,
                            node=agent_id)
    if probs:
        raise HoursError(probs)
    today = now.astimezone(load_zone(agent.zone)).date()
    return _save(store, agent_id, windows, [*_prune(changes, today), change], now)
