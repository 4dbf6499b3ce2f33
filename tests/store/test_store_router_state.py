"""The router's state in a real store (an SQLite file, a PostgreSQL database): changes in
one transaction, kill -9, restore."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from pg_kit import StoreMaker
from router_writer import START, Driven, directory, events

from routing import OfferCall
from routing.router import Router
from routing.snapshot import RouterSnapshot

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("router_writer.py")


def states_by_step(steps: int) -> list[RouterSnapshot]:
    """The router's whole state after each step of the writer's day, replayed here."""
    router = Driven(directory(), now=START)
    out = []
    for i, (now, ev) in enumerate(events(router)):
        if i >= steps:
            break
        router.handle(ev, now)
        out.append(router.snapshot(now))
    return out


def comparable(s: RouterSnapshot) -> RouterSnapshot:
    return RouterSnapshot(s.as_of, 0.0, s.seq, s.agents, s.calls, s.last_agent,
                          fairness=s.fairness)


def test_changes_saved_step_by_step_load_as_the_whole_state(make_store: StoreMaker) -> None:
    db = make_store.address()
    subprocess.run([sys.executable, str(WRITER), db, "150"], check=True, timeout=120,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    with make_store() as store:
        loaded = store.load_router_snapshot()
    assert loaded is not None
    last = states_by_step(150)[-1]
    assert comparable(loaded) == comparable(last)
    assert any(c.phase == "waiting" for c in last.calls) and last.last_agent
    with make_store("empty") as empty:
        assert empty.load_router_snapshot() is None


def test_a_writer_killed_mid_day_leaves_the_state_of_a_whole_step(
        make_store: StoreMaker) -> None:
    db = make_store.address()
    acked = -1
    with subprocess.Popen([sys.executable, str(WRITER), db], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                acked = int(line.split()[1])
                if acked >= 300:
                    break
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and acked >= 300
    with make_store() as store:
        loaded = store.load_router_snapshot()
    assert loaded is not None
    # exactly the state after one step, and not older than the last one acknowledged
    states = states_by_step(acked + 400)
    matches = [i for i, s in enumerate(states) if comparable(s) == comparable(loaded)]
    assert matches and max(matches) >= acked, (acked, matches)
    step = max(matches)
    # and a router restored from it goes on: waiting callers keep their order
    later = START + timedelta(seconds=loaded.as_of - START.timestamp() + 5)
    router, decisions = Router.restore(directory(), loaded, now=later)
    waiting = [c.call_id for c in sorted(states[step].calls, key=lambda c: c.key)
               if c.phase == "waiting"]
    offered = [d.call_id for d in decisions if isinstance(d, OfferCall)]
    assert [c for c in waiting if c not in offered] == router.waiting_calls("billing")
