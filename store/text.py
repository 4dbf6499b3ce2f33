"""The text channels' records: conversations, their transcript, processed message ids.

Three tables (``store.schema``): ``text_conversations`` (one per conversation,
the core's `text.Conversation` as JSON beside the columns a query needs),
``text_messages`` (the transcript, masked before it gets here: the core's
input is already `text.mask_secure`-ed), ``text_events`` (queue_log-style:
``handed-to-person`` ...), and ``text_processed`` (provider message ids seen:
a provider's retry of the same message is recognised and not handled twice).
A customer's earlier contacts are their conversations and the calls whose
caller is the same id (an SMS customer's number is a caller's number).
Same portable SQL rules as the rest of the store.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from routing.windows import check_aware
from store.dbapi import Connection

__all__ = ["TextMessage", "TextConversationRow", "TextTables", "TextStore", "TEXT_SCHEMA"]

TEXT_SCHEMA = """
CREATE TABLE IF NOT EXISTS text_conversations (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL CHECK (channel IN ('sms', 'messenger')),
    customer TEXT NOT NULL, state TEXT NOT NULL, language TEXT, intent TEXT,
    started_at TEXT NOT NULL, updated_at TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS text_conversations_customer
    ON text_conversations(channel, customer);
CREATE INDEX IF NOT EXISTS text_conversations_started ON text_conversations(started_at);
CREATE TABLE IF NOT EXISTS text_messages (
    conversation_id TEXT NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    text TEXT NOT NULL, message_id TEXT,
    PRIMARY KEY (conversation_id, seq)
);
CREATE TABLE IF NOT EXISTS text_events (
    conversation_id TEXT NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL,
    event TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE TABLE IF NOT EXISTS text_processed (
    channel TEXT NOT NULL, message_id TEXT NOT NULL, at TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (channel, message_id)
);
"""


def _iso(t: datetime) -> str:
    check_aware(t, "timestamp")
    return t.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class TextMessage:
    conversation_id: str
    seq: int
    at: datetime
    direction: str  # in | out
    text: str
    message_id: str | None


@dataclass(frozen=True, slots=True)
class TextConversationRow:
    id: str
    channel: str
    customer: str
    state: str
    language: str | None
    intent: str | None
    started_at: datetime
    updated_at: datetime
    data: dict[str, Any]


class TextStore(Protocol):
    def message_processed(self, channel: str, message_id: str) -> bool: ...
    def open_conversation(self, channel: str, customer: str) -> TextConversationRow | None: ...
    def save_conversation(self, row: TextConversationRow) -> None: ...
    def add_text_message(self, conversation_id: str, at: datetime, direction: str, text: str,
                         message_id: str | None = None, *, channel: str | None = None
                         ) -> bool: ...
    def add_text_event(self, conversation_id: str, at: datetime, event: str,
                       data: dict[str, Any]) -> int: ...
    def text_messages(self, conversation_id: str) -> list[TextMessage]: ...
    def text_events(self, conversation_id: str) -> list[tuple[datetime, str, dict[str, Any]]]: ...
    def text_conversations(self, customer: str | None = None, *,
                           since: datetime | None = None) -> list[TextConversationRow]: ...
    def text_conversation(self, conversation_id: str) -> TextConversationRow | None: ...
    def customer_contacts(self, customer: str) -> dict[str, list[str]]: ...


_CONV_COLS = "id, channel, customer, state, language, intent, started_at, updated_at, data"


def _conv(r: Sequence[Any]) -> TextConversationRow:
    return TextConversationRow(r[0], r[1], r[2], r[3], r[4], r[5],
                               datetime.fromisoformat(r[6]), datetime.fromisoformat(r[7]),
                               json.loads(r[8]))


class TextTables:
    """Mixed into `store.sql.SqlStore`: uses its ``_tx`` and ``_read``."""

    _tx: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[..., list[Any]]

    def message_processed(self, channel: str, message_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM text_processed WHERE channel = ? AND "
                               "message_id = ?", (channel, message_id)))

    def open_conversation(self, channel: str, customer: str) -> TextConversationRow | None:
        """The customer's latest conversation on ``channel`` not closed."""
        rows = self._read(f"SELECT {_CONV_COLS} FROM text_conversations "  # noqa: S608
                          "WHERE channel = ? AND customer = ? AND state <> 'closed' "
                          "ORDER BY started_at DESC LIMIT 1", (channel, customer))
        return _conv(rows[0]) if rows else None

    def save_conversation(self, row: TextConversationRow) -> None:
        with self._tx() as db:
            db.execute(
                f"INSERT INTO text_conversations({_CONV_COLS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "state = excluded.state, language = excluded.language, "
                "intent = excluded.intent, updated_at = excluded.updated_at, "
                "data = excluded.data",
                (row.id, row.channel, row.customer, row.state, row.language, row.intent,
                 _iso(row.started_at), _iso(row.updated_at),
                 json.dumps(row.data, sort_keys=True)))

    def add_text_message(self, conversation_id: str, at: datetime, direction: str, text: str,
                         message_id: str | None = None, *, channel: str | None = None
                         ) -> bool:
        """Append to the transcript. With ``channel`` and ``message_id`` (an inbound
        message) the id is claimed in the same transaction: False, and nothing
        written, when it was already processed (a provider's retry)."""
        with self._tx() as db:
            if channel is not None and message_id is not None:
                if db.execute("SELECT 1 FROM text_processed WHERE channel = ? AND "
                              "message_id = ?", (channel, message_id)).fetchone():
                    return False
                db.execute("INSERT INTO text_processed(channel, message_id, at, "
                           "conversation_id) VALUES (?, ?, ?, ?)",
                           (channel, message_id, _iso(at), conversation_id))
            seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM text_messages "
                                 "WHERE conversation_id = ?", (conversation_id,))
                      .fetchone()[0])
            db.execute("INSERT INTO text_messages(conversation_id, seq, at, direction, text, "
                       "message_id) VALUES (?, ?, ?, ?, ?, ?)",
                       (conversation_id, seq, _iso(at), direction, text, message_id))
            return True

    def add_text_event(self, conversation_id: str, at: datetime, event: str,
                       data: dict[str, Any]) -> int:
        with self._tx() as db:
            seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM text_events "
                                 "WHERE conversation_id = ?", (conversation_id,))
                      .fetchone()[0])
            db.execute("INSERT INTO text_events(conversation_id, seq, at, event, data) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (conversation_id, seq, _iso(at), event, json.dumps(data,
                                                                          sort_keys=True)))
            return seq

    def text_messages(self, conversation_id: str) -> list[TextMessage]:
        rows = self._read("SELECT conversation_id, seq, at, direction, text, message_id FROM "
                          "text_messages WHERE conversation_id = ? ORDER BY seq",
                          (conversation_id,))
        return [TextMessage(r[0], int(r[1]), datetime.fromisoformat(r[2]), r[3], r[4], r[5])
                for r in rows]

    def text_events(self, conversation_id: str) -> list[tuple[datetime, str, dict[str, Any]]]:
        rows = self._read("SELECT at, event, data FROM text_events WHERE conversation_id = ? "
                          "ORDER BY seq", (conversation_id,))
        return [(datetime.fromisoformat(r[0]), r[1], json.loads(r[2])) for r in rows]

    def text_conversations(self, customer: str | None = None, *,
                           since: datetime | None = None) -> list[TextConversationRow]:
        """Conversations, oldest first: all, a customer's, or those started since ``since``."""
        where, params = [], []
        if customer is not None:
            where.append("customer = ?")
            params.append(customer)
        if since is not None:
            where.append("started_at >= ?")
            params.append(_iso(since))
        sql = f"SELECT {_CONV_COLS} FROM text_conversations"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_conv(r) for r in self._read(sql + " ORDER BY started_at, id", tuple(params))]

    def text_conversation(self, conversation_id: str) -> TextConversationRow | None:
        rows = self._read(f"SELECT {_CONV_COLS} FROM text_conversations "  # noqa: S608
                          "WHERE id = ?", (conversation_id,))
        return _conv(rows[0]) if rows else None

    def customer_contacts(self, customer: str) -> dict[str, list[str]]:
        """The customer's earlier contacts by their id: conversations (any channel)
        and calls whose caller is the same number."""
        convs = self._read("SELECT id FROM text_conversations WHERE customer = ? "
                           "ORDER BY started_at", (customer,))
        # a record with no arrival time first on both stores (PostgreSQL puts NULL
        # last by itself, SQLite first), then by the call id: one order on both
        calls = self._read("SELECT call_id FROM call_records WHERE caller = ? ORDER BY "
                           "CASE WHEN arrived_at IS NULL THEN 0 ELSE 1 END, arrived_at, "
                           "call_id", (customer,))
        return {"conversations": [r[0] for r in convs], "calls": [r[0] for r in calls]}
