"""The wallboard over real HTTP: who sees it, its event stream (a change in the
router state the engine saved reaches the stream within a second), the day's
series and the week's staffing, with figures worked out by hand.

Today in Paris (the shipped directory's week_zone) starts 2026-11-24 23:00 UTC;
NOW is 06:00 UTC. Calls: c1 at 05:31 answered after 12 s (billing, T 20 s: in T),
c2 at 05:50 abandoned after 30 s, c3 waiting since 05:59:15 (45 s).
"""
from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from web_testkit import NOW, running_portal

from routing import CallArrived
from routing.snapshot import AgentSnapshot, CallSnapshot, RouterChanges
from store import CallRecord


def _fill(store: Any) -> None:
    t = NOW - timedelta(minutes=29)
    store.record_call(CallRecord("c1", queue_id="billing", agent_id="alice", queued_at=t,
                                 answered_at=t + timedelta(seconds=12),
                                 ended_at=t + timedelta(seconds=72), outcome="ended-by-agent",
                                 wrap_up_s=20.0))
    t2 = NOW - timedelta(minutes=10)
    store.record_call(CallRecord("c2", queue_id="billing", queued_at=t2,
                                 ended_at=t2 + timedelta(seconds=30), outcome="abandoned"))
    _save(store, [_waiting("c3", 45)], [("alice", "break"), ("bruno", "available")])


def _waiting(call_id: str, waited_s: float) -> CallSnapshot:
    at = (NOW - timedelta(seconds=waited_s)).timestamp()
    return CallSnapshot(CallArrived(call_id, "billing", "fr", "balance", "+33100000000"), at, at,
                        3, "billing", "waiting")


def _save(store: Any, calls: list[CallSnapshot], agents: list[tuple[str, str]]) -> None:
    store.save_router_changes(RouterChanges(
        NOW.timestamp(), time.time(), 3, tuple(AgentSnapshot(a, s) for a, s in agents),
        tuple(calls), full=True))


def _events(client: httpx.Client, n: int, timeout: float = 10.0) -> list[tuple[float, dict]]:
    """The first ``n`` ``live`` events of the stream, with when each arrived."""
    out: list[tuple[float, dict]] = []
    with client.stream("GET", "/wallboard/events", timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "live":
                out.append((time.monotonic(), json.loads(line[6:])))
                if len(out) == n:
                    return out
    return out


def test_only_supervisors_and_admins_see_the_wallboard(tmp_path: Path) -> None:
    with running_portal(tmp_path) as portal:
        anon = portal.client()
        r = anon.get("/wallboard")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert anon.get("/api/wallboard/day").status_code == 401
        agent, _ = portal.login("alice")
        r = agent.get("/wallboard")
        assert r.status_code == 403 and "Supervisors only" in r.text
        assert agent.get("/api/wallboard/day").status_code == 403
        assert agent.get("/api/wallboard/staffing").status_code == 403
        with agent.stream("GET", "/wallboard/events") as s:
            assert "event: ended" in s.read().decode()
        sup, _ = portal.login("sam")
        r = sup.get("/wallboard")
        assert r.status_code == 200 and 'id="wb-queues"' in r.text
        assert "/static/wallboard.js" in r.text and 'href="/wallboard"' in r.text


def test_the_event_stream_shows_the_queues_and_follows_a_change_within_a_second(
        tmp_path: Path) -> None:
    import threading

    with running_portal(tmp_path) as portal:
        _fill(portal.store)
        sup, _ = portal.login("sam")
        changed: list[float] = []

        def change() -> None:
            time.sleep(1.5)  # after the first event: c3 is answered, c4 arrives
            _save(portal.store, [_waiting("c4", 5)], [("alice", "on_call"),
                                                     ("bruno", "available")])
            changed.append(time.monotonic())

        threading.Thread(target=change, daemon=True).start()
        (t1, first), (t2, second) = _events(sup, 2)
        b = first["queues"]["billing"]
        assert (b["waiting"], b["oldest_arrived"]) == (1, (NOW - timedelta(seconds=45)).timestamp())
        # today: c1 answered in 12 s <= 20 s, c2 abandoned after 30 s: SL 1/2
        assert (b["offered"], b["answered"], b["abandoned"], b["service_level"],
                b["sl_target"]) == (2, 1, 1, 0.5, 0.8)
        assert first["calls"] == [{"call_id": "c3", "queue": "billing", "phase": "waiting",
                                   "agent": None, "language": "fr", "intent": "balance",
                                   "arrived": (NOW - timedelta(seconds=45)).timestamp()}]
        assert "+33100000000" not in json.dumps(first)  # no caller number on a wall screen
        assert first["agents"]["alice"] == "break" and first["agents_by_state"]["break"] == 1
        # billing's agents (skill billing): alice on break, bruno available, chloe,
        # diego and emma with no saved state (offline); farid has no billing skill
        assert b["agents_by_state"] == {"available": 1, "break": 1, "offline": 3}
        assert first["now"] == NOW.timestamp()  # the app's clock
        assert [c["call_id"] for c in second["calls"]] == ["c4"]
        assert second["agents"]["alice"] == "on_call"
        late = t2 - changed[0]
        assert late <= 1.0, f"the change reached the stream after {late:.2f} s"


def test_the_day_in_quarter_hours_and_the_staffing_week(tmp_path: Path) -> None:
    forecast = tmp_path / "forecast.csv"
    forecast.write_text("interval,skill,calls,aht_s\nWed 07:00,billing,10,240\n"
                        "Wed 07:30,billing,10,240\nWed 08:00,tech,0,300\n", encoding="utf-8")
    with running_portal(tmp_path, forecast=forecast) as portal:
        _fill(portal.store)
        sup, _ = portal.login("sam")
        d = sup.get("/api/wallboard/day").json()
        # midnight in Paris (23:00 UTC) to 06:00 UTC: 28 quarter hours
        assert len(d["t"]) == 28 and d["starts"][0] == "2026-11-25T00:00:00+01:00"
        # c1 at 05:31 and c2 at 05:50 fall in the quarters of 06:30 and 06:45 Paris time
        assert d["offered"][-3:] == [0, 1, 1] and d["service_level"][-3:] == [None, 1.0, 0.0]
        assert d["max_waiting"][-2:] == [1, 1]  # c2, then c3 waiting since 05:59:15
        assert d["sl_targets"] == [0.8, 0.9]
        s = sup.get("/api/wallboard/staffing").json()
        assert s["available"] and s["week_of"] == "2026-11-23" and s["zone"] == "Europe/Paris"
        assert len(s["labels"]) == 336 and s["labels"][2 * 48 + 14] == "Wed 07:00"
        billing = s["skills"]["billing"]
        # 10 calls in 30 min, AHT 240 s: 1.33 Erlangs; 80 % in 20 s needs 3 agents (Erlang C)
        assert billing["needed"][2 * 48 + 14] == 3 and billing["needed"][0] is None
        # signed up for billing at Wed 07:00 Paris: alice (Wed 18:00-21:00) no, bruno
        # (Wed 08:00-12:00 Sao Paulo = 12:00-16:00 Paris) no ... nobody: open slot
        assert billing["signed_up"][2 * 48 + 14] == 0
        assert {"skill": "billing", "window": "Wed 07:00-08:00", "agents": 3} in s["open_slots"]
    with running_portal(tmp_path / "none") as portal:
        sup, _ = portal.login("sam")
        s = sup.get("/api/wallboard/staffing").json()
        assert s["available"] is False and "--forecast" in s["why"]
