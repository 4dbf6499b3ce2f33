"""The router state survives a store outage: a save the store refused is made good by
the next one (the whole state), on a real PostgreSQL server stopped and started again.

The engine is not started (no Asterisk is needed for this): the test hands it events
on its own thread, as the router thread would."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeline.engine import Engine, EngineConfig
from homeline.paths import DIALPLANS_DIR
from routing import Router, load_directory
from routing.events import CallArrived, TimerFired
from store import open_store


def test_a_failed_router_state_save_is_made_good_by_the_next(pg_cluster: Any,
                                                              pg_database: Any) -> None:
    store = open_store(pg_database("outage"))
    directory = load_directory(DIALPLANS_DIR / "agents.yaml")
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    engine = Engine(EngineConfig("127.0.0.1", 1, "nobody", "nothing"),
                    Router(directory, now=now), lambda: None,
                    agent_ids=[a.id for a in directory.agents], store=store,
                    clock=lambda: now)
    try:
        engine._handle(CallArrived("c1", "general", caller="+15550001"))
        pg_cluster.stop_server()
        try:
            engine._handle(CallArrived("c2", "general", caller="+15550002"))
            assert len(engine.errors) == 1 and "router state" in engine.errors[0]
            engine._handle(CallArrived("c3", "general", caller="+15550003"))
            assert len(engine.errors) == 1  # said once per outage, not once per event
        finally:
            pg_cluster.start_server()
        engine._handle(TimerFired())  # changes nothing in the router: saved whole anyway
        snap = store.load_router_snapshot()
        assert snap is not None
        assert sorted(c.call_id for c in snap.calls) == ["c1", "c2", "c3"]
    finally:
        engine.stop()
        store.close()
