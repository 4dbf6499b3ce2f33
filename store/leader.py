"""The router leader of several engines sharing a PostgreSQL store, and its fencing epoch.

Leadership is a PostgreSQL session-level advisory lock (`LEADER_LOCK`) held on a
connection of its own (`Leadership`, not the store's pool): the server releases
it when that session ends (the process killed, its backend terminated, the
server restarted), and a standby polling ``pg_try_advisory_lock`` wins it.

Whoever wins increments ``router_leader.epoch`` (with its node name and since
when; `store.sql.SqlStore.take_leadership`) and keeps the number: the store is
then *fenced* with it (`SqlStore.fence`) and every router-state write
(`SqlStore.save_router_changes`) checks, in its own transaction and under the
store's write lock, that no newer epoch was taken since. A deposed leader's late
write is refused with `FencedOut`, never applied. A leader finds out it was
deposed by its next save (`FencedOut`) or by `Leadership.check` (its lock
connection is gone, or the stored epoch is not its own), and stops routing.

SQLite is one machine, one engine: no election there (the engine leads, as it
always did; its saves are not fenced).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from store.errors import StoreError

if TYPE_CHECKING:
    import psycopg

    from store.postgres import PostgresStore

__all__ = ["LEADER_SCHEMA", "LEADER_LOCK", "DoubleBooking", "FencedOut", "LeaderRecord",
           "Leadership",
           "lock_holder"]

# one row: the epoch of the latest leader (new table; schema version unchanged)
LEADER_SCHEMA = """
CREATE TABLE IF NOT EXISTS router_leader (
    id INTEGER PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL, node TEXT NOT NULL,
    since TEXT NOT NULL
);
"""

# "HLleader" in ASCII as a bigint: another key than the store's write lock
LEADER_LOCK = int.from_bytes(b"HLleader", "big")


class FencedOut(StoreError):
    """A router-state write by a leader whose epoch is older than the stored one."""

    def __init__(self, where: str, ours: int, stored: int, node: str) -> None:
        super().__init__(f"{where}: router state not written: this engine leads with epoch "
                         f"{ours}, but epoch {stored} (node {node!r}) has taken over: deposed")
        self.ours = ours
        self.stored = stored
        self.node = node


class DoubleBooking(StoreError):
    """A router-state write that would have one agent ring or talk on two voice calls
    at once: refused, whichever engine wrote it (exactly once, checked in the store)."""

    def __init__(self, where: str, agent_id: str, calls: list[str]) -> None:
        super().__init__(f"{where}: router state not written: agent {agent_id} would ring "
                         f"or talk on {len(calls)} voice calls at once ({', '.join(calls)})")
        self.agent_id = agent_id
        self.calls = calls


@dataclass(frozen=True)
class LeaderRecord:
    """The latest leader as the store has it."""

    epoch: int
    node: str
    since: datetime


class Leadership:
    """One engine's bid for the router leadership of a PostgreSQL store.

    ``try_lead(now)``: the epoch won (the store is fenced with it), or None while
    another session holds the lock. ``check()``: None while this engine still
    leads, else why not (its lock session is gone, or a newer epoch was taken).
    """

    def __init__(self, store: PostgresStore, node: str) -> None:
        self.store = store
        self.node = node
        self.epoch: int | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            try:
                self._conn = psycopg.connect(
                    self.store.url, autocommit=True, connect_timeout=2,
                    application_name=f"homeline-leader {self.node}"[:63],
                    keepalives=1, keepalives_idle=2, keepalives_interval=1,
                    keepalives_count=2)
            except psycopg.Error as exc:
                raise StoreError(f"{self.store.where}: leader lock: {exc}") from exc
        return self._conn

    @property
    def lock_pid(self) -> int | None:
        """The server process holding (or asking for) the lock, for tests and status."""
        if self._conn is None or self._conn.closed:
            return None
        return int(self._conn.info.backend_pid)

    def try_lead(self, now: datetime) -> int | None:
        import psycopg

        if self.epoch is not None:
            return self.epoch
        for attempt in (1, 2):
            conn = self._connection()
            try:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)",
                                   (LEADER_LOCK,)).fetchone()
                break
            except psycopg.Error as exc:
                broken = conn.broken
                conn.close()
                if not broken or attempt == 2:  # a session the server ended: once more
                    raise StoreError(f"{self.store.where}: leader lock: {exc}") from exc
        if not row or not row[0]:
            return None
        try:
            epoch = self.store.take_leadership(self.node, now)
        except BaseException:
            conn.close()  # the lock goes with the session: another may win it
            raise
        self.store.fence(epoch)
        self.epoch = epoch
        return epoch

    def check(self) -> str | None:
        import psycopg

        if self.epoch is None:
            return "not leading"
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return "the leader lock's connection is gone"
        try:
            conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            conn.close()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"the leader lock's connection died ({first})"
        try:
            stored = self.store.router_leader()
        except StoreError:
            return None  # the lock session is alive: the store's pool is only slow
        if stored is not None and stored.epoch != self.epoch:
            return (f"epoch {stored.epoch} (node {stored.node!r}) took over from "
                    f"epoch {self.epoch}")
        return None

    def close(self) -> None:
        """Give the lock up (the session ends)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def lock_holder(url: str) -> tuple[int, str] | None:
    """The server process and application name of the session holding the leader
    lock now, or None when no session does (no engine leads)."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT l.pid, COALESCE(a.application_name, '') FROM pg_locks l "
                "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s "
                "AND l.objid = %s AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())",
                (LEADER_LOCK >> 32, LEADER_LOCK & 0xFFFFFFFF)).fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"leader lock: {exc}") from exc
    return None if row is None else (int(row[0]), str(row[1]))
