"""An agent's own request made while no engine runs (between a leader's death and
the next engine's takeover, or during a restart) is not lost: the router state is
saved with how far it read the agents' requests (``router_feeds``), and an engine
that adopts the stored state goes on from there. On SQLite and on PostgreSQL. The
engine is not started (no Asterisk): the test hands it events on its own thread."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pg_kit import StoreMaker

from homeline.engine import Engine, EngineConfig
from homeline.paths import DIALPLANS_DIR
from routing import Router, load_directory
from routing.events import AgentRegistered


def _engine(store: object, directory: object, now: datetime,
            restore: tuple[object, object] | None = None) -> Engine:
    return Engine(EngineConfig("127.0.0.1", 1, "nobody", "nothing"),
                  Router(directory, now=now), lambda: None,  # type: ignore[arg-type]
                  agent_ids=[a.id for a in directory.agents],  # type: ignore[attr-defined]
                  store=store, clock=lambda: now, restore=restore)


def test_a_request_made_while_no_engine_runs_is_applied_by_the_next_one(
        make_store: StoreMaker) -> None:
    directory = load_directory(DIALPLANS_DIR / "agents.yaml")
    agent = directory.agents[0].id
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    store = make_store()
    first = _engine(store, directory, now)
    try:
        first._handle(AgentRegistered(agent))
        store.request_agent_state(agent, "break", "lunch", now)
        first._poll_store()  # the engine applies it and saves how far it read
        snap = store.load_router_snapshot()
        assert snap is not None
        assert next(a for a in snap.agents if a.agent_id == agent).state == "break"
        store.request_agent_state(agent, "available", "", now + timedelta(seconds=1))
        first._poll_store()
        read = store.router_feeds()["agent_requests"]
        assert read == store.agent_requests_seq()
    finally:
        first.stop()
    # no engine runs: the agent goes on break again, then the next engine takes over
    later = now + timedelta(seconds=30)
    store.request_agent_state(agent, "break", "tea", later)
    snapshot = store.load_router_snapshot()
    second = _engine(store, directory, later, restore=(directory, snapshot))
    try:
        assert second._requests_seq == read  # not the feed's end: the request waits
        second._restore = None  # adopted (what the first AMI login would do)
        second._core, _ = Router.restore(directory, snapshot, now=later)
        second._router = second._core
        second._poll_store()
        snap = store.load_router_snapshot()
        assert snap is not None
        assert next(a for a in snap.agents if a.agent_id == agent).state == "break", \
            "the request made while no engine ran was lost"
        assert store.router_feeds()["agent_requests"] == store.agent_requests_seq()
    finally:
        second.stop()
        store.close()
