"""The store on real files and databases: schema version and migration (SQLite files of
older versions), change feeds, call records (SQLite and PostgreSQL: `make_store`)."""
from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pg_kit import StoreMaker

import store.postgres as postgres_mod
import store.sql as sql_mod
import store.sqlite as sqlite_mod
import store.text as text_mod
from routing.events import AgentEndedWrapUp, AgentMadeAvailable, AgentWentOnBreak
from routing.windows import HourWindow
from store import (
    SCHEMA,
    SCHEMA_VERSION,
    CallRecord,
    SqliteStore,
    StoreError,
    chats,
    desk,
    media,
)

T0 = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)

# the schema of the store before schema_version existed (routing/store.py, version 1)
V1 = """
CREATE TABLE hours_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, agent_id TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE call_records (call_id TEXT PRIMARY KEY, queue_id TEXT, agent_id TEXT, caller TEXT,
    arrived_at TEXT, answered_at TEXT, ended_at TEXT, outcome TEXT, reason TEXT);
INSERT INTO hours_log(agent_id, at) VALUES ('alice', '2026-11-01T00:00:00+00:00');
INSERT INTO call_records VALUES ('old1', 'billing', 'alice', '+331', '2026-11-01T10:00:00+00:00',
    '2026-11-01T10:00:20+00:00', '2026-11-01T10:05:00+00:00', 'completed', NULL);
"""


def test_a_version_1_store_is_migrated_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V1)
    db.close()
    with SqliteStore(path) as s:
        assert s.schema_version() == SCHEMA_VERSION == 7
        (old,) = s.calls()
        assert (old.call_id, old.agent_id, old.outcome) == ("old1", "alice", "completed")
        assert old.intent is None and old.survey_score is None
        s.record_call(CallRecord("old1", intent="billing", survey_score=4))
        (old,) = s.calls()
        assert (old.intent, old.survey_score, old.caller) == ("billing", 4, "+331")
        # the feed continues after the old rows, without AUTOINCREMENT
        assert s.save_hours("bob", [HourWindow(0, 600, 720)], [], T0) == 2
    with SqliteStore(path) as s:  # opening again changes nothing
        assert s.schema_version() == 7 and len(s.calls()) == 1


def test_a_version_2_store_gains_the_fair_share_clocks_and_keeps_its_router_state(
        tmp_path: Path) -> None:
    from routing.snapshot import FairnessSnapshot, RouterChanges, ShareClockSnapshot

    path = tmp_path / "v2.sqlite3"
    v2 = SCHEMA.replace(",\n    fairness TEXT\n", "\n")
    assert "fairness" not in v2
    db = sqlite3.connect(path)
    db.executescript(v2)
    db.execute("INSERT INTO schema_version(version) VALUES (2)")
    db.execute("INSERT INTO router_meta VALUES (1, 1, '2026-11-30T10:00:00+00:00', "
               "1796032800.0, 7, '2026-11-30T10:00:01+00:00')")
    db.commit()
    db.close()
    with SqliteStore(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        old = s.load_router_snapshot()
        assert old is not None and old.seq == 7 and old.fairness is None
        clock = ShareClockSnapshot("billing", "en", 120.0, 1, 1796032900.0)
        fair = FairnessSnapshot(1795996800.0, (clock,), clock, 2, 5)
        s.save_router_changes(RouterChanges(1796032900.0, 1796032901.0, 8, fairness=fair))
        assert s.load_router_snapshot().fairness == fair


def test_a_store_from_a_newer_homeline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer Homeline .schema 99"):
        SqliteStore(path)


def test_agent_requests_feed_router_events_in_order(make_store: StoreMaker) -> None:
    with make_store() as s:
        assert s.agent_requests_since(0) == ([], 0)
        assert s.request_agent_state("alice", "break", "lunch", T0) == 1
        s.request_agent_state("bob", "end-wrap-up", "", T0)
        s.request_agent_state("alice", "available", "", T0 + timedelta(minutes=30))
        events, seq = s.agent_requests_since(0)
        assert events == [AgentWentOnBreak("alice", "lunch"), AgentEndedWrapUp("bob"),
                          AgentMadeAvailable("alice")]
        assert seq == 3 == s.agent_requests_seq()
        assert s.agent_requests_since(seq) == ([], 3)
        assert s.agent_requests_since(2) == ([AgentMadeAvailable("alice")], 3)
        with pytest.raises(StoreError, match="not one of available, break, end-wrap-up"):
            s.request_agent_state("alice", "lunch", "", T0)
        with pytest.raises(ValueError):
            s.request_agent_state("alice", "break", "", datetime(2026, 11, 30, 18))


def test_call_records_upsert_and_events(make_store: StoreMaker) -> None:
    with make_store() as s:
        s.record_call(CallRecord("c1", caller="+331", arrived_at=T0, flow="main-menu",
                                 flow_version="3", language="fr", intent="billing",
                                 variables={"account_type": "pro"}))
        s.record_call(CallRecord("c1", queue_id="billing", queued_at=T0 + timedelta(seconds=20)))
        s.record_call(CallRecord("c1", agent_id="alice", answered_at=T0 + timedelta(seconds=50),
                                 ended_at=T0 + timedelta(minutes=6), outcome="completed",
                                 wrap_up_s=12.5, survey_score=5,
                                 survey_comment="/var/spool/c1.wav"))
        s.record_call(CallRecord("c2", arrived_at=T0 + timedelta(hours=3),
                                 ended_at=T0 + timedelta(hours=3, minutes=1), outcome="ivr-ended",
                                 reason="after hours"))
        c1, c2 = s.calls()
        assert (c1.caller, c1.flow, c1.flow_version, c1.language, c1.queue_id, c1.agent_id,
                c1.outcome, c1.wrap_up_s, c1.survey_score, c1.survey_comment) == (
            "+331", "main-menu", "3", "fr", "billing", "alice", "completed", 12.5, 5,
            "/var/spool/c1.wav")
        assert c1.arrived_at == T0 and c1.queued_at == T0 + timedelta(seconds=20)
        assert c1.variables == {"account_type": "pro"}
        assert c2.outcome == "ivr-ended" and c2.agent_id is None
        assert [c.call_id for c in s.calls(since=T0 + timedelta(hours=1))] == ["c2"]
        assert s.add_call_event("c1", T0 + timedelta(seconds=20), "enter",
                                data={"queue": "billing"}) == 1
        assert s.add_call_event("c1", T0 + timedelta(seconds=21), "offered", "alice") == 2
        assert s.add_call_event("c2", T0, "ivr-ended") == 1
        ev = s.call_events(["c1", "c2", "nope"])
        assert [(e.seq, e.event, e.agent_id) for e in ev["c1"]] == [
            (1, "enter", None), (2, "offered", "alice")]
        assert ev["c1"][0].data == {"queue": "billing"} and ev["nope"] == []
        with pytest.raises(StoreError, match="not one of enter, offered"):
            s.add_call_event("c1", T0, "hung-up")


SQLITE_ONLY = re.compile(r"INSERT OR |REPLACE INTO|AUTOINCREMENT|datetime\(|strftime\(|"
                         r"julianday\(|json_\w+\(|\bGLOB\b|IFNULL\(|randomblob|"
                         r"WITHOUT ROWID|last_insert_rowid", re.IGNORECASE)


def test_sql_is_the_portable_subset() -> None:
    """No SQLite-only construct in the schema or in any statement of the implementation
    (the SQL both backends run, and each backend's own)."""
    source = "".join(Path(m.__file__).read_text() for m in (sql_mod, sqlite_mod, postgres_mod,
                                                           media, desk, text_mod, chats))
    statements = re.findall(r'"((?:SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER)[^"]*)"', source)
    assert len(statements) > 60
    for text in [SCHEMA, *statements]:
        assert not SQLITE_ONLY.search(text), text
    columns = re.sub(r"CHECK \((?:[^()]|\([^()]*\))*\)", "", SCHEMA)
    types = set(re.findall(r"(?:\(|,)\s*[a-z_]+ ([A-Z]+(?: PRECISION)?)", columns))
    assert types <= {"TEXT", "INTEGER", "BIGINT", "DOUBLE PRECISION"}, types


def test_agent_state_log_gives_the_state_each_period_begins_in(make_store: StoreMaker):
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
    with make_store() as s:
        s.add_agent_state("ana", "available", t0 - timedelta(hours=2))
        s.add_agent_state("ana", "on_call", t0 - timedelta(hours=1))
        s.add_agent_state("ben", "break", t0 - timedelta(minutes=5))
        s.add_agent_state("ana", "wrap_up", t0 + timedelta(minutes=3))
        got = s.agent_states(t0)
    assert got == [("ana", "on_call", t0 - timedelta(hours=1)),
                   ("ben", "break", t0 - timedelta(minutes=5)),
                   ("ana", "wrap_up", t0 + timedelta(minutes=3))]


def test_a_version_4_store_takes_supervisor_events_and_keeps_its_call_events(
        tmp_path: Path) -> None:
    """Version 5 widens call_events' CHECK (kind 'supervisor'): the table is rebuilt
    with its rows, and the desk's tables are added."""
    path = tmp_path / "v4.sqlite3"
    v4 = SCHEMA.replace("'rejected', 'supervisor')", "'rejected')")
    assert "'rejected')" in v4 and "'rejected', 'supervisor'" not in v4
    db = sqlite3.connect(path)
    db.executescript(v4)
    db.execute("INSERT INTO schema_version(version) VALUES (4)")
    db.execute("INSERT INTO call_events VALUES ('c1', 1, '2026-11-30T10:00:00+00:00', "
               "'enter', NULL, '{\"queue\": \"billing\"}')")
    db.commit()
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO call_events VALUES ('c1', 2, '2026-11-30T10:00:00+00:00', "
                   "'supervisor', NULL, '{}')")
    db.close()
    with SqliteStore(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.add_call_event("c1", T0, "supervisor", "amy", {"action": "whisper",
                                                                "by": "sam"}) == 2
        events = s.call_events(["c1"])["c1"]
        assert [(e.seq, e.event, dict(e.data)) for e in events] == [
            (1, "enter", {"queue": "billing"}), (2, "supervisor", {"action": "whisper",
                                                                  "by": "sam"})]
        assert s.request_supervision("sam", "amy", "c1", "barge", T0) == 1
        hand = s.raise_hand("amy", "c1", "help", T0)
        assert s.hands() == [hand]
    with SqliteStore(path) as s:  # opening again changes nothing
        assert len(s.call_events(["c1"])["c1"]) == 2


def test_hands_keep_one_open_per_agent_and_refuse_changes_once_lowered(
        make_store: StoreMaker) -> None:
    with make_store() as s:
        first = s.raise_hand("amy", None, "help", T0)
        again = s.raise_hand("amy", "c9", "  help   now ", T0 + timedelta(seconds=5))
        assert again.id == first.id and (again.text, again.call_id) == ("help now", "c9")
        picked = s.reply_to_hand(first.id, "sam", "on my way", T0 + timedelta(seconds=9))
        assert (picked.picked_by, picked.reply) == ("sam", "on my way")  # a reply picks it up
        s.lower_hand(first.id, "amy", T0 + timedelta(seconds=20))
        assert s.hands() == [] and len(s.hands(open_only=False)) == 1
        with pytest.raises(StoreError, match="already lowered"):
            s.pick_up_hand(first.id, "sam", T0)
        with pytest.raises(StoreError, match="at most 280"):
            s.raise_hand("amy", None, "x" * 281, T0)
        with pytest.raises(StoreError, match="listen, whisper, barge"):
            s.request_supervision("sam", "amy", "c9", "shout", T0)
        assert s.raise_hand("amy", None, "", T0).id == first.id + 1
        assert s.supervise_requests_since(0) == ([], 0)
