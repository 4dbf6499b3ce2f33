"""The supervisor desk, and the agent's raised hand.

Pages (server-rendered, Jinja2) and their event streams (server-sent events via
sse-starlette, swapped in by htmx's sse extension, as the agent portal's):

- ``/supervisor`` (role supervisor or admin): the raised hands with the call each
  is about (queue, intent, language, how long the caller waited, the agent's state),
  and every agent with their state and live call; ``/supervisor/events`` sends the
  two fragments again when they change. Buttons: pick up a hand, reply in text,
  lower it; listen / whisper / barge on an agent's live call (rung on the
  supervisor's own endpoint, ``dialplans/supervisors.yaml``); end a break or a
  wrap-up, or put an agent on break. A call links to its record page
  ``/supervisor/calls/{call_id}``.
- ``/agent/hand/events``: the agent's own hand (raised, picked up by whom, the
  reply), for the portal's "Raise hand" panel.

JSON API (session + CSRF as every ``/api`` change, `web.api`):

- ``POST /api/hand`` ``{"text"}`` (agent): raise a hand, about the agent's current
  call if any; ``GET /api/hand``: the agent's open hand; ``DELETE /api/hand``: lower it.
- ``GET /api/desk``: what the desk shows; ``POST /api/desk/hands/{id}/pick-up``,
  ``.../reply`` ``{"text"}``, ``.../lower``;
  ``POST /api/desk/supervise`` ``{"agent", "call", "mode"}`` (listen|whisper|barge):
  written to the store's ``supervise_requests`` feed, carried out by the engine
  (voice/supervise.py), which checks it again against the live call;
  ``POST /api/desk/agents/{agent_id}/state`` ``{"state", "reason"}``: an agent's
  state set by a supervisor (``homeline.agent_api.request_agent_state``, the reason
  saying who).
- ``GET /api/desk/phone``: what the desk's phone in the page (web/static/phone.js,
  as the agent's) registers with, for a supervisor whose own endpoint is ``phone:
  webrtc``: that supervisor's credentials only, never another's (403 for an agent;
  404 for a supervisor whose phone is udp/tls: that password never reaches a browser).

Every action that concerns a call is also a ``supervisor`` call event (who, what,
when) in that call's record; the engine records the listen/whisper/barge itself.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from homeline.agent_api import UnknownAgentError, request_agent_state
from routing.snapshot import RouterSnapshot, to_datetime
from store import AGENT_STATE_ACTIONS, StoreError
from store.desk import HAND_TEXT_MAX, SUPERVISE_MODES, DeskStore, Hand
from web.api import Call, _endpoint, parse_object
from web.auth import Principal
from web.context import WebContext
from web.errors import ApiError
from web.events import change_stream, ended_stream
from web.portal import AGENT_PHASES
from web.vendor import SETUP_HINT, missing_vendor_files

__all__ = ["desk_routes", "desk_view", "hand_view", "SUPERVISOR_ROLES"]

log = logging.getLogger("homeline.web.desk")

SUPERVISOR_ROLES = ("supervisor", "admin")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
_LABELS = {"on_call": "on a call", "wrap_up": "wrap-up", "reserved": "ringing",
           "missed": "missed an offer"}


def _desk_store(web: WebContext) -> DeskStore:
    """The store's desk tables (`store.desk.DeskTables`, mixed into the SQLite store)."""
    return cast(DeskStore, web.store)


def _ts(t: datetime | None) -> float | None:
    return t.timestamp() if t is not None else None


# ------------------------------------------------------------------ what the desk shows

def _agents(web: WebContext, snap: RouterSnapshot | None, now: float) -> list[dict[str, Any]]:
    states = {a.agent_id: a for a in snap.agents} if snap else {}
    calls = {c.agent: c for c in snap.calls if c.agent and c.phase in AGENT_PHASES
             and c.channel == "voice"} \
        if snap else {}
    # the last listen/whisper/barge asked on each live call (the engine's call events)
    events = web.store.call_events([c.call_id for c in calls.values()]) if calls else {}
    supervised: dict[str, dict[str, Any]] = {}
    for call_id, evs in events.items():
        for ev in evs:
            if ev.event == "supervisor" and ev.data.get("action") in SUPERVISE_MODES:
                supervised[call_id] = {"mode": ev.data["action"], "by": ev.data.get("by"),
                                       "result": ev.data.get("result"),
                                       "at": ev.at.isoformat(timespec="seconds")}
    out = []
    for agent in web.directory.agents:
        a = states.get(agent.id)
        c = calls.get(agent.id)
        call = None
        if c is not None:
            answered = c.answered_at or None
            call = {"call_id": c.call_id, "phase": c.phase, "queue": c.queue,
                    "caller": c.arrival.caller or None, "intent": c.arrival.intent or None,
                    "language": c.arrival.language, "arrived": c.arrived,
                    "answered_at": answered,
                    "waited_s": (answered or now) - c.arrived,
                    "supervised": supervised.get(c.call_id)}
        out.append({"id": agent.id, "name": agent.name or agent.id,
                    "state": a.state if a else None,
                    "label": _LABELS.get(a.state, a.state) if a else "unknown",
                    "since": a.since if a else None,
                    "registered": a.registered if a else False,
                    "pending_break": a.pending_break if a else None, "call": call})
    return out


def _hand_json(web: WebContext, hand: Hand, agents: dict[str, dict[str, Any]],
               now: float) -> dict[str, Any]:
    agent = agents.get(hand.agent_id, {})
    about = None
    if hand.call_id:
        live = agent.get("call")
        if live is not None and live["call_id"] == hand.call_id:
            about = {**live, "live": True}
        else:
            rec = web.store.call_record(hand.call_id)
            arrived = _ts(rec.queued_at or rec.arrived_at) if rec else None
            answered = _ts(rec.answered_at) if rec else None
            about = {"call_id": hand.call_id, "live": False,
                     "queue": rec.queue_id if rec else None,
                     "intent": rec.intent if rec else None,
                     "language": rec.language if rec else None,
                     "caller": rec.caller if rec else None,
                     "waited_s": (answered - arrived) if arrived and answered else None}
    return {"id": hand.id, "agent": hand.agent_id, "agent_name": agent.get("name"),
            "agent_state": agent.get("label", "unknown"), "text": hand.text,
            "raised_at": hand.raised_at.isoformat(), "raised": hand.raised_at.timestamp(),
            "raised_s": now - hand.raised_at.timestamp(),
            "picked_by": hand.picked_by, "reply": hand.reply, "call": about}


def desk_view(web: WebContext) -> dict[str, Any]:
    """Hands, agents, waiting calls (store I/O: call from a worker thread)."""
    snap = web.store.load_router_snapshot()
    now = web.now().timestamp()
    agents = _agents(web, snap, now)
    by_id = {a["id"]: a for a in agents}
    hands = [_hand_json(web, h, by_id, now) for h in _desk_store(web).hands()]
    waiting = [c for c in snap.calls if c.phase == "waiting"] if snap else []
    return {"hands": hands, "agents": agents,
            "waiting": {"calls": len(waiting),
                        "longest_s": max((now - c.arrived for c in waiting), default=0.0)},
            "as_of": to_datetime(snap.as_of).isoformat() if snap else None,
            "supervisors": list(web.settings.supervisors)}


def hand_view(web: WebContext, agent_id: str) -> dict[str, Any]:
    """The agent's own open hand (or None)."""
    hands = _desk_store(web).hands(agent_id=agent_id)
    if not hands:
        return {"hand": None}
    h = hands[-1]
    return {"hand": {"id": h.id, "text": h.text, "raised_at": h.raised_at.isoformat(),
                     "call_id": h.call_id, "picked_by": h.picked_by,
                     "picked_at": h.picked_at.isoformat() if h.picked_at else None,
                     "reply": h.reply}}


# ------------------------------------------------------------------ API handlers

def _supervisor(call: Call) -> Principal:
    p = call.who
    if p.role not in SUPERVISOR_ROLES:
        raise ApiError(403, f"the supervisor desk is for supervisors and admins (you are "
                            f"{p.name!r}, role {p.role})")
    return p


def _own_agent(web: WebContext, call: Call) -> str:
    p = call.who
    if p.agent_id is None or p.agent_id not in web.agent_ids():
        raise ApiError(403, f"only an agent raises a hand (you are {p.name!r}, role {p.role})")
    return p.agent_id


def _text(data: dict[str, Any], key: str) -> str:
    value = str(data.get(key, "")).strip()
    if len(value) > HAND_TEXT_MAX:
        raise ApiError.bad_field(key, f"{len(value)} characters, at most {HAND_TEXT_MAX}")
    return value


def _current_call_of(web: WebContext, agent_id: str) -> str | None:
    snap = web.store.load_router_snapshot()
    if snap is None:
        return None
    c = next((x for x in snap.calls if x.agent == agent_id and x.phase in AGENT_PHASES
              and x.channel == "voice"), None)
    return c.call_id if c is not None else None


def _call_event(web: WebContext, call_id: str | None, agent_id: str | None,
                data: dict[str, Any]) -> None:
    if call_id:
        web.store.add_call_event(call_id, web.now(), "supervisor", agent_id, data)


def raise_hand(web: WebContext, call: Call) -> Response:
    agent_id = _own_agent(web, call)
    data = parse_object(call, {"text": str}, optional=frozenset({"text"}))
    text = _text(data, "text")
    hand = _desk_store(web).raise_hand(agent_id, _current_call_of(web, agent_id), text,
                                       web.now())
    log.info("agent %s raised a hand (#%d, call %s)", agent_id, hand.id, hand.call_id)
    _call_event(web, hand.call_id, agent_id, {"action": "hand-raised", "by": agent_id,
                                              "hand": hand.id})
    return JSONResponse(hand_view(web, agent_id), status_code=201)


def my_hand(web: WebContext, call: Call) -> Response:
    return JSONResponse(hand_view(web, _own_agent(web, call)))


def lower_my_hand(web: WebContext, call: Call) -> Response:
    agent_id = _own_agent(web, call)
    for h in _desk_store(web).hands(agent_id=agent_id):
        _desk_store(web).lower_hand(h.id, agent_id, web.now())
    return JSONResponse(hand_view(web, agent_id))


def get_desk(web: WebContext, call: Call) -> Response:
    _supervisor(call)
    return JSONResponse(desk_view(web))


def _hand_of(web: WebContext, call: Call) -> Hand:
    raw = str(call.request.path_params["hand_id"])
    hand = _desk_store(web).hand(int(raw)) if raw.isdigit() else None
    if hand is None:
        raise ApiError(404, f"no hand {raw!r}")
    if not hand.open:
        raise ApiError(409, f"hand {hand.id} was lowered already (by {hand.lowered_by})")
    return hand


def pick_up(web: WebContext, call: Call) -> Response:
    p = _supervisor(call)
    hand = _desk_store(web).pick_up_hand(_hand_of(web, call).id, p.name, web.now())
    _call_event(web, hand.call_id, hand.agent_id, {"action": "hand-picked-up", "by": p.name,
                                                   "hand": hand.id})
    return JSONResponse({"hand": hand.id, "picked_by": hand.picked_by})


def reply(web: WebContext, call: Call) -> Response:
    p = _supervisor(call)
    hand = _hand_of(web, call)
    text = _text(parse_object(call, {"text": str}), "text")
    if not text:
        raise ApiError.bad_field("text", "empty")
    hand = _desk_store(web).reply_to_hand(hand.id, p.name, text, web.now())
    _call_event(web, hand.call_id, hand.agent_id, {"action": "hand-replied", "by": p.name,
                                                   "hand": hand.id})
    return JSONResponse({"hand": hand.id, "picked_by": hand.picked_by, "reply": hand.reply})


def lower(web: WebContext, call: Call) -> Response:
    p = _supervisor(call)
    hand = _desk_store(web).lower_hand(_hand_of(web, call).id, p.name, web.now())
    return JSONResponse({"hand": hand.id, "lowered_by": hand.lowered_by})


def supervise(web: WebContext, call: Call) -> Response:
    p = _supervisor(call)
    data = parse_object(call, {"agent": str, "call": str, "mode": str})
    if data["mode"] not in SUPERVISE_MODES:
        raise ApiError.bad_field("mode", f"{data['mode']!r} is not one of "
                                         f"{', '.join(SUPERVISE_MODES)}")
    if p.name not in web.settings.supervisors:
        raise ApiError(409, f"{p.name!r} has no phone of their own to be rung on: add them "
                            "to dialplans/supervisors.yaml (and `homeline asterisk up`)")
    if data["agent"] not in web.agent_ids():
        raise ApiError(404, f"unknown agent {data['agent']!r}")
    if _current_call_of(web, data["agent"]) != data["call"]:
        raise ApiError(409, f"call {data['call']!r} is not {data['agent']}'s call now")
    seq = _desk_store(web).request_supervision(p.name, data["agent"], data["call"],
                                               data["mode"], web.now())
    log.info("supervisor %s asked to %s on %s's call %s", p.name, data["mode"], data["agent"],
             data["call"])
    return JSONResponse({"seq": seq, "mode": data["mode"], "agent": data["agent"],
                         "call": data["call"], "ringing": f"PJSIP/{p.name}",
                         "applied": "by a running engine, from the store"}, status_code=202)


def _web_phone_password(web: WebContext, user: str) -> str | None:
    """The SIP password of ``user``'s own WebRTC supervisor endpoint, else None."""
    phone = web.settings.phone
    return phone.supervisor_credentials(user) if phone is not None else None


def my_phone(web: WebContext, call: Call) -> Response:
    p = _supervisor(call)
    phone = web.settings.phone
    password = _web_phone_password(web, p.name)
    if phone is None or password is None:
        raise ApiError(404, f"{p.name!r} has no WebRTC phone of their own (set phone: "
                            f"webrtc for {p.name} in dialplans/supervisors.yaml)")
    return JSONResponse(phone.registration(p.name, password))


def set_agent_state(web: WebContext, call: Call) -> Response:
    p = _supervisor(call)
    agent_id = str(call.request.path_params["agent_id"])
    data = parse_object(call, {"state": str, "reason": str}, optional=frozenset({"reason"}))
    if data["state"] not in AGENT_STATE_ACTIONS:
        raise ApiError.bad_field("state", f"{data['state']!r} is not one of "
                                          f"{', '.join(AGENT_STATE_ACTIONS)}")
    reason = _text(data, "reason")
    why = f"set by {p.role} {p.name}" + (f": {reason}" if reason else "")
    try:
        req = request_agent_state(web.store, web.directory, agent_id, data["state"], web.now(),
                                  why)
    except UnknownAgentError as exc:
        raise ApiError(404, str(exc)) from exc
    log.info("%s %s set agent %s: %s", p.role, p.name, agent_id, data["state"])
    _call_event(web, _current_call_of(web, agent_id), agent_id,
                {"action": "agent-state", "state": data["state"], "by": p.name})
    return JSONResponse({"agent": agent_id, "state": req.action, "reason": req.why,
                         "seq": req.seq, "by": p.name}, status_code=202)


# ------------------------------------------------------------------ routes

def _guard_store(handler: Callable[[WebContext, Call], Response]
                 ) -> Callable[[WebContext, Call], Response]:
    def run(web: WebContext, call: Call) -> Response:
        try:
            return handler(web, call)
        except StoreError as exc:
            raise ApiError(409, str(exc)) from exc
    return run


def desk_routes(web: WebContext) -> list[Route]:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    vendor_missing = missing_vendor_files(web.settings.vendor_dir)

    def e(handler: Callable[[WebContext, Call], Response]) -> Any:
        return _endpoint(web, _guard_store(handler))

    def base(p: Principal, title: str) -> dict[str, Any]:
        return web.page(p, title, "desk", vendor_missing=vendor_missing,
                        setup_hint=SETUP_HINT)

    def fragments(request: Request) -> dict[str, str] | None:
        if web.principal(request, touch=False) is None:
            return None
        view = desk_view(web)
        mine = request.scope.get("desk_user", "")
        ctx = {**view, "me": mine, "has_phone": mine in web.settings.supervisors}
        return {"hands": templates.get_template("_desk_hands.html").render(ctx),
                "agents": templates.get_template("_desk_agents.html").render(ctx)}

    async def desk_page(request: Request) -> Response:
        p = await run_in_threadpool(web.principal, request)
        if p is None:
            return RedirectResponse("/login", status_code=303)
        ctx = base(p, "Supervisor desk")
        if p.role not in SUPERVISOR_ROLES:
            return templates.TemplateResponse(request, "not_supervisor.html", ctx,
                                              status_code=403)
        request.scope["desk_user"] = p.name
        frags = await run_in_threadpool(fragments, request)
        assert frags is not None
        ctx |= {"hands_html": frags["hands"], "agents_html": frags["agents"],
                "has_phone": p.name in web.settings.supervisors,
                "web_phone": await run_in_threadpool(_web_phone_password, web, p.name)
                is not None,
                "break_reasons": ("short break", "coaching", "other")}
        return templates.TemplateResponse(request, "desk.html", ctx)

    def stream(request: Request, make: Callable[[Request], dict[str, str] | None]
               ) -> Response:
        return change_stream(lambda: make(request), web.settings.events_poll_s)

    async def desk_events(request: Request) -> Response:
        p = await run_in_threadpool(web.principal, request, touch=False)
        if p is None or p.role not in SUPERVISOR_ROLES:
            return ended_stream()
        request.scope["desk_user"] = p.name
        return stream(request, fragments)

    async def hand_events(request: Request) -> Response:
        p = await run_in_threadpool(web.principal, request, touch=False)
        if p is None or p.agent_id is None:
            return ended_stream()
        agent_id = p.agent_id

        def hand(request: Request) -> dict[str, str] | None:
            if web.principal(request, touch=False) is None:
                return None
            return {"hand": templates.get_template("_hand.html").render(
                hand_view(web, agent_id))}
        return stream(request, hand)

    return [
        Route("/supervisor", desk_page, methods=["GET"]),
        Route("/supervisor/events", desk_events, methods=["GET"]),
        Route("/agent/hand/events", hand_events, methods=["GET"]),
        Route("/api/hand", e(raise_hand), methods=["POST"]),
        Route("/api/hand", e(my_hand), methods=["GET"]),
        Route("/api/hand", e(lower_my_hand), methods=["DELETE"]),
        Route("/api/desk", e(get_desk), methods=["GET"]),
        Route("/api/desk/hands/{hand_id}/pick-up", e(pick_up), methods=["POST"]),
        Route("/api/desk/hands/{hand_id}/reply", e(reply), methods=["POST"]),
        Route("/api/desk/hands/{hand_id}/lower", e(lower), methods=["POST"]),
        Route("/api/desk/supervise", e(supervise), methods=["POST"]),
        Route("/api/desk/agents/{agent_id}/state", e(set_agent_state), methods=["POST"]),
        Route("/api/desk/phone", e(my_phone), methods=["GET"]),
    ]
