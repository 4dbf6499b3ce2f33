"""The agent portal's chat panel: text conversations (SMS, Messenger) the router
offers an agent, and what the agent does with them (issue 11).

The router (the engine's chat executor) writes its side of each chat route into
the store (`store.chats`: offered to an agent until ``offer_expires_at``, back to
waiting after the offer timeout); this module writes the agent's side, always
through the route's compare-and-set, then appends the request the engine reads
(``chat_requests``) and a queue_log-style text event:

- ``GET /api/chats``: the agent's offers (with the time left to accept) and the
  chats they hold, each with its transcript (masked before it was stored), the
  customer, channel, language, intent, earlier contacts, the reply suggestions
  (the intent's self-service answer and ``suggestions`` of ``text.yaml``) and the
  queues it may be transferred to;
- ``POST /api/chats/{route_id}/accept``: offered to me, and more than
  `ACCEPT_MARGIN_S` before the offer expires (else 409 "the offer has passed");
- ``.../pass``: let it go to the next agent (back to waiting);
- ``.../reply`` ``{"text"}``: on a chat I accepted; masked, stored, sent to the
  customer (`web.textexec.TextChannels.agent_reply`);
- ``.../transfer`` ``{"queue", "wrap_up"?}``: to a queue of the directory that
  serves the chat's channel: this route ends (``ended_by`` transfer) and the
  conversation gets a new route, waiting in that queue;
- ``.../close`` ``{"wrap_up"?}``: the route ends with the wrap-up note (masked), the
  conversation ends for the customer (`TextChannels.chat_closed`: the text
  survey's question, or "closed").
- ``/agent/chats/events``: the ``GET /api/chats`` view again whenever it changes
  (server-sent events, `web.events.change_stream`), for web/static/chats.js.

Same rules as the portal's other APIs (`web.api`): session, CSRF token and Origin
check on every change; only agents; an agent acts on their own routes only (404
an unknown route, 403 another agent's); 400 a malformed body, 413 one too large;
409 a route no longer in the state the action needs. Every refusal changes nothing.
Capacity is the router's business: it offers an agent only what fits.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from routing.model import TEXT_CHANNELS
from store import StoreError
from store.chats import ChatRoute
from text import mask_secure
from web.api import Call, _endpoint, parse_object
from web.context import WebContext
from web.errors import ApiError
from web.events import Part, change_stream, ended_stream
from web.textexec import TextChannels, TextChatStore

__all__ = ["chat_routes", "chat_view", "ACCEPT_MARGIN_S", "MAX_REPLY", "MAX_WRAP_UP"]

log = logging.getLogger("homeline.web.chats")

ACCEPT_MARGIN_S = 2.0  # an offer is accepted only this long before it expires
MAX_REPLY = 1600  # characters of one reply (an SMS provider's limit on one message)
MAX_WRAP_UP = 500  # characters of the wrap-up note
MAX_TRANSCRIPT = 200  # the latest messages shown of a conversation
MAX_CONTACTS = 10  # earlier conversations and calls shown, each


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _me(web: WebContext, call: Call) -> str:
    agent_id = call.who.agent_id
    if agent_id is None or agent_id not in web.agent_ids():
        raise ApiError(403, f"only agents take chats (you are {call.who.name!r}, role "
                            f"{call.who.role}, with no agent in {web.directory.source})")
    return agent_id


def _accept_by(route: ChatRoute) -> datetime | None:
    exp = route.offer_expires_at
    return exp - timedelta(seconds=ACCEPT_MARGIN_S) if exp is not None else None


# ------------------------------------------------------------------ what the panel shows

def _earlier(web: WebContext, store: TextChatStore, route: ChatRoute) -> dict[str, Any]:
    convs = [c for c in store.text_conversations(route.customer)
             if c.id != route.conversation_id]
    convs.sort(key=lambda c: c.started_at, reverse=True)
    calls = []
    for call_id in reversed(store.customer_contacts(route.customer)["calls"]):
        rec = web.store.call_record(call_id)
        if rec is not None:
            calls.append({"call_id": rec.call_id, "at": _iso(rec.arrived_at or rec.queued_at),
                          "queue": rec.queue_id, "intent": rec.intent, "agent": rec.agent_id,
                          "outcome": rec.outcome})
        if len(calls) >= MAX_CONTACTS:
            break
    return {"conversations": [{"id": c.id, "channel": c.channel,
                               "started_at": _iso(c.started_at), "state": c.state,
                               "intent": c.intent} for c in convs[:MAX_CONTACTS]],
            "calls": calls}


def _transfer_queues(web: WebContext, channel: str) -> list[dict[str, str]]:
    return [{"id": q.id, "name": q.name} for q in web.directory.queues
            if channel in q.channels]


def _route_json(web: WebContext, text: TextChannels, route: ChatRoute) -> dict[str, Any]:
    store = text.store
    msgs = store.text_messages(route.conversation_id)[-MAX_TRANSCRIPT:]
    queue = next((q for q in web.directory.queues if q.id == route.queue_id), None)
    return {
        "route_id": route.route_id, "conversation_id": route.conversation_id,
        "channel": route.channel, "customer": route.customer, "state": route.state,
        "queue": route.queue_id, "queue_name": queue.name if queue else route.queue_id,
        "language": route.language, "intent": route.intent,
        "routed_at": _iso(route.routed_at), "offered_at": _iso(route.offered_at),
        "offer_expires_at": _iso(route.offer_expires_at),
        "accept_by": _iso(_accept_by(route)), "accepted_at": _iso(route.accepted_at),
        "first_reply_at": _iso(route.first_reply_at),
        "transcript": [{"seq": m.seq, "at": _iso(m.at), "direction": m.direction,
                        "text": m.text} for m in msgs],
        "earlier": _earlier(web, store, route),
        "suggestions": list(text.config.suggested(route.intent, route.language)),
        "transfer_queues": _transfer_queues(web, route.channel),
    }


def chat_view(web: WebContext, text: TextChannels, agent_id: str) -> dict[str, Any]:
    """What ``GET /api/chats`` answers for ``agent_id`` (store I/O), without the
    server's clock (`chat_routes` adds ``server_now``)."""
    agent = web.directory.agent(agent_id)
    mine = text.store.chat_routes(agent_id=agent_id, states=("offered", "accepted"))
    capacity = {c: agent.capacity.get(c, 0) for c in TEXT_CHANNELS}
    return {"agent": agent_id, "capacity": capacity, "max_chats": agent.max_chats,
            "takes_chats": any(agent.serves(c) for c in TEXT_CHANNELS),
            "limits": {"reply": MAX_REPLY, "wrap_up": MAX_WRAP_UP},
            "offers": [_route_json(web, text, r) for r in mine if r.state == "offered"],
            "chats": [_route_json(web, text, r) for r in mine if r.state == "accepted"]}


# ------------------------------------------------------------------ the agent's actions

class _Actions:
    def __init__(self, web: WebContext, text: TextChannels) -> None:
        self.web, self.text, self.store = web, text, text.store

    def _route(self, call: Call) -> ChatRoute:
        route_id = str(call.request.path_params["route_id"])
        route = self.store.chat_route(route_id)
        if route is None:
            raise ApiError(404, f"no chat route {route_id!r}")
        return route

    def _offered_to(self, call: Call, me: str) -> ChatRoute:
        route = self._route(call)
        if route.agent_id not in (None, me):
            raise ApiError(403, f"chat {route.route_id!r} is another agent's")
        if route.state == "accepted" and route.agent_id == me:
            raise ApiError(409, f"chat {route.route_id!r}: you have accepted it already",
                           state=route.state)
        if route.state != "offered" or route.agent_id != me:
            raise ApiError(409, f"the offer has passed (chat {route.route_id!r} is "
                                f"{route.state} now)", state=route.state)
        return route

    def _held_by(self, call: Call, me: str) -> ChatRoute:
        route = self._route(call)
        if route.agent_id != me:
            raise ApiError(403, f"chat {route.route_id!r} is not yours")
        if route.state != "accepted":
            why = ("accept it first" if route.state == "offered"
                   else f"it is {route.state}")
            raise ApiError(409, f"chat {route.route_id!r} is not open for you: {why}",
                           state=route.state)
        return route

    def _changed(self, route: ChatRoute) -> ApiError:
        now = self.store.chat_route(route.route_id)
        return ApiError(409, f"chat {route.route_id!r} changed meanwhile (now "
                             f"{now.state if now else 'gone'}): nothing done",
                        state=now.state if now else None)

    def _event(self, route: ChatRoute, now: datetime, event: str, me: str,
               **data: Any) -> None:
        self.store.add_text_event(route.conversation_id, now, event,
                                  {"route_id": route.route_id, "agent": me, **data})

    @staticmethod
    def _wrap_up(data: dict[str, Any]) -> str | None:
        note = str(data.get("wrap_up", "")).strip()
        if len(note) > MAX_WRAP_UP:
            raise ApiError(413, f"wrap_up: {len(note)} characters, at most {MAX_WRAP_UP}",
                           field="wrap_up")
        return mask_secure(note).text if note else None

    def _answer(self, route_id: str, **extra: Any) -> Response:
        route = self.store.chat_route(route_id)
        return JSONResponse({"route_id": route_id, "state": route.state if route else None,
                             **extra})

    def accept(self, web: WebContext, call: Call) -> Response:
        me = _me(web, call)
        route = self._offered_to(call, me)
        now = web.now()
        by = _accept_by(route)
        if by is not None and now >= by:
            raise ApiError(409, f"the offer has passed (it had to be accepted by "
                                f"{by.isoformat(timespec='seconds')})", state=route.state)
        if not self.store.update_chat_route(route.route_id, now, expect_states=("offered",),
                                            expect_agent=me, state="accepted",
                                            accepted_at=now):
            raise self._changed(route)
        self.store.request_chat(route.route_id, "accept", me, now)
        self._event(route, now, "accepted", me)
        log.info("agent %s accepted chat %s", me, route.route_id)
        return self._answer(route.route_id)

    def pass_(self, web: WebContext, call: Call) -> Response:
        me = _me(web, call)
        route = self._offered_to(call, me)
        now = web.now()
        if not self.store.update_chat_route(route.route_id, now, expect_states=("offered",),
                                            expect_agent=me, state="waiting", agent_id=None,
                                            offered_at=None, offer_expires_at=None):
            raise self._changed(route)
        self.store.request_chat(route.route_id, "pass", me, now)
        self._event(route, now, "passed", me)
        log.info("agent %s passed chat %s", me, route.route_id)
        return self._answer(route.route_id)

    def reply(self, web: WebContext, call: Call) -> Response:
        me = _me(web, call)
        data = parse_object(call, {"text": str})
        body = data["text"].strip()
        if not body:
            raise ApiError.bad_field("text", "empty: type the reply")
        if len(body) > MAX_REPLY:
            raise ApiError(413, f"text: {len(body)} characters, at most {MAX_REPLY}",
                           field="text")
        route = self._held_by(call, me)
        if not self.text.agent_reply(route, body):
            raise ApiError(409, f"the conversation of chat {route.route_id!r} is closed")
        return self._answer(route.route_id, sent=True)

    def close(self, web: WebContext, call: Call) -> Response:
        me = _me(web, call)
        data = (parse_object(call, {"wrap_up": str}, optional=frozenset({"wrap_up"}))
                if call.body else {})
        note = self._wrap_up(data)
        route = self._held_by(call, me)
        now = web.now()
        if not self.store.update_chat_route(route.route_id, now, expect_states=("accepted",),
                                            expect_agent=me, state="ended", ended_by="agent",
                                            ended_at=now, wrap_up=note):
            raise self._changed(route)
        self.store.request_chat(route.route_id, "end", me, now, {"by": "agent"})
        self._event(route, now, "ended", me, by="agent", wrap_up=note or "")
        ended = self.store.chat_route(route.route_id)
        assert ended is not None
        self.text.chat_closed(ended)
        log.info("agent %s closed chat %s", me, route.route_id)
        return self._answer(route.route_id)

    def transfer(self, web: WebContext, call: Call) -> Response:
        me = _me(web, call)
        data = parse_object(call, {"queue": str, "wrap_up": str},
                            optional=frozenset({"wrap_up"}))
        note = self._wrap_up(data)
        route = self._held_by(call, me)
        serving = [q["id"] for q in _transfer_queues(web, route.channel)]
        if data["queue"] not in serving:
            raise ApiError.bad_field("queue", f"{data['queue']!r} is not a queue serving "
                                              f"{route.channel} (one of: {', '.join(serving)})")
        now = web.now()
        if not self.store.update_chat_route(route.route_id, now, expect_states=("accepted",),
                                            expect_agent=me, state="ended",
                                            ended_by="transfer", ended_at=now, wrap_up=note):
            raise self._changed(route)
        self.store.request_chat(route.route_id, "end", me, now, {"by": "transfer"})
        new = self.store.route_chat(route.conversation_id, route.channel, route.customer,
                                    data["queue"], route.language, route.intent, now)
        self._event(route, now, "transferred", me, queue=data["queue"],
                    to_route=new.route_id, wrap_up=note or "")
        log.info("agent %s transferred chat %s to %s (%s)", me, route.route_id,
                 data["queue"], new.route_id)
        return self._answer(route.route_id, to_route=new.route_id, queue=data["queue"])


def _guard_store(handler: Callable[[WebContext, Call], Response]
                 ) -> Callable[[WebContext, Call], Response]:
    def run(web: WebContext, call: Call) -> Response:
        try:
            return handler(web, call)
        except StoreError as exc:
            raise ApiError(409, str(exc)) from exc
    return run


def chat_routes(web: WebContext, text: TextChannels) -> list[Route]:
    """The chat panel's API and event stream (served when text channels are configured)."""
    act = _Actions(web, text)

    def e(handler: Callable[[WebContext, Call], Response]) -> Any:
        return _endpoint(web, _guard_store(handler))

    def view(agent_id: str) -> dict[str, Any]:
        return {**chat_view(web, text, agent_id), "server_now": web.now().isoformat()}

    def list_chats(web: WebContext, call: Call) -> Response:
        return JSONResponse(view(_me(web, call)))

    async def events(request: Request) -> Response:
        p = await run_in_threadpool(web.principal, request, touch=False)
        if p is None or p.agent_id is None or p.agent_id not in web.agent_ids():
            return ended_stream()
        agent_id = p.agent_id

        def parts() -> dict[str, Part] | None:
            if web.principal(request, touch=False) is None:
                return None
            shown = chat_view(web, text, agent_id)
            key = json.dumps(shown, sort_keys=True)
            return {"chats": (key, json.dumps({**shown,
                                                "server_now": web.now().isoformat()}))}

        return change_stream(parts, web.settings.events_poll_s)

    return [
        Route("/api/chats", e(list_chats), methods=["GET"]),
        Route("/api/chats/{route_id}/accept", e(act.accept), methods=["POST"]),
        Route("/api/chats/{route_id}/pass", e(act.pass_), methods=["POST"]),
        Route("/api/chats/{route_id}/reply", e(act.reply), methods=["POST"]),
        Route("/api/chats/{route_id}/transfer", e(act.transfer), methods=["POST"]),
        Route("/api/chats/{route_id}/close", e(act.close), methods=["POST"]),
        Route("/agent/chats/events", events, methods=["GET"]),
    ]
