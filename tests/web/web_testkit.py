"""The portal over real HTTP for tests: a temporary SQLite store, the shipped
agent directory, uvicorn on a free 127.0.0.1 port, and an httpx client."""
from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from homeline.paths import DIALPLANS_DIR
from routing import load_directory
from routing.directory import Directory
from store import SqliteStore, SqlStore, open_store
from web import Passwords, WebServer, WebSettings, create_app

REPO = Path(__file__).resolve().parents[2]
AGENTS = DIALPLANS_DIR / "agents.yaml"
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # a Wednesday, 07:00 in Paris
SECRET = "test-session-secret-0123456789"

# name -> (role, agent id, password)
USERS = {
    "alice": ("agent", "alice", "alice-password"),
    "bruno": ("agent", "bruno", "bruno-password"),
    "sam": ("supervisor", None, "sam-password"),
    "ada": ("admin", None, "ada-password"),
}


class Clock:
    """The app's clock (time is a parameter): the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@functools.cache
def _hashes() -> dict[str, str]:
    pw = Passwords()
    return {name: pw.hash(password) for name, (_, _, password) in USERS.items()}


@dataclass
class Portal:
    url: str
    store: SqlStore
    directory: Directory
    clock: Clock
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **kw: Any) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=10.0, **kw)
        self.clients.append(c)
        return c

    def login(self, name: str) -> tuple[httpx.Client, str]:
        """A client logged in as ``name`` and its CSRF token."""
        c = self.client()
        r = c.post("/api/session", json={"user": name, "password": USERS[name][2]})
        assert r.status_code == 200, r.text
        return c, str(r.json()["csrf"])


@contextmanager
def running_portal(tmp_path: Path, now: datetime = NOW, *, store_address: str | None = None,
                   **settings: Any) -> Iterator[Portal]:
    """The web app on a store of its own (``store_address``: a path or a postgresql://
    URL; default an SQLite file in ``tmp_path``), its users added."""
    store = open_store(store_address or tmp_path / "web.sqlite3")
    directory = load_directory(AGENTS)
    store.sync_agents(directory)
    for name, (role, agent, _) in USERS.items():
        store.add_user(name, role, agent, _hashes()[name], NOW)
    clock = Clock(now)
    app = create_app(store, directory, clock, WebSettings(session_secret=SECRET, **settings))
    server = WebServer(app, "127.0.0.1", 0).start()
    portal = Portal(server.url, store, directory, clock)
    try:
        yield portal
    finally:
        for c in portal.clients:
            c.close()
        server.stop()
        store.close()


@contextmanager
def serving_stack(stack: Any, tmp_path: Path, users: dict[str, tuple[str, str | None]]
                  ) -> Iterator[tuple[str, ssl.SSLContext]]:
    """A `homeline.stack.PbxStack`'s web app (homeline/webapp.py, no Asterisk) over
    HTTPS with its certificate, for ``users`` (name -> (role, agent id); password
    ``<name>-password``): yields its URL and the SSL context that verifies it; the
    stack and the store are stopped at the end."""
    store = SqliteStore(tmp_path / "web.sqlite3")
    store.sync_agents(stack.directory)
    hasher = Passwords()
    for name, (role, agent) in users.items():
        store.add_user(name, role, agent, hasher.hash(f"{name}-password"), NOW)
    try:
        web = stack.start_web(store, port=0)
        yield web.url, ssl.create_default_context(cafile=str(stack.tls_files().cafile))
    finally:
        stack.stop()
        store.close()
