"""State that must survive a restart: the interface and its SQLite implementation.

- `Store`: the interface (a `typing.Protocol`): agents' hours and the change feed
  of hour edits, agents' own state requests (``homeline agent state``), one
  record per call with queue_log-style events, and the router's state
  (`routing.snapshot`) written as it changes and loaded on start; the web app's
  users (argon2 hashes only) and sessions.
- `SqliteStore`: one SQLite file (WAL), the embedded default for one machine;
  `store.postgres.PostgresStore`: a PostgreSQL database several engines share.
  Both are `store.sql.SqlStore`, one copy of the SQL (the portable subset of
  `store.schema`), the same schema and migrations. `open_store` picks one by its
  address: a path, or a ``postgresql://`` URL.

An adapter: it imports the routing core's values (events, directory, snapshot),
never the composition root (``homeline``), and the cores never import it: the
composition root applies stored hours to the directory before building the
router and feeds the stored changes to it as events.
"""
from __future__ import annotations

from pathlib import Path

from store.base import AgentRequest, Store
from store.errors import StoreError
from store.leader import DoubleBooking, FencedOut, LeaderRecord
from store.records import (
    AGENT_STATE_ACTIONS,
    CALL_EVENT_KINDS,
    USER_ROLES,
    CallEvent,
    CallRecord,
    User,
    WebSession,
)
from store.schema import SCHEMA, SCHEMA_VERSION
from store.sql import SqlStore
from store.sqlite import SqliteStore

__all__ = ["Store", "SqliteStore", "SqlStore", "open_store", "is_postgres_url", "StoreError",
           "FencedOut", "DoubleBooking", "LeaderRecord", "CallRecord", "CallEvent", "AgentRequest",
           "CALL_EVENT_KINDS", "AGENT_STATE_ACTIONS", "SCHEMA", "SCHEMA_VERSION", "USER_ROLES",
           "User", "WebSession"]


def is_postgres_url(address: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a path."""
    return isinstance(address, str) and address.lower().startswith(("postgresql://",
                                                                     "postgres://"))


def open_store(address: str | Path) -> SqlStore:
    """The store at ``address``: a ``postgresql://user:password@host:port/dbname`` URL
    (`store.postgres.PostgresStore`; psycopg is imported only then) or the path of
    an SQLite file (`SqliteStore`). StoreError when it cannot be opened."""
    if is_postgres_url(address):
        from store.postgres import PostgresStore

        return PostgresStore(str(address))
    return SqliteStore(address)
