"""Two nodes, one router (issue 13): two Asterisk instances on loopback, each with
its own `homeline engine run --node NAME --stack DIR` on one PostgreSQL database,
and a PJSIP trunk between them rendered from the templates (pjsip-node.conf.tmpl).
Node a's engine leads (epoch 1) and routes for both; node b's follows: it serves
its own FastAGI and AMI, forwards its router events through the store's outbox,
and carries out the leader's decisions about its own channels.

A caller on node b reaches an agent registered on node a, and a caller on node a
an agent registered on node b, each over the trunk, with audio both ways (each side
plays a DTMF probe and the other side's recording must hold it:
prompts/audio_proof.py). Neither agent is offered a second call. Real Asterisk,
real SIP (pjsua2), a real throw-away PostgreSQL cluster (tests/pg_kit.py)."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from failover_kit import caller_of, cluster_status, first_offer_at, waiting_callers
from nodes_kit import TwoNodes

from homeline.demo import hear_each_other
from store import open_store

from .conftest import wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]


def test_callers_on_each_node_reach_agents_on_the_other_node_withhear_each_other(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    nodes = TwoNodes(tmp_path, pg_database("nodes"), ["amy", "bob"], "n")
    try:
        nodes.start()
        watch, on = nodes.watch, nodes.on
        amy = nodes.agent("a", "amy")
        # a caller on node b: node b's IVR routes them, node a's engine decides, node b
        # rings amy through the trunk to node a
        leg_b = on["b"].caller("+15550701")
        amy_leg = amy.wait_call(25)
        amy_leg.wait_confirmed(10)
        assert caller_of(amy_leg) == "+15550701"  # the caller's number crossed the trunk
        to_agent, to_caller = hear_each_other(leg_b, amy_leg, tmp_path, "b-to-a")
        assert to_agent.ok, f"amy did not hear the caller: {to_agent.heard!r}"
        assert to_caller.ok, f"the caller did not hear amy: {to_caller.heard!r}"
        assert watch.call_node(_call_of(watch, "+15550701")) == "b"

        # a caller on node a while amy talks: bob, registered on node b, gets them
        bob = nodes.agent("b", "bob")
        leg_a = on["a"].caller("+15550702")
        bob_leg = bob.wait_call(25)
        bob_leg.wait_confirmed(10)
        assert caller_of(bob_leg) == "+15550702"
        to_agent, to_caller = hear_each_other(leg_a, bob_leg, tmp_path, "a-to-b")
        assert to_agent.ok, f"bob did not hear the caller: {to_agent.heard!r}"
        assert to_caller.ok, f"the caller did not hear bob: {to_caller.heard!r}"

        status = cluster_status(nodes.url)
        assert "agents registered (1): amy" in status.split("node a SIP", 1)[1].split("\n")[0]
        assert "agents registered (1): bob" in status.split("node b SIP", 1)[1].split("\n")[0]
        assert "  amy on_call registered" in status and "  bob on_call registered" in status, \
            status
        time.sleep(1.0)
        assert len(amy.calls) == 1 and len(bob.calls) == 1, "an agent got a second offer"
        for leg in (leg_b, leg_a):
            leg.hangup()
        for leg in (amy_leg, bob_leg):
            leg.wait_disconnected(10)
        # the hang-ups reach the leader: neither agent is on a call any more
        assert wait_for(lambda: "on_call" not in cluster_status(nodes.url), 20), \
            cluster_status(nodes.url)
        for name in ("a", "b"):
            assert "Traceback" not in nodes.text(name), nodes.text(name)
    finally:
        nodes.stop()


def test_kill_9_of_the_leading_node_engine_the_other_node_leads_and_its_waiting_callers_reach_agents_in_order(  # noqa: E501
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    """Node a's engine leads; amy (registered on node a) talks to a caller of node b
    over the trunk; three more callers of node b wait. Node a's engine is killed with
    SIGKILL (its Asterisk stays up): node b's engine wins the lock (epoch 2), adopts
    the stored state with its own channels, and every waiting caller reaches an agent
    in the order they waited: bob (node b) first, then carl on node a once its
    engine is back (a follower now), then dan (node b). No caller lost, amy's call
    untouched, nobody offered two calls. The time from the kill to the first routing
    decision is printed."""
    nodes = TwoNodes(tmp_path, pg_database("nodefail"), ["amy", "bob", "carl", "dan"], "f")
    try:
        nodes.start()
        watch, on = nodes.watch, nodes.on
        amy = nodes.agent("a", "amy")
        talking = on["b"].caller("+15550801")
        amy_leg = amy.wait_call(25)
        amy_leg.wait_confirmed(10)
        waiting = []
        order = ["+15550802", "+15550803", "+15550804"]
        for number in order:
            waiting.append(on["b"].caller(number))
            time.sleep(0.5)
        assert wait_for(lambda: waiting_callers(watch) == order, 20), waiting_callers(watch)

        killed = time.monotonic()
        nodes.engines["a"].kill()  # node a's Asterisk stays up: amy's leg goes on
        bob = nodes.on["b"].agent("bob")
        first = first_offer_at(watch, ["bob"])
        assert first is not None, nodes.text("b")
        leader = watch.router_leader()
        assert leader is not None and (leader.epoch, leader.node) == (2, "b")
        print(f"\nnode failover: kill -9 of the leading node's engine -> the other node's "
              f"first routing decision (the first waiting caller offered to bob) "
              f"{first - killed:.2f} s")
        assert "leading with epoch 2 (node b)" in nodes.text("b")
        bob_leg = bob.wait_call(20)
        bob_leg.wait_confirmed(10)
        got = [caller_of(bob_leg)]
        nodes.engine("a", "a2")  # node a's engine is back: it follows
        assert wait_for(lambda: "following:" in nodes.text("a2"), 20), nodes.text("a2")
        carl = nodes.agent("a", "carl")
        carl_leg = carl.wait_call(25)  # a caller of node b, over the trunk to node a
        carl_leg.wait_confirmed(10)
        got.append(caller_of(carl_leg))
        dan = nodes.agent("b", "dan")
        dan_leg = dan.wait_call(25)
        dan_leg.wait_confirmed(10)
        got.append(caller_of(dan_leg))
        assert got == order, got
        assert not any(leg.ended for leg in waiting), "a waiting caller was dropped"
        assert not talking.ended and not amy_leg.ended, "amy's call did not survive"
        time.sleep(1.0)
        assert [len(p.calls) for p in (amy, bob, carl, dan)] == [1, 1, 1, 1], \
            "an agent got a second offer"
        assert waiting_callers(watch) == []
        for name in ("b", "a2"):
            assert "Traceback" not in nodes.text(name), nodes.text(name)
    finally:
        nodes.stop()


def test_a_leading_node_whose_lock_session_is_terminated_follows_and_nothing_is_done_twice(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    """``pg_terminate_backend`` of node a's leader lock session while a caller of node
    b waits: node a's engine finds itself deposed and follows (it keeps serving its
    Asterisk), node b's leads with epoch 2; the late batch epoch 1 would still send
    is refused by the store; amy, registered on node a, gets the waiting call once,
    through the trunk."""
    import psycopg

    from store.errors import StoreError

    nodes = TwoNodes(tmp_path, pg_database("nodedeposed"), ["amy"], "d")
    try:
        nodes.start()
        waiting = nodes.on["b"].caller("+15550901")
        assert wait_for(lambda: waiting_callers(nodes.watch) == ["+15550901"], 20)
        status = cluster_status(nodes.url)
        pid = int(status.split("leader lock: held (server pid ", 1)[1].split(",", 1)[0])
        with psycopg.connect(nodes.url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        assert wait_for(lambda: "deposed as the router leader (node a)" in nodes.text("a"), 20), \
            nodes.text("a")
        assert wait_for(lambda: "leading with epoch 2 (node b)" in nodes.text("b"), 20), \
            nodes.text("b")
        assert nodes.engines["a"].proc.poll() is None, "the deposed node's engine stopped"
        # what the deposed leader would still write is refused: its epoch is gone
        late = open_store(nodes.url)
        try:
            late.fence(1)
            with pytest.raises(StoreError, match="deposed"):
                late.send_node_decisions("b", [{"type": "CancelOffer", "call_id": "x",
                                                "agent_id": "amy", "why": "late"}],
                                         datetime.now(UTC))
        finally:
            late.close()
        amy = nodes.agent("a", "amy")  # node a's engine, a follower now, reports her
        leg = amy.wait_call(25)
        leg.wait_confirmed(10)
        assert caller_of(leg) == "+15550901" and not waiting.ended
        time.sleep(2.0)
        assert len(amy.calls) == 1, "the call was offered twice"
        assert "Traceback" not in nodes.text("a") and "Traceback" not in nodes.text("b")
    finally:
        nodes.stop()


def _call_of(store: Any, caller: str) -> str:
    """The call id of the (latest) call from ``caller`` in the call records."""
    calls = [c for c in store.calls() if c.caller == caller]
    assert calls, f"no call record from {caller}"
    return str(calls[-1].call_id)


def test_a_caller_waiting_on_a_follower_node_hears_their_place_as_the_leader_knows_it(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    """The billing queue announces the place in line every 2 s: two callers of node b
    (the follower) wait; node b's hold announcements ask the leader (node a) through
    the outbox and say what its router answers: 1 and 2, then 1 for the second
    caller once the first hung up."""
    import shutil

    from homeline.paths import DIALPLANS_DIR

    flows = tmp_path / "flows"
    shutil.copytree(DIALPLANS_DIR / "flows", flows)
    menu = flows / "main-menu.yaml"
    text = menu.read_text(encoding="utf-8")
    assert "    intent: billing\n" in text
    menu.write_text(text.replace("    intent: billing\n",
                                 "    intent: billing\n    announce_every_s: 2\n"),
                    encoding="utf-8")
    nodes = TwoNodes(tmp_path, pg_database("nodeplace"), ["amy"], "p",
                     engine_args=("--flows", str(flows)))
    try:
        nodes.start()
        first = nodes.on["b"].caller("+15551001")
        time.sleep(0.5)
        second = nodes.on["b"].caller("+15551002")

        def told(number: str) -> list[int]:
            call_id = _call_of(nodes.watch, number) if _has_call(nodes.watch, number) else ""
            return [int(line.split("told position ", 1)[1].split(",", 1)[0])
                    for line in nodes.text("b").splitlines()
                    if call_id and f"call {call_id} on hold: told position" in line]

        assert wait_for(lambda: told("+15551002"), 20), nodes.text("b")
        assert told("+15551001")[0] == 1 and told("+15551002")[0] == 2
        first.hangup()
        seen = len(told("+15551002"))
        assert wait_for(lambda: len(told("+15551002")) > seen + 1, 20), nodes.text("b")
        assert told("+15551002")[-1] == 1, told("+15551002")
        assert not second.ended
        assert "told position" not in nodes.text("a")  # node a has no caller on hold
    finally:
        nodes.stop()


def _has_call(store: Any, caller: str) -> bool:
    return any(c.caller == caller for c in store.calls())
