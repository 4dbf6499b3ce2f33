"""The text channels' tables: transcript, processed ids claimed with the message,
conversations linked to the customer's calls; a schema 5 store gains them."""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pg_kit import StoreMaker

from store import SCHEMA_VERSION, CallRecord, SqliteStore
from store.text import TextConversationRow

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _row(cid: str, customer: str = "+15550123", state: str = "self-service"
         ) -> TextConversationRow:
    return TextConversationRow(cid, "sms", customer, state, "en", None, T0, T0,
                               {"state": state})


def test_message_ids_are_claimed_once_with_the_message(make_store: StoreMaker) -> None:
    with make_store() as s:
        s.save_conversation(_row("c1"))
        assert s.add_text_message("c1", T0, "in", "hello", "SM1", channel="sms")
        assert not s.add_text_message("c1", T0, "in", "hello", "SM1", channel="sms")
        assert s.message_processed("sms", "SM1") and not s.message_processed("messenger", "SM1")
        assert s.add_text_message("c1", T0 + timedelta(seconds=1), "out", "hi there")
        assert [(m.seq, m.direction, m.text) for m in s.text_messages("c1")] == [
            (1, "in", "hello"), (2, "out", "hi there")]


def test_open_conversation_and_the_customers_earlier_contacts(make_store: StoreMaker) -> None:
    with make_store() as s:
        s.record_call(CallRecord("call-1", caller="+15550123", arrived_at=T0 - timedelta(days=2)))
        s.save_conversation(_row("c-old", state="closed"))
        s.save_conversation(_row("c-new"))
        s.add_text_event("c-new", T0, "handed-to-person", {"reason": "asked for a person"})
        got = s.open_conversation("sms", "+15550123")
        assert got is not None and got.id == "c-new"
        assert s.text_events("c-new") == [(T0, "handed-to-person",
                                           {"reason": "asked for a person"})]
        assert s.customer_contacts("+15550123") == {"conversations": ["c-old", "c-new"],
                                                    "calls": ["call-1"]}


def test_a_schema_5_store_gains_the_text_tables(tmp_path: Path) -> None:
    path = tmp_path / "v5.sqlite3"
    with SqliteStore(path) as s:
        s.record_call(CallRecord("call-1", caller="+1"))
    db = sqlite3.connect(path)
    for t in ("text_conversations", "text_messages", "text_events", "text_processed"):
        db.execute(f"DROP TABLE {t}")
    db.execute("UPDATE schema_version SET version = 5")
    db.commit()
    db.close()
    with SqliteStore(path) as s:
        assert s.schema_version() == SCHEMA_VERSION == 7
        assert len(s.calls()) == 1 and s.text_conversations() == []
