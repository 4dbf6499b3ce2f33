"""Server-rendered pages: the login page and a placeholder agent page.

The portal's real pages come later; these show the pattern they follow: the
session is checked on the server before anything is rendered, the CSRF token
reaches the page's script in a ``<meta>`` tag (never in browser storage), and
scripts come from ``/static`` only (the Content-Security-Policy allows no inline
script).
"""
from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from web.auth import Principal
from web.context import WebContext

__all__ = ["page_routes", "TEMPLATES_DIR"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def page_routes(web: WebContext) -> list[Route]:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)  # autoescapes .html

    async def who(request: Request) -> Principal | None:
        return await run_in_threadpool(web.principal, request)

    async def home(request: Request) -> Response:
        return RedirectResponse("/agent" if await who(request) else "/login", status_code=303)

    async def login_page(request: Request) -> Response:
        if await who(request):
            return RedirectResponse("/agent", status_code=303)
        return templates.TemplateResponse(request, "login.html", {"title": "Log in"})

    async def agent_page(request: Request) -> Response:
        p = await who(request)
        if p is None:
            return RedirectResponse("/login", status_code=303)
        return templates.TemplateResponse(request, "agent.html", {
            "title": "Agent", "user": p.user, "csrf": p.session.csrf,
            "idle_timeout_s": web.settings.idle_timeout_s})

    return [Route("/", home, methods=["GET"]),
            Route("/login", login_page, methods=["GET"]),
            Route("/agent", agent_page, methods=["GET"])]
