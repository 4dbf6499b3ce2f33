"""The router leader of two stores on one PostgreSQL database (store.leader): one leads,
the other cannot; the leader's lock session terminated by the server
(``pg_terminate_backend``) deposes it: the other wins with the next epoch, and the
old leader's late router-state save is refused (FencedOut), nothing of it
applied. A real throw-away PostgreSQL cluster (tests/pg_kit.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from pg_kit import StoreMaker
from router_writer import START, Driven, directory, events

from routing.snapshot import RouterChanges, RouterSnapshot
from store import FencedOut, SqliteStore, open_store
from store.leader import Leadership
from store.postgres import PostgresStore


def _changes(steps: int) -> tuple[RouterChanges, RouterSnapshot]:
    router = Driven(directory(), now=START)
    now = START
    for i, (now, ev) in enumerate(events(router)):
        if i >= steps:
            break
        router.handle(ev, now)
    snap = router.snapshot(now)
    return snap.as_changes(), snap


def _comparable(s: RouterSnapshot | None) -> object:
    assert s is not None
    return (s.as_of, s.seq, s.agents, s.calls, s.last_agent, s.fairness)


def _until(check: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    return check()


def test_one_leads_the_other_waits_and_a_deposed_leaders_late_save_is_refused(
        pg_database: Callable[[str], str]) -> None:
    url = pg_database("leader")
    a_store, b_store = open_store(url), open_store(url)
    assert isinstance(a_store, PostgresStore) and isinstance(b_store, PostgresStore)
    a, b = Leadership(a_store, "a"), Leadership(b_store, "b")
    try:
        now = datetime.now(UTC)
        assert a_store.router_leader() is None
        assert a.try_lead(now) == 1
        assert b.try_lead(now) is None and b.try_lead(now) is None  # a holds the lock
        leader = b_store.router_leader()
        assert leader is not None and (leader.epoch, leader.node) == (1, "a")
        assert a.check() is None
        early, early_snap = _changes(40)
        a_store.save_router_changes(early)  # the leader's saves go through
        assert _comparable(b_store.load_router_snapshot()) == _comparable(early_snap)

        # the server ends the leader's lock session: the lock is free, b wins epoch 2
        pid = a.lock_pid
        assert pid is not None
        with psycopg.connect(url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        t0 = time.monotonic()
        assert _until(lambda: b.try_lead(datetime.now(UTC)), 5) == 2
        print(f"\nstandby won the lock {time.monotonic() - t0:.3f} s after the terminate")
        leader = a_store.router_leader()
        assert leader is not None and (leader.epoch, leader.node) == (2, "b")

        # the old leader's late save is refused, naming both epochs; nothing of it stored
        late, late_snap = _changes(120)
        assert _comparable(late_snap) != _comparable(early_snap)
        with pytest.raises(FencedOut) as refused:
            a_store.save_router_changes(late)
        assert (refused.value.ours, refused.value.stored, refused.value.node) == (1, 2, "b")
        assert "epoch 1" in str(refused.value) and "epoch 2" in str(refused.value)
        assert _comparable(b_store.load_router_snapshot()) == _comparable(early_snap)
        # and its own check says it is deposed
        reason = a.check()
        assert reason is not None and "connection" in reason, reason
        # the new leader writes on
        b_store.save_router_changes(late)
        assert _comparable(a_store.load_router_snapshot()) == _comparable(late_snap)
        assert b.check() is None
        # a deposed leader that tries again waits behind the new one
        a2 = Leadership(a_store, "a")
        assert a2.try_lead(datetime.now(UTC)) is None
        a2.close()
    finally:
        a.close()
        b.close()
        a_store.close()
        b_store.close()


def test_a_newer_epoch_taken_while_the_lock_session_lives_is_seen_by_check(
        pg_database: Callable[[str], str]) -> None:
    url = pg_database("epoch")
    with open_store(url) as s1, open_store(url) as s2:
        assert isinstance(s1, PostgresStore)
        lead = Leadership(s1, "a")
        try:
            assert lead.try_lead(datetime.now(UTC)) == 1
            assert s2.take_leadership("intruder", datetime.now(UTC)) == 2
            reason = lead.check()
            assert reason is not None and "epoch 2" in reason and "intruder" in reason
            with pytest.raises(FencedOut):
                s1.save_router_changes(_changes(10)[0])
        finally:
            lead.close()


def test_sqlite_is_not_fenced_one_engine_writes_as_before(tmp_path: object) -> None:
    with SqliteStore(":memory:") as store:
        assert store.router_leader() is None
        changes, snap = _changes(30)
        store.save_router_changes(changes)
        assert _comparable(store.load_router_snapshot()) == _comparable(snap)


def _status(db: str) -> str:
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "homeline", "cluster", "status", "--db", db],
                          cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cluster_status_names_the_leader_its_lock_and_the_stored_router_state(
        make_store: StoreMaker) -> None:
    db = make_store.address()
    changes, snap = _changes(60)
    waiting = sorted((c for c in snap.calls if c.phase == "waiting"),
                     key=lambda c: (c.key, c.seq))
    assert waiting
    with make_store() as store:
        assert "router state: none stored yet" in _status(db)
        store.save_router_changes(changes)
        if make_store.backend == "postgresql":
            assert isinstance(store, PostgresStore)
            assert "leader: none yet" in _status(db)
            lead = Leadership(store, "node-x")
            try:
                assert lead.try_lead(datetime.now(UTC)) == 1
                out = _status(db)
                assert "leader: node node-x, epoch 1, since " in out, out
                assert f"leader lock: held (server pid {lead.lock_pid}, " \
                       "homeline-leader node-x)" in out, out
            finally:
                lead.close()
            out = _status(db)
            assert "leader: node node-x, epoch 1" in out and "leader lock: free" in out, out
            assert "***" in out.splitlines()[0]  # the password is not shown
        else:
            out = _status(db)
            assert "(SQLite, one machine)" in out and "no election" in out, out
    assert f"waiting calls ({len(waiting)}):" in out, out
    listed = [x.split(". ", 1)[1].split()[0] for x in out.splitlines()
              if x.startswith("  ") and ". " in x and " queue " in x]
    assert listed == [c.call_id for c in waiting], out
    assert f"agents ({len(snap.agents)}):" in out
    for a in snap.agents:
        assert f"  {a.agent_id} {a.state}" in out


def test_a_server_restart_deposes_the_leader_and_one_of_them_leads_with_the_next_epoch(
        tmp_path: Path) -> None:
    """Every session ends with the server: the leader's check says it is deposed; the
    first to ask again afterwards (here the standby) wins the next epoch, and the old
    leader's save is refused. A cluster of the test's own (restarted here)."""
    from homeline.pgcluster import PgCluster

    with PgCluster(durable=False) as cluster:
        url = cluster.create_database("restart")
        with PostgresStore(url, timeout=3.0) as sa, PostgresStore(url, timeout=3.0) as sb:
            a, b = Leadership(sa, "a"), Leadership(sb, "b")
            try:
                assert a.try_lead(datetime.now(UTC)) == 1
                assert b.try_lead(datetime.now(UTC)) is None
                cluster.restart()
                reason = a.check()
                assert reason is not None and "connection" in reason, reason
                assert _until(lambda: b.try_lead(datetime.now(UTC)), 10) == 2
                with pytest.raises(FencedOut):
                    sa.save_router_changes(_changes(10)[0])
                assert sb.load_router_snapshot() is None  # nothing of it was applied
                sb.save_router_changes(_changes(10)[0])
                assert b.check() is None
            finally:
                a.close()
                b.close()
