"""The router's decisions about text conversations, carried out: the one executor of
`routing.events.TextDecision` (the voice executor never sees them,
`routing.events.split_by_channel`).

Runs in the engine, on the router thread, and never waits there for a provider:
what the customer is told goes to a sender thread (`ChatExecutor.stop` ends it).
What the portal shows comes from the store (`store.chats`): an offer is the route
set to ``offered`` for the agent until its timeout, a passed offer puts it back
to ``waiting``; every write is a compare-and-set, so an offer the router withdrew
cannot be accepted in the portal, and an accept written just after the router's
timeout is taken back (`ChatExecutor.accept_refused`). Each step is also a
``text_events`` line of the conversation (queue_log-style: offered, offer-passed,
queued, wait-reply, callback-offered, overflowed, rejected).

A route the router gives up on (rejected, or overflowed to a target that is not
a queue: voicemail or a phone number mean nothing to a chat) ends: the customer
is told nobody can answer by message now, and their conversation closes, so
their next message starts afresh instead of waiting for nobody.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, assert_never

from routing.events import (
    CallArrived,
    CallbackAccepted,
    CallEnded,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CancelOffer,
    Event,
    OfferAnswered,
    OfferChat,
    OfferChatCallback,
    OfferNotAnswered,
    ReplyWithWait,
    TextDecision,
)
from store.chats import ChatRequest, ChatRoute
from text import TextConfig, mask_secure
from web.senders import Sender, SendFailed
from web.textexec import TextChatStore, conversation_of, conversation_row

__all__ = ["ChatExecutor", "router_event"]

log = logging.getLogger("homeline.web.chats")


def router_event(request: ChatRequest) -> Event | None:
    """What the web app's request (`store.chats`) means to the router; None for one
    it cannot mean anything (said in the log)."""
    d = request.data
    match request.kind:
        case "route":
            return CallArrived(call_id=request.route_id, queue_id=str(d.get("queue_id", "")),
                               language=d.get("language") or None,
                               intent=str(d.get("intent") or ""),
                               caller=str(d.get("customer", "")),
                               skills=tuple(str(s) for s in d.get("skills", ())),
                               channel=str(d.get("channel", "")))
        case "accept" if request.agent_id:
            return OfferAnswered(request.route_id, request.agent_id)
        case "pass" if request.agent_id:
            return OfferNotAnswered(request.route_id, request.agent_id, "rejected")
        case "end":
            return CallEnded(request.route_id, by=str(d.get("by") or "agent"))
        case "callback":
            return CallbackAccepted(request.route_id)
    log.warning("chat request %d (%s for %s): not understood", request.seq, request.kind,
                request.route_id)
    return None


@dataclass(frozen=True, slots=True)
class _Outgoing:
    route: ChatRoute
    text: str
    event: str  # the text event that records it


class ChatExecutor:
    def __init__(self, config: TextConfig, store: TextChatStore, clock: Callable[[], datetime],
                 senders: Mapping[str, Sender], queues: frozenset[str]) -> None:
        self.config, self.store, self.clock, self.senders = config, store, clock, senders
        self.queues = queues  # the directory's queue ids: an overflow target that is one
        self._out: queue.SimpleQueue[_Outgoing | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._send_loop, name="chat-sender",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._out.put(None)
        self._thread.join(timeout)

    # -- the router thread ---------------------------------------------------------
    def carry_out_all(self, decisions: list[TextDecision]) -> None:
        for d in decisions:
            try:
                self.carry_out(d)
            except Exception:  # one bad write must not stop the others, nor routing
                log.exception("chat decision %s for %s not carried out", type(d).__name__,
                              d.call_id)

    def carry_out(self, decision: TextDecision) -> None:
        """The one executor of the router's text decisions."""
        now = self.clock()
        route = self.store.chat_route(decision.call_id)
        if route is None:
            log.warning("%s for %s: no such chat route", type(decision).__name__,
                        decision.call_id)
            return
        match decision:
            case OfferChat(agent_id=agent, timeout_s=timeout_s, reason=reason):
                ok = self.store.update_chat_route(
                    route.route_id, now, expect_states=("waiting",), state="offered",
                    agent_id=agent, offered_at=now,
                    offer_expires_at=now + timedelta(seconds=timeout_s))
                self._event(route, now, "offered", agent=agent, timeout_s=timeout_s,
                            rule=reason.rule, why=reason.text, stored=ok)
                if not ok:  # ended meanwhile in the portal: its 'end' request follows
                    log.info("chat %s offered to %s but it is %s now", route.route_id, agent,
                             route.state)
            case CancelOffer(agent_id=agent, why=why):
                ok = self.store.update_chat_route(
                    route.route_id, now, expect_states=("offered",), expect_agent=agent,
                    state="waiting", agent_id=None, offered_at=None, offer_expires_at=None)
                if not ok and route.state == "accepted" and route.agent_id == agent:
                    self.accept_refused(route.route_id, why)
                    return
                self._event(route, now, "offer-passed", agent=agent, why=why)
            case CallQueued(queue_id=queue_id, position=position, expected_wait_s=wait_s):
                self.store.update_chat_route(route.route_id, now, queue_id=queue_id,
                                             position=position, expected_wait_s=wait_s)
                self._event(route, now, "queued", queue=queue_id, position=position,
                            expected_wait_s=round(wait_s, 1))
            case ReplyWithWait(position=position, expected_wait_s=wait_s):
                self.store.update_chat_route(route.route_id, now, position=position,
                                             expected_wait_s=wait_s)
                text = (self._message("wait", route)
                        .replace("${position}", str(position))
                        .replace("${minutes}", str(max(1, math.ceil(wait_s / 60)))))
                self._say(route, text, "wait-reply")
            case OfferChatCallback():  # the router offers it on callable channels only
                self._say(route, self._message("callback_offer", route), "callback-offered")
            case CallOverflowed(target=target, why=why):
                if target in self.queues:
                    self.store.update_chat_route(route.route_id, now, queue_id=target)
                    self._event(route, now, "overflowed", target=target, why=why)
                else:
                    self._give_up(route, now, "overflowed", f"to {target}: {why}")
            case CallRejected(why=why, code=code):
                self._give_up(route, now, "rejected", f"{code}: {why}")
            case _:
                assert_never(decision)

    # -- the web app's requests (the engine reads them on the router thread) -------
    def requests_seq(self) -> int:
        return self.store.chat_requests_seq()

    def requests_since(self, seq: int) -> tuple[list[tuple[ChatRequest, Event]], int]:
        """The requests after ``seq`` with their router events, and the new ``seq``."""
        try:
            asked, seq = self.store.chat_requests_since(seq)
        except Exception as exc:  # the store is unavailable: read them next time
            log.warning("reading chat requests from the store failed: %s", exc)
            return [], seq
        return [(r, e) for r in asked if (e := router_event(r)) is not None], seq

    def resume(self, known: Mapping[str, str]) -> list[Event]:
        """What makes the store's chats true in a router that knows ``known`` (chat
        route id -> phase), at an engine's start. The requests the web app wrote while
        no engine ran are not replayed one by one (the feed is read from its end); the
        routes' states say it all: a route waiting (or offered by an engine that
        stopped) and unknown to the router joins the line, one accepted while its
        offer rang is answered, one ended goes."""
        now = self.clock()
        try:
            open_routes = self.store.chat_routes(states=("waiting", "offered", "accepted"))
            ended = [r for r in (self.store.chat_route(cid) for cid in known)
                     if r is not None and not r.open]
        except Exception as exc:
            log.warning("chats not resumed: reading the store failed: %s", exc)
            return []
        events: list[Event] = []
        for route in open_routes:
            phase = known.get(route.route_id)
            if phase is None:
                if route.state != "waiting":
                    self.store.update_chat_route(route.route_id, now, state="waiting",
                                                 agent_id=None, offered_at=None,
                                                 offer_expires_at=None, accepted_at=None)
                events.append(CallArrived(
                    call_id=route.route_id, queue_id=route.queue_id,
                    language=route.language, intent=route.intent or "",
                    caller=route.customer, channel=route.channel))
            elif route.state == "accepted" and phase == "ringing" and route.agent_id:
                events.append(OfferAnswered(route.route_id, route.agent_id))
        events += [CallEnded(r.route_id, by=r.ended_by or "system") for r in ended
                   if known[r.route_id] != "wrap"]
        if events:
            log.info("chats resumed from the store: %d event(s)", len(events))
        return events

    def accept_refused(self, route_id: str, why: str) -> None:
        """The portal took an offer the router had already withdrawn (its 'accept'
        lost the race with the offer's timeout): the chat goes back in line."""
        route = self.store.chat_route(route_id)
        if route is None:
            return
        now = self.clock()
        if self.store.update_chat_route(route.route_id, now, expect_states=("accepted",),
                                        expect_agent=route.agent_id, state="waiting",
                                        agent_id=None, accepted_at=None, offered_at=None,
                                        offer_expires_at=None):
            self._event(route, now, "offer-passed", agent=route.agent_id,
                        why=f"accepted after the offer was withdrawn ({why})")
            log.warning("chat %s: %s accepted it after the offer was withdrawn (%s); back "
                        "in line", route.route_id, route.agent_id, why)

    # -- helpers -------------------------------------------------------------------
    def _give_up(self, route: ChatRoute, now: datetime, event: str, why: str) -> None:
        self.store.update_chat_route(route.route_id, now, state="rejected", agent_id=None,
                                     ended_at=now, ended_by="system")
        self._event(route, now, event, why=why)
        log.info("chat %s: nobody can take it (%s)", route.route_id, why)
        self._say(route, self._message("no_one", route)
                  .replace("${secure_line}", self.config.secure_line), "told-no-one", close=True)

    def _message(self, key: str, route: ChatRoute) -> str:
        return self.config.message(key, route.language)

    def _event(self, route: ChatRoute, now: datetime, event: str, **data: Any) -> None:
        self.store.add_text_event(route.conversation_id, now, event,
                                  {"route_id": route.route_id, **data})

    def _say(self, route: ChatRoute, text: str, event: str, *, close: bool = False) -> None:
        self._out.put(_Outgoing(route, mask_secure(text).text, "close" if close else event))

    # -- the sender thread -----------------------------------------------------------
    def _send_loop(self) -> None:
        while (item := self._out.get()) is not None:
            try:
                self._send(item)
            except Exception:
                log.exception("chat %s: message not sent", item.route.route_id)

    def _send(self, item: _Outgoing) -> None:
        route, now = item.route, self.clock()
        row = self.store.open_conversation(route.channel, route.customer)
        if row is None or row.id != route.conversation_id:
            log.info("chat %s: conversation closed, nothing sent", route.route_id)
            return
        self.store.add_text_message(row.id, now, "out", item.text)
        if item.event == "close":
            conv = conversation_of(row)
            self.store.save_conversation(conversation_row(replace(conv, state="closed",
                                                                  updated_at=now)))
        sender = self.senders.get(route.channel)
        if sender is None:
            log.warning("chat %s: no %s sender configured; kept in the transcript only",
                        route.route_id, route.channel)
            return
        try:
            sender.send(route.customer, item.text, row.data.get("via") or "")
        except SendFailed as exc:
            log.warning("chat %s: not delivered: %s", route.route_id, exc)
            self.store.add_text_event(row.id, now, "reply-failed", {"why": str(exc)})
