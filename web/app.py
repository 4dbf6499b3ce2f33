"""`create_app`: the Starlette application of the web adapter.

Middleware, outermost first: security headers on every response, then
Starlette's `SessionMiddleware` (the cookie: signed with itsdangerous, HttpOnly,
SameSite=Strict, Secure over HTTPS; https://www.starlette.io/middleware/#sessionmiddleware).
The cookie holds only a random token; the session itself (user, CSRF token,
last activity) is in the store, see `web.auth`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routing.directory import Directory
from store import Store
from web.api import api_routes
from web.auth import Passwords
from web.chatpanel import chat_routes
from web.chatrecords import chat_record_routes
from web.context import WebContext, WebSettings
from web.desk import desk_routes
from web.pages import page_routes
from web.payments import payment_routes
from web.records import record_routes
from web.stats import stats_routes
from web.textexec import TextChannels
from web.vendor import vendor_route
from web.wallboard import wallboard_routes
from web.webhooks import webhook_routes

__all__ = ["create_app", "STATIC_DIR", "content_security_policy"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("homeline.web")

# OWASP Secure Headers Project / HTTP Headers Cheat Sheet: no framing, no MIME
# sniffing, no referrer, scripts from this origin only; no-store because pages
# and API answers carry caller data (issue 9: "Cache-Control: no-store").
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def content_security_policy(settings: WebSettings) -> str:
    """Scripts and styles from this origin only; connections to this origin, and to
    the phone's WSS server when the phone in the page is configured."""
    connect = "'self'" + (f" {settings.phone.origin}" if settings.phone else "")
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"connect-src {connect}; media-src 'self' blob:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders:
    """Adds `_HEADERS` and the CSP to every response, and ``Cache-Control: no-store``
    outside /static."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [*_HEADERS, (b"content-security-policy", csp.encode("ascii"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += self.headers
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        msg = {404: f"no such API path {request.url.path!r}",
               405: f"method {request.method} not allowed on {request.url.path}"}.get(
                   exc.status_code, str(exc.detail))
        return JSONResponse({"error": msg}, status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    # the cause goes to the log, never to the browser
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error (see the server's log)"}, status_code=500)


def create_app(store: Store, directory: Directory, clock: Callable[[], datetime],
               settings: WebSettings, passwords: Passwords | None = None,
               text: TextChannels | None = None) -> Starlette:
    """The web app over ``store`` for the agents of ``directory``; ``clock`` gives aware now.
    ``text``: the SMS/Messenger webhooks (``/webhooks/``, signature-authenticated,
    outside login and CSRF) and the portal's chat panel (``/api/chats``, web/chatpanel.py);
    without it neither is served."""
    web = WebContext(store, directory, clock, settings, passwords)
    web.chats = text is not None
    routes: list[BaseRoute] = [*api_routes(web), *page_routes(web), *desk_routes(web),
                               *stats_routes(web), *wallboard_routes(web),
                               *record_routes(web), *chat_record_routes(web), *payment_routes(web),
                               *(webhook_routes(text) if text is not None else ()),
                               *(chat_routes(web, text) if text is not None else ()),
                               vendor_route(settings.vendor_dir),
                               Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
    middleware = [
        Middleware(SecurityHeaders, csp=content_security_policy(settings)),
        Middleware(SessionMiddleware, secret_key=settings.session_secret,
                   session_cookie=settings.cookie_name, max_age=settings.session_max_age_s,
                   same_site="strict", https_only=settings.https),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.web = web
    return app
