"""Server-rendered pages of the agent portal (Jinja2), and their event stream.

- ``/login``; ``/agent`` (state, state buttons, the phone); ``/agent/hours``
  (My hours; ``/agent/hours/panel`` is the part htmx swaps after a change);
  ``/agent/caller`` (Current caller); ``/agent/events`` (server-sent events:
  the state and the caller as the engine saves them, via sse-starlette).
- Every page checks the session on the server before rendering and shows the
  logged-in agent's own data only: no page takes an agent id from the URL.
  Users without an agent (supervisors, admins) get a 403 page.
- The CSRF token reaches the scripts in a ``<meta>`` tag (never browser
  storage); scripts come from ``/static`` only (the CSP allows no inline script);
  changes go through the JSON API, as a test or another client would.
- Every answer is ``Cache-Control: no-store`` (`web.app.SecurityHeaders`): these
  pages carry caller data.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from routing.snapshot import to_datetime
from routing.windows import DAYS, load_zone
from web.auth import Principal
from web.context import WebContext
from web.events import change_stream, ended_stream
from web.portal import HISTORY_DAYS, caller_context, fairness_figure, staffing_slots, week_view
from web.vendor import SETUP_HINT, missing_vendor_files

__all__ = ["page_routes", "TEMPLATES_DIR", "BREAK_REASONS"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
BREAK_REASONS = ("short break", "lunch", "coaching", "technical problem", "other")
_LABELS = {"on_call": "on a call", "wrap_up": "wrap-up", "reserved": "ringing",
           "missed": "missed an offer"}


def _elapsed(seconds: float) -> str:
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def page_routes(web: WebContext) -> list[Route]:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)  # autoescapes .html
    vendor_missing = missing_vendor_files(web.settings.vendor_dir)

    async def who(request: Request, *, touch: bool = True) -> Principal | None:
        return await run_in_threadpool(web.principal, request, touch=touch)

    def base(p: Principal | None, title: str, nav: str = "") -> dict[str, Any]:
        return web.page(p, title, nav, vendor_missing=vendor_missing, setup_hint=SETUP_HINT)

    async def agent_or_refusal(request: Request, title: str, nav: str
                               ) -> tuple[str, dict[str, Any]] | Response:
        """The signed-in agent's id and the page's base context, or the refusal."""
        p = await who(request)
        if p is None:
            return RedirectResponse("/login", status_code=303)
        ctx = base(p, title, nav)
        if p.agent_id is None or p.agent_id not in web.agent_ids():
            return templates.TemplateResponse(request, "not_agent.html", ctx, status_code=403)
        return p.agent_id, ctx

    def state_context(agent_id: str) -> dict[str, Any]:
        """What _state.html shows (store I/O)."""
        snap = web.store.load_router_snapshot()
        now = web.now()
        state: dict[str, Any] = {"state": None}
        call = None
        as_of = None
        if snap is not None:
            as_of = to_datetime(snap.as_of).astimezone(load_zone(
                web.directory.agent(agent_id).zone)).strftime("%a %H:%M:%S %Z")
            a = next((x for x in snap.agents if x.agent_id == agent_id), None)
            if a is not None:
                elapsed = max(0.0, now.timestamp() - a.since)
                state = {"state": a.state, "label": _LABELS.get(a.state, a.state),
                         "elapsed_s": elapsed, "elapsed_text": _elapsed(elapsed),
                         "pending_break": a.pending_break}
            c = next((x for x in snap.calls if x.agent == agent_id
                      and x.phase in ("ringing", "connected") and x.channel == "voice"),
                     None)  # a chat is no call: the chat panel shows it
            if c is not None:
                call = {"phase": c.phase, "caller": c.arrival.caller, "queue": c.queue,
                        "intent": c.arrival.intent, "language": c.arrival.language}
        return {"state": state, "call": call, "as_of": as_of}

    async def home(request: Request) -> Response:
        p = await who(request)
        where = "/login" if p is None else (  # a supervisor or admin with no agent: the desk
            "/supervisor" if p.agent_id is None and p.role in ("supervisor", "admin")
            else "/agent")
        return RedirectResponse(where, status_code=303)

    async def login_page(request: Request) -> Response:
        if await who(request):
            return RedirectResponse("/agent", status_code=303)
        return templates.TemplateResponse(request, "login.html", base(None, "Log in"))

    async def agent_page(request: Request) -> Response:
        got = await agent_or_refusal(request, "My state", "home")
        if isinstance(got, Response):
            return got
        agent_id, ctx = got
        agent = web.directory.agent(agent_id)
        ctx |= await run_in_threadpool(state_context, agent_id)
        ctx |= {"agent_name": agent.name or agent.id, "break_reasons": BREAK_REASONS,
                "chats": web.chats}
        return templates.TemplateResponse(request, "agent.html", ctx)

    def hours_context(agent_id: str) -> dict[str, Any]:
        hours, week = week_view(web, agent_id)
        agent = web.directory.agent(agent_id)
        boundary = (hours.boundary.astimezone(load_zone(hours.zone)).strftime("%a %d %b %H:%M")
                    if hours.boundary else None)
        return {"hours": hours, "week": week, "boundary": boundary,
                "policy": web.directory.policy.hours, "days_names": DAYS,
                "slots": staffing_slots(web, agent), "fair": fairness_figure(web, agent_id)}

    def hours_view(template: str) -> Callable[[Request], Awaitable[Response]]:
        """My hours: the whole page, or only its panel (htmx swaps it after a change)."""
        async def view(request: Request) -> Response:
            got = await agent_or_refusal(request, "My hours", "hours")
            if isinstance(got, Response):
                return got
            agent_id, ctx = got
            ctx |= await run_in_threadpool(hours_context, agent_id)
            return templates.TemplateResponse(request, template, ctx)
        return view

    hours_page, hours_panel = hours_view("hours.html"), hours_view("_hours_panel.html")

    async def caller_page(request: Request) -> Response:
        got = await agent_or_refusal(request, "Current caller", "caller")
        if isinstance(got, Response):
            return got
        agent_id, ctx = got
        ctx |= await run_in_threadpool(state_context, agent_id)
        ctx |= {"ctx": await run_in_threadpool(caller_context, web, agent_id),
                "history_days": HISTORY_DAYS}
        return templates.TemplateResponse(request, "caller.html", ctx)

    def render(name: str, ctx: dict[str, Any]) -> str:
        return templates.get_template(name).render(ctx)

    async def events(request: Request) -> Response:
        """The state and caller fragments, sent when they change (looked at every
        ``events_poll_s``). Looking is not activity: the session's idle timeout
        still ends it, and then (or at logout) an ``ended`` event closes the stream."""
        p = await who(request, touch=False)

        if p is None or p.agent_id is None:
            # the session ended before the stream (re)connected: say so in the stream,
            # since an EventSource only retries on an error status
            return ended_stream()
        agent_id = p.agent_id

        def fragments() -> dict[str, str] | None:
            if web.principal(request, touch=False) is None:
                return None
            ctx = state_context(agent_id)
            return {"state": render("_state.html", ctx),
                    "caller": render("_caller.html", {
                        "ctx": caller_context(web, agent_id), "history_days": HISTORY_DAYS})}

        return change_stream(fragments, web.settings.events_poll_s)

    return [Route("/", home, methods=["GET"]),
            Route("/login", login_page, methods=["GET"]),
            Route("/agent", agent_page, methods=["GET"]),
            Route("/agent/hours", hours_page, methods=["GET"]),
            Route("/agent/hours/panel", hours_panel, methods=["GET"]),
            Route("/agent/caller", caller_page, methods=["GET"]),
            Route("/agent/events", events, methods=["GET"])]

