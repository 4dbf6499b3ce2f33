"""SQLite store: agents' hours and state requests, call records, the router's state.

The path is the caller's (the composition root's default is
``homeline.paths.default_db_path()``; the CLI's ``--db`` overrides it). Hours
written here win over the windows in ``dialplans/agents.yaml``; every write
appends to ``hours_log``, and every state an agent asks for to
``agent_requests``, so a running engine picks them up with
`SqliteStore.hours_events_since` / `SqliteStore.agent_requests_since` and feeds
them to the router (they apply at once).

SQLite notes: WAL journal so the CLI can write while the engine reads, and a
committed transaction survives the process being killed
(https://www.sqlite.org/wal.html, https://www.sqlite.org/atomiccommit.html);
one connection per store, guarded by a lock. The SQL is `store.sql.SqlStore`'s
(the portable subset described in `store.schema`, shared with
`store.postgres.PostgresStore`); this module only opens the file and runs
transactions on it.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from store.dbapi import portable
from store.errors import StoreError
from store.schema import SCHEMA
from store.sql import SqlStore, iso

__all__ = ["SqliteStore", "iso"]


class _Conn:
    """The sqlite3 connection as the store's SQL uses it (`store.dbapi.Connection`),
    keeping what PostgreSQL keeps (`store.dbapi.portable`)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> sqlite3.Cursor:
        return self._db.execute(sql, portable(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /
                    ) -> sqlite3.Cursor:
        return self._db.executemany(sql, (portable(p) for p in parameters))


class SqliteStore(SqlStore):
    """The `store.Store` interface over one SQLite file (``":memory:"`` for tests);
    recordings and payments (`store.media.MediaTables`) and the supervisor desk's
    tables (`store.desk.DeskTables`) too."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
            self._lock = threading.Lock()
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[_Conn]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot write: {exc}") from exc
            try:
                yield _Conn(self._db)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: write failed: {exc}") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, portable(params)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: read failed: {exc}") from exc

    @contextmanager
    def _reads(self) -> Iterator[_Conn]:
        with self._lock:
            try:
                yield _Conn(self._db)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: read failed: {exc}") from exc
