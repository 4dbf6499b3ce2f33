"""The store's SQL, one copy for every database: `SqlStore`, the `store.Store` interface.

`store.sqlite.SqliteStore` (one file, the embedded default) and
`store.postgres.PostgresStore` (a server shared by several engines) are this
class with a connection of their own: they supply ``_tx()`` (a write
transaction, writers serialised), ``_read(sql, params)`` and ``_reads()`` (a
few reads that belong together) over a `store.dbapi.Connection`, and ``where``
(what error messages name). The statements are the portable subset described in
`store.schema`, with ``?`` placeholders (the PostgreSQL store translates them).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any, Self

from routing.directory import Directory
from routing.events import (
    AgentEndedWrapUp,
    AgentHoursChanged,
    AgentMadeAvailable,
    AgentWentOnBreak,
)
from routing.snapshot import (
    SNAPSHOT_FORMAT,
    AgentSnapshot,
    CallSnapshot,
    FairnessSnapshot,
    LastAgent,
    RouterChanges,
    RouterSnapshot,
    to_datetime,
)
from routing.windows import HoursChange, HourWindow, check_aware
from store.base import AgentRequest
from store.chats import ChatTables
from store.dbapi import Connection
from store.desk import DeskTables
from store.errors import StoreError
from store.leader import DoubleBooking, FencedOut, LeaderRecord
from store.media import MediaTables
from store.nodes import NodeTables
from store.records import (
    AGENT_STATE_ACTIONS,
    CALL_EVENT_KINDS,
    USER_ROLES,
    CallEvent,
    CallRecord,
    User,
    WebSession,
)
from store.schema import (
    CALL_RECORD_COLUMNS_ADDED,
    CALL_RECORD_COLUMNS_V1,
    SCHEMA,
    SCHEMA_VERSION,
)
from store.text import TextTables

__all__ = ["SqlStore", "iso"]

_RECORD_COLUMNS = (*CALL_RECORD_COLUMNS_V1, *(c for c, _ in CALL_RECORD_COLUMNS_ADDED))
_TIME_COLUMNS = frozenset({"arrived_at", "answered_at", "ended_at", "queued_at"})


def iso(t: datetime) -> str:
    """UTC ISO text with microseconds: sorts and compares as text (see store.schema)."""
    check_aware(t, "timestamp")
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _time(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _call_record(row: Sequence[Any]) -> CallRecord:
    kw: dict[str, Any] = dict(zip(_RECORD_COLUMNS, row, strict=True))
    for col in _TIME_COLUMNS:
        kw[col] = _time(kw[col])
    if kw["variables"] is not None:
        kw["variables"] = json.loads(kw["variables"])
    return CallRecord(**kw)


_USER_COLUMNS = "name, role, agent_id, password_hash, created_at, updated_at"
_SESSION_COLUMNS = "id, user_name, csrf, created_at, last_seen"


def _user(row: Sequence[Any]) -> User:
    return User(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]),
                datetime.fromisoformat(row[5]))


def _session(row: Sequence[Any]) -> WebSession:
    return WebSession(row[0], row[1], row[2], datetime.fromisoformat(row[3]),
                      datetime.fromisoformat(row[4]))


class SqlStore(MediaTables, DeskTables, TextTables, ChatTables, NodeTables):
    """The `store.Store` interface in portable SQL; recordings and payments
    (`store.media.MediaTables`), the supervisor desk (`store.desk.DeskTables`),
    the text channels (`store.text.TextTables`, `store.chats.ChatTables`) too.
    A backend sets ``where`` and supplies the connection methods below."""

    where: str = "store"

    def _tx(self) -> AbstractContextManager[Connection]:
        """A write transaction (the only writer while it lasts); StoreError on failure."""
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One statement's rows; StoreError on failure."""
        raise NotImplementedError

    def _reads(self) -> AbstractContextManager[Connection]:
        """A connection for reads that belong together (one consistent view where the
        database gives one); StoreError on failure."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        """Bring a store written by an older Homeline up to `SCHEMA_VERSION`."""
        with self._tx() as db:
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            have = int(row[0]) if row and row[0] is not None else None
            if have is not None and have > SCHEMA_VERSION:
                raise StoreError(f"{self.where}: written by a newer Homeline (schema {have}; "
                                 f"this one knows up to {SCHEMA_VERSION})")
            if have is None or have < 2:
                # version 1 had call_records with fewer columns (CREATE ... IF NOT EXISTS
                # kept that table as it was); portable: column names from a 0-row SELECT
                cur = db.execute("SELECT * FROM call_records WHERE 1 = 0")
                cols = {d[0] for d in cur.description}
                for name, kind in CALL_RECORD_COLUMNS_ADDED:
                    if name not in cols:
                        db.execute(f"ALTER TABLE call_records ADD COLUMN {name} {kind}")
            if have is not None and have < 3:
                # version 3: the router-wide fair-share clocks beside the router's time
                cur = db.execute("SELECT * FROM router_meta WHERE 1 = 0")
                if "fairness" not in {d[0] for d in cur.description}:
                    db.execute("ALTER TABLE router_meta ADD COLUMN fairness TEXT")
            if have is not None and have < 5:
                # version 5: call_events takes the kind 'supervisor'; a CHECK cannot be
                # altered in SQLite, so the table is rebuilt (portable statements)
                ddl = SCHEMA.split("CREATE TABLE IF NOT EXISTS call_events", 1)[1]
                ddl = ddl.split(";", 1)[0]
                db.execute(f"CREATE TABLE call_events_v5{ddl}")
                db.execute("INSERT INTO call_events_v5(call_id, seq, at, event, agent_id, "
                           "data) SELECT call_id, seq, at, event, agent_id, data "
                           "FROM call_events")
                db.execute("DROP TABLE call_events")
                db.execute("ALTER TABLE call_events_v5 RENAME TO call_events")
            db.execute("CREATE INDEX IF NOT EXISTS call_records_arrived "
                       "ON call_records(arrived_at)")
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        return int(self._read("SELECT MAX(version) FROM schema_version")[0][0])

    @staticmethod
    def _next_seq(db: Connection, table: str) -> int:
        row = db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()  # noqa: S608
        return int(row[0])

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
        with self._reads() as db:
            if db.execute("SELECT 1 FROM hours_owner WHERE agent_id=?",
                          (agent_id,)).fetchone() is None:
                return None
            ws = db.execute("SELECT day, start_min, end_min FROM windows WHERE agent_id=? "
                            "ORDER BY day, start_min", (agent_id,)).fetchall()
            cs = db.execute("SELECT day, start_min, end_min, kind FROM hours_changes "
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
                       "DO UPDATE SET updated_at=excluded.updated_at", (agent_id, iso(now)))
            seq = self._next_seq(db, "hours_log")
            db.execute("INSERT INTO hours_log(seq, agent_id, at) VALUES (?, ?, ?)",
                       (seq, agent_id, iso(now)))
            return seq

    def apply_hours(self, directory: Directory) -> Directory:
        """``directory`` with every agent's stored hours in place of the file's windows.

        The composition root does this before building a router: the router
        core never reads the store. Three reads for all agents (not three per
        agent: a round trip each on a database server).
        """
        with self._reads() as db:
            owners = {r[0] for r in db.execute("SELECT agent_id FROM hours_owner").fetchall()}
            ws = db.execute("SELECT agent_id, day, start_min, end_min FROM windows "
                            "ORDER BY agent_id, day, start_min").fetchall()
            cs = db.execute("SELECT agent_id, day, start_min, end_min, kind FROM hours_changes "
                            "ORDER BY agent_id, day, start_min, kind").fetchall()
        windows: dict[str, list[HourWindow]] = {}
        for aid, day, start, end in ws:
            windows.setdefault(aid, []).append(HourWindow(day, start, end))
        changes: dict[str, list[HoursChange]] = {}
        for aid, day, start, end, kind in cs:
            changes.setdefault(aid, []).append(HoursChange(date.fromisoformat(day), start, end,
                                                           kind))
        d = directory
        for a in directory.agents:
            if a.id in owners:
                d = d.with_agent(a.with_hours(tuple(windows.get(a.id, ())),
                                              tuple(changes.get(a.id, ()))))
        return d

    def hours_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM hours_log")[0][0])

    def hours_events_since(self, seq: int) -> tuple[list[AgentHoursChanged], int]:
        """Hours changes after ``seq`` as router events (latest per agent), and the new seq."""
        rows = self._read("SELECT seq, agent_id FROM hours_log WHERE seq > ? ORDER BY seq",
                          (seq,))
        if not rows:
            return [], seq
        events = []
        for aid in sorted({r[1] for r in rows}):
            h = self.hours(aid)
            if h is not None:
                events.append(AgentHoursChanged(aid, h[0], h[1]))
        return events, int(rows[-1][0])

    # ------------------------------------------------------------ agent state requests
    def request_agent_state(self, agent_id: str, action: str, why: str,
                            now: datetime) -> int:
        """Append an agent's own request (``available``, ``break``, ``end-wrap-up``).

        Returns its sequence number; the engine turns it into a router event with
        `agent_requests_since`. The agent id is not checked here (the store does
        not know the directory): `homeline.agent_api` checks it.
        """
        check_aware(now)
        if action not in AGENT_STATE_ACTIONS:
            raise StoreError(f"agent state {action!r}: not one of "
                             f"{', '.join(AGENT_STATE_ACTIONS)}")
        with self._tx() as db:
            seq = self._next_seq(db, "agent_requests")
            db.execute("INSERT INTO agent_requests(seq, agent_id, action, why, at) "
                       "VALUES (?, ?, ?, ?, ?)", (seq, agent_id, action, why, iso(now)))
            return seq

    def agent_requests_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM agent_requests")[0][0])

    def agent_requests_since(self, seq: int) -> tuple[list[AgentRequest], int]:
        """Requests after ``seq`` as router events, in the order they were made."""
        rows = self._read("SELECT seq, agent_id, action, why FROM agent_requests "
                          "WHERE seq > ? ORDER BY seq", (seq,))
        events: list[AgentRequest] = []
        for _, aid, action, why in rows:
            if action == "available":
                events.append(AgentMadeAvailable(aid))
            elif action == "break":
                events.append(AgentWentOnBreak(aid, why))
            else:
                events.append(AgentEndedWrapUp(aid))
        return events, int(rows[-1][0]) if rows else seq

    # ------------------------------------------------------------ calls
    def record_call(self, rec: CallRecord) -> None:
        """Insert or update a call record (None fields keep their stored value)."""
        vals: dict[str, Any] = {}
        for col in _RECORD_COLUMNS[1:]:
            v = getattr(rec, col)
            if col in _TIME_COLUMNS and v is not None:
                v = iso(v)
            elif col == "variables" and v is not None:
                v = json.dumps(dict(v), sort_keys=True)
            vals[col] = v
        cols = ", ".join(vals)
        upd = ", ".join(f"{k}=COALESCE(excluded.{k}, call_records.{k})" for k in vals)
        with self._tx() as db:
            db.execute(f"INSERT INTO call_records(call_id, {cols}) VALUES "  # noqa: S608
                       f"(?, {', '.join('?' * len(vals))}) ON CONFLICT(call_id) DO UPDATE "
                       f"SET {upd}", (rec.call_id, *vals.values()))

    def add_call_event(self, call_id: str, at: datetime, event: str,
                       agent_id: str | None = None,
                       data: Mapping[str, Any] | None = None) -> int:
        """Append a queue_log-style event to the call; returns its number within the call."""
        if event not in CALL_EVENT_KINDS:
            raise StoreError(f"call event {event!r}: not one of {', '.join(CALL_EVENT_KINDS)}")
        text = json.dumps(dict(data or {}), sort_keys=True)
        with self._tx() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM call_events "
                             "WHERE call_id = ?", (call_id,)).fetchone()
            seq = int(row[0])
            db.execute("INSERT INTO call_events(call_id, seq, at, event, agent_id, data) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (call_id, seq, iso(at), event, agent_id,
                                                     text))
            return seq

    def calls(self, since: datetime | None = None, limit: int | None = None
              ) -> list[CallRecord]:
        """Call records, oldest first; ``since``: those that began (or ended) at or after it."""
        sql = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM call_records"  # noqa: S608
        params: list[Any] = []
        started = "COALESCE(arrived_at, queued_at, answered_at, ended_at)"
        if since is not None:
            sql += f" WHERE {started} >= ? OR ended_at >= ?"
            params += [iso(since), iso(since)]
        # NULL first (a record with no time yet), as SQLite sorts it and PostgreSQL
        # does not by itself (NULLS LAST is its default): the same order on both
        sql += f" ORDER BY CASE WHEN {started} IS NULL THEN 0 ELSE 1 END, {started}, call_id"
        if limit is not None:
            if int(limit) < 0:  # SQLite reads LIMIT -1 as no limit, PostgreSQL refuses it
                raise StoreError(f"a limit of {limit} calls: it must be 0 or more")
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_call_record(row) for row in self._read(sql, params)]

    def call_record(self, call_id: str) -> CallRecord | None:
        """The record of one call, or None when the store has none."""
        rows = self._read(f"SELECT {', '.join(_RECORD_COLUMNS)} FROM call_records "  # noqa: S608
                          "WHERE call_id = ?", (call_id,))
        return _call_record(rows[0]) if rows else None

    def call_events(self, call_ids: Sequence[str]) -> dict[str, list[CallEvent]]:
        """The events of each call, in order."""
        out: dict[str, list[CallEvent]] = {c: [] for c in call_ids}
        ids = list(call_ids)
        for i in range(0, len(ids), 500):  # bounded IN lists
            chunk = ids[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            for cid, seq, at, ev, agent, data in self._read(
                    f"SELECT call_id, seq, at, event, agent_id, data FROM call_events "  # noqa: S608
                    f"WHERE call_id IN ({marks}) ORDER BY call_id, seq", chunk):
                out[cid].append(CallEvent(cid, datetime.fromisoformat(at), ev, agent,
                                          json.loads(data), int(seq)))
        return out

    # ------------------------------------------------------------ agent state log
    def add_agent_state(self, agent_id: str, state: str, at: datetime) -> int:
        """Log that ``agent_id`` entered ``state`` at ``at``; returns the change's number."""
        with self._tx() as db:
            seq = self._next_seq(db, "agent_state_log")
            db.execute("INSERT INTO agent_state_log(seq, agent_id, state, at) "
                       "VALUES (?, ?, ?, ?)", (seq, agent_id, state, iso(at)))
            return seq

    def agent_states(self, since: datetime) -> list[tuple[str, str, datetime]]:
        """``(agent, state, at)`` changes from ``since`` on, in order, preceded by each
        agent's last change before ``since`` (the state the period began in)."""
        t = iso(since)
        before = self._read("SELECT agent_id, MAX(seq) FROM agent_state_log WHERE at < ? "
                            "GROUP BY agent_id", (t,))
        seqs = [int(r[1]) for r in before]
        rows = []
        for i in range(0, len(seqs), 500):
            chunk = seqs[i:i + 500]
            rows += self._read("SELECT seq, agent_id, state, at FROM agent_state_log "  # noqa: S608
                               f"WHERE seq IN ({', '.join('?' * len(chunk))})", chunk)
        rows += self._read("SELECT seq, agent_id, state, at FROM agent_state_log "
                           "WHERE at >= ? ORDER BY seq", (t,))
        rows.sort(key=lambda r: int(r[0]))
        return [(str(a), str(st), datetime.fromisoformat(at)) for _, a, st, at in rows]

    # ------------------------------------------------------------ router leader
    _epoch: int | None = None  # the leader's fencing epoch (store.leader); None: not fenced

    def fence(self, epoch: int) -> None:
        """Every router-state write from now on carries ``epoch`` and is refused
        (`FencedOut`) once a newer epoch has been taken (`store.leader`)."""
        self._epoch = epoch

    def take_leadership(self, node: str, now: datetime) -> int:
        """The next fencing epoch, taken by ``node`` since ``now`` (the caller holds
        the leader lock)."""
        with self._tx() as db:
            row = db.execute("SELECT epoch FROM router_leader WHERE id = 1").fetchone()
            epoch = 1 if row is None else int(row[0]) + 1
            db.execute("INSERT INTO router_leader(id, epoch, node, since) VALUES (1, ?, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET epoch=excluded.epoch, "
                       "node=excluded.node, since=excluded.since", (epoch, node, iso(now)))
        return epoch

    def router_leader(self) -> LeaderRecord | None:
        """The latest leader's epoch, node and since when; None before any."""
        rows = self._read("SELECT epoch, node, since FROM router_leader WHERE id = 1")
        if not rows:
            return None
        return LeaderRecord(int(rows[0][0]), str(rows[0][1]),
                            datetime.fromisoformat(rows[0][2]))

    def _check_epoch(self, db: Connection) -> None:
        if self._epoch is None:
            return
        row = db.execute("SELECT epoch, node FROM router_leader WHERE id = 1").fetchone()
        if row is not None and int(row[0]) > self._epoch:
            raise FencedOut(self.where, self._epoch, int(row[0]), str(row[1]))

    # ------------------------------------------------------------ router state
    def save_router_changes(self, changes: RouterChanges,
                            feeds: Mapping[str, int] | None = None) -> None:
        """Write what the router changed, in one transaction (all of it or nothing);
        a fenced store's write is refused (`FencedOut`) when a newer epoch leads.
        ``feeds``: how far the state has read each change feed (`router_feeds`)."""
        saved = iso(to_datetime(changes.taken_at))
        with self._tx() as db:
            self._check_epoch(db)
            if changes.full:
                for table in ("agent_state", "router_calls", "last_agent"):
                    db.execute(f"DELETE FROM {table}")  # noqa: S608
            for a in changes.agents:
                db.execute("INSERT INTO agent_state(agent_id, state, since, data, saved_at) "
                           "VALUES (?, ?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET "
                           "state=excluded.state, since=excluded.since, data=excluded.data, "
                           "saved_at=excluded.saved_at",
                           (a.agent_id, a.state, iso(to_datetime(a.since)),
                            json.dumps(a.to_dict(), sort_keys=True), saved))
            for c in changes.calls:
                db.execute("INSERT INTO router_calls(call_id, phase, queue_id, agent_id, seq, "
                           "data, saved_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(call_id) "
                           "DO UPDATE SET phase=excluded.phase, queue_id=excluded.queue_id, "
                           "agent_id=excluded.agent_id, seq=excluded.seq, data=excluded.data, "
                           "saved_at=excluded.saved_at",
                           (c.call_id, c.phase, c.queue, c.agent, c.seq,
                            json.dumps(c.to_dict(), sort_keys=True), saved))
            db.executemany("DELETE FROM router_calls WHERE call_id = ?",
                           [(cid,) for cid in changes.gone_calls])
            self._check_one_voice_call_each(db, changes)
            for la in changes.last_agent:
                db.execute("INSERT INTO last_agent(caller, agent_id, at, at_s) "
                           "VALUES (?, ?, ?, ?) ON CONFLICT(caller) DO UPDATE SET "
                           "agent_id=excluded.agent_id, at=excluded.at, at_s=excluded.at_s",
                           (la.caller, la.agent_id, iso(to_datetime(la.at)), la.at))
            fairness = (None if changes.fairness is None
                        else json.dumps(changes.fairness.to_dict(), sort_keys=True))
            db.execute("INSERT INTO router_meta(id, format, as_of, as_of_s, seq, saved_at, "
                       "fairness) VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                       "format=excluded.format, as_of=excluded.as_of, "
                       "as_of_s=excluded.as_of_s, seq=excluded.seq, saved_at=excluded.saved_at, "
                       "fairness=excluded.fairness",
                       (changes.format, iso(to_datetime(changes.as_of)), changes.as_of,
                        changes.seq, saved, fairness))
            for feed, seq in (feeds or {}).items():
                db.execute("INSERT INTO router_feeds(feed, seq) VALUES (?, ?) "
                           "ON CONFLICT(feed) DO UPDATE SET seq=excluded.seq", (feed, seq))

    def router_feeds(self) -> dict[str, int]:
        """How far the stored router state has read each change feed."""
        return {str(f): int(q) for f, q in self._read("SELECT feed, seq FROM router_feeds")}

    def _check_one_voice_call_each(self, db: Connection, changes: RouterChanges) -> None:
        """Exactly once, checked in the store: no agent rings or talks on two voice
        calls at once after this write (`DoubleBooking`: the transaction is undone)."""
        busy = sorted({c.agent for c in changes.calls
                       if c.agent and c.channel == "voice" and c.phase in ("ringing", "connected")})
        for agent in busy:
            rows = db.execute("SELECT call_id, data FROM router_calls WHERE agent_id = ? "
                              "AND phase IN ('ringing', 'connected') ORDER BY call_id",
                              (agent,)).fetchall()
            voice = [str(r[0]) for r in rows
                     if json.loads(r[1]).get("channel", "voice") == "voice"]
            if len(voice) > 1:
                raise DoubleBooking(self.where, agent, voice)

    def load_router_snapshot(self) -> RouterSnapshot | None:
        """The router state last saved, or None when none was (a first start)."""
        with self._reads() as db:
            meta = db.execute("SELECT format, as_of_s, seq, saved_at, fairness "
                              "FROM router_meta WHERE id = 1").fetchone()
            if meta is None:
                return None
            agents = db.execute("SELECT data FROM agent_state ORDER BY agent_id").fetchall()
            calls = db.execute("SELECT data FROM router_calls "
                               "ORDER BY seq, call_id").fetchall()
            last = db.execute("SELECT caller, agent_id, at_s FROM last_agent "
                              "ORDER BY caller").fetchall()
        fmt = int(meta[0])
        if fmt > SNAPSHOT_FORMAT:
            raise StoreError(f"{self.where}: router state format {fmt} is newer than this "
                             f"Homeline's ({SNAPSHOT_FORMAT})")
        return RouterSnapshot(
            float(meta[1]), datetime.fromisoformat(meta[3]).timestamp(), int(meta[2]),
            tuple(AgentSnapshot.from_dict(json.loads(r[0])) for r in agents),
            tuple(CallSnapshot.from_dict(json.loads(r[0])) for r in calls),
            tuple(LastAgent(c, a, float(t)) for c, a, t in last), fmt,
            None if meta[4] is None else FairnessSnapshot.from_dict(json.loads(meta[4])))

    # ------------------------------------------------------------ web users and sessions
    def add_user(self, name: str, role: str, agent_id: str | None, password_hash: str,
                 now: datetime) -> User:
        """A new web app user; StoreError when the name is taken or the role unknown.

        The agent id is not checked here (the store does not know the directory):
        ``homeline user add`` checks it.
        """
        if role not in USER_ROLES:
            raise StoreError(f"user role {role!r}: not one of {', '.join(USER_ROLES)}")
        if not name:
            raise StoreError("a user needs a name")
        at = iso(now)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise StoreError(f"user {name!r} exists already")
            db.execute(f"INSERT INTO users({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                       (name, role, agent_id, password_hash, at, at))
        return User(name, role, agent_id, password_hash, datetime.fromisoformat(at),
                    datetime.fromisoformat(at))

    def user(self, name: str) -> User | None:
        rows = self._read(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def users(self) -> list[User]:
        return [_user(r) for r in self._read(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")]

    def set_password_hash(self, name: str, password_hash: str, now: datetime) -> None:
        """Replace the user's password hash and end their sessions (a changed password
        logs out every browser that used the old one)."""
        at = iso(now)
        with self._tx() as db:
            cur = db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?",
                             (password_hash, at, name))
            if cur.rowcount != 1:
                raise StoreError(f"no user {name!r}")
            db.execute("DELETE FROM web_sessions WHERE user_name = ?", (name,))

    def remove_user(self, name: str) -> bool:
        """Remove the user and their sessions; False when there was no such user."""
        with self._tx() as db:
            db.execute("DELETE FROM web_sessions WHERE user_name = ?", (name,))
            return db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 1

    def add_session(self, session: WebSession) -> None:
        with self._tx() as db:
            db.execute(f"INSERT INTO web_sessions({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                       (session.id, session.user, session.csrf, iso(session.created_at),
                        iso(session.last_seen)))

    def session(self, session_id: str) -> WebSession | None:
        rows = self._read(f"SELECT {_SESSION_COLUMNS} FROM web_sessions WHERE id = ?",
                          (session_id,))
        return _session(rows[0]) if rows else None

    def touch_session(self, session_id: str, now: datetime) -> None:
        """Note activity on the session now (the web app's idle timeout counts from it)."""
        with self._tx() as db:
            db.execute("UPDATE web_sessions SET last_seen = ? WHERE id = ?",
                       (iso(now), session_id))

    def remove_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM web_sessions WHERE id = ?", (session_id,))

    def remove_sessions_idle_since(self, before: datetime) -> int:
        """Drop sessions with no activity since ``before``; returns how many."""
        with self._tx() as db:
            return int(db.execute("DELETE FROM web_sessions WHERE last_seen < ?",
                                  (iso(before),)).rowcount)
