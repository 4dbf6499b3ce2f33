"""One engine's part in several nodes on a shared PostgreSQL store (issue 13).

A node is one Asterisk and the engine serving it. Every engine translates its own
AMI events and serves its own FastAGI; the router runs only in the engine that is
the router leader (store/leader.py). `NodeLink` is what the engine asks:

- follower: `forward` a router event to the leader (store/nodes.py's outbox),
  `decisions` the leader sent about this node's channels, `carried_out` after;
- leader: `events` the followers sent, `owner` of a decision (the node holding
  the call's channel, or the agent's phone), `send` a batch to that node;
- both: `agent_via`, the trunk to ring an agent registered on another node
  (``PJSIP/<agent>@homeline-node-<node>``, dialplans/templates/pjsip-node.conf.tmpl),
  and `admits`: an agent's phone unregistering from one node while it is still
  registered on another does not make the agent unreachable.

No routing rule lives here: which agent gets a call is the router's; this module
only says which node carries out what the router decided.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from routing.events import (
    AgentPutOnBreak,
    AgentRegistered,
    AgentStateChanged,
    AgentUnregistered,
    CallArrived,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CancelOffer,
    Decision,
    Event,
    EventIgnored,
    OfferCall,
    OfferCallback,
    OfferChat,
    OfferChatCallback,
    ReplyWithWait,
    WakeAt,
)
from routing.journal import decode_decision, decode_event, encode
from store.errors import StoreError
from store.nodes import LEADER_DOORBELL, doorbell_channel

__all__ = ["NodeLink", "PositionAnswer", "PositionQuestion", "trunk_endpoint"]

log = logging.getLogger("homeline.nodes")

# outbox bodies that are not router events or decisions (the rest: routing.journal's)
_QUESTION = "PositionQuestion"
_ANSWER = "PositionAnswer"


@dataclass(frozen=True, slots=True)
class PositionQuestion:
    """A follower's caller on hold is due an announcement: where are they in line?
    (only the leader's router knows; its answer goes back as a `PositionAnswer`)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class PositionAnswer:
    """The leader's answer: (place in line, expected wait in s), or None: not waiting."""

    call_id: str
    where: tuple[int, float] | None


def trunk_endpoint(node: str) -> str:
    """The PJSIP endpoint through which other nodes reach ``node``."""
    return f"homeline-node-{node}"


class NodeLink:
    """``store``: a store with `store.nodes.NodeTables`; ``node``: this engine's node."""

    def __init__(self, store: Any, node: str, sip: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.node = node
        self.sip = sip
        self._clock = clock
        self.leading = False
        self._events_seq = 0
        cursor = store.node_cursor(node)
        # a node that never ran starts at the end: nothing older is meant for it now
        self._cursor = store.node_decisions_end(node) if cursor is None else cursor
        self._calls: dict[str, str] = {}
        # written in order once the store takes them again (a store outage loses nothing)
        self._unsent: list[tuple[dict[str, Any], datetime]] = []
        self._outgoing: list[tuple[str, list[dict[str, Any]], datetime]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        store.node_seen(node, sip, clock())

    # -- doorbell ------------------------------------------------------------------------
    def start_doorbell(self, ring: Callable[[], None]) -> None:
        """Wake the engine (``ring``) when the leader's or this node's outbox gets a
        row; without LISTEN/NOTIFY (SQLite) the engine's polling alone reads them."""
        wait = getattr(self.store, "wait_doorbell", None)
        if wait is None:
            return
        for channel in (doorbell_channel(LEADER_DOORBELL), doorbell_channel(self.node)):
            t = threading.Thread(target=wait, args=(channel, self._stop, ring),
                                 name=f"doorbell {channel}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(3)
        self._threads.clear()

    # -- roles ---------------------------------------------------------------------------
    def lead(self) -> None:
        """This engine leads now: it goes on with the followers' events from where the
        leaders before it stopped (its own unsent ones are among them once flushed)."""
        self.flush()
        self.leading = True
        self._events_seq = self.store.node_events_read()
        self._calls.clear()

    def follow(self) -> None:
        """This engine does not lead any more: what it had not sent as the leader is
        dropped (the new leader decides anew from the stored state)."""
        self.leading = False
        self._outgoing.clear()
        self._calls.clear()

    def flush(self) -> None:
        """Send what a store outage held back, in order; StoreError while it lasts."""
        while self._unsent:
            body, at = self._unsent[0]
            if body["type"] in ("AgentRegistered", "AgentUnregistered"):
                self.store.set_agent_node(body["agent_id"], self.node,
                                          body["type"] == "AgentRegistered", at)
            self.store.send_node_event(self.node, body, at)
            self._unsent.pop(0)
        while self._outgoing:
            node, bodies, at = self._outgoing[0]
            self.store.send_node_decisions(node, bodies, at)
            self._outgoing.pop(0)

    # -- follower ------------------------------------------------------------------------
    def forward(self, event: Event, now: datetime) -> None:
        """A router event of this node, for the leader (a registration is also kept
        in ``node_agents``: the trunk to ring that agent through)."""
        self._unsent.append((encode(event), now))
        self.flush()

    def ask_position(self, call_id: str, now: datetime) -> None:
        """Ask the leader where a caller of this node is in line (`PositionAnswer`)."""
        self._unsent.append(({"type": _QUESTION, "call_id": call_id}, now))
        self.flush()

    def decisions(self) -> list[tuple[int, list[Decision], list[PositionAnswer]]]:
        """The leader's decision batches for this node's channels (and its answers to
        this node's position questions), in order."""
        out: list[tuple[int, list[Decision], list[PositionAnswer]]] = []
        for row in self.store.node_decisions_since(self.node, self._cursor):
            decisions: list[Decision] = []
            answers: list[PositionAnswer] = []
            try:
                for body in row.body:
                    if body.get("type") == _ANSWER:
                        where = body.get("where")
                        answers.append(PositionAnswer(str(body["call_id"]), None if where is None
                                                      else (int(where[0]), float(where[1]))))
                    else:
                        decisions.append(decode_decision(body))
            except Exception as exc:  # a batch this engine cannot read: say so, go on
                log.error("decision batch %d for node %s not readable: %s", row.seq,
                          self.node, exc)
                decisions, answers = [], []
            out.append((row.seq, decisions, answers))
        return out

    def carried_out(self, seq: int) -> None:
        self._cursor = seq
        self.store.set_node_cursor(self.node, seq)

    # -- leader ---------------------------------------------------------------------------
    def events(self) -> list[tuple[int, str, Event | PositionQuestion | None]]:
        """The followers' router events (and position questions) after the last one
        handled, in order; None for a row this engine cannot read (said, skipped)."""
        out: list[tuple[int, str, Event | PositionQuestion | None]] = []
        for row in self.store.node_events_since(self._events_seq):
            try:
                out.append((row.seq, row.node, PositionQuestion(str(row.body["call_id"]))
                            if row.body.get("type") == _QUESTION else decode_event(row.body)))
            except Exception as exc:
                log.error("event %d from node %s not readable: %s", row.seq, row.node, exc)
                out.append((row.seq, row.node, None))
        return out

    def answer_position(self, node: str, call_id: str, where: tuple[int, float] | None,
                        now: datetime) -> None:
        self.send_bodies(node, [{"type": _ANSWER, "call_id": call_id,
                                 "where": None if where is None else list(where)}], now)

    def handled(self, seq: int) -> None:
        """Fenced: a deposed leader's progress is refused (`store.leader.FencedOut`)."""
        self._events_seq = seq
        self.store.set_node_events_read(seq)

    def admits(self, event: Event, origin: str, now: datetime) -> bool:
        """Whether the router should see ``event`` from node ``origin``: not when an
        agent's phone unregisters from one node and is registered on another. A store
        outage admits the event (the router goes on with what it knows) and says so."""
        try:
            return self._admits(event, origin, now)
        except StoreError as exc:
            log.warning("node map not read or written for %s: %s", type(event).__name__, exc)
            return True

    def _admits(self, event: Event, origin: str, now: datetime) -> bool:
        if origin == self.node:
            if isinstance(event, AgentRegistered | AgentUnregistered):
                self.store.set_agent_node(event.agent_id, self.node,
                                          isinstance(event, AgentRegistered), now)
            if isinstance(event, CallArrived) and event.channel == "voice":
                self.store.own_call(event.call_id, self.node, now)
                self._calls[event.call_id] = self.node
        if isinstance(event, CallArrived):
            self._calls[event.call_id] = origin
        if isinstance(event, AgentUnregistered):
            elsewhere = [n for n in self.store.agent_nodes(event.agent_id) if n != origin]
            if elsewhere:
                log.info("agent %s unregistered from node %s, still registered on %s",
                         event.agent_id, origin, ", ".join(elsewhere))
                return False
        return True

    def owner(self, decision: Decision) -> str:
        """The node that carries ``decision`` out."""
        match decision:
            case OfferCall() if decision.callback:
                return self._agent_node(decision.agent_id)  # the dial-back rings the agent
            case OfferCall() | CancelOffer() | CallQueued() | OfferCallback() \
                    | CallOverflowed() | CallRejected():
                if getattr(decision, "channel", "voice") != "voice":
                    return self.node  # the chats' executor is the leader's
                return self.call_node(decision.call_id)
            case AgentPutOnBreak():
                return self._agent_node(decision.agent_id)
            case AgentStateChanged() | WakeAt() | EventIgnored() | OfferChat() \
                    | ReplyWithWait() | OfferChatCallback():
                return self.node
            case _:
                assert_never(decision)

    def call_node(self, call_id: str) -> str:
        node = self._calls.get(call_id)
        if node is None:
            node = self.store.call_node(call_id) or self.node
            self._calls[call_id] = node
        return node

    def send(self, node: str, decisions: list[Decision], now: datetime) -> None:
        """Fenced (`store.leader.FencedOut`: nothing more is sent); on another store
        error the batch waits, in order, for the next `flush`."""
        self.send_bodies(node, [encode(d) for d in decisions], now)

    def send_bodies(self, node: str, bodies: list[dict[str, Any]], now: datetime) -> None:
        self._outgoing.append((node, bodies, now))
        self.flush()

    def forget_call(self, call_id: str) -> None:
        self._calls.pop(call_id, None)

    # -- both ---------------------------------------------------------------------------
    def agent_via(self, agent_id: str, registered_here: bool) -> str:
        """The trunk endpoint to ring ``agent_id`` through, or "" when the phone is
        registered on this node (or on no node the store knows)."""
        if registered_here:
            return ""
        nodes = self.store.agent_nodes(agent_id)
        if not nodes or self.node in nodes:
            return ""
        return trunk_endpoint(nodes[0])

    def _agent_node(self, agent_id: str) -> str:
        nodes = self.store.agent_nodes(agent_id)
        return self.node if not nodes or self.node in nodes else nodes[0]
