"""Cluster benchmark: failover of the router leader, and what the shared PostgreSQL
store costs each routing event against the SQLite store, in the same run.

1. Failover, ``--runs`` times (5): a real Asterisk, two `homeline engine run`
   processes on a database of a throw-away PostgreSQL cluster (node a leads with
   epoch 1, node b waits as standby), one agent (pjsua2) talking to a caller and
   ``--callers`` callers (3, pjsua2, pressing 1 for billing) waiting in line.
   node a is killed with SIGKILL; an agent comes online; the figure is the time
   from the kill to the standby's first routing decision (the stored router state
   shows a waiting caller offered to that agent; seen as tests/integration/
   test_failover.py sees it, with the same helpers: tests/failover_kit.py).
   Then agents come online one at a time until every waiting caller has reached
   one: a caller whose leg ended, or who reached no agent, is lost (target 0);
   ``in_order`` says whether they reached agents in the order they waited.
   Target: p95 <= 3 s with 0 callers lost (``target_met``).
   Each run builds a fresh pair: a new Asterisk instance, a new database and two
   new engine processes. So every run starts from the same state (no calls,
   registrations or records left by the run before; node a leads with epoch 1),
   and kills the same role. (Restarting node a after the kill would make it the
   standby behind b: the next run would kill b instead, on a store holding the
   earlier runs' calls.) The PostgreSQL cluster is one for the whole run,
   durable (fsync and synchronous_commit on, as SQLite's WAL commits are).
2. Store cost (the reference measured in the same run): the deterministic busy
   day of tests/store/router_writer.py, ``--events`` router events (1500), each
   handled as the engine handles one (``Router.handle``, ``snapshot_changes``,
   ``save_router_changes``: one transaction per event), on an SQLite file and on
   a PostgreSQL database of the same cluster, fenced as a leader's store is
   (every save checks the epoch). Events per second and the per-event
   p50/p95, each store, and the router alone (no store) for scale; the ratio
   PostgreSQL / SQLite (below 1: PostgreSQL handles fewer events per second).

Run: .venv/bin/python bench/cluster.py [--runs 5] [--callers 3] [--events 1500]
Everything it starts (Asterisk, the engines, the softphones, PostgreSQL) is
stopped by PID at the end, also on a failure, SIGTERM or Ctrl-C. The last line
printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "store"))

import yaml  # noqa: E402
from benchkit import percentile  # noqa: E402
from failover_kit import (  # noqa: E402
    EngineProcess,
    Phones,
    caller_of,
    engine_argv,
    offered_to,
    start_pair,
    stop_all,
    waiting_callers,
)
from integration.conftest import directory_for, wait_for  # noqa: E402
from router_writer import START, Driven, directory, events  # noqa: E402

from homeline.pgcluster import PgCluster  # noqa: E402
from homeline.stack import PbxStack  # noqa: E402
from store import SqlStore, open_store  # noqa: E402

TARGET_P95_S = 3.0


# --- 2. the store's cost per routing event ------------------------------------------

def handle_day(store: SqlStore | None, steps: int) -> tuple[float, list[float]]:
    """The writer's day, ``steps`` events, each handled and (with a store) saved as the
    engine does; (events per second, each event's seconds)."""
    router = Driven(directory(), now=START)
    if store is not None:
        store.save_router_changes(router.snapshot(START).as_changes())
    router.take_dirty()
    each: list[float] = []
    started = time.perf_counter()
    for i, (now, ev) in enumerate(events(router)):
        if i >= steps:
            break
        t = time.perf_counter()
        router.handle(ev, now)
        changes = router.snapshot_changes(now)
        if store is not None:
            store.save_router_changes(changes)
        each.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    if store is not None:
        loaded = store.load_router_snapshot()
        assert loaded is not None and loaded.seq == changes.seq, "the saved state is not the last"
    return len(each) / total, each


def store_cost(pg: PgCluster, work: Path, steps: int) -> dict[str, Any]:
    from store.leader import Leadership
    from store.postgres import PostgresStore

    def figures(rate: float, each: list[float]) -> dict[str, Any]:
        return {"events_per_s": round(rate, 1),
                "p50_ms": round(1000 * (percentile(each, 50) or 0.0), 3),
                "p95_ms": round(1000 * (percentile(each, 95) or 0.0), 3)}

    out: dict[str, Any] = {"events": steps,
                           "router_alone": figures(*handle_day(None, steps))}
    with open_store(str(work / "cost.sqlite3")) as sqlite:
        out["sqlite"] = figures(*handle_day(sqlite, steps))
    with open_store(pg.create_database("cost")) as pgstore:
        assert isinstance(pgstore, PostgresStore)
        lead = Leadership(pgstore, "bench")
        try:
            assert lead.try_lead(datetime.now(UTC)) == 1, "the benchmark's store has a leader"
            out["postgresql"] = figures(*handle_day(pgstore, steps))
            out["postgresql"]["fenced_epoch"] = lead.epoch
        finally:
            lead.close()
    out["ratio_postgresql_to_sqlite_events_per_s"] = round(
        out["postgresql"]["events_per_s"] / out["sqlite"]["events_per_s"], 3)
    out["ratio_postgresql_to_sqlite_p95"] = round(
        out["postgresql"]["p95_ms"] / out["sqlite"]["p95_ms"], 2)
    return out


# --- 1. failover -------------------------------------------------------------------

@dataclass
class Run:
    number: int
    failover_s: float | None = None
    takeover_s: float | None = None   # the kill -> router_leader.since of epoch 2
    reached: list[str] = field(default_factory=list)
    lost: int = 0
    in_order: bool = False
    double_offers: int = 0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"run": self.number,
                "failover_s": None if self.failover_s is None else round(self.failover_s, 3),
                "takeover_s": None if self.takeover_s is None else round(self.takeover_s, 3),
                "callers_lost": self.lost, "in_order": self.in_order,
                "double_offers": self.double_offers, "error": self.error}


def failover_run(number: int, pg: PgCluster, work: Path, callers: int) -> Run:
    """One fresh pair (Asterisk, database, engines a and b), one kill -9 of the leader."""
    from softphone import SoftphoneHost

    run = Run(number)
    now = datetime.now(UTC)
    later = [f"w{n}" for n in range(1, callers + 1)]  # agents who come online after the kill
    agents = {a: {"skills": {"billing": 3}} for a in ("amy", *later)}
    directory_ = directory_for(agents, now, ring_timeout_s=6)
    agents_file = work / "agents.yaml"
    agents_file.write_text(yaml.safe_dump(directory_.to_dict(), sort_keys=False),
                           encoding="utf-8")
    url = pg.create_database(f"run{number}")
    name = f"cb{os.getpid()}r{number}"
    stack = PbxStack(name, directory_, work / name)
    engines: dict[str, EngineProcess] = {}
    host = None
    phones: list[Any] = []
    watch = open_store(url)
    order = [f"+1555070{number % 10}{n}" for n in range(1, callers + 1)]
    legs: list[Any] = []
    try:
        stack.start_pbx()
        start_pair(engine_argv(agents_file, url, "a", stack.state_dir),
                   engine_argv(agents_file, url, "b", stack.state_dir), work, engines)
        host = SoftphoneHost()

        parties = Phones(host, stack)
        parties.made = phones  # cleaned up below
        agent, call = parties.agent, parties.caller

        amy = agent("amy")
        talking = call("+15550700")
        amy.wait_call(20).wait_confirmed(10)
        for number_ in order:
            legs.append(call(number_))
            time.sleep(0.5)
        assert wait_for(lambda: waiting_callers(watch) == order, 20), waiting_callers(watch)

        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        engines["a"].kill()
        first_agent = agent(later[0])
        assert wait_for(lambda: offered_to(watch, later), 30, step=0.02), engines["b"].text()
        run.failover_s = time.monotonic() - killed
        leader = watch.router_leader()
        assert leader is not None and (leader.epoch, leader.node) == (2, "b"), leader
        run.takeover_s = (leader.since - killed_at).total_seconds()
        online = [first_agent]
        for i, agent_id in enumerate(later):  # one at a time: each gets the head of the line
            if i > 0:
                online.append(agent(agent_id))
            phone = online[i]

            def offered(p: Any = phone) -> bool:
                return bool(p.calls)

            if not wait_for(offered, 20):
                break
            leg = phone.calls[0]
            leg.wait_confirmed(10)
            run.reached.append(caller_of(leg))
        time.sleep(1.0)  # any second offer would show by now
        run.double_offers = sum(max(0, len(p.calls) - 1) for p in (amy, *online))
        ended = sum(1 for leg in legs if leg.ended)
        run.lost = max(len(set(order) - set(run.reached)), ended)
        run.in_order = run.reached == order
        assert not talking.ended, "the connected caller was dropped"
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, the next one runs
        run.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        run.lost = len(set(order) - set(run.reached))
    finally:
        watch.close()
        stop_all(phones, host, engines.values(), stack)
        try:
            pg.drop_database(f"run{number}")
        except Exception:  # noqa: BLE001 - the cluster goes at the end anyway
            pass
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="failovers (a fresh pair each)")
    ap.add_argument("--callers", type=int, default=3, help="callers waiting at the kill")
    ap.add_argument("--events", type=int, default=1500, help="router events per store")
    args = ap.parse_args()

    def terminated(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # the finally blocks stop what was started

    signal.signal(signal.SIGTERM, terminated)
    work = Path(tempfile.mkdtemp(prefix="homeline-bench-cluster-"))
    runs: list[Run] = []
    try:
        with PgCluster(durable=True) as pg:
            cost = store_cost(pg, work, args.events)
            print(f"store cost per routing event ({args.events} events): "
                  + "; ".join(f"{k} {cost[k]['events_per_s']:,.0f}/s p95 {cost[k]['p95_ms']} ms"
                              for k in ("router_alone", "sqlite", "postgresql"))
                  + f"; postgresql/sqlite {cost['ratio_postgresql_to_sqlite_events_per_s']}x",
                  flush=True)
            for n in range(1, args.runs + 1):
                run_dir = work / f"run{n}"
                run_dir.mkdir()
                run = failover_run(n, pg, run_dir, args.callers)
                runs.append(run)
                print(f"failover run {n}/{args.runs}: " + json.dumps(run.summary()), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    times = [r.failover_s for r in runs if r.failover_s is not None]
    lost = sum(r.lost for r in runs)
    p95 = percentile(times, 95)
    complete = len(times) == len(runs) == args.runs and not any(r.error for r in runs)
    print(json.dumps({
        "benchmark": "cluster",
        "runs": args.runs,
        "callers_waiting_per_run": args.callers,
        "pair": "fresh each run (new Asterisk, database and engines a, b; one PostgreSQL "
                "cluster, durable)",
        "failover_s": {"p50": round(percentile(times, 50) or 0, 3) if times else None,
                       "p95": round(p95, 3) if p95 is not None else None,
                       "max": round(max(times), 3) if times else None,
                       "each": [round(t, 3) for t in times]},
        "measured": "kill -9 of the leader -> the stored router state shows a waiting caller "
                    "offered to an agent (the standby's first routing decision)",
        "takeover_s": [r.summary()["takeover_s"] for r in runs],
        "callers_lost": lost,
        "in_order": all(r.in_order for r in runs),
        "double_offers": sum(r.double_offers for r in runs),
        "failed_runs": [r.summary() for r in runs if r.error],
        "target_p95_s": TARGET_P95_S,
        "target_met": bool(complete and p95 is not None and p95 <= TARGET_P95_S and lost == 0),
        "store_cost_per_event": cost,
    }))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: everything started is stopped by now
        print("interrupted: everything the benchmark started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
