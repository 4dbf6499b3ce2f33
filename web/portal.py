"""What the agent portal shows, read from the store: the agent's state, the current
caller, the week of hours, the open staffing slots and the fairness figure.

Plain functions over a `WebContext` (store I/O: call them from a worker thread),
used by the pages and by the JSON API alike. They compute nothing of their own:
hours come from `routing.hours`, open slots from `routing.staffing` (what
``homeline staffing week`` prints), fairness from `routing.fairness`.

Only the fields listed here leave the server. Caller data is the arrival's
``data`` (what the flow passed to the router) and the record's ``variables``
(the flow's ``record_variables``): a ``secure`` value reaches neither (the flow
loader refuses a secure variable in ``record_variables``; the engine keeps only
those), so no page can show one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from routing.fairness import HandledCall, group_fairness
from routing.hours import HoursView, show_hours
from routing.model import Agent
from routing.snapshot import to_datetime
from routing.staffing import ForecastError, open_slots, read_forecast, week_staffing
from routing.windows import DAYS, HourWindow, Schedule, day_intervals, format_hhmm, load_zone
from store import CallRecord
from web.context import WebContext

__all__ = ["current_call", "caller_context", "week_view", "staffing_slots", "fairness_figure",
           "AGENT_PHASES", "FAIRNESS_DAYS", "HISTORY_DAYS"]

# the phases of a router call that belong to an agent (routing.snapshot.CallSnapshot)
AGENT_PHASES = ("ringing", "connected")
FAIRNESS_DAYS = 28
HISTORY_DAYS = 90
MAX_PREVIOUS = 10
_EPOCH = to_datetime(0)


def _iso(ts: float | None) -> str | None:
    return to_datetime(ts).isoformat() if ts else None


def current_call(web: WebContext, agent_id: str) -> dict[str, Any]:
    """The agent's state and call as the engine last saved them (``GET .../current-call``)."""
    snap = web.store.load_router_snapshot()
    state = None
    live = None
    if snap is not None:
        a = next((x for x in snap.agents if x.agent_id == agent_id), None)
        if a is not None:
            state = {"state": a.state, "since": to_datetime(a.since).isoformat()}
        c = next((x for x in snap.calls if x.agent == agent_id and x.phase in AGENT_PHASES
                  and x.channel == "voice"),  # a chat is no call (web/chatpanel.py)
                 None)
        if c is not None:
            rec = web.store.call_record(c.call_id)
            arrival = c.arrival
            live = {"call_id": c.call_id, "phase": c.phase, "queue": c.queue,
                    "arrived_at": to_datetime(c.arrived).isoformat(),
                    "answered_at": _iso(c.answered_at),
                    "caller": arrival.caller or (rec.caller if rec else None) or None,
                    "intent": arrival.intent or None, "language": arrival.language,
                    "data": dict(arrival.data),
                    "variables": dict(rec.variables or {}) if rec else {}}
    return {"agent": agent_id, "state": state, "call": live,
            "as_of": to_datetime(snap.as_of).isoformat() if snap else None}


def _previous(records: Sequence[CallRecord], caller: str, call_id: str) -> list[dict[str, Any]]:
    mine = [r for r in records if r.caller == caller and r.call_id != call_id]
    mine.sort(key=lambda r: (r.arrived_at or r.queued_at or r.ended_at or _EPOCH), reverse=True)
    out = []
    for r in mine[:MAX_PREVIOUS]:
        talk = ((r.ended_at - r.answered_at).total_seconds()
                if r.answered_at and r.ended_at else None)
        out.append({"call_id": r.call_id, "at": r.arrived_at or r.queued_at, "queue": r.queue_id,
                    "intent": r.intent, "agent": r.agent_id, "outcome": r.outcome,
                    "talk_s": talk})
    return out


def caller_context(web: WebContext, agent_id: str) -> dict[str, Any]:
    """`current_call` plus what the page shows beside it: the flow and the path the
    caller took through it (the engine's ``ivr-ended`` event), and the caller's
    previous contacts (the store's call records of the last `HISTORY_DAYS` days)."""
    view = current_call(web, agent_id)
    call = view["call"]
    view["flow"] = None
    view["path"] = []
    view["previous"] = []
    if call is None:
        return view
    rec = web.store.call_record(call["call_id"])
    if rec is not None and rec.flow:
        view["flow"] = f"{rec.flow} {rec.flow_version or ''}".strip()
    events = web.store.call_events([call["call_id"]]).get(call["call_id"], [])
    for ev in events:
        if ev.event == "ivr-ended" and isinstance(ev.data.get("path"), list):
            view["path"] = [str(node) for node in ev.data["path"]]
    if call["caller"]:
        since = web.now() - timedelta(days=HISTORY_DAYS)
        view["previous"] = _previous(web.store.calls(since=since), call["caller"],
                                     call["call_id"])
    return view


@dataclass(frozen=True, slots=True)
class DayView:
    day: date
    name: str
    spans: tuple[str, ...]  # "18:00-21:00", in the agent's zone
    today: bool


def week_view(web: WebContext, agent_id: str) -> tuple[HoursView, list[DayView]]:
    """The agent's hours (as ``GET .../hours``) and this local week day by day,
    one-off changes included."""
    now = web.now()
    hours = show_hours(web.store, web.directory, agent_id, now)
    local = now.astimezone(load_zone(hours.zone)).date()
    monday = local - timedelta(days=local.weekday())
    days = []
    for i in range(7):
        d = monday + timedelta(days=i)
        spans = tuple(f"{format_hhmm(s)}-{format_hhmm(e)}"
                      for s, e in day_intervals(hours.windows, hours.changes, d))
        days.append(DayView(d, DAYS[i], spans, d == local))
    return hours, days


def _local_window(window: HourWindow, monday: date, zone: str, agent_zone: str
                  ) -> tuple[str, str | None]:
    """A window of the forecast's zone in the agent's zone: its label, and the
    weekly window string to sign up with (None when it crosses midnight there)."""
    fz, az = load_zone(zone), load_zone(agent_zone)
    start = datetime.combine(monday + timedelta(days=window.day), time(), tzinfo=fz)
    a = (start + timedelta(minutes=window.start)).astimezone(az)
    b = (start + timedelta(minutes=window.end)).astimezone(az)
    end_min = b.hour * 60 + b.minute
    if b.date() != a.date():
        if b.date() == a.date() + timedelta(days=1) and end_min == 0:
            end_min = 24 * 60
        else:
            return f"{DAYS[a.weekday()]} {a:%H:%M} - {DAYS[b.weekday()]} {b:%H:%M}", None
    text = f"{DAYS[a.weekday()]} {a:%H:%M}-{format_hhmm(end_min)}"
    return text, text


def staffing_slots(web: WebContext, agent: Agent) -> dict[str, Any]:
    """The open slots of next week's staffing plan for the agent's skills, as
    ``homeline staffing week --forecast F`` computes them (same functions)."""
    forecast = web.settings.forecast
    if forecast is None:
        return {"available": False, "why": "no staffing forecast is configured "
                "(homeline serve --forecast CSV)", "slots": []}
    try:
        rows = read_forecast(forecast)
    except ForecastError as exc:
        return {"available": False, "why": f"the forecast cannot be read: {exc}", "slots": []}
    directory = web.store.apply_hours(web.directory)
    day = web.now().date() + timedelta(days=7)  # as the CLI: next week
    monday = day - timedelta(days=day.weekday())
    zone = directory.policy.week_zone
    plan = week_staffing(directory, rows, monday, zone=zone)
    skills = set(agent.skills)
    slots = []
    for s in open_slots(plan):
        if s.skill not in skills:
            continue
        label, window = _local_window(s.window, monday, zone, agent.zone)
        slots.append({"skill": s.skill, "window": str(s.window), "zone": zone,
                      "local": label, "sign_up": window, "agents": s.agents})
    return {"available": True, "why": "", "week_of": monday.isoformat(), "zone": zone,
            "slots": slots}


def fairness_figure(web: WebContext, agent_id: str) -> dict[str, Any]:
    """Handled minutes per signed-up hour over the last `FAIRNESS_DAYS` days, the
    agent's against the team's mean (`routing.fairness.group_fairness`).

    Handled time is from the store's call records (answered to ended, by agent);
    signed-up time from each agent's hours as they are now (the store keeps no
    history of hours), so it is an estimate; the router's own running figure
    (``handled_s`` this week) comes from the snapshot a running engine saved.
    """
    now = web.now()
    lo = now - timedelta(days=FAIRNESS_DAYS)
    directory = web.store.apply_hours(web.directory)
    calls = [HandledCall("all", r.agent_id, r.answered_at.timestamp(), r.ended_at.timestamp())
             for r in web.store.calls(since=lo)
             if r.agent_id and r.answered_at and r.ended_at]
    signed = {}
    for a in directory.agents:
        sched = Schedule(load_zone(a.zone), a.windows, a.changes)
        signed[a.id] = [(s.timestamp(), e.timestamp()) for s, e in sched.intervals(lo, now)]
    g = group_fairness("all", signed, calls, lo.timestamp(), now.timestamp())
    rates = g.hourly_rates()
    mine = rates.get(agent_id)
    team = sum(rates.values()) / len(rates) if rates else None
    snap = web.store.load_router_snapshot()
    week_s = None
    if snap is not None:
        a_snap = next((x for x in snap.agents if x.agent_id == agent_id), None)
        week_s = a_snap.handled_s if a_snap is not None else None
    return {"days": FAIRNESS_DAYS, "calls": len(calls),
            "handled_min": g.handled_s.get(agent_id, 0.0) / 60,
            "signed_h": g.signed_h.get(agent_id, 0.0),
            "per_hour": mine, "team_per_hour": team,
            "router_week_min": week_s / 60 if week_s is not None else None}
