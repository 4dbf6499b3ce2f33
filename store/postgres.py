"""PostgreSQL store: the same `store.sql.SqlStore` over a server several engines share.

``PostgresStore("postgresql://user:password@host:port/dbname")`` opens a pool of
psycopg 3 connections (psycopg-pool), creates the tables of `store.schema` if
they are missing and applies the same ``schema_version`` migrations as SQLite
(`SqlStore._migrate`), all under the write lock, so two engines starting at once
do not race. The SQL is `SqlStore`'s, shared with `store.sqlite.SqliteStore`;
only the placeholders differ (``?`` becomes ``%s``, `translate`).

Writers are serialised as SQLite's ``BEGIN IMMEDIATE`` does, by one
transaction-level advisory lock for the whole store (`WRITE_LOCK`, taken by the
first statement of every write transaction, released by its COMMIT or
ROLLBACK, and by the server if the writer's connection dies). One lock rather
than one per table, because more than the change feeds depend on it: every
``MAX(seq) + 1`` (agent_requests, chat_requests, payments, ...), but also every
check-then-write (one open hand per agent, a user name taken, a provider's
message id claimed, the chat routes' compare-and-set) is correct only if no
other writer runs between its statements, and several methods write more than
one table (``route_chat``: a route and its request). Write transactions are
short (no I/O but the database's), so one writer at a time costs little; the
transactions run at READ COMMITTED, so each statement after the lock sees
everything committed before it was granted.

A connection the server dropped (a restart, ``pg_terminate_backend``) is found
broken when first used and left behind; the call then takes another one (a new
connection once the server answers again): a read is retried whole, a write is
retried only while nothing of it has run (its BEGIN and lock). A call never
waits longer than ``timeout`` seconds for a connection or the lock: StoreError
then, naming the problem; while the server does not answer at all, a call fails
within a fraction of a second (the engine's router thread keeps routing on
what it knows rather than waiting on every save).

The database must sort text by byte (collation ``C``, as SQLite does): the
store's ISO timestamps and ids compare and sort as text (`store.schema`).
`PostgresStore` refuses one that does not, saying how to create one that does:
``CREATE DATABASE homeline TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'``.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool, PoolTimeout

from store import is_postgres_url
from store.dbapi import Connection, portable
from store.errors import StoreError
from store.schema import SCHEMA
from store.sql import SqlStore

__all__ = ["PostgresStore", "WRITE_LOCK", "translate", "redact"]

# the store's one write lock: "Homeline" in ASCII as a bigint (pg_advisory_xact_lock
# keys are one namespace per database: other Homeline locks must use other keys)
WRITE_LOCK = int.from_bytes(b"Homeline", "big")
# how long a call waits for the pool before asking whether the server is down
_SLICE_S = 0.25

def redact(url: str) -> str:
    """The URL without its password (what error messages and logs show)."""
    url = re.sub(r"^([a-z]+://[^:@/?]*):[^@/?]*@", r"\1:***@", url, flags=re.IGNORECASE)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url, flags=re.IGNORECASE)


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """The statement with psycopg's placeholders: ``?`` -> ``%s``, a literal ``%`` -> ``%%``.

    A ``?`` inside a quoted literal would be ambiguous, and the store never
    writes one: it is refused (ValueError) rather than guessed at.
    """
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted  # '' (an escaped quote) toggles twice
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?":
            if quoted:
                raise ValueError(f"a '?' inside a quoted literal: {sql!r}")
            out.append("%s")
        else:
            out.append(ch)
    if quoted:
        raise ValueError(f"an unterminated quoted literal: {sql!r}")
    return "".join(out)


class _Conn:
    """A psycopg connection as the store's SQL uses it (`store.dbapi.Connection`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(translate(sql), tuple(portable(parameters)))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /
                    ) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor()
        rows = [tuple(portable(p)) for p in parameters]
        if rows:
            cur.executemany(translate(sql), rows)
        return cur


class PostgresStore(SqlStore):
    """The `store.Store` interface over a PostgreSQL database (see the module's notes).

    ``timeout``: the longest a call waits for a connection or for the write lock;
    ``max_size``: the pool's connections (the engine's threads share them).
    """

    def __init__(self, url: str, *, timeout: float = 10.0, max_size: int = 8) -> None:
        if not is_postgres_url(url):
            raise StoreError(f"{url!r}: not a postgresql:// URL")
        self.url = url
        self.where = redact(url)
        self.timeout = float(timeout)
        self._max_size = max_size
        self._renewing = threading.Lock()
        self._pool = self._new_pool()
        try:
            self._pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"{self.where}: cannot open the store: no connection within "
                             f"{self.timeout:g} s ({self._last_error()})") from exc
        try:
            self._check_collation()
            with self._tx() as db:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def _new_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        return ConnectionPool(
            self.url, min_size=1, max_size=self._max_size, open=False, timeout=self.timeout,
            name="homeline-store", configure=self._configure,
            kwargs={"autocommit": True, "connect_timeout": max(2, int(self.timeout)),
                    "application_name": "homeline",
                    # a server gone without a word (no RST) is noticed within ~11 s
                    "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                    "keepalives_count": 3})

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # a lock wait is bounded as SQLite's busy_timeout bounds it (the URL's own
        # options, if any, are kept: these are SETs on each new connection); every
        # statement planned for its values: a feed's poll (seq > its last seq) finds
        # almost nothing, where a plan made for any value scans the table (psycopg
        # prepares a statement run often)
        conn.execute(f"SET lock_timeout = {int(self.timeout * 1000)}; "
                     "SET plan_cache_mode = force_custom_plan")

    def _last_error(self) -> str:
        """Why the pool could not connect, asked of the server directly."""
        return self._probe() or "no connection came free"

    def _check_collation(self) -> None:
        # byte order: upper case before lower case, punctuation counted (linguistic
        # collations answer False to at least one of these)
        row = self._read("SELECT 'B' < 'a', 'a-c' < 'ab', 'Z1' < 'a0'")[0]
        if not all(row):
            raise StoreError(
                f"{self.where}: the database sorts text by language rules, not by byte "
                "(it puts 'a' before 'B'); the store compares timestamps and ids as text in "
                "byte order, as SQLite does: create the database with CREATE DATABASE name "
                "TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")

    def close(self) -> None:
        self._pool.close()

    @staticmethod
    def _putconn(pool: ConnectionPool[psycopg.Connection[Any]],
                 conn: psycopg.Connection[Any]) -> None:
        # a broken connection, or one left in a transaction, is discarded by the pool
        pool.putconn(conn)

    # ------------------------------------------------------------ connections
    def _getconn(self, deadline: float
                 ) -> tuple[ConnectionPool[psycopg.Connection[Any]], psycopg.Connection[Any]]:
        """A connection of the pool (and that pool, to give it back to).

        A pool merely busy is waited for, up to the deadline. A pool that has failed
        to connect is not: the server is asked directly, and if it does not answer
        the call fails at once (StoreError) instead of waiting out the timeout, so a
        caller such as the engine's router thread is held up a fraction of a second
        per call while the database is down, not ``timeout`` seconds.
        """
        while True:
            pool = self._pool
            left = deadline - time.monotonic()
            try:
                return pool, pool.getconn(timeout=max(0.05, min(_SLICE_S, left)))
            except PoolTimeout as exc:
                if left <= _SLICE_S:
                    raise StoreError(f"{self.where}: no database connection within "
                                     f"{self.timeout:g} s ({self._last_error()})") from exc
                if pool.get_stats().get("connections_errors"):
                    down = self._probe()
                    if down is not None:
                        raise StoreError(f"{self.where}: the database does not answer "
                                         f"({down})") from exc
                    self._renew(pool)
            except psycopg.Error as exc:  # the pool is closed
                raise StoreError(f"{self.where}: {exc}") from exc

    def _probe(self) -> str | None:
        """None when the server takes a connection now, else why not."""
        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        except psycopg.Error as exc:
            text = str(exc).strip()
            return text.splitlines()[0] if text else type(exc).__name__
        return None

    def _renew(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        """After an outage the pool retries connecting with a growing delay (1 s, 2 s,
        4 s ...): once the server answers again, a new pool replaces it rather than
        calls waiting out the delay."""
        with self._renewing:
            if self._pool is not pool:
                return  # another thread renewed it
            fresh = self._new_pool()
            fresh.open(wait=False)
            self._pool = fresh
        # connections still lent out are closed when given back to the closed pool
        pool.close(timeout=1.0)

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        if conn.broken or conn.closed:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # the pool discards a connection it cannot reset

    def _begin(self, begin: str, lock: bool, what: str
               ) -> tuple[ConnectionPool[psycopg.Connection[Any]], psycopg.Connection[Any]]:
        """A connection inside a new transaction (and holding the write lock); a
        connection the server dropped since its last use is left and another taken."""
        deadline = time.monotonic() + self.timeout
        while True:
            pool, conn = self._getconn(deadline)
            try:
                # one round trip: without parameters psycopg sends both statements at once
                conn.execute(f"{begin}; SELECT pg_advisory_xact_lock({WRITE_LOCK})" if lock
                             else begin)
                return pool, conn
            except psycopg.Error as exc:
                self._rollback(conn)
                broken = conn.broken
                self._putconn(pool, conn)
                if broken and time.monotonic() < deadline:
                    continue
                if isinstance(exc, psycopg.errors.LockNotAvailable):
                    raise StoreError(f"{self.where}: {what}: another writer held the store "
                                     f"for more than {self.timeout:g} s") from exc
                raise StoreError(f"{self.where}: {what}: {exc}") from exc

    @contextmanager
    def _transaction(self, begin: str, write: bool, what: str) -> Iterator[Connection]:
        """One transaction on a pooled connection: committed when the block ends,
        rolled back (and the error a `StoreError` naming ``what``) when it fails."""
        pool, conn = self._begin(begin, write, "cannot write" if write else what)
        try:
            try:
                yield _Conn(conn)
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                self._rollback(conn)
                raise StoreError(f"{self.where}: {what}: {exc}") from exc
            except BaseException:
                self._rollback(conn)
                raise
        finally:
            self._putconn(pool, conn)

    def _tx(self) -> AbstractContextManager[Connection]:
        return self._transaction("BEGIN", True, "write failed")

    def _doorbell(self, db: Connection, channel: str) -> None:
        # delivered to the listeners when the transaction commits (PostgreSQL docs, NOTIFY)
        db.execute("SELECT pg_notify(?, '')", (channel,))

    def wait_doorbell(self, channel: str, stop: threading.Event,
                      ring: Callable[[], None]) -> None:
        """Until ``stop``: ``ring()`` whenever someone notifies ``channel`` (LISTEN on a
        connection of its own, not the pool's); a lost connection is opened again
        after a second, a missed notification is what the readers' polling catches."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2,
                                     application_name="homeline-doorbell") as conn:
                    conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))
                    while not stop.is_set():
                        for _note in conn.notifies(timeout=0.5, stop_after=1):
                            ring()
            except psycopg.Error:
                stop.wait(1.0)

    def _reads(self) -> AbstractContextManager[Connection]:
        # one snapshot for the reads (the router state, an agent's hours)
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", False,
                                 "read failed")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        deadline = time.monotonic() + self.timeout
        query = translate(sql)
        while True:
            pool, conn = self._getconn(deadline)
            try:
                return conn.execute(query, tuple(portable(params))).fetchall()
            except psycopg.Error as exc:
                if conn.broken and time.monotonic() < deadline:
                    continue  # a dropped connection: the read again on another
                raise StoreError(f"{self.where}: read failed: {exc}") from exc
            finally:
                self._putconn(pool, conn)
