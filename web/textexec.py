"""The text channels' service: a customer's message in, the conversation core's
decisions carried out (store, replies, lookups), each by exactly one executor.

`TextChannels.receive` runs one inbound message (already authenticated by
``web.webhooks``): masks it (`text.mask_secure`) before anything else sees it,
claims the provider's message id with the transcript line (a retry does
nothing), runs `text.handle`, saves the conversation and executes each
decision: `SendReply` (the transcript, then the provider's sender), `LookUp`
(the IVR's caller-data lookup: an HTTP GET of a flat JSON object, its answer
fed back to the core), `HandToPerson` (the conversation waits for an agent: a
``handed-to-person`` event and a chat route in the queue ``text.yaml`` names
(`store.chats`: the engine reads it and routes it like a call); the customer is
told a person will answer), `SurveyAnswered` (the score and comment on the chat
route the survey was about, as the call survey on its call record, and a
``survey`` event). `TextChannels.agent_reply` is the agent's side: a
reply typed in the portal's chat panel, masked, stored, sent; `TextChannels.chat_closed`
runs the core's `text.ChatClosed` when the agent closed the chat (the survey
question, or "closed"). Messages of one customer
are handled one at a time (a lock per stripe of customers: the conversation is
read, advanced and written back), so two retries racing cannot both pass the id
check, and one slow lookup or provider does not hold up other customers.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, assert_never

from store.chats import ChatRoute, ChatStore
from store.text import TextConversationRow, TextStore
from text import (
    ChatClosed,
    Conversation,
    Decision,
    Event,
    HandToPerson,
    LookUp,
    LookupAnswered,
    LookupFailed,
    MessageReceived,
    SendReply,
    Step,
    SurveyAnswered,
    TextConfig,
    handle,
    mask_secure,
)
from text.conversation import Channel
from web.senders import Sender, SendFailed

__all__ = ["TextChannels", "TextChatStore", "Received", "conversation_row", "conversation_of"]

log = logging.getLogger("homeline.web.text")
_MAX_STEPS = 8  # lookups chained within one message (a lookup answers with one step)
_STRIPES = 64


@dataclass(frozen=True, slots=True)
class Received:
    conversation_id: str | None  # None: a retry of a message already processed
    duplicate: bool


def conversation_row(c: Conversation) -> TextConversationRow:
    data = {"state": c.state, "language": c.language, "intent": c.intent,
            "answered": list(c.answered), "not_understood": c.not_understood,
            "pending": c.pending, "handed_reason": c.handed_reason, "via": c.via,
            "survey_route": c.survey_route,
            "survey_asked_at": None if c.survey_asked_at is None else c.survey_asked_at.isoformat()}
    return TextConversationRow(c.id, c.channel, c.customer, c.state, c.language, c.intent,
                               c.started_at, c.updated_at, data)


def conversation_of(row: TextConversationRow) -> Conversation:
    d = row.data
    channel: Channel = "sms" if row.channel == "sms" else "messenger"
    return Conversation(row.id, channel, row.customer, row.started_at, row.updated_at,
                        str(d["state"]), d.get("language"), d.get("intent"),
                        tuple(d.get("answered", ())), int(d.get("not_understood", 0)),
                        d.get("pending"), d.get("handed_reason"), str(d.get("via") or ""),
                        d.get("survey_route"),
                        datetime.fromisoformat(d["survey_asked_at"]) if d.get("survey_asked_at")
                        else None)


class TextChatStore(TextStore, ChatStore, Protocol):
    """What the text channels keep: conversations and their routes."""


class TextChannels:
    def __init__(self, config: TextConfig, store: TextChatStore, clock: Callable[[], datetime],
                 secret: Callable[[str], str | None], senders: Mapping[str, Sender],
                 lookup: Callable[[str, float], Mapping[str, str]]) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.secret, self.senders, self.lookup = secret, senders, lookup
        self._locks = tuple(threading.Lock() for _ in range(_STRIPES))

    def _lock_of(self, channel: str, customer: str) -> threading.Lock:
        digest = hashlib.blake2s(f"{channel}\0{customer}".encode(), digest_size=4).digest()
        return self._locks[int.from_bytes(digest, "big") % _STRIPES]

    def receive(self, channel: Channel, customer: str, message_id: str, raw_text: str,
                via: str = "") -> Received:
        masked = mask_secure(raw_text)
        del raw_text  # from here on only the masked text exists
        with self._lock_of(channel, customer):
            if self.store.message_processed(channel, message_id):
                log.info("%s message %s: already processed (a provider retry)", channel,
                         message_id)
                return Received(None, True)
            now = self.clock()
            row = self.store.open_conversation(channel, customer)
            conv = conversation_of(row) if row is not None else None
            step = handle(conv, MessageReceived(message_id, masked.text, masked.secure_found),
                          self.config, now, channel=channel, customer=customer, via=via)
            cid = step.conversation.id
            if not self.store.add_text_message(cid, now, "in", masked.text, message_id,
                                               channel=channel):
                return Received(None, True)
            log.info("%s message %s in conversation %s (%s%s)", channel, message_id, cid,
                     step.conversation.state, ", card number masked" if masked.secure_found
                     else "")
            self._run(step)
            return Received(cid, False)

    def _run(self, step: Step) -> None:
        if step.closed is not None:
            # the survey's question got something else: that conversation ends unanswered
            # and the message is the first of step.conversation (stored there already)
            self.store.save_conversation(conversation_row(step.closed))
            self.store.add_text_event(step.closed.id, self.clock(), "survey-unanswered",
                                      {"route_id": step.closed.survey_route,
                                       "next": step.conversation.id})
        for _ in range(_MAX_STEPS):
            conv = step.conversation
            self.store.save_conversation(conversation_row(conv))
            follow: Event | None = None
            for decision in step.decisions:
                got = self.execute(conv, decision)
                follow = got or follow
            if follow is None:
                return
            step = handle(conv, follow, self.config, self.clock())
        log.error("conversation %s: more than %d steps for one message", step.conversation.id,
                  _MAX_STEPS)

    def execute(self, conv: Conversation, decision: Decision) -> Event | None:
        """The one executor of the conversation core's decisions."""
        match decision:
            case SendReply(text=text):
                self._reply(conv, text)
                return None
            case LookUp(intent=intent, url=url, timeout_s=timeout_s):
                try:
                    values = self.lookup(url, timeout_s)
                except (OSError, ValueError) as exc:
                    log.info("conversation %s: lookup for %s failed (%s)", conv.id, intent,
                             type(exc).__name__)
                    return LookupFailed(intent, type(exc).__name__)
                # what a CRM answers is shown to the customer and stored: masked too
                return LookupAnswered(intent, {k: mask_secure(v).text
                                               for k, v in values.items()})
            case HandToPerson():
                now = self.clock()
                self.store.add_text_event(conv.id, now, "handed-to-person", _handed(decision))
                queue = self.config.queue_for(decision.intent)
                if queue is None:
                    log.warning("conversation %s: to a person, but text.yaml names no "
                                "routing.queue: nobody is offered it", conv.id)
                elif self.store.open_chat_route(conv.id) is None:
                    route = self.store.route_chat(conv.id, conv.channel, conv.customer, queue,
                                             decision.language, decision.intent, now)
                    log.info("conversation %s: to a person (%s), route %s in %s", conv.id,
                             decision.reason, route.route_id, queue)
                self._reply(conv, decision.notice)
                return None
            case SurveyAnswered(route_id=route_id, score=score, comment=comment):
                now = self.clock()
                if not self.store.update_chat_route(route_id, now, expect_states=("ended",),
                                                    survey_score=score,
                                                    survey_comment=comment):
                    log.warning("conversation %s: survey answer for route %s, which is not "
                                "an ended chat: kept in the text events only", conv.id,
                                route_id)
                self.store.add_text_event(conv.id, now, "survey", {
                    "route_id": route_id, "score": score, "comment": comment})
                log.info("conversation %s: survey of route %s answered (%d)", conv.id,
                         route_id, score)
                return None
            case _:
                assert_never(decision)

    def agent_reply(self, route: ChatRoute, text: str) -> bool:
        """An agent's reply in the chat panel: masked (an agent must not paste a card
        number either), stored, sent to the customer; the route's first reply time
        is kept for statistics. False when the conversation is gone."""
        row = self.store.open_conversation(route.channel, route.customer)
        if row is None or row.id != route.conversation_id:
            return False
        conv = conversation_of(row)
        with self._lock_of(conv.channel, conv.customer):
            self._reply(conv, text)
        if route.first_reply_at is None:
            self.store.update_chat_route(route.route_id, self.clock(), first_reply_at=self.clock())
        return True

    def chat_closed(self, route: ChatRoute) -> None:
        """The agent closed the chat (the route is ended): the core's `text.ChatClosed`
        (the survey question when ``text.yaml`` has a survey and an agent had the chat,
        else "closed"). A route ended by a transfer is not the conversation's end:
        nothing happens (it goes on in its new route)."""
        if route.ended_by == "transfer":
            return
        with self._lock_of(route.channel, route.customer):
            row = self.store.open_conversation(route.channel, route.customer)
            if row is None or row.id != route.conversation_id:
                return
            conv = conversation_of(row)
            step = handle(conv, ChatClosed(route.route_id, route.accepted_at is not None),
                          self.config, self.clock())
            self.store.add_text_event(conv.id, self.clock(), "closed",
                                      {"route_id": route.route_id, "by": route.ended_by,
                                       "survey": step.conversation.state == "survey"})
            self._run(step)

    def _reply(self, conv: Conversation, text: str) -> None:
        text = mask_secure(text).text
        self.store.add_text_message(conv.id, self.clock(), "out", text)
        sender = self.senders.get(conv.channel)
        if sender is None:
            log.warning("conversation %s: no %s sender configured; reply kept in the "
                        "transcript only", conv.id, conv.channel)
            return
        try:
            sender.send(conv.customer, text, conv.via)
        except SendFailed as exc:
            log.warning("conversation %s: reply not delivered: %s", conv.id, exc)
            self.store.add_text_event(conv.id, self.clock(), "reply-failed", {"why": str(exc)})


def _handed(d: HandToPerson) -> dict[str, Any]:
    return {"channel": d.channel, "customer": d.customer, "language": d.language,
            "intent": d.intent, "reason": d.reason}
