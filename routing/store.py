"""SQLite store: agents, their self-chosen hours, and call records.

Default path: ``homeline.paths.state_dir() / "homeline.sqlite3"`` (the CLI's
``--db`` overrides it). Hours written here win over the windows in
``dialplans/agents.yaml``; every write appends to ``hours_log`` so a running
engine can pick changes up with `Store.hours_events_since` and feed them to the
router as `AgentHoursChanged` events (they apply at once).

SQLite notes: WAL journal so the CLI can write while the engine reads
(https://www.sqlite.org/wal.html); one connection per `Store`, guarded by a lock.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from routing.directory import Directory
from routing.errors import StoreError
from routing.events import AgentHoursChanged
from routing.windows import HoursChange, HourWindow, check_aware

__all__ = ["Store", "CallRecord", "default_db_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, zone TEXT NOT NULL, profile TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hours_owner (
    agent_id TEXT PRIMARY KEY, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
    agent_id TEXT NOT NULL, day INTEGER NOT NULL, start_min INTEGER NOT NULL,
    end_min INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS windows_agent ON windows(agent_id);
CREATE TABLE IF NOT EXISTS hours_changes (
    agent_id TEXT NOT NULL, day TEXT NOT NULL, start_min INTEGER NOT NULL,
    end_min INTEGER NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('add', 'cancel'))
);
CREATE INDEX IF NOT EXISTS hours_changes_agent ON hours_changes(agent_id);
CREATE TABLE IF NOT EXISTS hours_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, agent_id TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS call_records (
    call_id TEXT PRIMARY KEY, queue_id TEXT, agent_id TEXT, caller TEXT,
    arrived_at TEXT, answered_at TEXT, ended_at TEXT, outcome TEXT, reason TEXT
);
"""


def default_db_path() -> Path:
    from homeline.paths import state_dir

    return state_dir() / "homeline.sqlite3"


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_id: str
    queue_id: str | None = None
    agent_id: str | None = None
    caller: str | None = None
    arrived_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    reason: str | None = None


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------ agents
    def sync_agents(self, directory: Directory) -> None:
        """Mirror the directory's agents (name, zone, skills ...) into the store."""
        with self._tx() as db:
            for a in directory.agents:
                profile = json.dumps({"skills": dict(a.skills), "languages": dict(a.languages),
                                      "trainee": a.trainee, "endpoint": a.endpoint},
                                     sort_keys=True)
                db.execute("INSERT INTO agents(id, name, zone, profile) VALUES (?,?,?,?) "
                           "ON CONFLICT(id) DO UPDATE SET name=excluded.name, "
                           "zone=excluded.zone, profile=excluded.profile",
                           (a.id, a.name, a.zone, profile))

    # ------------------------------------------------------------ hours
    def hours(self, agent_id: str) -> tuple[tuple[HourWindow, ...], tuple[HoursChange, ...]] | None:
        """The agent's stored hours, or None when the agent never set any here."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM hours_owner WHERE agent_id=?",
                                (agent_id,)).fetchone() is None:
                return None
            ws = self._db.execute("SELECT day, start_min, end_min FROM windows WHERE agent_id=? "
                                  "ORDER BY day, start_min", (agent_id,)).fetchall()
            cs = self._db.execute("SELECT day, start_min, end_min, kind FROM hours_changes "
                                  "WHERE agent_id=? ORDER BY day, start_min, kind",
                                  (agent_id,)).fetchall()
        return (tuple(HourWindow(d, s, e) for d, s, e in ws),
                tuple(HoursChange(date.fromisoformat(d), s, e, k) for d, s, e, k in cs))

    def save_hours(self, agent_id: str, windows: Sequence[HourWindow],
                   changes: Sequence[HoursChange], now: datetime) -> int:
        """Replace the agent's stored hours; returns the change's sequence number."""
        check_aware(now)
        with self._tx() as db:
            db.execute("DELETE FROM windows WHERE agent_id=?", (agent_id,))
            db.execute("DELETE FROM hours_changes WHERE agent_id=?", (agent_id,))
            db.executemany("INSERT INTO windows VALUES (?,?,?,?)",
                           [(agent_id, w.day, w.start, w.end) for w in windows])
            db.executemany("INSERT INTO hours_changes VALUES (?,?,?,?,?)",
                           [(agent_id, c.date.isoformat(), c.start, c.end, c.kind)
                            for c in changes])
            db.execute("INSERT INTO hours_owner VALUES (?, ?) ON CONFLICT(agent_id) "
                       "DO UPDATE SET updated_at=excluded.updated_at",
                       (agent_id, now.isoformat()))
            cur = db.execute("INSERT INTO hours_log(agent_id, at) VALUES (?, ?)",
                             (agent_id, now.isoformat()))
            return int(cur.lastrowid or 0)

    def apply_hours(self, directory: Directory) -> Directory:
        """``directory`` with every agent's stored hours in place of the file's windows."""
        d = directory
        for a in directory.agents:
            h = self.hours(a.id)
            if h is not None:
                d = d.with_agent(a.with_hours(*h))
        return d

    def hours_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM hours_log").fetchone()
        return int(row[0])

    def hours_events_since(self, seq: int) -> tuple[list[AgentHoursChanged], int]:
        """Hours changes after ``seq`` as router events (latest per agent), and the new seq."""
        with self._lock:
            rows = self._db.execute("SELECT seq, agent_id FROM hours_log WHERE seq > ? "
                                    "ORDER BY seq", (seq,)).fetchall()
        if not rows:
            return [], seq
        events = []
        for aid in sorted({r[1] for r in rows}):
            h = self.hours(aid)
            if h is not None:
                events.append(AgentHoursChanged(aid, h[0], h[1]))
        return events, int(rows[-1][0])

    # ------------------------------------------------------------ calls
    def record_call(self, rec: CallRecord) -> None:
        """Insert or update a call record (None fields keep their stored value)."""
        vals: dict[str, Any] = {
            "queue_id": rec.queue_id, "agent_id": rec.agent_id, "caller": rec.caller,
            "arrived_at": rec.arrived_at.isoformat() if rec.arrived_at else None,
            "answered_at": rec.answered_at.isoformat() if rec.answered_at else None,
            "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
            "outcome": rec.outcome, "reason": rec.reason}
        cols = ", ".join(vals)
        upd = ", ".join(f"{k}=COALESCE(excluded.{k}, {k})" for k in vals)
        with self._tx() as db:
            db.execute(f"INSERT INTO call_records(call_id, {cols}) VALUES "  # noqa: S608
                       f"(?, {', '.join('?' * len(vals))}) ON CONFLICT(call_id) DO UPDATE "
                       f"SET {upd}", (rec.call_id, *vals.values()))

    def calls(self, limit: int = 100) -> list[CallRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT call_id, queue_id, agent_id, caller, arrived_at, answered_at, ended_at, "
                "outcome, reason FROM call_records ORDER BY arrived_at DESC, call_id LIMIT ?",
                (limit,)).fetchall()

        def t(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        return [CallRecord(r[0], r[1], r[2], r[3], t(r[4]), t(r[5]), t(r[6]), r[7], r[8])
                for r in rows]
