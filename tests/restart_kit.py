"""What the PostgreSQL-restart tests share (tests/integration/test_pg_restart.py, one
Asterisk with a standby engine; test_nodes_pg_restart.py, two nodes): the test's
view of the store while its pool reconnects after the restart, and when the server
said it was back. The fixture ``own_cluster`` (a PostgreSQL cluster of the test's
own, so the session's cluster is not restarted under other tests) is in
tests/integration/conftest.py."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from homeline.pgcluster import PgCluster
from store import SqlStore, StoreError

__all__ = ["waiting_line", "leader_or_none", "server_ready_at"]


def waiting_line(store: SqlStore, queue: str = "billing") -> list[tuple[str, str, float]]:
    """(caller, call id, queued at) of the calls waiting in ``queue``, in line order
    ([] while the store reconnects)."""
    try:
        snap = store.load_router_snapshot()
    except StoreError:
        return []
    if snap is None:
        return []
    calls = sorted((c for c in snap.calls if c.phase == "waiting" and c.queue == queue),
                   key=lambda c: (c.key, c.seq))
    return [(c.arrival.caller or "", c.call_id, c.queued_at) for c in calls]


def leader_or_none(store: SqlStore) -> Any:
    """The stored router leader (None while the pool reconnects after the restart)."""
    try:
        return store.router_leader()
    except StoreError:
        return None


def server_ready_at(cluster: PgCluster, fallback: datetime) -> datetime:
    """When the server last said it accepts connections (its log's own timestamp,
    ``log_line_prefix`` '%m': milliseconds, UTC), else ``fallback``."""
    ready = [line for line in cluster.log.read_text(errors="replace").splitlines()
             if "ready to accept connections" in line]
    try:
        day, clock, zone = ready[-1].split()[:3]
        assert zone == "UTC"
        return datetime.fromisoformat(f"{day}T{clock}+00:00")
    except (IndexError, ValueError, AssertionError):
        return fallback
