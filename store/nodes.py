"""Several engines, one router leader (issue 13): what the nodes and the leader tell
each other, through the shared store.

Each node is one Asterisk and the engine serving it (FastAGI, AMI). The router runs
in the leader only (store/leader.py); the other engines (followers) translate
their own AMI events and carry out the decisions about their own channels:

- ``node_events``: router events a follower saw on its node (a caller routed by its
  IVR, an agent registered there, a hang-up), in order, for the leader;
  ``node_events_read`` is how far the leader has handled them (a new leader goes
  on from there);
- ``node_decisions``: the leader's decisions about another node's channels (an
  offer to ring an agent, a caller back on hold), one row a batch, each carrying
  the leader's fencing epoch: the insert is refused (`FencedOut`) once a newer
  epoch leads, and a follower reads only the rows of the epoch leading now, so a
  deposed leader's late decision is never carried out. ``node_cursors``: how far
  each node has carried them out (a follower that restarts does nothing twice);
- ``node_calls``: which node holds a call's channel (written by that node when
  its IVR routes the call); ``node_agents``: on which node an agent's phone is
  registered (written by that node as AMI tells it);
- ``nodes``: every node's SIP address and when its engine was last seen
  (`homeline cluster status`).

The outboxes are polled (every 0.05 s by a busy engine); on PostgreSQL an insert
also rings a doorbell (``NOTIFY homeline_node_<node>``, delivered at commit:
PostgreSQL docs, NOTIFY) that wakes the reader at once. Bodies are the router
journal's JSON (routing.journal.encode), so nothing here knows an event's shape.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from store.dbapi import Connection

__all__ = ["NODE_SCHEMA", "NodeTables", "NodeRow", "doorbell_channel"]

NODE_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_events (
    seq BIGINT PRIMARY KEY, node TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS node_events_read (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, epoch BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS node_decisions (
    seq BIGINT PRIMARY KEY, node TEXT NOT NULL, epoch BIGINT NOT NULL, at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS node_decisions_node ON node_decisions(node, seq);
CREATE TABLE IF NOT EXISTS node_cursors (
    node TEXT PRIMARY KEY, seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS node_calls (
    call_id TEXT PRIMARY KEY, node TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS node_agents (
    agent_id TEXT NOT NULL, node TEXT NOT NULL, registered INTEGER NOT NULL,
    at TEXT NOT NULL, PRIMARY KEY (agent_id, node)
);
CREATE TABLE IF NOT EXISTS nodes (
    node TEXT PRIMARY KEY, sip TEXT NOT NULL, seen_at TEXT NOT NULL
);
"""

LEADER_DOORBELL = "leader"


def doorbell_channel(node: str) -> str:
    """The NOTIFY channel a node's reader listens on (``leader`` for the leader's)."""
    return "homeline_node_" + "".join(c if c.isalnum() else "_" for c in node)[:40]


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One outbox row: ``node`` the sender (events) or the addressee (decisions)."""

    seq: int
    node: str
    body: Any


class NodeTables:
    """The outboxes and the node maps (the store's SQL; `store.sql.SqlStore` mixes it in)."""

    where: str

    def _tx(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _check_epoch(self, db: Connection) -> None:
        raise NotImplementedError

    def _doorbell(self, db: Connection, channel: str) -> None:
        """Wake the reader of ``channel`` when this transaction commits (PostgreSQL)."""

    _epoch: int | None

    @staticmethod
    def _next(db: Connection, table: str) -> int:
        row = db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()  # noqa: S608
        return int(row[0])

    # -- follower -> leader ----------------------------------------------------------
    def send_node_event(self, node: str, body: dict[str, Any], now: datetime) -> int:
        """A router event seen on ``node``, for the leader; a call the node's IVR
        routes (``CallArrived``) is the node's from now on (``node_calls``)."""
        with self._tx() as db:
            seq = self._next(db, "node_events")
            db.execute("INSERT INTO node_events(seq, node, at, body) VALUES (?, ?, ?, ?)",
                       (seq, node, _iso(now), json.dumps(body, sort_keys=True)))
            if body.get("type") == "CallArrived" and body.get("call_id"):
                self._own_call(db, str(body["call_id"]), node, now)
            self._doorbell(db, doorbell_channel(LEADER_DOORBELL))
        return seq

    def _own_call(self, db: Connection, call_id: str, node: str, now: datetime) -> None:
        db.execute("INSERT INTO node_calls(call_id, node, at) VALUES (?, ?, ?) "
                   "ON CONFLICT(call_id) DO UPDATE SET node=excluded.node, at=excluded.at",
                   (call_id, node, _iso(now)))

    def own_call(self, call_id: str, node: str, now: datetime) -> None:
        """The leader's own calls are written down too (a later leader needs them)."""
        with self._tx() as db:
            self._own_call(db, call_id, node, now)

    def node_events_since(self, seq: int, limit: int = 500) -> list[NodeRow]:
        rows = self._read("SELECT seq, node, body FROM node_events WHERE seq > ? "
                          "ORDER BY seq LIMIT ?", (seq, limit))
        return [NodeRow(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

    def node_events_read(self) -> int:
        """How far the leaders have handled the followers' events."""
        rows = self._read("SELECT seq FROM node_events_read WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def set_node_events_read(self, seq: int) -> None:
        """Fenced: a deposed leader's progress is not written (`FencedOut`)."""
        with self._tx() as db:
            self._check_epoch(db)
            db.execute("INSERT INTO node_events_read(id, seq, epoch) VALUES (1, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET seq=excluded.seq, epoch=excluded.epoch",
                       (seq, self._epoch or 0))

    # -- leader -> follower ----------------------------------------------------------
    def send_node_decisions(self, node: str, bodies: Sequence[dict[str, Any]],
                            now: datetime) -> int:
        """One batch of decisions for ``node``'s channels, carrying the epoch this
        store is fenced with; refused (`FencedOut`) when a newer epoch leads."""
        with self._tx() as db:
            self._check_epoch(db)
            seq = self._next(db, "node_decisions")
            db.execute("INSERT INTO node_decisions(seq, node, epoch, at, body) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (seq, node, self._epoch or 0, _iso(now),
                        json.dumps(list(bodies), sort_keys=True)))
            self._doorbell(db, doorbell_channel(node))
        return seq

    def node_decisions_since(self, node: str, seq: int, limit: int = 200) -> list[NodeRow]:
        """``node``'s decision batches after ``seq`` written by the epoch that leads now:
        a deposed leader's rows are skipped (never carried out)."""
        rows = self._read(
            "SELECT seq, node, body FROM node_decisions WHERE node = ? AND seq > ? AND "
            "epoch = (SELECT COALESCE(MAX(epoch), 0) FROM router_leader) "
            "ORDER BY seq LIMIT ?", (node, seq, limit))
        return [NodeRow(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

    def node_decisions_end(self, node: str) -> int:
        """The last decision batch written for ``node`` (any epoch)."""
        rows = self._read("SELECT COALESCE(MAX(seq), 0) FROM node_decisions WHERE node = ?",
                          (node,))
        return int(rows[0][0])

    def node_cursor(self, node: str) -> int | None:
        """How far ``node`` has carried out its decisions (None: never started)."""
        rows = self._read("SELECT seq FROM node_cursors WHERE node = ?", (node,))
        return int(rows[0][0]) if rows else None

    def set_node_cursor(self, node: str, seq: int) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO node_cursors(node, seq) VALUES (?, ?) ON CONFLICT(node) "
                       "DO UPDATE SET seq=excluded.seq", (node, seq))

    # -- who holds what ----------------------------------------------------------------
    def call_node(self, call_id: str) -> str | None:
        rows = self._read("SELECT node FROM node_calls WHERE call_id = ?", (call_id,))
        return str(rows[0][0]) if rows else None

    def set_agent_node(self, agent_id: str, node: str, registered: bool,
                       now: datetime) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO node_agents(agent_id, node, registered, at) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT(agent_id, node) DO UPDATE SET "
                       "registered=excluded.registered, at=excluded.at",
                       (agent_id, node, 1 if registered else 0, _iso(now)))

    def agent_nodes(self, agent_id: str) -> list[str]:
        """The nodes where ``agent_id``'s phone is registered, latest first."""
        rows = self._read("SELECT node FROM node_agents WHERE agent_id = ? AND "
                          "registered = 1 ORDER BY at DESC, node", (agent_id,))
        return [str(r[0]) for r in rows]

    def registered_agents_by_node(self) -> dict[str, list[str]]:
        rows = self._read("SELECT node, agent_id FROM node_agents WHERE registered = 1 "
                          "ORDER BY node, agent_id")
        out: dict[str, list[str]] = {}
        for node, agent in rows:
            out.setdefault(str(node), []).append(str(agent))
        return out

    def node_seen(self, node: str, sip: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO nodes(node, sip, seen_at) VALUES (?, ?, ?) "
                       "ON CONFLICT(node) DO UPDATE SET sip=excluded.sip, "
                       "seen_at=excluded.seen_at", (node, sip, _iso(now)))

    def nodes(self) -> list[tuple[str, str, datetime]]:
        rows = self._read("SELECT node, sip, seen_at FROM nodes ORDER BY node")
        return [(str(r[0]), str(r[1]), datetime.fromisoformat(r[2])) for r in rows]
