"""Text conversations through the same router as calls, on the real path (issue 11):
SMS webhooks over real HTTP with valid signatures, the web app (agents accept and
close through the chat panel's API, logged in), the engine on a real Asterisk,
agents' real softphones registered, a local server playing the SMS provider.

Routed by language, within the agent's chat capacity (the fourth chat waits and is
told its expected wait), no call offered to an agent whose chats are open (mix rule
``one-channel``), a returning customer to the same agent, what nobody can serve
refused with a message. The chats' routes and requests live in the store: the
texting tests and the SMS callback run on SQLite and on PostgreSQL (`make_store`)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pg_kit import StoreMaker
from provider_kit import Provider, post_sms, provider_text_config, start_provider, write_text_config

from homeline.paths import DIALPLANS_DIR
from store.chats import ChatRoute
from web import Passwords

from .conftest import Live, dial_and_press, wait_for

TOKEN = "twilio-auth-token-for-chat-tests"
SMS_OUT = "/2010-04-01/Accounts/"
# a chat offer lasts the ring timeout, and the portal refuses an accept in its last 2 s:
# long enough that a loaded machine's test client is never too late
OFFER_S = 20
CHATTY = {"capacity": {"voice": 1, "sms": 3, "messenger": 2}, "max_chats": 3,
          "mix": "one-channel"}


@dataclass
class Texting:
    live: Live
    provider: Provider
    client: httpx.Client
    url: str
    sessions: dict[str, tuple[httpx.Client, str]] = field(default_factory=dict)

    def sms(self, sender: str, body: str, sid: str) -> None:
        r = post_sms(self.client, self.url, TOKEN, sender, body, sid)
        assert r.status_code == 200, r.text

    def replies_to(self, customer: str) -> list[str]:
        return [r.form()["Body"] for r in self.provider.sent(SMS_OUT)
                if r.form().get("To") == customer]

    def routes(self, **kw: Any) -> list[ChatRoute]:
        assert self.live.store is not None
        return self.live.store.chat_routes(**kw)

    def route_of(self, customer: str, state: str, timeout: float = 8) -> ChatRoute:
        got = wait_for(lambda: [r for r in self.routes(states=(state,))
                                if r.customer == customer], timeout)
        assert got, (f"no {state} route for {customer}: "
                     f"{[(r.customer, r.state, r.agent_id) for r in self.routes()]}")
        return got[-1]

    # the agent's side: the portal's chat panel API (web/chatpanel.py), logged in
    def agent(self, agent_id: str) -> tuple[httpx.Client, str]:
        if agent_id not in self.sessions:
            store = self.live.store
            assert store is not None
            if store.user(agent_id) is None:
                store.add_user(agent_id, "agent", agent_id,
                               Passwords().hash(f"{agent_id}-password"), datetime.now(UTC))
            c = httpx.Client(base_url=self.url, timeout=10.0)
            r = c.post("/api/session", json={"user": agent_id,
                                             "password": f"{agent_id}-password"})
            assert r.status_code == 200, r.text
            self.sessions[agent_id] = (c, str(r.json()["csrf"]))
        return self.sessions[agent_id]

    def act(self, route: ChatRoute, action: str, body: dict[str, Any] | None = None) -> None:
        assert route.agent_id is not None
        c, csrf = self.agent(route.agent_id)
        r = c.post(f"/api/chats/{quote(route.route_id, safe='')}/{action}", json=body or {},
                   headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, (action, r.status_code, r.text)

    def accept(self, route: ChatRoute) -> None:
        self.act(route, "accept")

    def close(self, route: ChatRoute) -> None:
        self.act(route, "close", {"wrap_up": "done"})

    def shut(self) -> None:
        for c, _ in self.sessions.values():
            c.close()

    def offered_rule(self, route: ChatRoute) -> str:
        """The rule of the route's offer, from its 'offered' event (written just after
        the route's state: the executor's second write, so it may lag a little)."""
        store = self.live.store
        assert store is not None
        got = wait_for(lambda: [d for _, e, d in store.text_events(route.conversation_id)
                                if e == "offered" and d.get("route_id") == route.route_id], 5)
        assert got, f"no offered event for {route.route_id}"
        return str(got[-1]["rule"])


def _text_config(tmp_path: Path, provider: Provider, **top: Any) -> Path:
    """The shipped text.yaml on the local provider, with ``top`` keys replaced."""
    doc = provider_text_config(provider) | top
    return write_text_config(doc, tmp_path / "text.yaml")


@pytest.fixture
def texting(make_store: StoreMaker, live_factory: Callable[..., Live],
            tmp_path: Path) -> Iterator[Texting]:
    """Two chatty agents, the web app, the local provider; on each store (SQLite,
    PostgreSQL: `make_store`, first: its database outlives the engine using it), as
    the chats' routes and requests live there."""
    server, provider = start_provider()
    try:
        live = live_factory(
            {"ana": {"skills": {"billing": 1}, "languages": {"es": 5, "en": 5}, **CHATTY},
             "ben": {"skills": {"billing": 1}, "languages": {"en": 5}, **CHATTY}},
            queues={"general": {"channels": ["voice", "sms", "messenger"],
                                "chat_reply_after_s": 2}},
            ring_timeout_s=OFFER_S, text_config=_text_config(tmp_path, provider),
            store_address=make_store.address())
        live.stack.secrets.set("sms:auth_token", TOKEN)
        assert live.store is not None
        web = live.stack.start_web(live.store, https=False)
        client = httpx.Client(base_url=web.url, timeout=10.0)
        try:
            live.agent("ana")
            live.agent("ben")
            live.wait_registered("ana", "ben")
            t = Texting(live, provider, client, web.url)
            yield t
            t.shut()
        finally:
            client.close()
            live.stack.stop_web()
    finally:
        server.shutdown()
        server.server_close()


def test_chats_by_language_within_capacity_and_no_call_while_chatting(
        texting: Texting) -> None:
    t = texting
    spanish = [f"+3460000000{i}" for i in range(1, 5)]
    for i, who in enumerate(spanish):
        t.sms(who, "Hola, quiero hablar con un agente por favor", f"SMes{i}")
    # by language: only ana speaks Spanish; her sms capacity is 3
    offered = [t.route_of(who, "offered") for who in spanish[:3]]
    assert {r.agent_id for r in offered} == {"ana"}
    assert all(r.language == "es" and r.queue_id == "general" for r in offered)
    for r in offered:
        t.accept(r)
    for who in spanish[:3]:
        t.route_of(who, "accepted")
    fourth = t.route_of(spanish[3], "waiting")
    assert fourth.agent_id is None
    # the fourth customer is told a person will answer, then (chat_reply_after_s 2)
    # the expected wait, in Spanish
    assert wait_for(lambda: any(b.startswith("Es el número 1 en la cola")
                                for b in t.replies_to(spanish[3])), 8), \
        t.replies_to(spanish[3])
    assert t.replies_to(spanish[3])[0] == "Una persona le responderá aquí en breve."
    assert t.route_of(spanish[3], "waiting").position == 1

    # one-channel: ana has chats open, so a billing call goes to ben
    caller, leg = dial_and_press(t.live, "+15557770001", "1")
    try:
        assert wait_for(lambda: (tl := t.live.timeline_of("+15557770001")) is not None
                        and tl.agent is not None, 20), "the call reached no agent"
        assert t.live.timeline_of("+15557770001").agent == "ben"
    finally:
        leg.hangup()
        caller.close()

    # ana closes one chat: after the queue's wrap-up (1 s) the fourth is offered to her
    t.close(offered[0])
    nxt = t.route_of(spanish[3], "offered", timeout=10)
    assert nxt.agent_id == "ana"
    events = [e for _, e, _ in t.live.store.text_events(fourth.conversation_id)]  # type: ignore[union-attr]
    assert events[:2] == ["handed-to-person", "queued"] and "offered" in events


def test_a_returning_customer_gets_the_same_agent(texting: Texting) -> None:
    t = texting
    who = "+15550009999"
    t.sms(who, "I want an agent", "SMr1")
    first = t.route_of(who, "offered")
    t.accept(first)
    t.route_of(who, "accepted")
    t.close(first)
    assert t.offered_rule(first) != "preferred-agent"
    # the chat closed: the customer is asked the survey question; an answer that is
    # no score starts a new conversation, routed again
    assert wait_for(lambda: any(b.startswith("How did we do?") for b in t.replies_to(who)), 5)
    t.sms(who, "agent please", "SMr2")
    again = t.route_of(who, "offered")
    assert again.conversation_id != first.conversation_id
    assert again.agent_id == first.agent_id
    assert t.offered_rule(again) == "preferred-agent"


def test_a_queue_that_serves_no_text_refuses_with_a_message(
        live_factory: Callable[..., Live], tmp_path: Path) -> None:
    server, provider = start_provider()
    try:
        # billing serves voice only
        path = _text_config(tmp_path, provider, routing={"queue": "billing"})
        live = live_factory({"ana": {"languages": {"en": 5}, **CHATTY}}, text_config=path,
                            ring_timeout_s=OFFER_S)
        live.stack.secrets.set("sms:auth_token", TOKEN)
        assert live.store is not None
        said: list[str] = []
        web = live.stack.start_web(live.store, https=False, say=said.append)
        with httpx.Client(base_url=web.url, timeout=10.0) as client:
            t = Texting(live, provider, client, web.url)
            t.sms("+15550001111", "agent", "SMx1")
            rejected = t.route_of("+15550001111", "rejected")
            assert rejected.ended_by == "system"
            assert wait_for(lambda: any(b.startswith("Sorry, nobody can answer messages")
                                        for b in t.replies_to("+15550001111")), 5)
            # the conversation closed: the customer's next message is not stuck waiting
            assert wait_for(lambda: live.store.open_conversation(  # type: ignore[union-attr]
                "sms", "+15550001111") is None, 5)
        assert any("serves no text channel" in m for m in said), said
        live.stack.stop_web()
    finally:
        server.shutdown()
        server.server_close()


def test_chats_survive_an_engine_restart(texting: Texting) -> None:
    """The engine stops while a chat is connected; meanwhile the agent closes it and a
    new customer asks for a person. The next engine takes the stored router state
    over and makes the store's chats true: the ended one frees ana, the new one is
    offered to her (nothing the web app wrote while no engine ran is lost)."""
    from ivr.loader import load_flow
    from routing import Router

    t, live = texting, texting.live
    assert live.store is not None and live.directory is not None
    t.sms("+34600000011", "Hola, un agente por favor", "SMk1")
    first = t.route_of("+34600000011", "offered")
    t.accept(first)
    t.route_of("+34600000011", "accepted")
    assert wait_for(lambda: any(c.call_id == first.route_id and c.phase == "connected"
                                for c in (live.store.load_router_snapshot().calls  # type: ignore[union-attr]
                                          if live.store.load_router_snapshot() else ())), 5)
    live.engine.stop()
    t.close(first)  # while no engine runs
    t.sms("+34600000012", "Hola, un agente", "SMk2")
    second = t.route_of("+34600000012", "waiting")
    snapshot = live.store.load_router_snapshot()
    assert snapshot is not None
    directory = live.store.apply_hours(live.directory)
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    live.engine = live.stack.start_engine(Router(directory, now=datetime.now(UTC)),
                                          lambda: flow, store=live.store,
                                          restore=(directory, snapshot))
    again = t.route_of("+34600000012", "offered", timeout=15)
    assert again.route_id == second.route_id and again.agent_id == "ana"
    snap = wait_for(lambda: (s := live.store.load_router_snapshot()) is not None  # type: ignore[union-attr]
                    and first.route_id not in {c.call_id for c in s.calls
                                               if c.phase != "wrap"} and s, 5)
    assert snap, "the chat closed while no engine ran is still in the router"


def test_a_waiting_sms_customer_asks_for_a_call_back(make_store: StoreMaker,
                                                     live_factory: Callable[..., Live],
                                                     tmp_path: Path) -> None:
    """ana takes one SMS chat at a time; the second customer waits, writes "llamada":
    their chat becomes a voice callback in the same queue (the router's snapshot),
    they are told so, their conversation closes; ana, chatting (one-channel), is not
    rung for it."""
    server, provider = start_provider()
    try:
        live = live_factory(
            {"ana": {"languages": {"es": 5}, "capacity": {"voice": 1, "sms": 1},
                     "max_chats": 1, "mix": "one-channel"}},
            queues={"general": {"channels": ["voice", "sms"], "chat_reply_after_s": 60}},
            ring_timeout_s=OFFER_S, text_config=_text_config(tmp_path, provider),
            store_address=make_store.address())
        live.stack.secrets.set("sms:auth_token", TOKEN)
        assert live.store is not None
        web = live.stack.start_web(live.store, https=False)
        with httpx.Client(base_url=web.url, timeout=10.0) as client:
            t = Texting(live, provider, client, web.url)
            live.agent("ana")
            live.wait_registered("ana")
            t.sms("+34600000021", "Hola, un agente por favor", "SMc1")
            t.accept(t.route_of("+34600000021", "offered"))
            t.sms("+34600000022", "Hola, un agente por favor", "SMc2")
            waiting = t.route_of("+34600000022", "waiting")
            t.sms("+34600000022", "Prefiero una llamada", "SMc3")
            t.route_of("+34600000022", "callback")
            assert wait_for(lambda: any(
                c.call_id == waiting.route_id and c.channel == "voice" and c.callback
                for c in (live.store.load_router_snapshot().calls  # type: ignore[union-attr]
                          if live.store.load_router_snapshot() else ())), 5)
            assert t.replies_to("+34600000022")[-1] == "Le llamaremos a este número. " \
                "Puede cerrar este chat."
            assert live.store.open_conversation("sms", "+34600000022") is None
            assert not any(kind == "decision" and type(d).__name__ == "OfferCall"
                           for kind, d in live.events)
            t.shut()
        live.stack.stop_web()
    finally:
        server.shutdown()
        server.server_close()


def test_by_skill_per_intent_and_a_messenger_chat(live_factory: Callable[..., Live],
                                                  tmp_path: Path) -> None:
    """text.yaml sends billing questions to the billing queue (skill billing): only
    ben has it, though cara is free and longer idle; a Messenger customer asking for
    a person goes to general and takes a messenger slot, the reply to them goes out
    through the Send API."""
    import hashlib
    import hmac
    import json

    server, provider = start_provider()
    try:
        path = _text_config(tmp_path, provider,
                            routing={"queue": "general", "intents": {"billing": "billing"}})
        live = live_factory(
            {"cara": {"languages": {"en": 5}, **CHATTY},
             "ben": {"skills": {"billing": 2}, "languages": {"en": 5}, **CHATTY}},
            queues={"general": {"channels": ["voice", "sms", "messenger"]},
                    "billing": {"channels": ["voice", "sms", "messenger"]}},
            ring_timeout_s=OFFER_S, text_config=path)
        live.stack.secrets.set("sms:auth_token", TOKEN)
        live.stack.secrets.set("messenger:app_secret", "app-secret-for-chat-tests")
        live.stack.secrets.set("messenger:page_token", "page-token-for-chat-tests")
        assert live.store is not None
        web = live.stack.start_web(live.store, https=False)
        with httpx.Client(base_url=web.url, timeout=10.0) as client:
            t = Texting(live, provider, client, web.url)
            live.agent("cara")
            live.agent("ben")
            live.wait_registered("cara", "ben")
            t.sms("+15550004444", "I have a question about my invoice", "SMb1")
            billing = t.route_of("+15550004444", "offered")
            assert (billing.queue_id, billing.intent, billing.agent_id) == (
                "billing", "billing", "ben")
            raw = json.dumps({"object": "page", "entry": [{"id": "PAGE", "messaging": [
                {"sender": {"id": "psid-77"}, "recipient": {"id": "PAGE"},
                 "message": {"mid": "m-77", "text": "talk to a human please"}}]}]}).encode()
            sig = "sha256=" + hmac.new(b"app-secret-for-chat-tests", raw,
                                       hashlib.sha256).hexdigest()
            r = client.post("/webhooks/messenger", content=raw,
                            headers={"Content-Type": "application/json",
                                     "X-Hub-Signature-256": sig})
            assert r.status_code == 200, r.text
            chat = t.route_of("psid-77", "offered")
            assert (chat.channel, chat.queue_id, chat.agent_id) == ("messenger", "general",
                                                                   "cara")
            sent = [q.json() for q in provider.sent("/me/messages")]
            assert {"recipient": {"id": "psid-77"},
                    "message": {"text": "A person will answer you here shortly."}} in [
                {"recipient": m["recipient"], "message": m["message"]} for m in sent], sent
        live.stack.stop_web()
    finally:
        server.shutdown()
        server.server_close()
