"""Failover between two engines for one Asterisk on a shared PostgreSQL store (issue 13):
`homeline engine run --node a` leads (it won the leader lock, epoch 1), `--node b`
waits; the leader is killed with SIGKILL while one caller talks to an agent and
three wait; the standby wins the lock (epoch 2), adopts the stored router state
and the live channels, and every waiting caller reaches an agent in the original
order, none lost. The time from the kill to the standby's first routing decision
(the store shows the first waiting caller offered to an agent) is printed.
`homeline cluster status` is checked before and after. Real Asterisk, real SIP
(pjsua2), a real throw-away PostgreSQL cluster (tests/pg_kit.py)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from failover_kit import (
    EngineProcess,
    StandbyPair,
    caller_of,
    cluster_status,
    first_offer_at,
    waiting_callers,
    waiting_lines,
)

from routing.journal import replay

from .conftest import wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]

def test_kill_9_of_the_leader_the_standby_leads_and_every_waiting_caller_reaches_an_agent(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    agents = {a: {"skills": {"billing": 3}} for a in ("amy", "bob", "carl", "dan")}
    url = pg_database("failover")
    pair = StandbyPair(tmp_path, url, agents, "fo", journal=True, ring_timeout_s=6)
    engines, watch = pair.engines, pair.watch
    try:
        parties = pair.start()
        time.sleep(1.5)
        assert "engine serving" not in engines["b"].text()  # the standby serves nothing
        status = cluster_status(url)
        assert "leader: node a, epoch 1, since " in status, status
        assert "leader lock: held" in status and "homeline-leader a" in status, status
        agent, caller = parties.agent, parties.caller

        amy = agent("amy")
        talking = caller("+15550501")
        amy_leg = amy.wait_call(20)
        amy_leg.wait_confirmed(10)
        waiting = []
        for number in ("+15550502", "+15550503", "+15550504"):
            waiting.append(caller(number))
            time.sleep(0.5)
        order = ["+15550502", "+15550503", "+15550504"]
        assert wait_for(lambda: waiting_callers(watch) == order, 20), waiting_callers(watch)
        status = cluster_status(url)
        assert waiting_lines(status) == order, status
        assert "  amy on_call registered" in status, status

        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        engines["a"].kill()  # no goodbye: the leader's lock session ends with it
        bob = agent("bob")  # comes online while no engine leads
        first = first_offer_at(watch, ["bob"])
        assert first is not None, engines["b"].text()
        leader = watch.router_leader()
        assert leader is not None and (leader.epoch, leader.node) == (2, "b")
        print(f"\nfailover: kill -9 of the leader -> the standby took epoch 2 "
              f"{(leader.since - killed_at).total_seconds():.2f} s (router_leader.since); "
              f"-> its first routing decision (the first waiting caller offered to bob, "
              f"seen in the store) {first - killed:.2f} s")
        assert "leading with epoch 2 (node b)" in engines["b"].text()
        engines["b"].wait_serving(1)
        assert "adopting the stored router state of 4 call(s)" in engines["b"].text()
        got = [caller_of(bob.wait_call(20))]
        for agent_id in ("carl", "dan"):
            phone = agent(agent_id)
            leg = phone.wait_call(20)
            leg.wait_confirmed(10)
            got.append(caller_of(leg))
        assert got == order, got
        assert not any(leg.ended for leg in waiting), "a waiting caller was dropped"
        assert not talking.ended and not amy_leg.ended
        assert len(amy.calls) == 1, "the busy agent got another offer"
        assert wait_for(lambda: waiting_callers(watch) == [], 5)

        status = cluster_status(url)
        assert "leader: node b, epoch 2, since " in status, status
        assert "homeline-leader b" in status and "waiting calls (0):" in status, status
        # the killed node comes back: it waits behind the new leader
        engines["a2"] = EngineProcess(pair.argv("a"), tmp_path / "engine-a2.log")
        assert wait_for(lambda: "standby: waiting to lead: node b leads with epoch 2"
                        in engines["a2"].text(), 30), engines["a2"].text()
        log_b = engines["b"].text()
        assert "Traceback" not in log_b and "deposed" not in log_b, log_b
        lines = (tmp_path / "router.jsonl").read_text(encoding="utf-8").splitlines()
        replayed = replay(lines, source="router.jsonl")
        assert replayed.identical, replayed.mismatches[:3]
    finally:
        pair.stop()
    leaked = [t for t in threading.enumerate() if t.is_alive() and not t.daemon
              and t is not threading.main_thread()]
    assert leaked == []


def test_a_leader_whose_lock_session_is_terminated_steps_down_and_waits_as_standby(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    """``pg_terminate_backend`` of the leader's lock session while a caller waits: the
    leader finds it is deposed, says so, stops serving and waits as a standby in the
    same process; the standby leads with the next epoch, adopts the waiting caller,
    and the agent who comes online gets that call, once."""
    import psycopg

    url = pg_database("deposed")
    pair = StandbyPair(tmp_path, url, {"amy": {"skills": {"billing": 3}}}, "fd")
    engines = pair.engines
    try:
        parties = pair.start()
        leg = parties.caller("+15550601")  # billing: no agent online, the caller waits
        assert wait_for(lambda: "waiting calls (1):" in cluster_status(url), 20), \
            cluster_status(url)
        status = cluster_status(url)
        pid = int(status.split("leader lock: held (server pid ", 1)[1].split(",", 1)[0])
        with psycopg.connect(url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        assert wait_for(lambda: "deposed as the router leader (node a)"
                        in engines["a"].text(), 20), engines["a"].text()
        engines["b"].wait_serving(1)
        # node a stays up: it stopped serving and waits behind the new leader
        assert wait_for(lambda: "standby: waiting to lead: node b leads with epoch 2"
                        in engines["a"].text(), 20), engines["a"].text()
        assert engines["a"].proc.poll() is None, engines["a"].text()
        assert "leading with epoch 2 (node b)" in engines["b"].text()
        assert "leader: node b, epoch 2" in cluster_status(url)
        assert "adopting the stored router state of 1 call(s)" in engines["b"].text()
        amy = parties.agent("amy")
        amy.wait_call(20).wait_confirmed(10)
        assert caller_of(amy.calls[0]) == "+15550601" and not leg.ended
        time.sleep(2.0)
        assert len(amy.calls) == 1, "the call was offered twice"
        assert "Traceback" not in engines["b"].text()
        text_a = engines["a"].text()
        assert engines["a"].proc.poll() is None, text_a
        assert text_a.count("engine serving") == 1 and "leading with epoch 2" not in text_a, \
            text_a  # node a served once, as epoch 1, and is a standby since
        assert "Traceback" not in text_a, text_a
    finally:
        pair.stop()


def test_a_leader_whose_save_fails_steps_down_and_carries_nothing_out(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    """The store refuses to record any offer (a CHECK constraint on ``router_calls``:
    no row may be ringing) while a caller waits and amy comes online: the leader's
    offer is not stored, so it is not carried out (amy's phone does not ring); the
    leader steps down and waits as a standby, and so does every engine that takes
    over while the store refuses. Once the store takes offers again, whoever leads
    offers the call to amy, once."""
    import psycopg

    url = pg_database("unsaved")
    pair = StandbyPair(tmp_path, url, {"amy": {"skills": {"billing": 3}}}, "fs")
    engines = pair.engines
    try:
        parties = pair.start()
        leg = parties.caller("+15550801")
        assert wait_for(lambda: waiting_callers(pair.watch) == ["+15550801"], 20)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("ALTER TABLE router_calls ADD CONSTRAINT test_no_offer "
                          "CHECK (phase <> 'ringing') NOT VALID")
            amy = parties.agent("amy")
            assert wait_for(lambda: "deposed as the router leader (node a): router state "
                            "not stored" in engines["a"].text(), 20), engines["a"].text()
            time.sleep(3.0)  # engines take over and step down while the store refuses
            assert amy.calls == [], "an offer the store did not keep was carried out"
            admin.execute("ALTER TABLE router_calls DROP CONSTRAINT test_no_offer")
        amy.wait_call(20).wait_confirmed(10)
        assert caller_of(amy.calls[0]) == "+15550801" and not leg.ended
        time.sleep(2.0)
        assert len(amy.calls) == 1, "the call was offered twice"
        status = cluster_status(url)
        assert "waiting calls (0):" in status, status
        for engine in engines.values():
            assert engine.proc.poll() is None, engine.text()
            assert "Traceback" not in engine.text(), engine.text()
    finally:
        pair.stop()
