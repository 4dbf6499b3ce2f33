"""State that must survive a restart: the interface and its SQLite implementation.

- `Store`: the interface (a `typing.Protocol`): agents' hours and the change feed
  of hour edits, agents' own state requests (``homeline agent state``), one
  record per call with queue_log-style events, and the router's state
  (`routing.snapshot`) written as it changes and loaded on start; the web app's
  users (argon2 hashes only) and sessions.
- `SqliteStore`: one SQLite file (WAL). Its SQL is the subset PostgreSQL runs
  as well (`store.schema`), so a shared PostgreSQL store can follow.

An adapter: it imports the routing core's values (events, directory, snapshot),
never the composition root (``homeline``), and the cores never import it: the
composition root applies stored hours to the directory before building the
router and feeds the stored changes to it as events.
"""
from __future__ import annotations

from store.base import AgentRequest, Store
from store.errors import StoreError
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
from store.sqlite import SqliteStore

__all__ = ["Store", "SqliteStore", "StoreError", "CallRecord", "CallEvent", "AgentRequest",
           "CALL_EVENT_KINDS", "AGENT_STATE_ACTIONS", "SCHEMA", "SCHEMA_VERSION", "USER_ROLES",
           "User", "WebSession"]
