"""A deposed leader's engine: once the store refuses its router-state save for a newer
epoch (store.FencedOut), the engine carries out none of that event's decisions nor
any later one's, says so once (``on_fenced``), and the store keeps what the new
leader has. A real PostgreSQL database; the engine is not started (no Asterisk):
the test hands it events on its own thread, as the router thread would."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeline.engine import Engine, EngineConfig
from homeline.paths import DIALPLANS_DIR
from routing import Router, load_directory
from routing.events import CallArrived
from store import open_store
from store.leader import Leadership
from store.postgres import PostgresStore


def _leader_engine(store: Any, now: datetime
                   ) -> tuple[Engine, list[str], list[tuple[str, Any]]]:
    """An engine of several (``on_fenced`` given), not started: what it was told
    (``on_fenced``) and everything its listeners saw."""
    directory = load_directory(DIALPLANS_DIR / "agents.yaml")
    told: list[str] = []
    seen: list[tuple[str, Any]] = []
    engine = Engine(EngineConfig("127.0.0.1", 1, "nobody", "nothing"),
                    Router(directory, now=now), lambda: None,
                    agent_ids=[a.id for a in directory.agents], store=store,
                    clock=lambda: now, on_fenced=told.append)
    engine.subscribe(lambda kind, payload: seen.append((kind, payload)))
    return engine, told, seen


def test_a_fenced_engine_carries_nothing_out_and_says_so_once(pg_database: Any) -> None:
    url = pg_database("fenced")
    store, other = open_store(url), open_store(url)
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert isinstance(store, PostgresStore)
    lead = Leadership(store, "a")
    engine, told, seen = _leader_engine(store, now)
    try:
        assert lead.try_lead(now) == 1
        decided = engine._handle(CallArrived("c1", "general", caller="+15550001"))
        assert decided and ("event", CallArrived("c1", "general", caller="+15550001")) in seen
        assert other.take_leadership("b", now) == 2  # another engine leads now
        seen.clear()
        decided = engine._handle(CallArrived("c2", "general", caller="+15550002"))
        assert decided, "the router decided: the decisions were not carried out"
        assert seen == [], seen  # nothing reached the executors (listeners see every one)
        assert len(told) == 1 and "epoch 1" in told[0] and "epoch 2" in told[0], told
        assert engine.fenced is not None and "deposed" in engine.errors[-1]
        engine._handle(CallArrived("c3", "general", caller="+15550003"))
        assert seen == [] and len(told) == 1  # said once
        snap = other.load_router_snapshot()
        assert snap is not None and [c.call_id for c in snap.calls] == ["c1"]
    finally:
        engine.stop()
        lead.close()
        store.close()
        other.close()


def test_a_leader_whose_save_fails_carries_nothing_out_and_steps_down(
        pg_database: Any) -> None:
    """One of several engines (``on_fenced`` given) whose router-state save fails (the
    store refuses the row: a CHECK constraint) carries out none of that event's
    decisions nor any later one's, stores nothing more and says so once: the next
    leader adopts what the store has, so a state it never stored is never acted on."""
    import psycopg

    url = pg_database("unsaved")
    store = open_store(url)
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert isinstance(store, PostgresStore)
    lead = Leadership(store, "a")
    engine, told, seen = _leader_engine(store, now)
    try:
        assert lead.try_lead(now) == 1
        assert engine._handle(CallArrived("c1", "general", caller="+15550001")) and seen
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("ALTER TABLE router_calls ADD CONSTRAINT test_refused "
                          "CHECK (call_id <> 'c2') NOT VALID")
        seen.clear()
        decided = engine._handle(CallArrived("c2", "general", caller="+15550002"))
        assert decided, "the router decided: the decisions were not carried out"
        assert seen == [], seen
        assert len(told) == 1 and told[0].startswith("router state not stored: "), told
        assert "test_refused" in told[0] and engine.fenced == told[0]
        engine._handle(CallArrived("c3", "general", caller="+15550003"))
        assert seen == [] and len(told) == 1  # said once
        snap = store.load_router_snapshot()
        assert snap is not None and [c.call_id for c in snap.calls] == ["c1"]
    finally:
        engine.stop()
        lead.close()
        store.close()


def test_without_leadership_a_failed_save_keeps_routing(pg_database: Any) -> None:
    """One engine alone (no ``on_fenced``: SQLite's case, kept for any store) goes on
    carrying out its decisions when a save fails, and stores the whole state again at
    the next save that succeeds."""
    import psycopg

    url = pg_database("alone")
    store = open_store(url)
    directory = load_directory(DIALPLANS_DIR / "agents.yaml")
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    seen: list[tuple[str, Any]] = []
    engine = Engine(EngineConfig("127.0.0.1", 1, "nobody", "nothing"),
                    Router(directory, now=now), lambda: None,
                    agent_ids=[a.id for a in directory.agents], store=store,
                    clock=lambda: now)
    engine.subscribe(lambda kind, payload: seen.append((kind, payload)))
    try:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("ALTER TABLE router_calls ADD CONSTRAINT test_refused "
                          "CHECK (call_id <> 'c1') NOT VALID")
            engine._handle(CallArrived("c1", "general", caller="+15550001"))
            assert ("event", CallArrived("c1", "general", caller="+15550001")) in seen
            assert engine.fenced is None
            admin.execute("ALTER TABLE router_calls DROP CONSTRAINT test_refused")
        engine._handle(CallArrived("c2", "general", caller="+15550002"))
        snap = store.load_router_snapshot()
        assert snap is not None and [c.call_id for c in snap.calls] == ["c1", "c2"]
    finally:
        engine.stop()
        store.close()
