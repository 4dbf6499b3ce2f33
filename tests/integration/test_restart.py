"""A restart that loses no caller, or fairness: the engine runs as its own process
(`homeline engine run --stack`), is killed with SIGKILL while three callers wait
and one is connected, and is started again. Real Asterisk, real SIP, a real
store (an SQLite file, and a PostgreSQL database: the same test on each);
nothing stands in for them."""
from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from failover_kit import EngineProcess, Phones, stop_all
from failover_kit import caller_of as _caller_of
from pg_kit import StoreMaker

from homeline.stack import PbxStack
from routing.journal import replay
from softphone import SoftphoneHost
from store import open_store

from .conftest import directory_for, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]

def _snapshot(db: str) -> Any:
    with open_store(db) as store:
        return store.load_router_snapshot()


def _waiting(db: str) -> list[str]:
    snap = _snapshot(db)
    return [] if snap is None else [c.call_id for c in snap.calls if c.phase == "waiting"]


def test_kill_9_and_restart_keeps_every_waiting_caller_in_order_and_the_busy_agent_busy(
        tmp_path: Path, make_store: StoreMaker) -> None:
    now = datetime.now(UTC)
    agents = {a: {"skills": {"billing": 3}} for a in ("amy", "bob", "carl", "dan")}
    directory = directory_for(agents, now, ring_timeout_s=6)
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(yaml.safe_dump(directory.to_dict(), sort_keys=False),
                           encoding="utf-8")
    db = make_store.address()
    name = f"rs{os.getpid()}"
    stack = PbxStack(name, directory, tmp_path / name)
    argv = [sys.executable, "-m", "homeline", "engine", "run", "--agents", str(agents_file),
            "--db", db, "--stack", str(stack.state_dir), "--flow", "main-menu",
            "--no-web",  # the portal is not what a restart is about (nor port 8080)
            "--journal", str(tmp_path / "router.jsonl")]
    engines: list[EngineProcess] = []
    host = None
    phones: list[Any] = []
    try:
        stack.start_pbx()
        engines.append(EngineProcess(argv, tmp_path / "engine.log"))
        engines[-1].wait_serving(1)
        host = SoftphoneHost()

        parties = Phones(host, stack)
        parties.made = phones  # cleaned up below
        agent, caller = parties.agent, parties.caller

        amy = agent("amy")
        # a first call, talked and finished: amy has handled minutes this week
        first = caller("+15550400")
        amy.wait_call(20).wait_confirmed(10)
        time.sleep(2.0)
        first.hangup()
        # then amy is busy with a call, and three callers wait behind it
        talking = caller("+15550401")
        amy_leg = amy.wait_call(20)
        amy_leg.wait_confirmed(10)
        waiting = []
        for number in ("+15550402", "+15550403", "+15550404"):
            waiting.append(caller(number))
            time.sleep(0.5)
        assert wait_for(lambda: len(_waiting(db)) == 3, 20), _snapshot(db)
        stored = _snapshot(db)
        before = {a.agent_id: a for a in stored.agents}
        assert before["amy"].handled_s >= 1.5 and before["amy"].state == "on_call"
        callers = {c.call_id: c.arrival.caller for c in stored.calls}
        assert [callers[c] for c in _waiting(db)] == ["+15550402", "+15550403", "+15550404"]

        engines[-1].kill()  # no goodbye: whatever was not stored is lost
        time.sleep(1.0)
        assert not any(leg.ended for leg in waiting), "a waiting caller was dropped"
        engines.append(EngineProcess(argv, tmp_path / "engine.log"))
        engines[-1].wait_serving(2)
        assert "adopting the stored router state of 4 call(s)" in engines[-1].text()

        # three agents come online, one after the other: each takes the next in line
        got: list[str] = []
        for agent_id in ("bob", "carl", "dan"):
            phone = agent(agent_id)
            leg = phone.wait_call(20)
            leg.wait_confirmed(10)
            got.append(_caller_of(leg))
        assert got == ["+15550402", "+15550403", "+15550404"], got
        snap = wait_for(lambda: (s := _snapshot(db)) and s, 5)
        assert [c.call_id for c in snap.calls if c.phase == "connected"] != []
        after = {a.agent_id: a for a in snap.agents}
        assert after["amy"].state == "on_call", "the busy agent was freed by the restart"
        assert after["amy"].handled_s == pytest.approx(before["amy"].handled_s)
        assert len(amy.calls) == 2, "the busy agent got another offer"
        assert not talking.ended and not amy_leg.ended
        engine_log = engines[-1].text()
        assert "Traceback" not in engine_log, engine_log
        # the journal tells the whole story across the kill: one header, the restore
        # line of the second engine, and every decision of both replays the same
        lines = (tmp_path / "router.jsonl").read_text(encoding="utf-8").splitlines()
        assert sum('"journal": "homeline-router"' in x for x in lines) == 1
        assert sum(x.startswith('{"at"') and '"restore": {' in x for x in lines) == 1
        replayed = replay(lines, source="router.jsonl")
        assert replayed.identical, replayed.mismatches[:3]
        assert replayed.events > 10
    finally:
        stop_all(phones, host, engines, stack)
    leaked = [t for t in threading.enumerate() if t.is_alive() and not t.daemon
              and t is not threading.main_thread()]
    assert leaked == []
