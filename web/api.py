"""The JSON API under ``/api/``: what the portal's pages (and tests) call.

An adapter only: hours go through `routing.hours` (the same validation and
``[codes]`` as ``homeline agent hours``), state through
`homeline.agent_api.request_agent_state` (as ``homeline agent state``); both
land in the store's change feed, which a running engine reads.

Every handler runs in Starlette's thread pool (the store and argon2 block);
refusals are `ApiError` values answered as JSON ``{"error": ...}``:
401 not logged in, 403 not yours (or CSRF), 400 a malformed body naming the
field, 404 an unknown agent, 415 not JSON, 422 hours the policy refuses (every
problem), 429 too many failed logins.
"""
from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from homeline.agent_api import UnknownAgentError, request_agent_state
from routing.errors import HoursError
from routing.hours import set_hours, show_hours
from store import AGENT_STATE_ACTIONS, User
from web.auth import MAX_PASSWORD_LENGTH, Principal, csrf_matches
from web.context import SESSION_KEY, WebContext
from web.errors import ApiError
from web.portal import current_call

__all__ = ["api_routes", "check_origin", "read_body"]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
MAX_REASON = 200
MAX_WINDOWS = 100


@dataclass(frozen=True, slots=True)
class Call:
    """One API request as a handler sees it."""

    request: Request
    body: bytes
    principal: Principal | None

    @property
    def who(self) -> Principal:
        assert self.principal is not None  # handlers with login=True only
        return self.principal


Handler = Callable[[WebContext, Call], Response]


def check_origin(request: Request) -> None:
    """Refuse a state-changing request a browser sent from another site.

    OWASP CSRF Prevention Cheat Sheet, "Verifying Origin with standard headers"
    and "Fetch Metadata headers": defence in depth beside the token. A request
    without these headers (not from a browser) passes to the token check.
    """
    if request.method not in UNSAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise ApiError(403, "cross-site request refused (Sec-Fetch-Site: "
                            f"{request.headers['sec-fetch-site']}); CSRF protection")
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        o = urlsplit(origin)
        if (o.scheme, o.netloc) != (request.url.scheme, host):
            raise ApiError(403, f"cross-origin request refused (Origin {origin!r} is not "
                                f"{request.url.scheme}://{host}); CSRF protection")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(web: WebContext, handler: Handler, *, login: bool = True
              ) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            check_origin(request)
            body = await read_body(request, web.settings.max_body_bytes)
            return await run_in_threadpool(_sync, web, handler, request, body, login)
        except ApiError as exc:
            return exc.response()
    return run


def _sync(web: WebContext, handler: Handler, request: Request, body: bytes,
          login: bool) -> Response:
    principal = None
    if login:
        principal = web.require(request)
        if request.method in UNSAFE_METHODS and not csrf_matches(
                principal.session.csrf, request.headers.get(CSRF_HEADER)):
            raise ApiError(403, f"CSRF token missing or wrong: send the {CSRF_HEADER} header "
                                "with the csrf value of POST /api/session or GET /api/me")
    return handler(web, Call(request, body, principal))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ApiError.bad_field(k, "given twice")
        out[k] = v
    return out


_TYPE_NAMES: dict[type, str] = {str: "a string", list: "a list"}


def parse_object(call: Call, fields: dict[str, type], optional: frozenset[str] = frozenset()
                 ) -> dict[str, Any]:
    """The body as a JSON object with exactly ``fields`` (those in ``optional`` may be
    left out); 415 when not JSON, 400 naming the first field that is wrong."""
    media = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, f"send the body as application/json (got {media or 'no type'!r})")
    try:
        data = json.loads(call.body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError.bad_field("body", f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError.bad_field("body", "expected a JSON object")
    allowed = ", ".join(fields)
    for key in data:
        if key not in fields:
            raise ApiError(400, f"{key}: unknown field (allowed: {allowed})", field=key)
    for key, kind in fields.items():
        if key not in data:
            if key in optional:
                continue
            raise ApiError(400, f"{key}: missing (required: "
                                f"{', '.join(k for k in fields if k not in optional)})", field=key)
        if not isinstance(data[key], kind):
            raise ApiError.bad_field(key, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, "
                                          f"got {type(data[key]).__name__}")
    return data


def _user_json(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "agent": user.agent_id}


# ------------------------------------------------------------------ session

def login(web: WebContext, call: Call) -> Response:
    data = parse_object(call, {"user": str, "password": str})
    name, password = data["user"], data["password"]
    now = web.now()
    ts = now.timestamp()
    client = call.request.client.host if call.request.client else "unknown"
    keys = (f"user:{name.casefold()}", f"addr:{client}")
    wait = web.throttle.retry_after(keys, ts)
    if wait is not None:
        secs = max(1, math.ceil(wait))
        raise ApiError(429, f"too many failed logins: try again in {secs} s",
                       headers={"Retry-After": str(secs)}, retry_after_s=secs)
    user = web.store.user(name) if len(password) <= MAX_PASSWORD_LENGTH else None
    if user is None or not web.passwords.verify(user.password_hash, password):
        if user is None:
            web.passwords.verify(None, password)  # the same time as a wrong password
        web.throttle.failed(keys, ts)
        raise ApiError(401, "wrong user name or password")
    web.throttle.succeeded(keys[0])
    if web.passwords.needs_rehash(user.password_hash):
        web.store.set_password_hash(user.name, web.passwords.hash(password), now)
    # a new session at every login: whatever token came with the request is dropped
    # (OWASP Session Management Cheat Sheet, "Renew the Session ID After Any
    # Privilege Level Change")
    old = call.request.session.get(SESSION_KEY)
    web.sessions.end(old if isinstance(old, str) else None)
    web.sessions.sweep(now)
    token, session = web.sessions.start(user, now)
    call.request.session.clear()
    call.request.session[SESSION_KEY] = token
    return JSONResponse({"user": _user_json(user), "csrf": session.csrf,
                         "idle_timeout_s": web.settings.idle_timeout_s})


def logout(web: WebContext, call: Call) -> Response:
    token = call.request.session.get(SESSION_KEY)
    web.sessions.end(token if isinstance(token, str) else None)
    call.request.session.clear()
    return JSONResponse({"logged_out": call.who.name})


def me(web: WebContext, call: Call) -> Response:
    return JSONResponse({"user": _user_json(call.who.user), "csrf": call.who.session.csrf,
                         "idle_timeout_s": web.settings.idle_timeout_s})


# ------------------------------------------------------------------ agents

def _agent(web: WebContext, call: Call, *, change: bool) -> str:
    """The path's agent id once the caller may read (or change) it: 403 / 404 if not.

    Permission is checked before existence, so an agent learns nothing about
    ids other than their own.
    """
    agent_id = str(call.request.path_params["agent_id"])
    p = call.who
    if change and not p.may_change(agent_id):
        raise ApiError(403, f"only agent {agent_id!r} may change their own hours and state "
                            f"(you are {p.name!r}, role {p.role})")
    if not change and not p.may_read(agent_id):
        raise ApiError(403, f"agent {agent_id!r} is not you (you are {p.name!r}, role "
                            f"{p.role}): agents see only their own data")
    if agent_id not in web.agent_ids():
        raise ApiError(404, f"unknown agent {agent_id!r} (not in {web.directory.source})")
    return agent_id


def get_hours(web: WebContext, call: Call) -> Response:
    agent_id = _agent(web, call, change=False)
    return JSONResponse(show_hours(web.store, web.directory, agent_id, web.now()).as_dict())


def put_hours(web: WebContext, call: Call) -> Response:
    agent_id = _agent(web, call, change=True)
    windows = parse_object(call, {"windows": list})["windows"]
    if len(windows) > MAX_WINDOWS:
        raise ApiError.bad_field("windows", f"{len(windows)} windows, at most {MAX_WINDOWS}")
    for i, w in enumerate(windows):
        if not isinstance(w, str):
            raise ApiError.bad_field(f"windows[{i}]", "expected a string like "
                                                      f"'Mon 18:00-21:00', got {w!r}")
    now = web.now()
    try:
        set_hours(web.store, web.directory, agent_id, windows, now)
    except HoursError as exc:
        raise ApiError(422, "hours refused:\n" + "\n".join(str(p) for p in exc.problems),
                       problems=[p.as_dict() for p in exc.problems]) from exc
    view = show_hours(web.store, web.directory, agent_id, now).as_dict()
    return JSONResponse({**view, "saved": True})


def post_state(web: WebContext, call: Call) -> Response:
    agent_id = _agent(web, call, change=True)
    data = parse_object(call, {"state": str, "reason": str}, optional=frozenset({"reason"}))
    if data["state"] not in AGENT_STATE_ACTIONS:
        raise ApiError.bad_field("state", f"{data['state']!r} is not one of "
                                          f"{', '.join(AGENT_STATE_ACTIONS)}")
    reason = data.get("reason", "")
    if len(reason) > MAX_REASON:
        raise ApiError.bad_field("reason", f"{len(reason)} characters, at most {MAX_REASON}")
    try:
        req = request_agent_state(web.store, web.directory, agent_id, data["state"],
                                  web.now(), reason)
    except UnknownAgentError as exc:
        raise ApiError(404, str(exc)) from exc
    return JSONResponse({"agent": req.agent_id, "state": req.action, "reason": req.why,
                         "seq": req.seq, "applied": "by a running engine, from the store"})


def get_current_call(web: WebContext, call: Call) -> Response:
    """The agent's state and call as the engine last saved them to the store
    (`web.portal.current_call`: never a ``secure`` value)."""
    return JSONResponse(current_call(web, _agent(web, call, change=False)))


def get_phone(web: WebContext, call: Call) -> Response:
    """What the page's JsSIP phone registers with: the WSS URL of Asterisk's
    res_pjsip WebSocket transport, the agent's SIP URI and the password of the
    agent's endpoint (pjsip-agent.conf.tmpl: username = agent id). Only the agent
    themselves may read it (a supervisor gets 403, as for a change)."""
    agent_id = _agent(web, call, change=True)
    phone = web.settings.phone
    if phone is None:
        raise ApiError(404, "the phone in the page is not configured on this server: no "
                            "WebRTC endpoints (Asterisk's WSS transport) yet; use a "
                            "softphone (homeline softphone agent)")
    password = phone.credentials(agent_id)
    if password is None:
        raise ApiError(404, f"agent {agent_id!r} has no WebRTC endpoint (set "
                            f"phone: webrtc for {agent_id} in agents.yaml)")
    return JSONResponse(phone.registration(agent_id, password))


def api_routes(web: WebContext) -> list[Route]:
    def e(handler: Handler, login: bool = True) -> Callable[[Request], Awaitable[Response]]:
        return _endpoint(web, handler, login=login)

    return [
        Route("/api/session", e(login, login=False), methods=["POST"]),
        Route("/api/session", e(logout), methods=["DELETE"]),
        Route("/api/me", e(me), methods=["GET"]),
        Route("/api/agents/{agent_id}/hours", e(get_hours), methods=["GET"]),
        Route("/api/agents/{agent_id}/hours", e(put_hours), methods=["PUT"]),
        Route("/api/agents/{agent_id}/state", e(post_state), methods=["POST"]),
        Route("/api/agents/{agent_id}/current-call", e(get_current_call), methods=["GET"]),
        Route("/api/agents/{agent_id}/phone", e(get_phone), methods=["GET"]),
    ]
