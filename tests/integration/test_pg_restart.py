"""The PostgreSQL server restarts under load (issue 13, test 4): two engines for one
Asterisk share the store (node a leads with epoch 1, node b waits); one caller talks
to amy, three wait for billing and two for tech, whose queue's hold is bounded
(``max_wait_s``, then voicemail). The server is stopped for several seconds and
started again while they wait.

Neither engine exits: the leader finds its lock session gone, stops serving and
waits as a standby; both say once that the store does not answer and keep asking;
when the server is back one of them leads with epoch 2 and adopts the stored state
and the live channels, the other waits behind it. No waiting caller's leg ended,
the connected call is still up with audio both ways, the billing callers reach
the agents who come online in their original order, one call each, and the bound
still applies: the tech caller whose wait passed its bound while the server was
down is sent to voicemail as soon as a leader routes again, the one whose bound
passes after the restart when it does, each once, and each leaves a message in
the tech box. The time from the server coming back to the new leader's first
routing decision is printed.

Real Asterisk, real SIP (pjsua2 phones), a real PostgreSQL cluster of the test's own
(restarting the session's shared cluster would cut every other test's connections).
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from failover_kit import StandbyPair, caller_of, cluster_status, first_offer_at
from restart_kit import leader_or_none, server_ready_at, waiting_line

from homeline.pgcluster import PgCluster
from routing.journal import replay
from softphone.audio import dominant_frequency, read_wav
from store import SqlStore, StoreError

from .conftest import wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]

TECH_MAX_WAIT_S = 17  # the tech queue's hold bound; billing has none (the default)
DOWN_S = 4.0  # the server stays down at least this long


def _overflows(store: SqlStore, call_ids: list[str]) -> dict[str, list[datetime]]:
    """When each call was overflowed (its ``overflowed`` call events)."""
    try:
        events = store.call_events(call_ids)
    except StoreError:
        return {c: [] for c in call_ids}
    return {c: [e.at for e in evs if e.event == "overflowed"] for c, evs in events.items()}


def _heard_hz(listener: Any, player: Any, hz: float, wav: Path) -> float:
    """The strongest frequency ``listener`` hears while ``player`` plays ``hz``."""
    listener.record(wav)
    time.sleep(0.3)
    player.play_tone(hz, 2.0)
    time.sleep(2.3)
    player.stop_playing()
    listener.stop_recording()
    samples, rate = read_wav(wav)
    return dominant_frequency(samples[rate // 2:], rate)


def test_a_postgresql_restart_under_load_loses_no_call_and_keeps_the_hold_bound(
        tmp_path: Path, own_cluster: PgCluster) -> None:
    agents: dict[str, dict[str, Any]] = {
        a: {"skills": {"billing": 3}} for a in ("amy", "bob", "carl", "dan")}
    agents["zed"] = {"skills": {"tech": 3}}  # tech is staffed by zed, who never comes online
    url = own_cluster.create_database("restart")
    pair = StandbyPair(tmp_path, url, agents, "pr", journal=True, ring_timeout_s=6, queues={
        "tech": {"max_wait_s": TECH_MAX_WAIT_S, "overflow": "ext:voicemail"}})
    engines, watch, stack = pair.engines, pair.watch, pair.stack
    journal = pair.journal
    assert journal is not None
    try:
        parties = pair.start()
        agent, caller = parties.agent, parties.caller

        amy = agent("amy")
        talking = caller("+15550701")
        amy_leg = amy.wait_call(20)
        amy_leg.wait_confirmed(10)
        tech_first = caller("+15550711", key="2")
        billing_legs = []
        order = ["+15550702", "+15550703", "+15550704"]
        for number in order:
            billing_legs.append(caller(number))
            time.sleep(0.5)
        time.sleep(2.5)  # its bound passes after the server is back, the first one's before
        tech_late = caller("+15550712", key="2")
        assert wait_for(lambda: [c for c, _, _ in waiting_line(watch, "billing")] == order, 20), \
            waiting_line(watch, "billing")
        assert wait_for(lambda: len(waiting_line(watch, "tech")) == 2, 20), \
            waiting_line(watch, "tech")
        tech = waiting_line(watch, "tech")
        assert [c for c, _, _ in tech] == ["+15550711", "+15550712"], tech
        tech_ids = [cid for _, cid, _ in tech]
        bounds = {cid: queued + TECH_MAX_WAIT_S for _, cid, queued in tech}
        first_bound, late_bound = bounds[tech_ids[0]], bounds[tech_ids[1]]

        # the server goes down while six calls are in the router's hands
        assert time.time() < first_bound - DOWN_S, \
            "too slow a setup: the first tech caller's bound would pass before the outage"
        own_cluster.stop_server()
        stopped = time.time()
        assert wait_for(lambda: "deposed as the router leader (node a)"
                        in engines["a"].text(), 15), engines["a"].text()
        for engine in engines.values():
            assert wait_for(lambda e=engine: "standby: the store does not answer"
                            in e.text(), 15), engine.text()
        # down until the first tech caller's bound has passed: nobody routes meanwhile
        while time.time() < max(stopped + DOWN_S, first_bound + 1.0):
            time.sleep(0.1)
        assert all(engines[n].proc.poll() is None for n in ("a", "b")), "an engine exited"
        own_cluster.start_server()
        returned = datetime.now(UTC)
        back_wall = server_ready_at(own_cluster, returned)  # pg_ctl -w polls: a little late
        back = time.monotonic() - (returned - back_wall).total_seconds()
        print(f"\nPostgreSQL down {time.time() - stopped:.1f} s")
        assert time.time() < late_bound - 2, "the second tech caller's bound passed too early"
        bob = agent("bob")  # comes online once the server is back

        assert wait_for(lambda: (lead := leader_or_none(watch)) is not None
                        and lead.epoch == 2, 30), \
            engines["a"].text() + engines["b"].text()
        leader = watch.router_leader()
        assert leader is not None and leader.node in ("a", "b")
        new, other = leader.node, "b" if leader.node == "a" else "a"
        first = first_offer_at(watch, ["bob"])
        assert first is not None, engines[new].text()
        early = wait_for(lambda: _overflows(watch, tech_ids[:1])[tech_ids[0]], 10)
        assert early, engines[new].text()
        print(f"restart: server back (its log: ready to accept connections) -> node {new} "
              f"took epoch 2 "
              f"{(leader.since - back_wall).total_seconds():.2f} s (router_leader.since); "
              f"-> its first routing decision (the tech caller past its bound sent to "
              f"voicemail) {(early[0] - back_wall).total_seconds():.2f} s; -> the first "
              f"waiting caller offered to bob (seen in the store) {first - back:.2f} s")
        assert f"leading with epoch 2 (node {new})" in engines[new].text()
        assert "adopting the stored router state of 6 call(s)" in engines[new].text(), \
            engines[new].text()
        assert wait_for(lambda: f"standby: waiting to lead: node {new} leads with epoch 2"
                        in engines[other].text(), 20), engines[other].text()

        got = [caller_of(bob.wait_call(20))]
        online = [amy, bob]
        for agent_id in ("carl", "dan"):
            online.append(phone := agent(agent_id))
            leg = phone.wait_call(20)
            leg.wait_confirmed(10)
            got.append(caller_of(leg))
        assert got == order, got
        assert not any(leg.ended for leg in billing_legs), "a waiting caller was dropped"
        assert not talking.ended and not amy_leg.ended, "the connected call ended"
        # the call connected before the restart still carries audio both ways
        caller_hz = _heard_hz(amy_leg, talking, 440.0, tmp_path / "amy-hears.wav")
        agent_hz = _heard_hz(talking, amy_leg, 660.0, tmp_path / "caller-hears.wav")
        assert abs(caller_hz - 440.0) < 20 and abs(agent_hz - 660.0) < 20, (caller_hz, agent_hz)

        # the hold bound: each tech caller sent to voicemail once, not before its bound,
        # and no later than a leader could (the first: right at the takeover)
        late = wait_for(lambda: _overflows(watch, tech_ids[1:])[tech_ids[1]], 30)
        assert late, engines[new].text()
        sent = _overflows(watch, tech_ids)
        assert [len(sent[c]) for c in tech_ids] == [1, 1], sent
        for cid, at in ((tech_ids[0], early[0]), (tech_ids[1], late[0])):
            due = datetime.fromtimestamp(bounds[cid], UTC)
            assert at >= due, f"{cid} moved {(due - at).total_seconds():.2f} s before its bound"
            assert (at - max(due, leader.since)).total_seconds() < 3, (cid, at, due)
        print(f"hold bound: the late tech caller was sent to voicemail "
              f"{(late[0] - datetime.fromtimestamp(late_bound, UTC)).total_seconds():.2f} s "
              "after its bound")
        for leg in (tech_first, tech_late):  # they speak after the beep, then hang up
            assert not leg.ended, "a tech caller was dropped instead of sent to voicemail"
            leg.play_tone(440.0, 13.0)
        time.sleep(13.0)
        for leg in (tech_first, tech_late):
            leg.hangup()
        assert wait_for(lambda: len(stack.voicemail_messages("tech")) == 2, 20), \
            stack.voicemail_messages("tech")
        texts = [m.read_text(encoding="utf-8", errors="replace")
                 for m in stack.voicemail_messages("tech")]
        assert all(any(n in t for t in texts) for n in ("+15550711", "+15550712")), texts

        # nobody double-booked, nothing offered twice
        time.sleep(1.0)
        assert [len(p.calls) for p in online] == [1] * 4, "an agent got a second offer"
        status = cluster_status(url)
        assert f"leader: node {new}, epoch 2, since " in status, status
        assert f"homeline-leader {new}" in status and "waiting calls (0):" in status, status
        for node in ("a", "b"):
            text = engines[node].text()
            assert engines[node].proc.poll() is None, text
            assert "Traceback" not in text, text
            # the outage said once, however long it lasted
            assert text.count("standby: the store does not answer") == 1, text
        lines = journal.read_text(encoding="utf-8").splitlines()
        replayed = replay(lines, source="router.jsonl")
        assert replayed.identical, replayed.mismatches[:3]
    finally:
        pair.stop()
    leaked = [t for t in threading.enumerate() if t.is_alive() and not t.daemon
              and t is not threading.main_thread()]
    assert leaked == []
