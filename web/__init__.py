"""The web adapter: HTTP pages and the JSON API for home agents (and, later,
supervisors), on Starlette and uvicorn.

- `create_app` (``web.app``): the ASGI app over a store, a directory and a clock;
- `WebSettings`: session secret, idle timeout, login throttle, HTTPS, the browser
  libraries' directory, the staffing forecast; `PhoneSettings`: the phone in the page;
- `WebServer`: uvicorn in a thread, started and stopped from Python;
- `Passwords` (argon2id), `new_password`: what ``homeline user`` hashes with.

An adapter (principle 1 of the design): the hours go through `routing.hours`,
agent state through `homeline.agent_api`; the app decides nothing else.
"""
from __future__ import annotations

from web.app import create_app
from web.auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Passwords, new_password
from web.context import PhoneSettings, WebSettings
from web.errors import ApiError, WebError
from web.server import WebServer

__all__ = ["create_app", "WebSettings", "PhoneSettings", "WebServer", "Passwords",
           "new_password", "WebError", "ApiError", "MIN_PASSWORD_LENGTH", "MAX_PASSWORD_LENGTH"]
