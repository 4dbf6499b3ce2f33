"""The wallboard (supervisors and admins): live queues, charts of the day, staffing.

- ``/wallboard``: the page (large type for a wall screen; a laptop too).
- ``/wallboard/events``: server-sent events (sse-starlette). Every
  `LIVE_POLL_S` the stream reads the router state the engine saved to the store
  (`Store.load_router_snapshot`: a few rows) and sends a ``live`` event when
  what the board shows changed: waiting calls per queue (with their arrival, so
  the page counts the waits on by itself), agents by state, and today's service
  level against the target (recomputed from the call records only when the
  router state moved (at most every `FIGURES_MIN_S`), or every `FIGURES_EVERY_S`),
  with today's text figures per channel (``channels``: a row per text channel a
  queue serves: chats open, today's, accepted, abandoned, first response, handle).
  The feed comes from the store, not from the engine's memory: the app may run
  inside the engine or in ``homeline serve``, and several engines may share a store.
- ``/api/wallboard/day``: today in 15-minute intervals (`routing.stats.day_series`):
  service level and offered calls, the most calls waiting at once.
- ``/api/wallboard/staffing``: this week per 30-minute interval and skill, agents
  needed by Erlang C (`routing.staffing.week_staffing`, the forecast of
  ``--forecast CSV``) against agents signed up, and the open slots.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from routing.model import TEXT_CHANNELS
from routing.staffing import INTERVAL_S, ForecastError, open_slots, read_forecast, week_staffing
from routing.stats import day_series, start_of_day
from routing.windows import DAYS, format_hhmm, load_zone
from store.reports import collect_stats
from web.api import Call, _endpoint
from web.context import WebContext
from web.pages import TEMPLATES_DIR
from web.stats import SUPERVISOR_ROLES, require_supervisor
from web.vendor import SETUP_HINT, missing_vendor_files

__all__ = ["wallboard_routes", "live_view", "LIVE_POLL_S", "FIGURES_EVERY_S"]

LIVE_POLL_S = 0.25  # how often a stream looks at the store's router state
FIGURES_EVERY_S = 10.0  # today's figures at least this often, even with no change
FIGURES_MIN_S = 1.0  # and at most this often (a busy router changes many times a second)
SESSION_CHECK_S = 5.0  # how often a stream checks that its session still holds
DAY_STEP_S = 900.0


def live_view(web: WebContext, figures: dict[str, Any] | None) -> dict[str, Any]:
    """What the board shows now, from the saved router state (and ``figures``, today's
    `Stats.to_dict`). No caller numbers: a wall screen is seen by everyone."""
    snap = web.store.load_router_snapshot()
    queues: dict[str, dict[str, Any]] = {}
    for q in web.directory.queues:
        f = (figures or {}).get("queues", {}).get(q.id, {})
        queues[q.id] = {"name": q.name, "waiting": 0, "oldest_arrived": None,
                        "sl_target": q.sl_target, "sl_answer_s": q.sl_answer_s,
                        "service_level": f.get("service_level"), "offered": f.get("offered", 0),
                        "answered": f.get("answered", 0), "abandoned": f.get("abandoned", 0),
                        "asa_s": f.get("asa_s")}
    calls: list[dict[str, Any]] = []
    agents: dict[str, str] = {a.id: "offline" for a in web.directory.agents}
    saved_at = None
    if snap is not None:
        saved_at = snap.taken_at
        for a in snap.agents:
            if a.agent_id in agents:
                agents[a.agent_id] = a.state
        for c in sorted(snap.calls, key=lambda c: (c.arrived, c.call_id)):
            if c.phase not in ("waiting", "ringing"):
                continue
            calls.append({"call_id": c.call_id, "queue": c.queue, "phase": c.phase,
                          "agent": c.agent if c.phase == "ringing" else None,
                          "language": c.arrival.language, "intent": c.arrival.intent,
                          "arrived": c.arrived})
            qv = queues.get(c.queue)
            if qv is not None:
                qv["waiting"] += 1
                if qv["oldest_arrived"] is None or c.arrived < qv["oldest_arrived"]:
                    qv["oldest_arrived"] = c.arrived
    by_state: dict[str, int] = {}
    for st in agents.values():
        by_state[st] = by_state.get(st, 0) + 1
    # per queue: the agents with its skills (any skill level: expansion may reach them)
    for q in web.directory.queues:
        mine: dict[str, int] = {}
        for ag in web.directory.agents:
            if all(ag.skills.get(sk, 0) > 0 for sk in q.skills):
                mine[agents[ag.id]] = mine.get(agents[ag.id], 0) + 1
        queues[q.id]["agents_by_state"] = dict(sorted(mine.items()))
    total = (figures or {}).get("total", {})
    return {"queues": queues, "calls": calls, "agents": agents,
            "channels": _channels_view(web, figures),
            "agents_by_state": dict(sorted(by_state.items())),
            "total": {"service_level": total.get("service_level"),
                      "offered": total.get("offered", 0),
                      "waiting": len(calls),
                      "oldest_arrived": min((c["arrived"] for c in calls), default=None)},
            "router_saved_at": saved_at}


_CHANNEL_KEYS = ("open_now", "offered", "accepted", "abandoned", "first_response_avg_s",
                 "first_response_p90_s", "handle_avg_s")


def text_channels_served(web: WebContext) -> list[str]:
    """The text channels some queue serves (the board's rows per channel)."""
    served = {c for q in web.directory.queues for c in q.channels}
    return [c for c in TEXT_CHANNELS if c in served]


def _channels_view(web: WebContext, figures: dict[str, Any] | None) -> dict[str, Any]:
    """Today's text figures per channel (``Stats.chats``), for the rows per channel."""
    got = ((figures or {}).get("chats") or {}).get("channels", {})
    return {ch: {k: got.get(ch, {}).get(k, None if k.endswith("_s") else 0)
                 for k in _CHANNEL_KEYS} for ch in text_channels_served(web)}


def _today_figures(web: WebContext) -> dict[str, Any]:
    return collect_stats(web.store, web.directory, web.now()).to_dict()


def get_day(web: WebContext, call: Call) -> Response:
    require_supervisor(call)
    now = web.now()
    since = start_of_day(now, web.directory)
    records = web.store.calls(since=since - timedelta(hours=1))
    events = web.store.call_events([r.call_id for r in records])
    series = day_series(web.directory, records, events, since=since, now=now,
                        step_s=DAY_STEP_S)
    targets = sorted({q.sl_target for q in web.directory.queues})
    return JSONResponse({**series.to_dict(), "sl_targets": targets,
                         "zone": web.directory.policy.week_zone})


def get_staffing(web: WebContext, call: Call) -> Response:
    require_supervisor(call)
    forecast = web.settings.forecast
    if forecast is None:
        return JSONResponse({"available": False, "why": "no staffing forecast is configured "
                             "(--forecast CSV of homeline serve / engine run)"})
    try:
        rows = read_forecast(forecast)
    except ForecastError as exc:
        return JSONResponse({"available": False, "why": f"the forecast cannot be read: {exc}"})
    directory = web.store.apply_hours(web.directory)
    zone = directory.policy.week_zone
    today = web.now().astimezone(load_zone(zone)).date()
    monday = today - timedelta(days=today.weekday())
    plan = week_staffing(directory, rows, monday, zone=zone)
    per_day = 1440 // (INTERVAL_S // 60)
    labels = [f"{DAYS[i // per_day]} {format_hhmm((i % per_day) * 30)}"
              for i in range(7 * per_day)]
    skills: dict[str, dict[str, list[int | None]]] = {}
    for r in plan:
        s = skills.setdefault(r.skill, {"needed": [None] * len(labels),
                                        "signed_up": [None] * len(labels)})
        i = r.day * per_day + r.minute // 30
        s["needed"][i] = r.needed
        s["signed_up"][i] = r.signed_up
    slots = [{"skill": s.skill, "window": str(s.window), "agents": s.agents}
             for s in open_slots(plan)]
    return JSONResponse({"available": True, "week_of": monday.isoformat(), "zone": zone,
                         "labels": labels, "skills": dict(sorted(skills.items())),
                         "open_slots": slots})


def wallboard_routes(web: WebContext) -> list[Route]:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    vendor_missing = missing_vendor_files(web.settings.vendor_dir)

    async def page(request: Request) -> Response:
        p = await run_in_threadpool(web.principal, request)
        if p is None:
            return RedirectResponse("/login", status_code=303)
        ctx = {"title": "Wallboard", "nav": "wallboard", "user": p.user,
               "csrf": p.session.csrf, "agent_id": p.agent_id,
               "vendor_missing": vendor_missing, "setup_hint": SETUP_HINT,
               "idle_timeout_s": web.settings.idle_timeout_s,
               "allowed": p.role in SUPERVISOR_ROLES,
               "queues": web.directory.queues,
               "text_channels": text_channels_served(web)}
        return templates.TemplateResponse(request, "wallboard.html", ctx,
                                          status_code=200 if ctx["allowed"] else 403)

    async def events(request: Request) -> Response:
        p = await run_in_threadpool(web.principal, request, touch=False)

        async def refused() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(data="session ended or not a supervisor", event="ended")

        if p is None or p.role not in SUPERVISOR_ROLES:
            return EventSourceResponse(refused())

        async def stream() -> AsyncIterator[ServerSentEvent]:
            sent = None
            figures: dict[str, Any] | None = None
            figures_key: Any = object()
            figures_at = checked_at = time.monotonic()
            while True:
                mono = time.monotonic()
                if mono - checked_at >= SESSION_CHECK_S:
                    checked_at = mono
                    if await run_in_threadpool(web.principal, request, touch=False) is None:
                        yield ServerSentEvent(data="session ended", event="ended")
                        return
                view = await run_in_threadpool(live_view, web, figures)
                key = view["router_saved_at"]
                since = mono - figures_at
                if (key != figures_key and (figures is None or since >= FIGURES_MIN_S)
                        or since >= FIGURES_EVERY_S):
                    figures = await run_in_threadpool(_today_figures, web)
                    figures_key, figures_at = key, mono
                    view = await run_in_threadpool(live_view, web, figures)
                shown = json.dumps(view, sort_keys=True)
                if shown != sent:
                    sent = shown
                    payload = {**view, "now": web.now().timestamp()}
                    yield ServerSentEvent(data=json.dumps(payload), event="live")
                await asyncio.sleep(LIVE_POLL_S)

        return EventSourceResponse(stream(), ping=15)

    return [Route("/wallboard", page, methods=["GET"]),
            Route("/wallboard/events", events, methods=["GET"]),
            Route("/api/wallboard/day", _endpoint(web, get_day), methods=["GET"]),
            Route("/api/wallboard/staffing", _endpoint(web, get_staffing), methods=["GET"])]
