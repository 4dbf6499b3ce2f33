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

import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from failover_kit import (
    EngineProcess,
    Phones,
    caller_of,
    cluster_status,
    engine_argv,
    offered_to,
    stop_all,
    waiting_callers,
)

from homeline.pbx.render import NodePeer
from homeline.stack import PbxStack, Ports
from prompts.audio_proof import verify_heard, write_probe
from softphone import SoftphoneHost
from store import open_store

from .conftest import directory_for, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]


def _audio_both_ways(caller_leg: Any, agent_leg: Any, work: Path, tag: str) -> tuple[Any, Any]:
    """Each side plays its probe; what the other side heard must hold it."""
    caller_probe = write_probe(work / f"{tag}-caller-probe.wav", "1379")
    agent_probe = write_probe(work / f"{tag}-agent-probe.wav", "2468")
    heard_by_agent = agent_leg.record(work / f"{tag}-agent-heard.wav")
    heard_by_caller = caller_leg.record(work / f"{tag}-caller-heard.wav")
    time.sleep(0.3)
    seconds = max(caller_leg.play(caller_probe), agent_leg.play(agent_probe))
    time.sleep(seconds + 0.8)
    agent_leg.stop_recording()
    caller_leg.stop_recording()
    to_agent = verify_heard(heard_by_agent, "1379")
    to_caller = verify_heard(heard_by_caller, "2468")
    return to_agent, to_caller


def test_callers_on_each_node_reach_agents_on_the_other_node_with_audio_both_ways(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    now = datetime.now(UTC)
    agents = {a: {"skills": {"billing": 3}} for a in ("amy", "bob")}
    directory = directory_for(agents, now, ring_timeout_s=8)
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(yaml.safe_dump(directory.to_dict(), sort_keys=False),
                           encoding="utf-8")
    url = pg_database("nodes")
    trunk_secret = secrets.token_urlsafe(24)
    ports = {"a": Ports.free(), "b": Ports.free()}
    stacks = {
        node: PbxStack(f"n{node}{os.getpid()}", directory, tmp_path / f"node-{node}",
                       ports[node], node=node,
                       peers=(NodePeer(peer, "127.0.0.1", ports[peer].sip, trunk_secret),))
        for node, peer in (("a", "b"), ("b", "a"))}
    engines: dict[str, EngineProcess] = {}
    host = None
    phones: list[Any] = []
    watch = open_store(url)
    try:
        for stack in stacks.values():
            stack.start_pbx()
        for node in ("a", "b"):
            argv = engine_argv(agents_file, url, node, stacks[node].state_dir)
            engines[node] = EngineProcess(argv, tmp_path / f"engine-{node}.log")
            engines[node].wait_serving(1)
        assert wait_for(lambda: "leading with epoch 1 (node a)" in engines["a"].text(), 20), \
            engines["a"].text()
        assert wait_for(lambda: "following: this node serves its calls, another routes"
                        in engines["b"].text(), 20), engines["b"].text()
        assert "node a leads with epoch 1" in engines["b"].text()

        host = SoftphoneHost()
        on = {node: Phones(host, stacks[node]) for node in ("a", "b")}
        for p in on.values():
            p.made = phones  # every party is closed below
        amy = on["a"].agent("amy")  # registered on node a only
        assert wait_for(lambda: watch.agent_nodes("amy") == ["a"], 10), watch.agent_nodes("amy")

        # a caller on node b: node b's IVR routes them, node a's engine decides, node b
        # rings amy through the trunk to node a
        leg_b = on["b"].caller("+15550701")
        amy_leg = amy.wait_call(25)
        amy_leg.wait_confirmed(10)
        assert caller_of(amy_leg) == "+15550701"  # the caller's number crossed the trunk
        to_agent, to_caller = _audio_both_ways(leg_b, amy_leg, tmp_path, "b-to-a")
        assert to_agent.ok, f"amy did not hear the caller: {to_agent.heard!r}"
        assert to_caller.ok, f"the caller did not hear amy: {to_caller.heard!r}"
        assert watch.call_node(_call_of(watch, "+15550701")) == "b"

        # a caller on node a while amy talks: bob, registered on node b, gets them
        bob = on["b"].agent("bob")
        assert wait_for(lambda: watch.agent_nodes("bob") == ["b"], 10), watch.agent_nodes("bob")
        leg_a = on["a"].caller("+15550702")
        bob_leg = bob.wait_call(25)
        bob_leg.wait_confirmed(10)
        assert caller_of(bob_leg) == "+15550702"
        to_agent, to_caller = _audio_both_ways(leg_a, bob_leg, tmp_path, "a-to-b")
        assert to_agent.ok, f"bob did not hear the caller: {to_agent.heard!r}"
        assert to_caller.ok, f"the caller did not hear bob: {to_caller.heard!r}"

        status = cluster_status(url)
        assert "node a" in status and "node b" in status, status
        assert "  amy on_call registered" in status and "  bob on_call registered" in status, \
            status
        time.sleep(1.0)
        assert len(amy.calls) == 1 and len(bob.calls) == 1, "an agent got a second offer"
        for leg in (leg_b, leg_a):
            leg.hangup()
        for leg in (amy_leg, bob_leg):
            leg.wait_disconnected(10)
        # the hang-ups reach the leader: both agents are free again (wrap-up or idle)
        assert wait_for(lambda: "on_call" not in cluster_status(url), 20), cluster_status(url)
        for node in ("a", "b"):
            text = engines[node].text()
            assert "Traceback" not in text, text
    finally:
        watch.close()
        stop_all(phones, host, engines.values(), stacks["a"])
        stacks["b"].stop(remove=True)


def _call_of(store: Any, caller: str) -> str:
    """The call id of the (latest) call from ``caller`` in the call records."""
    calls = [c for c in store.calls() if c.caller == caller]
    assert calls, f"no call record from {caller}"
    return str(calls[-1].call_id)


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
    now = datetime.now(UTC)
    agents = {a: {"skills": {"billing": 3}} for a in ("amy", "bob", "carl", "dan")}
    directory = directory_for(agents, now, ring_timeout_s=8)
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(yaml.safe_dump(directory.to_dict(), sort_keys=False),
                           encoding="utf-8")
    url = pg_database("nodefail")
    trunk_secret = secrets.token_urlsafe(24)
    ports = {"a": Ports.free(), "b": Ports.free()}
    stacks = {
        node: PbxStack(f"f{node}{os.getpid()}", directory, tmp_path / f"node-{node}",
                       ports[node], node=node,
                       peers=(NodePeer(peer, "127.0.0.1", ports[peer].sip, trunk_secret),))
        for node, peer in (("a", "b"), ("b", "a"))}
    engines: dict[str, EngineProcess] = {}
    host = None
    phones: list[Any] = []
    watch = open_store(url)

    def engine(node: str, name: str) -> EngineProcess:
        argv = engine_argv(agents_file, url, node, stacks[node].state_dir)
        engines[name] = EngineProcess(argv, tmp_path / f"engine-{name}.log")
        engines[name].wait_serving(1)
        return engines[name]

    try:
        for stack in stacks.values():
            stack.start_pbx()
        engine("a", "a")
        assert wait_for(lambda: "leading with epoch 1 (node a)" in engines["a"].text(), 20)
        engine("b", "b")
        assert wait_for(lambda: "following:" in engines["b"].text(), 20), engines["b"].text()
        host = SoftphoneHost()
        on = {node: Phones(host, stacks[node]) for node in ("a", "b")}
        for p in on.values():
            p.made = phones
        amy = on["a"].agent("amy")
        assert wait_for(lambda: watch.agent_nodes("amy") == ["a"], 10)
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
        engines["a"].kill()  # node a's Asterisk stays up: amy's leg goes on
        bob = on["b"].agent("bob")
        first: list[float] = []

        def offered_to_bob() -> bool:
            if offered_to(watch, ["bob"]):
                first.append(time.monotonic())
                return True
            return False

        assert wait_for(offered_to_bob, 30, step=0.02), engines["b"].text()
        leader = watch.router_leader()
        assert leader is not None and (leader.epoch, leader.node) == (2, "b")
        print(f"\nnode failover: kill -9 of the leading node's engine -> the other node's "
              f"first routing decision (the first waiting caller offered to bob) "
              f"{first[0] - killed:.2f} s")
        assert "leading with epoch 2 (node b)" in engines["b"].text()
        got = [caller_of(bob.wait_call(20))]
        bob.calls[0].wait_confirmed(10)
        engine("a", "a2")  # node a's engine is back: it follows
        assert wait_for(lambda: "following:" in engines["a2"].text(), 20), engines["a2"].text()
        carl = on["a"].agent("carl")
        carl_leg = carl.wait_call(25)  # a caller of node b, over the trunk to node a
        carl_leg.wait_confirmed(10)
        got.append(caller_of(carl_leg))
        dan = on["b"].agent("dan")
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
            assert "Traceback" not in engines[name].text(), engines[name].text()
    finally:
        watch.close()
        stop_all(phones, host, engines.values(), stacks["a"])
        stacks["b"].stop(remove=True)
