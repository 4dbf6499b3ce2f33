"""The store's tables: one schema string, in SQL that PostgreSQL runs as well as SQLite.

Rules for every statement here and in the implementations (`store.sql.SqlStore`
runs them on SQLite and on a PostgreSQL store several engines share, issue 13):

- types: TEXT, INTEGER, BIGINT, DOUBLE PRECISION only; timestamps are ISO 8601
  text in UTC with microseconds (``2026-11-30T18:00:00.000000+00:00``), so they
  sort and compare as text in both databases;
- upserts are ``INSERT ... ON CONFLICT (key) DO UPDATE SET col = excluded.col``
  (PostgreSQL 9.5+, SQLite 3.24+), never ``INSERT OR REPLACE``;
- no AUTOINCREMENT / SERIAL: change-feed sequence numbers are ``MAX(seq) + 1``
  inside the writing transaction (SQLite serialises writers with BEGIN IMMEDIATE,
  `store.postgres` with one transaction-level advisory lock);
- no SQLite-only functions (datetime(), strftime(), julianday(), json_*()):
  JSON is stored as TEXT and decoded in Python;
- text holds no NUL character (PostgreSQL's cannot): both stores keep U+FFFD in
  its place; a float NaN is NULL (SQLite binds it so); `store.dbapi.portable`,
  applied to every statement's parameters, makes both so;
- a nullable sort key says where NULL goes (SQLite sorts it first, PostgreSQL
  last): ``ORDER BY CASE WHEN k IS NULL THEN 0 ELSE 1 END, k``; no negative LIMIT.

``SCHEMA_VERSION`` is kept in ``schema_version``; `SqlStore._migrate` brings an
older store up to it (version 1 is the store before the table existed). Version 4
adds the web app's ``users`` and ``web_sessions``: new tables only, so the
``CREATE TABLE IF NOT EXISTS`` below is the whole migration. Version 5 adds
``agent_state_log`` (every agent state change, for occupancy in `routing.stats`),
``recordings`` (where a call's recording is kept, and when retention removed it),
``payments`` (pause for payment: the agent's requests, a change feed the engine
reads, and their results; never a digit), the supervisor desk's ``hands`` and
``supervise_requests`` (store/desk.py), and the call event kind ``supervisor``
(a listen/whisper/barge, a hand picked up or answered, an agent's state changed
by a supervisor): `SqlStore._migrate` rebuilds ``call_events`` with the wider
CHECK; the rest are new tables. Version 6 adds the text channels' tables
(``text_conversations``, ``text_messages``, ``text_events``, ``text_processed``;
`store.text`): new tables only. Version 7 adds the text conversations' routes
through the router and the web app's requests about them (``chat_routes``,
``chat_requests``; `store.chats`): new tables only. ``router_leader`` (the router
leader's fencing epoch, `store.leader`) is a new table too, still version 7.
"""
from __future__ import annotations

from store.chats import CHAT_SCHEMA
from store.leader import LEADER_SCHEMA
from store.nodes import NODE_SCHEMA
from store.text import TEXT_SCHEMA

__all__ = ["SCHEMA", "SCHEMA_VERSION", "CALL_RECORD_COLUMNS_V1", "CALL_RECORD_COLUMNS_ADDED"]

SCHEMA_VERSION = 7

# the call_records columns of version 1, and those version 2 adds (with their type)
CALL_RECORD_COLUMNS_V1 = ("call_id", "queue_id", "agent_id", "caller", "arrived_at",
                          "answered_at", "ended_at", "outcome", "reason")
CALL_RECORD_COLUMNS_ADDED = (
    ("queued_at", "TEXT"), ("intent", "TEXT"), ("language", "TEXT"), ("flow", "TEXT"),
    ("flow_version", "TEXT"), ("wrap_up_s", "DOUBLE PRECISION"),
    ("survey_score", "INTEGER"), ("survey_comment", "TEXT"), ("variables", "TEXT"),
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
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
    seq BIGINT PRIMARY KEY, agent_id TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_requests (
    seq BIGINT PRIMARY KEY, agent_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('available', 'break', 'end-wrap-up')),
    why TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS call_records (
    call_id TEXT PRIMARY KEY, queue_id TEXT, agent_id TEXT, caller TEXT,
    arrived_at TEXT, answered_at TEXT, ended_at TEXT, outcome TEXT, reason TEXT,
    queued_at TEXT, intent TEXT, language TEXT, flow TEXT, flow_version TEXT,
    wrap_up_s DOUBLE PRECISION, survey_score INTEGER, survey_comment TEXT, variables TEXT
);
CREATE TABLE IF NOT EXISTS call_events (
    call_id TEXT NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('enter', 'offered', 'ring-no-answer', 'connected',
        'abandoned', 'overflowed', 'callback', 'completed', 'ivr-ended', 'voicemail',
        'transfer', 'rejected', 'supervisor')),
    agent_id TEXT, data TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE IF NOT EXISTS router_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1), format INTEGER NOT NULL, as_of TEXT NOT NULL,
    as_of_s DOUBLE PRECISION NOT NULL, seq BIGINT NOT NULL, saved_at TEXT NOT NULL,
    fairness TEXT
);
-- how far the router state has read the agents own requests (agent_requests): a
-- restarted or new leader goes on from there, so a request made while no engine ran
-- is not lost (new table, schema version unchanged)
CREATE TABLE IF NOT EXISTS router_feeds (
    feed TEXT PRIMARY KEY, seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_state (
    agent_id TEXT PRIMARY KEY, state TEXT NOT NULL, since TEXT NOT NULL, data TEXT NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS router_calls (
    call_id TEXT PRIMARY KEY, phase TEXT NOT NULL, queue_id TEXT NOT NULL, agent_id TEXT,
    seq BIGINT NOT NULL, data TEXT NOT NULL, saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    agent_id TEXT, password_hash TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
    id TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL, created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions(user_name);
CREATE TABLE IF NOT EXISTS hands (
    id BIGINT PRIMARY KEY, agent_id TEXT NOT NULL, call_id TEXT, text TEXT NOT NULL,
    raised_at TEXT NOT NULL, picked_by TEXT, picked_at TEXT, reply TEXT, replied_at TEXT,
    lowered_at TEXT, lowered_by TEXT
);
CREATE INDEX IF NOT EXISTS hands_agent ON hands(agent_id);
CREATE TABLE IF NOT EXISTS supervise_requests (
    seq BIGINT PRIMARY KEY, supervisor TEXT NOT NULL, agent_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS last_agent (
    caller TEXT PRIMARY KEY, agent_id TEXT NOT NULL, at TEXT NOT NULL,
    at_s DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_state_log (
    seq BIGINT PRIMARY KEY, agent_id TEXT NOT NULL, state TEXT NOT NULL, at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_state_log_at ON agent_state_log(at);
CREATE TABLE IF NOT EXISTS recordings (
    call_id TEXT PRIMARY KEY, path TEXT NOT NULL, stored_at TEXT NOT NULL,
    bytes BIGINT NOT NULL, removed_at TEXT
);
CREATE TABLE IF NOT EXISTS payments (
    seq BIGINT PRIMARY KEY, agent_id TEXT NOT NULL, call_id TEXT, requested_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('requested', 'capturing', 'accepted', 'declined',
        'failed')),
    detail TEXT NOT NULL, updated_at TEXT NOT NULL
);
""" + TEXT_SCHEMA + CHAT_SCHEMA + LEADER_SCHEMA + NODE_SCHEMA
