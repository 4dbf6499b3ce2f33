"""The chat panel over real HTTP for tests: the app with its text channels on
uvicorn (loopback), a local HTTP server playing the SMS/Messenger providers
(provider_kit), the real SQLite store, and web users for agents who take chats.

Without the engine, a test plays the router's side of a chat route the way the
engine's chat executor writes it (`offer`, `time_out`): through the route's
compare-and-set in the store."""
from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from provider_kit import Provider, post_sms, provider_text_config, start_provider
from web_testkit import AGENTS, NOW, SECRET, Clock

from homeline.secrets import SecretStore
from homeline.textwiring import text_channels
from routing import load_directory
from store import SqliteStore
from store.chats import ChatRoute
from text import check_text_config
from web import Passwords, WebServer, WebSettings, create_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "twilio-auth-token-for-tests"
SMS_OUT = "/2010-04-01/Accounts/"
OFFER_S = 30.0  # how long the test's router offers a chat

# name -> (role, agent id); password "<name>-password"
CHAT_USERS = {"emma": ("agent", "emma"), "chloe": ("agent", "chloe"),
              "alice": ("agent", "alice"), "sam": ("supervisor", None)}


@functools.cache
def _hashes() -> dict[str, str]:
    pw = Passwords()
    return {name: pw.hash(f"{name}-password") for name in CHAT_USERS}


def text_config(provider: Provider) -> dict[str, Any]:
    """The shipped text.yaml with the providers and the CRM on the local server."""
    return provider_text_config(provider)


def write_text_config(provider: Provider, path: Path) -> Path:
    doc = text_config(provider)
    assert check_text_config(doc, str(path))[1] == []
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def agents_with_billing_chats(path: Path) -> Path:
    """The shipped agents.yaml, with the billing queue serving SMS too (a second queue
    to transfer a chat to)."""
    doc = yaml.safe_load(AGENTS.read_text(encoding="utf-8"))
    doc["queues"]["billing"]["channels"] = ["voice", "sms"]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def path_of(route_id: str, action: str = "") -> str:
    return f"/api/chats/{quote(route_id, safe='')}" + (f"/{action}" if action else "")


@dataclass
class ChatStack:
    url: str
    store: SqliteStore
    provider: Provider
    clock: Clock
    hook: httpx.Client
    clients: list[httpx.Client] = field(default_factory=list)

    def sms(self, body: str, sid: str, sender: str) -> httpx.Response:
        """A customer's SMS, as the provider posts it (signed)."""
        r = post_sms(self.hook, self.url, TOKEN, sender, body, sid)
        assert r.status_code == 200, r.text
        return r

    def login(self, name: str) -> tuple[httpx.Client, str]:
        c = httpx.Client(base_url=self.url, timeout=10.0)
        self.clients.append(c)
        r = c.post("/api/session", json={"user": name, "password": f"{name}-password"})
        assert r.status_code == 200, r.text
        return c, str(r.json()["csrf"])

    def waiting_route(self, customer: str) -> ChatRoute:
        conv = self.store.open_conversation("sms", customer)
        assert conv is not None, customer
        route = self.store.open_chat_route(conv.id)
        assert route is not None and route.state == "waiting", route
        return route

    def sent_to(self, customer: str) -> list[str]:
        return [r.form()["Body"] for r in self.provider.sent(SMS_OUT)
                if r.form()["To"] == customer]


def offer(store: SqliteStore, route_id: str, agent: str, now: datetime,
          timeout_s: float = OFFER_S) -> None:
    """What the engine's chat executor writes for the router's OfferChat."""
    assert store.update_chat_route(route_id, now, expect_states=("waiting",), state="offered",
                                   agent_id=agent, offered_at=now,
                                   offer_expires_at=now + timedelta(seconds=timeout_s))


def time_out(store: SqliteStore, route_id: str, now: datetime) -> None:
    """What it writes when the offer timed out (CancelOffer): back to waiting."""
    assert store.update_chat_route(route_id, now, expect_states=("offered",), state="waiting",
                                   agent_id=None, offer_expires_at=None)


@contextmanager
def running_chat_stack(tmp_path: Path, now: datetime = NOW,
                       agents: Path | None = None, **settings: Any) -> Iterator[ChatStack]:
    server, provider = start_provider()
    store = SqliteStore(tmp_path / "web.sqlite3")
    directory = load_directory(agents or agents_with_billing_chats(tmp_path / "agents.yaml"))
    store.sync_agents(directory)
    for name, (role, agent) in CHAT_USERS.items():
        store.add_user(name, role, agent, _hashes()[name], NOW)
    secrets = SecretStore(tmp_path / "secrets.json")
    secrets.set("sms:auth_token", TOKEN)
    clock = Clock(now)
    text = text_channels(store, secrets, clock, write_text_config(provider,
                                                                  tmp_path / "text.yaml"),
                         directory=directory)
    assert text is not None
    app = create_app(store, directory, clock, WebSettings(session_secret=SECRET, **settings),
                     text=text)
    web = WebServer(app, "127.0.0.1", 0).start()
    hook = httpx.Client(base_url=web.url, timeout=10.0)
    stack = ChatStack(web.url, store, provider, clock, hook)
    try:
        yield stack
    finally:
        for c in [hook, *stack.clients]:
            c.close()
        web.stop()
        server.shutdown()
        server.server_close()
        store.close()
