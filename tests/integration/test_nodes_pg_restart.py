"""The PostgreSQL server restarts under load, with two nodes (issue 13, test 4 for
several nodes): two Asterisk instances with a trunk between them, an engine per
node on a PostgreSQL cluster of the test's own (node a's engine leads with epoch 1,
node b's follows: tests/nodes_kit.py). Amy, registered on node a, talks to a caller
of node b over the trunk; four callers wait for billing (three of node b, one of
node a), and one of node b for tech, whose hold is bounded (``max_wait_s``, then
voicemail). The server is stopped for several seconds and started again.

Both engines keep running (neither exits): node a's finds its lock session gone
and follows, both keep serving their Asterisk while the store does not answer.
While the server is down, the first caller in line (node b) hangs up and bob's
phone registers on node b: node b's engine holds both events back, in order, in
its outbox (homeline/nodes.py NodeLink.flush). When the server is back one engine
leads with epoch 2, the other follows; the held-back events reach the leader, so
the caller who hung up is offered to nobody and bob gets the second caller in
line; carl (node a) and dan (node b) come online and get the others, in their
original order, one call each. The tech caller, whose bound passed while the
server was down, is sent to voicemail (node b's) once a leader routes again, once,
and leaves a message. No waiting caller's leg ended, and amy's call,
connected before the outage, still has audio both ways. The time from the server
coming back to the first routing decision is printed.

Real Asterisk, real SIP (pjsua2 phones), a real PostgreSQL cluster of the test's own
(restarting the session's shared cluster would cut every other test's connections).
"""
from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from failover_kit import caller_of, cluster_status, offered_to
from nodes_kit import TwoNodes
from restart_kit import leader_or_none, server_ready_at, waiting_line

from homeline.demo import hear_each_other
from homeline.pgcluster import PgCluster
from store import SqlStore, StoreError

from .conftest import wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]

DOWN_S = 5.0  # the server stays down at least this long
TECH_MAX_WAIT_S = 13  # the tech queue's hold bound (then voicemail); billing has none


def _overflows(store: SqlStore, call_id: str) -> list[datetime]:
    """When ``call_id`` was overflowed (its ``overflowed`` call events)."""
    try:
        return [e.at for e in store.call_events([call_id])[call_id] if e.event == "overflowed"]
    except StoreError:
        return []


def _stored_calls(store: SqlStore) -> dict[str, Any] | None:
    try:
        snap = store.load_router_snapshot()
    except StoreError:
        return None
    return {} if snap is None else {c.call_id: c for c in snap.calls}


def _offered(store: SqlStore, agents: list[str]) -> bool:
    try:
        return offered_to(store, agents)
    except StoreError:
        return False


def _forwarded(url: str, node: str, kind: str, call_id: str) -> list[datetime]:
    """When ``node``'s engine saw ``kind`` of ``call_id`` (its outbox rows' ``at``)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute("SELECT at, body FROM node_events WHERE node = %s ORDER BY seq",
                          (node,)).fetchall()
    return [datetime.fromisoformat(at) for at, body in rows
            if (b := json.loads(body)).get("type") == kind and b.get("call_id") == call_id]


@pytest.mark.parametrize("winner", ["a", "b"])
def test_a_postgresql_restart_under_two_nodes_loses_no_call_and_delivers_what_a_follower_held_back(  # noqa: E501
        tmp_path: Path, own_cluster: PgCluster, winner: str) -> None:
    url = own_cluster.create_database("nodesrestart")
    nodes = TwoNodes(tmp_path, url, ["amy", "bob", "carl", "dan"], "r",
                     more_agents={"zed": {"skills": {"tech": 3}}},  # never online
                     queues={"tech": {"max_wait_s": TECH_MAX_WAIT_S,
                                      "overflow": "ext:voicemail"}})
    try:
        nodes.start()
        watch, on = nodes.watch, nodes.on
        amy = nodes.agent("a", "amy")
        talking = on["b"].caller("+15550601")  # node b's caller, amy on node a: the trunk
        amy_leg = amy.wait_call(25)
        amy_leg.wait_confirmed(10)
        assert caller_of(amy_leg) == "+15550601"
        tech = on["b"].caller("+15550611", key="2")  # its bound passes during the outage
        order = ["+15550602", "+15550603", "+15550604", "+15550605"]
        legs = {}
        for number, node in zip(order, ("b", "b", "a", "b"), strict=True):
            legs[number] = on[node].caller(number)
            time.sleep(0.5)
        assert wait_for(lambda: [c for c, _, _ in waiting_line(watch)] == order, 20), \
            waiting_line(watch)
        gone_id = waiting_line(watch)[0][1]  # the first in line hangs up during the outage
        assert wait_for(lambda: len(waiting_line(watch, "tech")) == 1, 20), \
            waiting_line(watch, "tech")
        (_, tech_id, tech_queued), = waiting_line(watch, "tech")
        bound = tech_queued + TECH_MAX_WAIT_S

        assert time.time() < bound - 1.5, "too slow a setup: the tech bound passed already"
        own_cluster.stop_server()
        stopped = time.time()
        assert wait_for(lambda: "deposed as the router leader (node a)" in nodes.text("a"),
                        15), nodes.text("a")
        for name in ("a", "b"):
            assert wait_for(lambda n=name: "the store does not answer" in nodes.text(n), 15), \
                nodes.text(name)
        # what node b's engine sees while nobody can route: held back, in order
        gone = legs.pop(order[0])
        gone.hangup()
        bob = on["b"].agent("bob")  # registered on node b while the server is down
        while time.time() < max(stopped + DOWN_S, bound + 1.0):
            time.sleep(0.1)
        assert all(e.proc.poll() is None for e in nodes.engines.values()), "an engine exited"
        # either engine may win the lock back: the loser is paused (SIGSTOP, it does not
        # exit) until the winner has taken epoch 2, so that both takeovers are tested
        first: list[float] = []  # when the store first showed a call offered to bob

        def offered_to_bob() -> bool:
            if not first and _offered(watch, ["bob"]):
                first.append(time.monotonic())
            return bool(first)

        def epoch_2() -> bool:
            offered_to_bob()
            return (lead := leader_or_none(watch)) is not None and lead.epoch == 2

        loser = nodes.engines["b" if winner == "a" else "a"].proc
        loser.send_signal(signal.SIGSTOP)
        try:
            own_cluster.start_server()
            returned, returned_mono = datetime.now(UTC), time.monotonic()
            assert wait_for(epoch_2, 30, step=0.02), nodes.text(winner)
        finally:
            loser.send_signal(signal.SIGCONT)
        back_wall = server_ready_at(own_cluster, returned)  # pg_ctl -w polls: a little late
        back = returned_mono - (returned - back_wall).total_seconds()
        print(f"\nPostgreSQL down {time.time() - stopped:.1f} s")

        assert wait_for(offered_to_bob, 40, step=0.02), nodes.text("a") + nodes.text("b")
        leader = leader_or_none(watch)
        assert leader is not None and (leader.epoch, leader.node) == (2, winner), leader
        new, other = leader.node, "b" if leader.node == "a" else "a"
        assert f"leading with epoch 2 (node {new})" in nodes.text(new), nodes.text(new)
        # the hold bound still applies: the tech caller, past it while the server was
        # down, is sent to voicemail (by node b's Asterisk) once a leader routes again
        sent = wait_for(lambda: _overflows(watch, tech_id), 15)
        assert sent, nodes.text(new)
        due = datetime.fromtimestamp(bound, UTC)
        assert due <= sent[0] and (sent[0] - leader.since).total_seconds() < 3, \
            (sent, due, leader.since)
        offered_s = first[0] - back
        overflow_s = (sent[0] - back_wall).total_seconds()
        print(f"two nodes, PostgreSQL restart: server back (its log: ready to accept "
              f"connections) -> node {new} took epoch 2 "
              f"{(leader.since - back_wall).total_seconds():.2f} s; -> the tech caller past "
              f"its bound sent to voicemail {overflow_s:.2f} s; -> the first billing caller "
              f"still waiting offered to bob (registered on node b during the outage) "
              f"{offered_s:.2f} s; first routing decision {min(offered_s, overflow_s):.2f} s "
              f"(node {other}'s engine paused until epoch 2 was taken)")
        # the other says it follows again once the store answers (whom, if it knew yet)
        assert wait_for(lambda: "following: this node serves its calls" in nodes.text(
            other).rsplit("the store does not answer", 1)[-1], 20), nodes.text(other)

        bob_leg = bob.wait_call(20)
        bob_leg.wait_confirmed(10)
        got = [caller_of(bob_leg)]
        # the hang-up node b held back reached the leader: the call is gone from the
        # router, and node b's outbox row says when node b saw it (during the outage)
        assert wait_for(lambda: (calls := _stored_calls(watch)) is not None
                        and gone_id not in calls, 20), _stored_calls(watch)
        seen = _forwarded(url, "b", "CallerAbandoned", gone_id)
        if new == "a":  # node b followed all along: its outbox carried the hang-up
            assert seen, "node b's hang-up never reached the leader"
            assert "CallerAbandoned held back until the store takes it" in nodes.text("b")
        for at in seen:
            assert stopped <= at.timestamp() <= back_wall.timestamp(), (at, stopped, back_wall)
        carl = nodes.agent("a", "carl")
        carl_leg = carl.wait_call(25)
        carl_leg.wait_confirmed(10)
        got.append(caller_of(carl_leg))
        dan = nodes.agent("b", "dan")
        dan_leg = dan.wait_call(25)
        dan_leg.wait_confirmed(10)
        got.append(caller_of(dan_leg))
        assert got == order[1:], got
        assert not any(leg.ended for leg in legs.values()), "a waiting caller was dropped"
        assert not talking.ended and not amy_leg.ended, "amy's call did not survive"
        to_agent, to_caller = hear_each_other(talking, amy_leg, tmp_path, "after-restart")
        assert to_agent.ok, f"amy did not hear the caller: {to_agent.heard!r}"
        assert to_caller.ok, f"the caller did not hear amy: {to_caller.heard!r}"

        time.sleep(1.0)
        phones = (amy, bob, carl, dan)
        assert [len(p.calls) for p in phones] == [1, 1, 1, 1], "an agent got a second offer"
        events = watch.call_events([gone_id])[gone_id]
        assert not [e for e in events if e.event == "offered"], events
        assert waiting_line(watch) == [] and waiting_line(watch, "tech") == []
        assert len(_overflows(watch, tech_id)) == 1
        assert not tech.ended, "the tech caller was dropped instead of sent to voicemail"
        tech.play_tone(440.0, 13.0)  # a message after the beep, in node b's tech box
        time.sleep(13.0)
        tech.hangup()
        box = nodes.stacks["b"]
        assert wait_for(lambda: len(box.voicemail_messages("tech")) == 1, 20), \
            box.voicemail_messages("tech")
        assert "+15550611" in box.voicemail_messages("tech")[0].read_text(errors="replace")
        status = cluster_status(url)
        assert f"leader: node {new}, epoch 2, since " in status, status
        for name in ("a", "b"):
            text = nodes.text(name)
            assert nodes.engines[name].proc.poll() is None, text
            assert "Traceback" not in text, text
    finally:
        nodes.stop()


def test_a_node_whose_takeover_the_store_fails_keeps_serving_and_the_next_bid_leads(
        tmp_path: Path, own_cluster: PgCluster) -> None:
    """The store fails just after a node's engine won the leader lock: the stored
    router state cannot be read (here: its table ``router_meta`` is renamed away)
    when node a's lock session is terminated and an engine wins the lock.
    That engine does not exit: it says so, gives the lock up and follows, and bids
    again, as the other does. Once the state can be read again one of them leads
    and the caller of node b who waited all along reaches amy (node a), once."""
    import psycopg

    url = own_cluster.create_database("nodestakeover")
    nodes = TwoNodes(tmp_path, url, ["amy"], "t")
    try:
        nodes.start()
        waiting = nodes.on["b"].caller("+15550651")
        assert wait_for(lambda: [c for c, _, _ in waiting_line(nodes.watch)] == ["+15550651"], 20)
        pid = int(cluster_status(url).split("leader lock: held (server pid ", 1)[1]
                  .split(",", 1)[0])
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("ALTER TABLE router_meta RENAME TO router_meta_away")
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() \
                == (True,)
            failed = "the store failed while taking over"
            assert wait_for(lambda: failed in nodes.text("a") + nodes.text("b"), 20), \
                nodes.text("a") + nodes.text("b")
            time.sleep(1.5)  # several bids won and given up
            assert all(e.proc.poll() is None for e in nodes.engines.values()), \
                nodes.text("a") + nodes.text("b")
            admin.execute("ALTER TABLE router_meta_away RENAME TO router_meta")
        assert wait_for(lambda: any("leading with epoch" in nodes.text(n).rsplit(failed, 1)[-1]
                                    for n in ("a", "b")), 20), nodes.text("a") + nodes.text("b")
        amy = nodes.agent("a", "amy")
        leg = amy.wait_call(25)
        leg.wait_confirmed(10)
        assert caller_of(leg) == "+15550651" and not waiting.ended
        time.sleep(1.5)
        assert len(amy.calls) == 1, "the call was offered twice"
        leader = leader_or_none(nodes.watch)
        assert leader is not None and leader.epoch >= 3, leader  # epochs given up between
        for name in ("a", "b"):
            assert nodes.engines[name].proc.poll() is None, nodes.text(name)
            assert "Traceback" not in nodes.text(name), nodes.text(name)
    finally:
        nodes.stop()
