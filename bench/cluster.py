"""Cluster benchmark: failover of the router leader, what the shared PostgreSQL store
costs each routing event, and route request -> ring and decisions per second with
it, each against the SQLite store in the same run; and several nodes sharing one
router: route request -> ring across nodes, and the failover of a leading node.

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
3. Route request -> ring, and decisions per second, on each store (``--only ring``
   runs this part alone): one real Asterisk, ``--ring-agents`` (8) registered
   pjsua2 agents' phones answering after 0.3 s, and sessions of `homeline engine
   run --db <a fresh SQLite file>` and of `homeline engine run --db <a fresh
   PostgreSQL database of the cluster>` (it leads with epoch 1: every save
   fenced), each with ``--journal``, one at a time (each stopped before the next
   starts), serving the same Asterisk and phones: the same calls on each store.
   ``--rounds`` (2) sessions per store in ABBA order (SQLite, PostgreSQL,
   PostgreSQL, SQLite), so neither store always runs first on a machine whose
   load drifts; each store's figures pool its sessions. In each session:
   - ring: ``--ring-calls`` (20) SIPp callers at ``--ring-rate`` (1) calls/s to the
     support number (extension 100: the IVR, press 1 for billing, hold, the
     router's Redirect, Dial; bench/sipp/uac_press_1_hold.xml, the caller hangs
     up 4.5 s after the answer, so an agent is free for each). From the route
     request to the agent's phone ringing, p50/p95 over the calls the router
     offered at once (its answer to the arrival offers the call; a call that
     waited for an agent is counted apart, not in the figure). Origin: the
     store's call timeline "enter" of the call, stamped by the engine as the IVR's
     route request reaches it over FastAGI (``Engine._route_from_ivr``,
     ``datetime.now(UTC)`` in the engine process). End: pjsua2's onIncomingCall
     for that call at an agent's phone, the INVITE's arrival (``time.monotonic()``
     in this process, put on the wall clock by ``time.time() - time.monotonic()``
     taken once). Same machine, so both are CLOCK_REALTIME readings (no NTP step
     in a few minutes). Split at the store's "offered" event (the router's
     ``now`` for the call's arrival): route request -> the router handles it (the
     router thread's inbox), and the decision -> ring (the store's save of the
     router state, one transaction, then the AMI Redirect, the dialplan's Dial,
     SIP). Calls are matched by the caller id SIPp sends (b<step>x<n>): the
     journal's CallArrived gives its call id.
   - decisions per second: ``--backlog`` (400) agents' own requests (break, then
     available, agent after agent; the change feed the portal and `homeline
     agent` write) appended while the engine process is stopped (SIGSTOP by its
     PID, SIGCONT after): its router thread finds them all at its next poll and
     handles them back to back, each a router event with its decision, the
     router state saved (one transaction on that store), carried out and logged
     as in service. The figure: the decisions the journal shows over the wall
     time from the first of them handled to the last (the engine's clock, the
     journal's ``at``), the median of the store's backlogs (``--backlog-repeats``
     (3) per session). Ratio PostgreSQL / SQLite (below 1: fewer per second).
   - burst: ``--burst-calls`` (60) callers at ``--burst-rate`` (20) calls/s, more
     than the agents: the decisions per second over the burst (first event to
     last decision) are paced by the callers, not the store, and are the same on
     both when the router keeps up, which ``route_request_to_router`` (the store's
     "enter" -> the journal's CallArrived, both the engine's clock) shows.
4. Several nodes (``--only nodes`` runs this part alone): two nodes as tests/
   integration/test_nodes.py has them (tests/nodes_kit.py): two Asterisk instances
   with a PJSIP trunk between them and `homeline engine run --node a|b --stack DIR`
   for each on one PostgreSQL database of the cluster; node a's engine leads
   (epoch 1, ``--journal``), node b's follows (it forwards its router events to the
   leader through the store's outbox and carries out the leader's decisions about
   its own channels).
   - ring: ``--ring-agents`` (8) pjsua2 agents' phones registered on node a, answering
     after 0.3 s; ``--nodes-calls`` (10) SIPp callers per side at ``--ring-rate`` (1)
     calls/s (the ring part's scenario), each side's in two steps in ABBA order
     (``nodes_steps``): callers of node a (same node, the reference: no outbox, no
     trunk) and callers of node b (cross node: node b's route request crosses the
     outbox to the leader, the offer crosses back to node b, node b's Dial goes
     through the trunk to node a's Asterisk, which rings the agent). The ring
     part's figures and timestamps (the store's call timeline "enter", stamped by
     the engine of the caller's node; the agent phone's onIncomingCall; calls
     offered at once, matched by SIPp's caller id in the leader's journal), p50/p95
     each side and the ratio cross node / same node. The split at "offered" (the
     leader's router clock): cross node, route request -> decision holds the
     outbox's way there, decision -> ring its way back and the trunk. A
     traceback in either engine's output is reported (``engine_tracebacks``).
   - failover, ``--runs`` times (5), a fresh pair of nodes each run (two new
     Asterisks, a new database, two new engines): amy (node a) talks to a caller of
     node b over the trunk, ``--callers`` (3) callers of node b wait; node a's engine
     is killed with SIGKILL (its Asterisk stays up, amy's call on it too); an agent
     comes online on node b; the figure is the kill -> node b's engine's first
     routing decision (the stored router state shows a waiting caller offered to
     that agent), as in part 1. Then node a's engine comes back (it follows) and
     agents come online one at a time, alternately on node a (through the trunk)
     and node b, until every waiting caller has reached one; lost callers,
     ``in_order`` and double offers as in part 1. Target: p95 <= 3 s with 0
     callers lost (``target_met``).
   The JSON has this part's figures under "nodes" ("ring", "failover").

Run: .venv/bin/python bench/cluster.py [--only cost|failover|ring|nodes] [--runs 5]
     [--callers 3] [--events 1500] [--rounds 2] [--ring-calls 20] [--ring-rate 1]
     [--ring-agents 8] [--burst-calls 60] [--burst-rate 20] [--backlog 400]
     [--backlog-repeats 3] [--nodes-calls 10]
Everything it starts (Asterisks, the engines, SIPp, the softphones, PostgreSQL) is
stopped by PID at the end, also on a failure, SIGTERM or Ctrl-C. The last line
printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
from benchkit import bench_directory, drain, percentile, run_sipp  # noqa: E402
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
from nodes_kit import TwoNodes  # noqa: E402
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



def _reach_in_turn(run: Any, later: list[str], online: list[Any],
                   come_online: Callable[[int, str], Any], amy: Any, legs: list[Any],
                   order: list[str], wait_s: float) -> None:
    """After a failover: ``online[0]`` got (or gets) the first waiting caller; the
    agents of ``later[1:]`` come online one at a time (``come_online(i, agent id)``),
    each taking the head of the line. Then the run's figures: who reached whom in
    which order, double offers, callers lost (not reached, or their leg ended)."""
    for i, agent_id in enumerate(later):
        if i > 0:
            online.append(come_online(i, agent_id))
        phone = online[i]

        def offered(p: Any = phone) -> bool:
            return bool(p.calls)

        if not wait_for(offered, wait_s):
            break
        leg = phone.calls[0]
        leg.wait_confirmed(10)
        run.reached.append(caller_of(leg))
    time.sleep(1.0)  # any second offer would show by now
    run.double_offers = sum(max(0, len(p.calls) - 1) for p in (amy, *online))
    ended = sum(1 for leg in legs if leg.ended)
    run.lost = max(len(set(order) - set(run.reached)), ended)
    run.in_order = run.reached == order

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
        # one at a time: each gets the head of the line
        _reach_in_turn(run, later, online, lambda _i, agent_id: agent(agent_id), amy, legs,
                       order, 20)
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


# --- 3. route request -> ring, and decisions per second, on each store ---------------

RING_SCENARIO = "uac_press_1_hold.xml"  # press 1 (billing), hold, hang up 4.5 s after the answer
SUPPORT_NUMBER = "100"                  # extension 100: the IVR, hold, the router's Redirect


@dataclass(frozen=True)
class JournalLine:
    """One line of the engine's router journal (routing/journal.py): the router
    thread's clock (``datetime.now(UTC)`` in the engine process, as epoch seconds)
    when it handled ``event``, and the decisions it made."""

    at: float
    event: str                   # the event's type ("CallArrived", "OfferAnswered" ...)
    call_id: str | None
    caller: str | None           # CallArrived only
    decisions: tuple[tuple[str, str | None], ...]  # (type, call_id) of each decision


def read_journal(lines: list[str]) -> list[JournalLine]:
    """The event lines of a router journal (the header and restore lines skipped)."""
    out = []
    for text in lines:
        if not text.strip():
            continue
        data = json.loads(text)
        event = data.get("event")
        if not isinstance(event, dict):
            continue  # the header, or a restore line
        out.append(JournalLine(
            at=datetime.fromisoformat(data["at"]).timestamp(), event=str(event.get("type")),
            call_id=event.get("call_id"), caller=event.get("caller"),
            decisions=tuple((str(d.get("type")), d.get("call_id"))
                            for d in data.get("decisions", ()))))
    return out


def decision_rate(journal: list[JournalLine], since: float, until: float) -> dict[str, Any]:
    """Router events and decisions the journal shows in [since, until] (epoch s): the
    figure is the decisions over the wall time from the first event handled to the
    last decision made; the busiest second beside it."""
    window = [j for j in journal if since <= j.at <= until]
    deciding = [j for j in window if j.decisions]
    decisions = sum(len(j.decisions) for j in window)
    span = (deciding[-1].at - window[0].at) if deciding else 0.0
    per_second: dict[int, int] = {}
    for j in deciding:
        per_second[int(j.at)] = per_second.get(int(j.at), 0) + len(j.decisions)
    return {"events": len(window), "decisions": decisions, "span_s": round(span, 3),
            "decisions_per_s": round(decisions / span, 1) if span > 0 else None,
            "events_per_s": round(len(window) / span, 1) if span > 0 else None,
            "busiest_second_decisions": max(per_second.values(), default=0)}


REQUEST_EVENTS = ("AgentWentOnBreak", "AgentMadeAvailable")  # the agents' own requests


def backlog_rate(journal: list[JournalLine], since: float, count: int) -> dict[str, Any]:
    """The first ``count`` agent-request events handled at or after ``since`` (epoch s),
    handled back to back from a backlog: events and decisions per second over the
    wall time from the first to the last (its ``count - 1`` intervals; what else the
    router handled in between counts too)."""
    firsts = [j for j in journal if j.at >= since and j.event in REQUEST_EVENTS][:count]
    if len(firsts) < 2:
        return {"events": len(firsts), "decisions": 0, "span_s": 0.0, "decisions_per_s": None,
                "events_per_s": None}
    start, end = firsts[0].at, firsts[-1].at
    later = [j for j in journal if start < j.at <= end]
    span = end - start
    decisions = sum(len(j.decisions) for j in later)
    return {"events": len(firsts), "decisions": decisions, "span_s": round(span, 3),
            "decisions_per_s": round(decisions / span, 1) if span > 0 else None,
            "events_per_s": round(len(later) / span, 1) if span > 0 else None}


def backlog_summary(each: list[dict[str, Any]]) -> dict[str, Any]:
    """Several backlogs on one engine: the median of their decisions per second (the
    figure), each one's beside it."""
    rates = [b["decisions_per_s"] for b in each if b["decisions_per_s"] is not None]
    return {"decisions_per_s": round(statistics.median(rates), 1) if rates else None,
            "each_decisions_per_s": [b["decisions_per_s"] for b in each],
            "requests_each": [b["events"] for b in each],
            "span_s_each": [b["span_s"] for b in each]}


def complete_lines(text: str) -> list[str]:
    """The lines of a file another process is appending to, without a last partial one."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    return [line.rstrip("\n") for line in lines]


def arrivals(journal: list[JournalLine], prefix: str) -> dict[str, tuple[str, bool]]:
    """caller -> (call id, offered at once) for the callers whose number starts with
    ``prefix`` (one SIPp step's b<step>x): offered at once when the router's answer
    to the call's arrival already offers it to an agent (no wait for one)."""
    out: dict[str, tuple[str, bool]] = {}
    for j in journal:
        if j.event == "CallArrived" and j.caller and j.call_id and j.caller.startswith(prefix):
            at_once = ("OfferCall", j.call_id) in j.decisions
            out.setdefault(j.caller, (j.call_id, at_once))
    return out


def first_rings(incoming: list[tuple[float, str]], prefix: str) -> dict[str, float]:
    """caller -> the first time an agent's phone got the INVITE of that caller's call,
    from (time, From URI) pairs of the phones' IncomingCall events."""
    number = re.compile(rf"(?<![0-9A-Za-z]){re.escape(prefix)}\d+(?![0-9A-Za-z])")
    out: dict[str, float] = {}
    for at, from_uri in incoming:
        m = number.search(from_uri)
        if m:
            out[m.group(0)] = min(at, out.get(m.group(0), at))
    return out


def first_at(timeline: dict[str, list[Any]], kind: str) -> dict[str, float]:
    """call id -> the epoch seconds of its first ``kind`` event in the store's call
    timeline (`SqlStore.call_events`: "enter", "offered" ...)."""
    out: dict[str, float] = {}
    for call_id, evs in timeline.items():
        times = [e.at.timestamp() for e in evs if e.event == kind]
        if times:
            out[call_id] = times[0]
    return out


def spread_ms(values: list[float]) -> dict[str, float | None]:
    def ms_(v: float | None) -> float | None:
        return None if v is None else round(1000 * v, 1)

    return {"p50_ms": ms_(percentile(values, 50)), "p95_ms": ms_(percentile(values, 95)),
            "max_ms": ms_(max(values, default=None))}


def ring_figures(calls: dict[str, tuple[str, bool]], enter: dict[str, float],
                 offered: dict[str, float], rings: dict[str, float]) -> dict[str, Any]:
    """Route request -> ring over the calls offered at once (an agent was free), and its
    two parts: the route request -> the router's decision (the inbox, the router), and
    the decision -> the INVITE at the phone (the store's save of the decision, the AMI
    Redirect, the dialplan's Dial, SIP). ``enter``/``offered``: call id -> epoch s (the
    store's call timeline); ``rings``: caller -> epoch s (the phones)."""
    total, to_decision, to_ring = [], [], []
    waited = missing = 0
    for caller, (call_id, at_once) in calls.items():
        if not at_once:
            waited += 1
            continue
        t0, t1, t2 = enter.get(call_id), offered.get(call_id), rings.get(caller)
        if t0 is None or t1 is None or t2 is None or t2 < t0:
            missing += 1
            continue
        total.append(t2 - t0)
        to_decision.append(t1 - t0)
        to_ring.append(t2 - t1)
    return {"route_requests": len(calls), "offered_at_once": len(calls) - waited,
            "waited_for_an_agent": waited, "rang": len(total), "not_seen_ringing": missing,
            **spread_ms(total), "request_to_decision": spread_ms(to_decision),
            "decision_to_ring": spread_ms(to_ring)}


def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def _all_available(watch: SqlStore, agents: list[str]) -> bool:
    snap = watch.load_router_snapshot()
    if snap is None:
        return False
    states = {a.agent_id: (a.registered, a.state) for a in snap.agents}
    return all(states.get(a) == (True, "available") for a in agents)


def _writer_free(db: str) -> bool:
    """Whether nobody holds the store's write lock now (the engine stopped outside a
    write): PostgreSQL's advisory write lock (store/postgres.py WRITE_LOCK) taken and
    given back at once, or SQLite's reserved lock (BEGIN IMMEDIATE, no waiting)."""
    if db.startswith("postgresql"):
        import psycopg

        from store.postgres import WRITE_LOCK

        with psycopg.connect(db, autocommit=False, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (WRITE_LOCK,)).fetchone()
            conn.rollback()
            return bool(row and row[0])
    import sqlite3

    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _stop_outside_a_write(engine: EngineProcess, db: str) -> None:
    """SIGSTOP the engine (by its PID) at a moment it holds no write lock: stopped in
    the middle of a transaction it would block every other writer until SIGCONT."""
    for _ in range(200):
        os.kill(engine.proc.pid, signal.SIGSTOP)
        if _writer_free(db):
            return
        os.kill(engine.proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    raise RuntimeError("the engine kept the store's write lock: no backlog written")


def agent_backlog(engine: EngineProcess, watch: SqlStore, agents: list[str],
                  journal_path: Path, count: int, db: str) -> tuple[float, int]:
    """``count`` agents' own requests (break, then available, agent after agent, round
    after round; the change feed the portal and `homeline agent` write) appended
    while the engine process is stopped (SIGSTOP, by its PID), so that after SIGCONT
    its router thread finds them all at its next poll and handles them back to
    back. Returns (the wall time of SIGCONT, the requests written) once the journal
    shows them all handled."""
    rounds = max(1, count // (2 * len(agents)))
    written = 0
    _stop_outside_a_write(engine, db)
    try:
        now = datetime.now(UTC)
        for _ in range(rounds):
            for action in ("break", "available"):
                for agent_id in agents:
                    watch.request_agent_state(agent_id, action, "benchmark backlog", now)
                    written += 1
    finally:
        resumed = time.time()
        os.kill(engine.proc.pid, signal.SIGCONT)

    def handled() -> bool:
        lines = complete_lines(journal_path.read_text(encoding="utf-8"))
        seen = [j for j in read_journal(lines) if j.at >= resumed and j.event in REQUEST_EVENTS]
        return len(seen) >= written

    assert wait_for(handled, 60, step=0.2), f"the engine did not handle {written} requests"
    return resumed, written


@dataclass
class Calls:
    """One SIPp step's calls as the engine, the store and the phones saw them."""

    calls: dict[str, tuple[str, bool]]   # caller -> (call id, offered at once)
    enter: dict[str, float]              # call id -> its route request (epoch s)
    offered: dict[str, float]            # call id -> its first offer (epoch s)
    rings: dict[str, float]              # caller -> the INVITE at a phone (epoch s)
    offered_calls: int = 0               # SIPp's count, and how many of them completed
    ok: int = 0
    failed: int = 0
    causes: dict[str, int] = field(default_factory=dict)


@dataclass
class Session:
    """One `homeline engine run` on one store: its ring calls, its burst, its backlogs."""

    store: str
    load_1m: float
    ring: Calls
    burst: Calls
    paced: dict[str, Any]                # the burst's decisions per second
    lag: list[float]                     # the burst's route request -> CallArrived handled, s
    backlogs: list[dict[str, Any]]


def pooled(parts: list[Calls]) -> dict[str, Any]:
    """The figures of several sessions' calls of one kind on one store, pooled."""
    calls: dict[str, tuple[str, bool]] = {}
    enter: dict[str, float] = {}
    offered: dict[str, float] = {}
    rings: dict[str, float] = {}
    causes: dict[str, int] = {}
    for p in parts:
        calls.update(p.calls)
        enter.update(p.enter)
        offered.update(p.offered)
        rings.update(p.rings)
        for cause, n in p.causes.items():
            causes[cause] = causes.get(cause, 0) + n
    out = {"calls": sum(p.offered_calls for p in parts), "ok": sum(p.ok for p in parts),
           "failed": sum(p.failed for p in parts),
           **ring_figures(calls, enter, offered, rings)}
    if causes:
        out["failure_causes"] = causes
    return out


def ring_store(name: str, db: str, stack: PbxStack, agents_file: Path, agents: list[str],
               phones: list[Any], work: Path, args: argparse.Namespace) -> Session:
    """One `homeline engine run` on store ``db`` for the running ``stack``: the ring
    calls, the burst, then the backlogs; what it did read after the engine stopped
    (the journal, the store's call timeline) and from the phones."""
    journal_path = work / f"journal-{name}.jsonl"
    engine = EngineProcess(engine_argv(agents_file, db, f"ring-{name}", stack.state_dir,
                                       journal_path), work / f"engine-{name}.log")
    watch: SqlStore | None = None
    load_1m = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
    try:
        engine.wait_serving(1)
        if db.startswith("postgresql"):
            assert "leading with epoch 1" in engine.text(), engine.text()
        watch = open_store(db)
        assert wait_for(lambda: _all_available(watch, agents), 30), \
            f"not every agent is available to the engine on {name}"
        offset = time.time() - time.monotonic()  # pjsua2 stamps with time.monotonic()
        ring = run_sipp(RING_SCENARIO, SUPPORT_NUMBER, args.ring_rate, args.ring_calls,
                        stack.ports.sip, work, max_s=args.ring_calls / args.ring_rate + 60)
        drain(stack.instance)
        assert wait_for(lambda: _all_available(watch, agents), 30), \
            f"the agents did not come back from the ring calls on {name}"
        burst = run_sipp(RING_SCENARIO, SUPPORT_NUMBER, args.burst_rate, args.burst_calls,
                         stack.ports.sip, work, max_s=args.burst_calls / args.burst_rate + 60)
        drain(stack.instance)
        burst_end = time.time()
        assert wait_for(lambda: _all_available(watch, agents), 30), \
            f"the agents did not come back from the burst on {name}"
        backlogs = [agent_backlog(engine, watch, agents, journal_path, args.backlog, db)
                    for _ in range(args.backlog_repeats)]
        time.sleep(1.5)  # the call log's last writes
    finally:
        if watch is not None:
            watch.close()
        engine.stop()  # its call log is written out as it stops
    assert engine.proc.returncode == 0, engine.text()
    journal = read_journal(journal_path.read_text(encoding="utf-8").splitlines())
    incoming = [(e.at + offset, e.from_uri) for p in phones for e in p.events.snapshot()
                if type(e).__name__ == "IncomingCall"]
    seen: dict[str, Calls] = {}
    with open_store(db) as store:
        for label, step in (("ring", ring), ("burst", burst)):
            prefix = f"b{step.step_id}x"
            calls = arrivals(journal, prefix)
            timeline = store.call_events([cid for cid, _ in calls.values()])
            seen[label] = Calls(calls, first_at(timeline, "enter"), first_at(timeline, "offered"),
                                first_rings(incoming, prefix), step.calls, step.ok, step.failed,
                                dict(step.causes) if step.failed else {})
    prefix = f"b{burst.step_id}x"
    enter = seen["burst"].enter
    lag = [j.at - enter[j.call_id] for j in journal
           if j.event == "CallArrived" and j.call_id in enter
           and j.caller is not None and j.caller.startswith(prefix)]
    return Session(name, load_1m, seen["ring"], seen["burst"],
                   decision_rate(journal, burst.started_wall, burst_end), lag,
                   [backlog_rate(journal, *b) for b in backlogs])


def abba(names: list[str], rounds: int) -> list[str]:
    """The order of the sessions: A B, B A, A B ... so neither store always goes first
    (nor always after the other) on a machine whose load drifts."""
    out: list[str] = []
    for r in range(rounds):
        out += names if r % 2 == 0 else names[::-1]
    return out


def store_figures(sessions: list[Session]) -> dict[str, Any]:
    """One store's figures over its sessions."""
    burst = pooled([s.burst for s in sessions])
    burst["decisions_paced_by_callers"] = [s.paced for s in sessions]
    burst["route_request_to_router"] = spread_ms([x for s in sessions for x in s.lag])
    return {"sessions": len(sessions),
            "load_average_1m_at_start": [s.load_1m for s in sessions],
            "ring": pooled([s.ring for s in sessions]),
            "backlog": backlog_summary([b for s in sessions for b in s.backlogs]),
            "burst": burst}


def ring_compare(pg: PgCluster, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One Asterisk and one set of agents' phones; `homeline engine run` on an SQLite file
    and on a PostgreSQL database of the cluster, one after the other (each stopped
    before the next starts), ``--rounds`` times each in ABBA order: the same calls on
    each store."""
    from softphone import AgentPhone, SoftphoneHost

    directory_ = bench_directory(datetime.now(UTC), args.ring_agents)
    agents = [a.id for a in directory_.agents]
    agents_file = work / "agents.yaml"
    agents_file.write_text(yaml.safe_dump(directory_.to_dict(), sort_keys=False),
                           encoding="utf-8")
    name = f"cr{os.getpid()}"
    stack = PbxStack(name, directory_, work / name)
    host = None
    phones: list[Any] = []
    order = abba(["sqlite", "postgresql"], args.rounds)
    sessions: dict[str, list[Session]] = {"sqlite": [], "postgresql": []}
    try:
        stack.start_pbx()
        host = SoftphoneHost()
        for agent_id in agents:
            phone = AgentPhone(host, agent_id, server=f"127.0.0.1:{stack.ports.sip}",
                               password=stack.agent_secret(agent_id), answer_delay=0.3)
            phones.append(phone)
            phone.wait_registered(10)
        for n, store_name in enumerate(order, 1):
            db = (str(work / f"ring{n}.sqlite3") if store_name == "sqlite"
                  else pg.create_database(f"ring{n}"))  # a fresh store each session
            drain(stack.instance)
            s = ring_store(f"{store_name}{n}", db, stack, agents_file, agents, phones,
                           work, args)
            sessions[store_name].append(s)
            r, k = pooled([s.ring]), backlog_summary(s.backlogs)
            print(f"session {n}/{len(order)} {store_name}: route request -> ring p50 "
                  f"{r['p50_ms']} ms p95 {r['p95_ms']} ms ({r['rang']} of {r['calls']} "
                  f"calls); backlog {k['decisions_per_s']} decisions/s (median of "
                  f"{k['each_decisions_per_s']}); burst {s.paced['decisions_per_s']} "
                  f"decisions/s ({s.paced['decisions']} in {s.paced['span_s']} s, "
                  f"{s.burst.offered_calls} calls at {args.burst_rate}/s), router lag p95 "
                  f"{spread_ms(s.lag)['p95_ms']} ms; load {s.load_1m}", flush=True)
    finally:
        stop_all(phones, host, (), stack)
        for n, store_name in enumerate(order, 1):
            if store_name == "postgresql":
                try:
                    pg.drop_database(f"ring{n}")
                except Exception:  # noqa: BLE001 - never made, or the cluster goes anyway
                    pass
    sq, pq = store_figures(sessions["sqlite"]), store_figures(sessions["postgresql"])
    return {
        "load": (f"per session: ring {args.ring_calls} calls at {args.ring_rate}/s; burst "
                 f"{args.burst_calls} calls at {args.burst_rate}/s; {args.backlog_repeats} "
                 f"backlogs of {args.backlog} agents' requests; {len(agents)} agents' pjsua2 "
                 "phones answering after 0.3 s; SIPp callers press 1 (billing) and hang up "
                 "4.5 s after the IVR answers"),
        "order": order,
        "measured": {
            "ring": "the store's call timeline 'enter' (the engine's FastAGI route request, "
                    "engine clock) -> the INVITE of that call at an agent's pjsua2 phone "
                    "(onIncomingCall, this process's clock; same machine), calls offered "
                    "at once (an agent free), pooled over the store's sessions",
            "backlog": "agents' requests appended while the engine was stopped (SIGSTOP), "
                       "handled back to back after SIGCONT: decisions in the router journal "
                       "/ first to last handled; median over the backlogs",
            "burst": "decisions in the router journal / first event to last decision, paced "
                     "by the callers; route_request_to_router: 'enter' -> CallArrived "
                     "handled"},
        "sqlite": sq,
        "postgresql": pq,
        "ratio_postgresql_to_sqlite": {
            "ring_p50": ratio(pq["ring"]["p50_ms"], sq["ring"]["p50_ms"]),
            "ring_p95": ratio(pq["ring"]["p95_ms"], sq["ring"]["p95_ms"]),
            "decisions_per_s": ratio(pq["backlog"]["decisions_per_s"],
                                     sq["backlog"]["decisions_per_s"], 3),
        },
    }


def failover_figures(runs: list[Run], wanted: int, callers: int) -> dict[str, Any]:
    times = [r.failover_s for r in runs if r.failover_s is not None]
    lost = sum(r.lost for r in runs)
    p95 = percentile(times, 95)
    complete = len(times) == len(runs) == wanted and not any(r.error for r in runs)
    return {
        "runs": wanted,
        "callers_waiting_per_run": callers,
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
    }


# --- 4. several nodes: route request -> ring across the trunk, node failover ----------

class BenchNodes(TwoNodes):
    """tests/nodes_kit.py's two nodes, node a's engine (the leader's) writing the
    router journal the ring figures read (the leader's router handles every node's
    events, so its journal holds them all)."""

    def __init__(self, tmp_path: Path, url: str, agents: list[str], tag: str,
                 journal: Path | None = None) -> None:
        super().__init__(tmp_path, url, agents, tag)
        self.journal = journal

    def engine(self, node: str, name: str) -> EngineProcess:
        journal = self.journal if name == "a" else None
        argv = [*engine_argv(self.agents_file, self.url, node, self.stacks[node].state_dir,
                             journal), *self.engine_args]
        self.engines[name] = EngineProcess(argv, self.work / f"engine-{name}.log")
        self.engines[name].wait_serving(1)
        return self.engines[name]


NODE_SIDES = ("same", "cross")  # the caller on node a (the agents' node), on node b


def nodes_steps(calls: int) -> list[tuple[str, int]]:
    """The SIPp steps of the nodes ring part: ``calls`` callers per side, each side's in
    two steps taken in ABBA order (same node, cross node, cross node, same node), so
    neither side always goes first on a machine whose load drifts; no empty step."""
    first, second = (calls + 1) // 2, calls // 2
    plan = [(side, first) for side in NODE_SIDES] + [(side, second) for side in NODE_SIDES[::-1]]
    return [(side, n) for side, n in plan if n > 0]


def nodes_ring(pg: PgCluster, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Two nodes (tests/nodes_kit.py) on one PostgreSQL database: node a's engine
    leads, node b's follows; ``--ring-agents`` agents' pjsua2 phones registered on node
    a. SIPp callers to node a's IVR (same node: no outbox, no trunk) and to node b's
    (cross node: the route request through the outbox to the leader, the offer back to
    node b, node b's Dial through the trunk to node a, which rings the agent)."""
    journal_path = work / "journal-a.jsonl"
    agents = [f"a{n}" for n in range(1, args.ring_agents + 1)]
    nodes = BenchNodes(work, pg.create_database("nodesring"), agents, "cn", journal_path)
    plan = nodes_steps(args.nodes_calls)
    steps: list[tuple[str, Any]] = []
    load_1m = round(os.getloadavg()[0], 2)
    try:
        nodes.start()
        phones = [nodes.agent("a", a) for a in agents]
        watch = nodes.watch
        assert wait_for(lambda: _all_available(watch, agents), 30), \
            "not every agent is available to the leader"
        offset = time.time() - time.monotonic()  # pjsua2 stamps with time.monotonic()
        for side, calls in plan:
            node = "a" if side == "same" else "b"
            step = run_sipp(RING_SCENARIO, SUPPORT_NUMBER, args.ring_rate, calls,
                            nodes.stacks[node].ports.sip, work,
                            max_s=calls / args.ring_rate + 60)
            steps.append((side, step))
            for stack in nodes.stacks.values():
                drain(stack.instance)
            assert wait_for(lambda: _all_available(watch, agents), 30), \
                f"the agents did not come back from the {side} calls"
            print(f"nodes ring: {side} node, {calls} calls to node {node}: {step.ok} ok, "
                  f"{step.failed} failed", flush=True)
        time.sleep(1.5)  # the call log's last writes
        journal = read_journal(complete_lines(journal_path.read_text(encoding="utf-8")))
        incoming = [(e.at + offset, e.from_uri) for p in phones for e in p.events.snapshot()
                    if type(e).__name__ == "IncomingCall"]
        texts = {name: nodes.text(name) for name in ("a", "b")}
    finally:
        nodes.stop()  # the engines write out their call logs as they stop
    parts: dict[str, list[Calls]] = {side: [] for side in NODE_SIDES}
    with open_store(nodes.url) as store:
        for side, step in steps:
            prefix = f"b{step.step_id}x"
            calls_ = arrivals(journal, prefix)
            timeline = store.call_events([cid for cid, _ in calls_.values()])
            parts[side].append(Calls(calls_, first_at(timeline, "enter"),
                                     first_at(timeline, "offered"),
                                     first_rings(incoming, prefix), step.calls, step.ok,
                                     step.failed, dict(step.causes) if step.failed else {}))
    try:
        pg.drop_database("nodesring")
    except Exception:  # noqa: BLE001 - the cluster goes at the end anyway
        pass
    same, cross = pooled(parts["same"]), pooled(parts["cross"])
    return {
        "load": (f"{args.nodes_calls} calls per side at {args.ring_rate}/s (SIPp, press 1, "
                 f"hang up 4.5 s after the IVR answers), in steps "
                 f"{', '.join(f'{side} {n}' for side, n in plan)}; {len(agents)} "
                 "agents' pjsua2 phones on node a answering after 0.3 s; load average "
                 f"{load_1m} at the start"),
        "measured": ("the store's call timeline 'enter' (the route request at the caller's "
                     "node's engine, its clock) -> the INVITE of that call at an agent's "
                     "pjsua2 phone on node a (onIncomingCall, this process's clock; same "
                     "machine), calls offered at once; request_to_decision ends at "
                     "'offered' (the leader's router clock), decision_to_ring is the rest "
                     "(cross node: the outbox back to node b, its Redirect and Dial, the "
                     "trunk, node a's Dial)"),
        "same_node": same,
        "cross_node": cross,
        "ratio_cross_to_same": {"p50": ratio(cross["p50_ms"], same["p50_ms"]),
                                "p95": ratio(cross["p95_ms"], same["p95_ms"])},
        "engine_tracebacks": [f"node {name}" for name, text in texts.items()
                              if "Traceback" in text],
    }


def nodes_failover_run(number: int, pg: PgCluster, work: Path, callers: int) -> Run:
    """One fresh pair of nodes (two Asterisks, a database, two engines), one kill -9 of
    the leading node's engine (node a; its Asterisk stays up, amy's call on it too)
    while ``callers`` callers of node b wait: node b's engine must lead and decide."""
    run = Run(number)
    later = [f"w{n}" for n in range(1, callers + 1)]  # agents who come online after the kill
    nodes = TwoNodes(work, pg.create_database(f"nodes{number}"), ["amy", *later],
                     f"cf{number}")
    order = [f"+1555072{number % 10}{n}" for n in range(1, callers + 1)]
    legs: list[Any] = []
    try:
        nodes.start()
        watch, on = nodes.watch, nodes.on
        amy = nodes.agent("a", "amy")
        talking = on["b"].caller(f"+1555072{number % 10}0")
        amy_leg = amy.wait_call(25)
        amy_leg.wait_confirmed(10)
        for number_ in order:
            legs.append(on["b"].caller(number_))
            time.sleep(0.5)
        assert wait_for(lambda: waiting_callers(watch) == order, 20), waiting_callers(watch)

        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        nodes.engines["a"].kill()  # node a's Asterisk stays up: amy's call goes on
        online = [on["b"].agent(later[0])]
        assert wait_for(lambda: offered_to(watch, later), 30, step=0.02), nodes.text("b")
        run.failover_s = time.monotonic() - killed
        leader = watch.router_leader()
        assert leader is not None and (leader.epoch, leader.node) == (2, "b"), leader
        run.takeover_s = (leader.since - killed_at).total_seconds()
        nodes.engine("a", "a2")  # node a's engine is back: it follows
        assert wait_for(lambda: "following:" in nodes.text("a2"), 20), nodes.text("a2")
        # one at a time, on node b, node a, node b ...
        _reach_in_turn(run, later, online,
                       lambda i, agent_id: nodes.agent("a" if i % 2 else "b", agent_id),
                       amy, legs, order, 25)
        assert not talking.ended and not amy_leg.ended, "amy's call did not survive"
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, the next one runs
        run.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        run.lost = len(set(order) - set(run.reached))
    finally:
        nodes.stop()
        try:
            pg.drop_database(f"nodes{number}")
        except Exception:  # noqa: BLE001 - the cluster goes at the end anyway
            pass
    return run


def nodes_failover_figures(runs: list[Run], wanted: int, callers: int) -> dict[str, Any]:
    """The failover part's figures (`failover_figures`) for the nodes' runs."""
    out = failover_figures(runs, wanted, callers)
    out["pair"] = ("fresh each run (two Asterisks with a trunk, a database, node a's engine "
                   "leading and node b's following; one PostgreSQL cluster, durable)")
    out["measured"] = ("kill -9 of node a's engine (the leader; its Asterisk stays up, an "
                       "agent's call on it goes on) -> the stored router state shows a "
                       "waiting caller of node b offered to an agent registered on node b "
                       "(node b's engine's first routing decision); then node a's engine "
                       "comes back (it follows) and agents come online one at a time, "
                       "alternately on node a (through the trunk) and node b")
    return out


PARTS = ("cost", "failover", "ring", "nodes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=PARTS, help="run one part (default: all four)")
    ap.add_argument("--runs", type=int, default=5, help="failovers (a fresh pair each)")
    ap.add_argument("--callers", type=int, default=3, help="callers waiting at the kill")
    ap.add_argument("--events", type=int, default=1500, help="router events per store")
    ap.add_argument("--rounds", type=int, default=2,
                    help="engine sessions per store for the ring part (ABBA order)")
    ap.add_argument("--ring-calls", type=int, default=20,
                    help="calls per session for route request -> ring")
    ap.add_argument("--ring-rate", type=int, default=1,
                    help="their rate, calls/s (the nodes part's too)")
    ap.add_argument("--ring-agents", type=int, default=8,
                    help="agents' phones (the nodes part's: on node a)")
    ap.add_argument("--burst-calls", type=int, default=60,
                    help="calls per session at the burst rate")
    ap.add_argument("--burst-rate", type=int, default=20, help="their rate, calls/s")
    ap.add_argument("--backlog", type=int, default=400,
                    help="agents' requests per backlog handled back to back (decisions/s)")
    ap.add_argument("--backlog-repeats", type=int, default=3,
                    help="backlogs per session (the figure: the median over the store's)")
    ap.add_argument("--nodes-calls", type=int, default=10,
                    help="calls per side (same node, cross node) for the nodes part")
    args = ap.parse_args()
    if min(args.ring_calls, args.ring_rate, args.ring_agents, args.burst_calls,
           args.burst_rate, args.backlog_repeats, args.rounds,
           args.nodes_calls) < 1 or args.backlog < 2:
        ap.error("the ring and burst options must be at least 1")
    parts = (args.only,) if args.only else PARTS

    def terminated(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # the finally blocks stop what was started

    signal.signal(signal.SIGTERM, terminated)
    work = Path(tempfile.mkdtemp(prefix="homeline-bench-cluster-"))
    runs: list[Run] = []
    cost: dict[str, Any] | None = None
    ring: dict[str, Any] | None = None
    nodes: dict[str, Any] | None = None
    node_runs: list[Run] = []
    try:
        with PgCluster(durable=True) as pg:
            if "cost" in parts:
                cost = store_cost(pg, work, args.events)
                print(f"store cost per routing event ({args.events} events): "
                      + "; ".join(f"{k} {cost[k]['events_per_s']:,.0f}/s p95 "
                                  f"{cost[k]['p95_ms']} ms"
                                  for k in ("router_alone", "sqlite", "postgresql"))
                      + f"; postgresql/sqlite {cost['ratio_postgresql_to_sqlite_events_per_s']}x",
                      flush=True)
            if "ring" in parts:
                ring_dir = work / "ring"
                ring_dir.mkdir()
                ring = ring_compare(pg, ring_dir, args)
            for n in range(1, args.runs + 1 if "failover" in parts else 1):
                run_dir = work / f"run{n}"
                run_dir.mkdir()
                run = failover_run(n, pg, run_dir, args.callers)
                runs.append(run)
                print(f"failover run {n}/{args.runs}: " + json.dumps(run.summary()), flush=True)
            if "nodes" in parts:
                nodes_dir = work / "nodes"
                nodes_dir.mkdir()
                nodes = {"ring": nodes_ring(pg, nodes_dir, args)}
                r = nodes["ring"]
                print(f"nodes ring: same node p50 {r['same_node']['p50_ms']} ms p95 "
                      f"{r['same_node']['p95_ms']} ms; cross node p50 "
                      f"{r['cross_node']['p50_ms']} ms p95 {r['cross_node']['p95_ms']} ms; "
                      f"cross/same {r['ratio_cross_to_same']}", flush=True)
                for n in range(1, args.runs + 1):
                    run_dir = work / f"nodes-run{n}"
                    run_dir.mkdir()
                    run = nodes_failover_run(n, pg, run_dir, args.callers)
                    node_runs.append(run)
                    print(f"nodes failover run {n}/{args.runs}: " + json.dumps(run.summary()),
                          flush=True)
                nodes["failover"] = nodes_failover_figures(node_runs, args.runs, args.callers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "benchmark": "cluster",
        "parts": list(parts),
        **(failover_figures(runs, args.runs, args.callers) if "failover" in parts else {}),
        "store_cost_per_event": cost,
        "route_request_to_ring_and_decisions": ring,
        "nodes": nodes,
    }))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: everything started is stopped by now
        print("interrupted: everything the benchmark started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
