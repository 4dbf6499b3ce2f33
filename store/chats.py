"""Text conversations in the router: each time a conversation is handed to a person
it becomes a *chat route* (the router's interaction, keyed by ``route_id``), and
what the web app and the engine tell each other about it.

Two tables (same portable SQL rules as the rest of the store, ``store.schema``):

- ``chat_routes``: one row per routing of a conversation (a transfer to another
  queue is a new route of the same conversation: the router never sees one id
  twice). Its ``state`` is where the route stands for the agent's portal:
  ``waiting`` (in line), ``offered`` (to ``agent_id`` until ``offer_expires_at``),
  ``accepted`` (the agent has it), ``callback`` (the customer asked to be called
  back: a voice callback now), ``ended`` (``ended_by``: agent, transfer,
  customer, system), ``rejected`` (nobody can serve it). The engine's
  chat executor writes the router's side (offered, back to waiting, rejected,
  queue moves), the web app the agent's (accepted, ended, first reply), the
  text channels the survey's answer after the chat (``survey_score``,
  ``survey_comment``: the customer's words after the score, masked), as
  ``call_records`` keeps the call survey.
- ``chat_requests``: a change feed the web app appends and the engine reads
  (`ChatTables.chat_requests_since`), like ``agent_requests``: ``route`` (a new
  route waits for an agent), ``accept``, ``pass``, ``end``, ``callback``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from routing.windows import check_aware
from store.dbapi import Connection
from store.errors import StoreError

__all__ = ["CHAT_SCHEMA", "CHAT_ROUTE_STATES", "CHAT_REQUEST_KINDS", "ChatRoute",
           "ChatRequest", "ChatStore", "ChatTables"]

CHAT_ROUTE_STATES = ("waiting", "offered", "accepted", "callback", "ended", "rejected")
CHAT_REQUEST_KINDS = ("route", "accept", "pass", "end", "callback")
OPEN_STATES = ("waiting", "offered", "accepted")

CHAT_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_routes (
    route_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'messenger')),
    customer TEXT NOT NULL, queue_id TEXT NOT NULL, language TEXT, intent TEXT,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'offered', 'accepted', 'callback',
        'ended', 'rejected')),
    agent_id TEXT, routed_at TEXT NOT NULL, offered_at TEXT, offer_expires_at TEXT,
    accepted_at TEXT, first_reply_at TEXT, ended_at TEXT, ended_by TEXT, wrap_up TEXT,
    survey_score INTEGER, survey_comment TEXT, position INTEGER,
    expected_wait_s DOUBLE PRECISION, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_routes_agent ON chat_routes(agent_id, state);
CREATE INDEX IF NOT EXISTS chat_routes_conversation ON chat_routes(conversation_id);
CREATE INDEX IF NOT EXISTS chat_routes_routed ON chat_routes(routed_at);
CREATE TABLE IF NOT EXISTS chat_requests (
    seq BIGINT PRIMARY KEY, route_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('route', 'accept', 'pass', 'end', 'callback')),
    agent_id TEXT, at TEXT NOT NULL, data TEXT NOT NULL
);
"""

_TIMES = ("routed_at", "offered_at", "offer_expires_at", "accepted_at", "first_reply_at",
          "ended_at", "updated_at")
_COLS = ("route_id", "conversation_id", "channel", "customer", "queue_id", "language",
         "intent", "state", "agent_id", "routed_at", "offered_at", "offer_expires_at",
         "accepted_at", "first_reply_at", "ended_at", "ended_by", "wrap_up", "position",
         "expected_wait_s", "updated_at", "survey_score", "survey_comment")
_UPDATABLE = frozenset(_COLS) - {"route_id", "conversation_id", "channel", "customer",
                                 "routed_at", "updated_at"}


def _iso(t: datetime) -> str:
    check_aware(t, "timestamp")
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _t(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


@dataclass(frozen=True, slots=True)
class ChatRoute:
    route_id: str
    conversation_id: str
    channel: str
    customer: str
    queue_id: str
    language: str | None
    intent: str | None
    state: str
    agent_id: str | None
    routed_at: datetime
    offered_at: datetime | None
    offer_expires_at: datetime | None
    accepted_at: datetime | None
    first_reply_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    wrap_up: str | None
    position: int | None
    expected_wait_s: float | None
    updated_at: datetime
    survey_score: int | None = None
    survey_comment: str | None = None

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class ChatRequest:
    seq: int
    route_id: str
    kind: str
    agent_id: str | None
    at: datetime
    data: dict[str, Any]


def _route(r: Sequence[Any]) -> ChatRoute:
    v = dict(zip(_COLS, r, strict=True))
    for k in _TIMES:
        v[k] = _t(v[k])
    v["position"] = None if v["position"] is None else int(v["position"])
    v["expected_wait_s"] = None if v["expected_wait_s"] is None else float(v["expected_wait_s"])
    v["survey_score"] = None if v["survey_score"] is None else int(v["survey_score"])
    return ChatRoute(**v)


@runtime_checkable
class ChatStore(Protocol):
    def route_chat(self, conversation_id: str, channel: str, customer: str, queue_id: str,
                   language: str | None, intent: str | None, now: datetime,
                   skills: Sequence[str] = ()) -> ChatRoute: ...
    def request_chat(self, route_id: str, kind: str, agent_id: str | None, now: datetime,
                     data: dict[str, Any] | None = None) -> int: ...
    def chat_requests_seq(self) -> int: ...
    def chat_requests_since(self, seq: int) -> tuple[list[ChatRequest], int]: ...
    def chat_route(self, route_id: str) -> ChatRoute | None: ...
    def open_chat_route(self, conversation_id: str) -> ChatRoute | None: ...
    def chat_routes(self, *, agent_id: str | None = None, states: Sequence[str] = (),
                    conversation_id: str | None = None, since: datetime | None = None
                    ) -> list[ChatRoute]: ...
    def update_chat_route(self, route_id: str, now: datetime, *,
                          expect_states: Sequence[str] = (), expect_agent: str | None = None,
                          **fields: Any) -> bool: ...


class ChatTables:
    """Mixed into `store.sql.SqlStore`: uses its ``_tx`` and ``_read``."""

    _tx: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[..., list[Any]]

    def route_chat(self, conversation_id: str, channel: str, customer: str, queue_id: str,
                   language: str | None, intent: str | None, now: datetime,
                   skills: Sequence[str] = ()) -> ChatRoute:
        """A new route of the conversation, waiting, and the ``route`` request that
        tells the engine, in one transaction. Its id is the conversation's id with
        the route's number (``...#2`` after a transfer)."""
        at = _iso(now)
        with self._tx() as db:
            n = int(db.execute("SELECT COUNT(*) FROM chat_routes WHERE conversation_id = ?",
                               (conversation_id,)).fetchone()[0]) + 1
            route_id = f"{conversation_id}#{n}"
            db.execute("INSERT INTO chat_routes(route_id, conversation_id, channel, customer, "
                       "queue_id, language, intent, state, routed_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?)",
                       (route_id, conversation_id, channel, customer, queue_id, language,
                        intent, at, at))
            data = {"channel": channel, "customer": customer, "queue_id": queue_id,
                    "language": language, "intent": intent or "", "skills": list(skills)}
            self._append_request(db, route_id, "route", None, at, data)
        got = self.chat_route(route_id)
        assert got is not None
        return got

    @staticmethod
    def _append_request(db: Connection, route_id: str, kind: str,
                        agent_id: str | None, at: str, data: dict[str, Any]) -> int:
        seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_requests")
                  .fetchone()[0])
        db.execute("INSERT INTO chat_requests(seq, route_id, kind, agent_id, at, data) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (seq, route_id, kind, agent_id, at, json.dumps(data, sort_keys=True)))
        return seq

    def request_chat(self, route_id: str, kind: str, agent_id: str | None, now: datetime,
                     data: dict[str, Any] | None = None) -> int:
        """Append a request for the engine (``accept``, ``pass``, ``end``, ``callback``)."""
        if kind not in CHAT_REQUEST_KINDS or kind == "route":
            raise StoreError(f"chat request {kind!r}: not one of accept, pass, end, callback")
        with self._tx() as db:
            return self._append_request(db, route_id, kind, agent_id, _iso(now), data or {})

    def chat_requests_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM chat_requests")[0][0])

    def chat_requests_since(self, seq: int) -> tuple[list[ChatRequest], int]:
        rows = self._read("SELECT seq, route_id, kind, agent_id, at, data FROM chat_requests "
                          "WHERE seq > ? ORDER BY seq", (seq,))
        out = [ChatRequest(int(r[0]), r[1], r[2], r[3], datetime.fromisoformat(r[4]),
                           json.loads(r[5])) for r in rows]
        return out, out[-1].seq if out else seq

    def chat_route(self, route_id: str) -> ChatRoute | None:
        rows = self._read(f"SELECT {', '.join(_COLS)} FROM chat_routes "  # noqa: S608
                          "WHERE route_id = ?", (route_id,))
        return _route(rows[0]) if rows else None

    def open_chat_route(self, conversation_id: str) -> ChatRoute | None:
        """The conversation's route still waiting, offered or accepted (at most one)."""
        rows = self._read(f"SELECT {', '.join(_COLS)} FROM chat_routes "  # noqa: S608
                          "WHERE conversation_id = ? AND state IN ('waiting', 'offered', "
                          "'accepted') ORDER BY routed_at DESC LIMIT 1", (conversation_id,))
        return _route(rows[0]) if rows else None

    def chat_routes(self, *, agent_id: str | None = None, states: Sequence[str] = (),
                    conversation_id: str | None = None, since: datetime | None = None
                    ) -> list[ChatRoute]:
        where, params = [], []
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(states)
        if conversation_id is not None:
            where.append("conversation_id = ?")
            params.append(conversation_id)
        if since is not None:
            where.append("routed_at >= ?")
            params.append(_iso(since))
        sql = f"SELECT {', '.join(_COLS)} FROM chat_routes"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_route(r) for r in self._read(sql + " ORDER BY routed_at, route_id",
                                              tuple(params))]

    def update_chat_route(self, route_id: str, now: datetime, *,
                          expect_states: Sequence[str] = (), expect_agent: str | None = None,
                          **fields: Any) -> bool:
        """Set ``fields`` on the route if it is in one of ``expect_states`` (and offered
        to / held by ``expect_agent``): False, and nothing changed, otherwise. What
        both the engine and the web app write goes through this compare-and-set, so
        an offer that timed out cannot be accepted, nor an accepted chat re-offered."""
        bad = set(fields) - _UPDATABLE
        if bad:
            raise StoreError(f"chat route: cannot set {', '.join(sorted(bad))}")
        if "state" in fields and fields["state"] not in CHAT_ROUTE_STATES:
            raise StoreError(f"chat route state {fields['state']!r}: not one of "
                             f"{', '.join(CHAT_ROUTE_STATES)}")
        vals = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in fields.items()}
        vals["updated_at"] = _iso(now)
        sql = (f"UPDATE chat_routes SET {', '.join(f'{k} = ?' for k in vals)} "  # noqa: S608
               "WHERE route_id = ?")
        params: list[Any] = [*vals.values(), route_id]
        if expect_states:
            sql += f" AND state IN ({', '.join('?' for _ in expect_states)})"
            params.extend(expect_states)
        if expect_agent is not None:
            sql += " AND agent_id = ?"
            params.append(expect_agent)
        with self._tx() as db:
            return db.execute(sql, tuple(params)).rowcount == 1
