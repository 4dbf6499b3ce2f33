"""Web app users and sessions in the SQLite store: kept, listed, ended with the user."""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pg_kit import StoreMaker

from store import SCHEMA, SCHEMA_VERSION, CallRecord, SqliteStore, StoreError, WebSession

T0 = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)


def test_users_are_added_listed_changed_and_removed(make_store: StoreMaker) -> None:
    with make_store() as s:
        u = s.add_user("alice", "agent", "alice", "$argon2id$v=19$x", T0)
        assert (u.name, u.role, u.agent_id, u.created_at) == ("alice", "agent", "alice", T0)
        s.add_user("sam", "supervisor", None, "$argon2id$v=19$y", T0)
        with pytest.raises(StoreError, match="'alice' exists already"):
            s.add_user("alice", "admin", None, "h", T0)
        with pytest.raises(StoreError, match="role 'root': not one of agent, supervisor, admin"):
            s.add_user("root", "root", None, "h", T0)
        assert [x.name for x in s.users()] == ["alice", "sam"]
        s.set_password_hash("alice", "$argon2id$v=19$z", T0 + timedelta(hours=1))
        got = s.user("alice")
        assert got is not None and got.password_hash == "$argon2id$v=19$z"
        assert got.updated_at == T0 + timedelta(hours=1) and got.created_at == T0
        with pytest.raises(StoreError, match="no user 'nobody'"):
            s.set_password_hash("nobody", "h", T0)
        assert s.remove_user("sam") is True and s.remove_user("sam") is False
        assert s.user("sam") is None
    with make_store() as s:  # kept across a reopen
        assert [x.name for x in s.users()] == ["alice"]


def test_sessions_end_with_a_new_password_a_removal_or_idleness(make_store: StoreMaker) -> None:
    with make_store() as s:
        s.add_user("alice", "agent", "alice", "h1", T0)
        s.add_user("bob", "agent", None, "h2", T0)
        s.add_session(WebSession("d1", "alice", "c1", T0, T0))
        s.add_session(WebSession("d2", "bob", "c2", T0, T0))
        s.add_session(WebSession("d3", "bob", "c3", T0, T0))
        s.touch_session("d3", T0 + timedelta(minutes=20))
        got = s.session("d3")
        assert got is not None and (got.user, got.csrf, got.last_seen) == (
            "bob", "c3", T0 + timedelta(minutes=20))
        assert s.remove_sessions_idle_since(T0 + timedelta(minutes=10)) == 2  # d1, d2
        assert s.session("d1") is None and s.session("d3") is not None
        s.add_session(WebSession("d4", "alice", "c4", T0, T0))
        s.set_password_hash("alice", "h3", T0)
        assert s.session("d4") is None
        s.remove_user("bob")
        assert s.session("d3") is None
        s.add_session(WebSession("d5", "alice", "c5", T0, T0))
        s.remove_session("d5")
        assert s.session("d5") is None


def test_a_version_3_store_gains_the_user_tables(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    v3 = SCHEMA.split("CREATE TABLE IF NOT EXISTS users")[0] + SCHEMA.split(
        "CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions(user_name);")[1]
    assert "users" not in v3 and "web_sessions" not in v3 and "last_agent" in v3
    db = sqlite3.connect(path)
    db.executescript(v3)
    db.execute("INSERT INTO schema_version(version) VALUES (3)")
    db.commit()
    db.close()
    with SqliteStore(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        s.add_user("alice", "admin", None, "h", T0)
        assert s.users()[0].role == "admin"


def test_one_call_record_by_id(make_store: StoreMaker) -> None:
    with make_store() as s:
        assert s.call_record("c1") is None
        s.record_call(CallRecord("c1", caller="+331", arrived_at=T0, intent="billing",
                                 variables={"account_type": "pro"}))
        rec = s.call_record("c1")
        assert rec is not None and (rec.caller, rec.arrived_at, rec.variables) == (
            "+331", T0, {"account_type": "pro"})
