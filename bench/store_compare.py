"""Store benchmark: the PostgreSQL store against the SQLite store, measured in the same run.

A throw-away PostgreSQL cluster (homeline/pgcluster.py, durable: fsync and
synchronous_commit on, as SQLite's WAL commits are) on loopback TCP, and an SQLite
file beside its data directory (same disk). On each:

- router-state saves: the deterministic busy day of tests/store/router_writer.py
  (4 agents, fair-share, calls arriving, answered, abandoned ...), its
  ``snapshot_changes`` after every event saved one transaction each, as the
  engine does (``save_router_changes``);
- change-feed appends: ``request_agent_state`` from one thread, then from 4
  threads at once (every seq distinct and consecutive, checked);
- feed polls: ``agent_requests_since(last)`` with nothing new (the engine's poll),
  after ANALYZE (the statistics PostgreSQL's autovacuum keeps; SQLite's too).

Run: .venv/bin/python bench/store_compare.py [--steps N] [--appends N]
Prints each figure, then one JSON object (the last line) with the figures and the
PostgreSQL / SQLite ratios (above 1: PostgreSQL is faster).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "store"))

from router_writer import START, Driven, directory, events  # noqa: E402

from homeline.pgcluster import PgCluster  # noqa: E402
from routing.snapshot import RouterChanges  # noqa: E402
from store import SqlStore, open_store  # noqa: E402

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def router_day(steps: int) -> list[RouterChanges]:
    """The changes the router made at each step of the writer's day (a full one first)."""
    router = Driven(directory(), now=START)
    out = [router.snapshot(START).as_changes()]
    router.take_dirty()
    for i, (now, ev) in enumerate(events(router)):
        if i >= steps:
            break
        router.handle(ev, now)
        out.append(router.snapshot_changes(now))
    return out


def rate(n: int, call: Callable[[], None]) -> float:
    t = time.perf_counter()
    call()
    return n / (time.perf_counter() - t)


def measure(store: SqlStore, analyze: Callable[[], None], changes: list[RouterChanges],
            appends: int, threads: int) -> dict[str, float]:
    out: dict[str, float] = {}

    def saves() -> None:
        for c in changes:
            store.save_router_changes(c)

    out["router_saves_per_s"] = rate(len(changes), saves)
    loaded = store.load_router_snapshot()
    assert loaded is not None and loaded.seq == changes[-1].seq

    def appends_one() -> None:
        for i in range(appends):
            store.request_agent_state("a1", "available", str(i), T0)

    out["feed_appends_per_s"] = rate(appends, appends_one)
    base = store.agent_requests_seq()
    seqs: list[int] = []
    lock = threading.Lock()
    per = appends // threads

    def worker(t: int) -> None:
        mine = [store.request_agent_state(f"a{t}", "break", str(i), T0) for i in range(per)]
        with lock:
            seqs.extend(mine)

    def appends_many() -> None:
        ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()

    out[f"feed_appends_{threads}_threads_per_s"] = rate(per * threads, appends_many)
    assert sorted(seqs) == list(range(base + 1, base + per * threads + 1)), "seqs"
    last = store.agent_requests_seq()
    analyze()  # table statistics, as PostgreSQL's autovacuum keeps them

    def polls() -> None:
        for _ in range(appends):
            store.agent_requests_since(last)

    out["feed_polls_per_s"] = rate(appends, polls)
    return out


def _analyze(address: str) -> None:
    if address.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(address, autocommit=True) as conn:
            conn.execute("ANALYZE")
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(address)) as db:
            db.execute("ANALYZE")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500, help="router events (saves)")
    ap.add_argument("--appends", type=int, default=2000, help="feed appends (and polls)")
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    changes = router_day(args.steps)
    figures: dict[str, Any] = {}
    with PgCluster(durable=True) as pg, tempfile.TemporaryDirectory(
            prefix="homeline-bench-") as tmp:
        addresses = {"sqlite": str(Path(tmp) / "bench.sqlite3"),
                     "postgresql": pg.create_database("bench")}
        for name, address in addresses.items():
            with open_store(address) as store:
                figures[name] = measure(store, lambda a=address: _analyze(a), changes,
                                        args.appends, args.threads)
            print(name, " ".join(f"{k}={v:,.0f}" for k, v in figures[name].items()),
                  flush=True)
    ratios = {k: round(figures["postgresql"][k] / figures["sqlite"][k], 3)
              for k in figures["sqlite"]}
    for k, v in ratios.items():
        print(f"postgresql/sqlite {k}: {v:.2f}x")
    print(json.dumps({"bench": "store_compare", "router_saves": len(changes),
                      "appends": args.appends, "threads": args.threads,
                      "sqlite": {k: round(v, 1) for k, v in figures["sqlite"].items()},
                      "postgresql": {k: round(v, 1) for k, v in figures["postgresql"].items()},
                      "ratio_postgresql_to_sqlite": ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
