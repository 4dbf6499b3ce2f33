"""``GET /api/stats`` and ``GET /metrics`` over real HTTP: who may read them, and the
figures (worked out by hand) from a real store.

Today (from midnight in Europe/Paris, the shipped directory's week_zone) billing
(T = 20 s) has c1 answered after 12 s by alice (talk 60 s, wrap-up 20 s, survey 5)
and c2 abandoned after 30 s: offered 2, answered 1, SL 1/2, ASA 12 s, AHT 80 s.
The router's saved state holds c3 waiting in billing for 45 s and alice on a call.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from web_testkit import NOW, running_portal

from routing import CallArrived
from routing.snapshot import AgentSnapshot, CallSnapshot, RouterChanges
from store import CallRecord

TOKEN = "metrics-token-for-the-test-0123"


def _fill(store) -> None:  # type: ignore[no-untyped-def]
    t = NOW - timedelta(minutes=30)
    store.record_call(CallRecord("c1", queue_id="billing", agent_id="alice", queued_at=t,
                                 answered_at=t + timedelta(seconds=12),
                                 ended_at=t + timedelta(seconds=72), outcome="ended-by-agent",
                                 intent="balance", language="fr", wrap_up_s=20.0,
                                 survey_score=5))
    store.add_call_event("c1", t, "enter", data={"queue": "billing"})
    store.add_call_event("c1", t + timedelta(seconds=12), "connected", "alice")
    t2 = NOW - timedelta(minutes=10)
    store.record_call(CallRecord("c2", queue_id="billing", queued_at=t2,
                                 ended_at=t2 + timedelta(seconds=30), outcome="abandoned"))
    store.record_call(CallRecord("old", queue_id="billing", queued_at=NOW - timedelta(days=1),
                                 ended_at=NOW - timedelta(days=1), outcome="abandoned"))
    arrived = (NOW - timedelta(seconds=45)).timestamp()
    waiting = CallSnapshot(CallArrived("c3", "billing"), arrived, arrived, 3, "billing",
                           "waiting")
    store.save_router_changes(RouterChanges(
        NOW.timestamp() - 2, NOW.timestamp() - 2, 3,
        (AgentSnapshot("alice", "on_call"), AgentSnapshot("bruno", "available")), (waiting,),
        full=True))


def test_stats_are_for_supervisors_and_admins_with_the_figures(tmp_path: Path) -> None:
    with running_portal(tmp_path, metrics_token=TOKEN) as portal:
        _fill(portal.store)
        anon = portal.client()
        assert anon.get("/api/stats").status_code == 401
        agent, _ = portal.login("alice")
        r = agent.get("/api/stats")
        assert r.status_code == 403 and "supervisors" in r.json()["error"]
        for name in ("sam", "ada"):
            sup, _ = portal.login(name)
            r = sup.get("/api/stats")
            assert r.status_code == 200, r.text
            d = r.json()
            b = d["queues"]["billing"]
            assert (b["offered"], b["answered"], b["abandoned"], b["service_level"],
                    b["asa_s"], b["aht_s"], b["abandon_rate"]) == (2, 1, 1, 0.5, 12.0, 80.0,
                                                                   0.5)
            assert (b["waiting_now"], b["longest_wait_now_s"]) == (1, 45.0)
            assert d["agents"]["alice"]["survey_avg"] == 5.0
            assert d["agents_by_state"] == {"available": 1, "on_call": 1}
            assert d["since"] == "2026-11-25T00:00:00+01:00"  # today in Paris
        r = sup.get("/api/stats", params={"since": "2d", "queue": "billing"})
        assert r.json()["queues"]["billing"]["offered"] == 3 and list(r.json()["queues"]) == [
            "billing"]
        assert sup.get("/api/stats", params={"since": "soon"}).json()["field"] == "since"
        assert sup.get("/api/stats", params={"queue": "nope"}).status_code == 400
        assert sup.get("/api/stats", params={"x": "1"}).status_code == 400


def test_metrics_need_the_bearer_token(tmp_path: Path) -> None:
    with running_portal(tmp_path, metrics_token=TOKEN) as portal:
        _fill(portal.store)
        c = portal.client()
        r = c.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        sup, _ = portal.login("sam")  # a session is not enough either
        assert sup.get("/metrics").status_code == 401
        r = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        lines = set(r.text.splitlines())
        for line in ('homeline_queue_waiting_calls{queue="billing"} 1.0',
                     'homeline_queue_longest_wait_seconds{queue="billing"} 45.0',
                     'homeline_queue_service_level_ratio{queue="billing"} 0.5',
                     'homeline_queue_service_level_target_ratio{queue="billing"} 0.8',
                     'homeline_queue_asa_seconds{queue="billing"} 12.0',
                     'homeline_queue_calls_today{outcome="answered",queue="billing"} 1.0',
                     'homeline_queue_calls_today{outcome="abandoned",queue="billing"} 1.0',
                     'homeline_agents{state="on_call"} 1.0',
                     'homeline_agents{state="break"} 0.0',
                     'homeline_router_state_saved 1.0',
                     'homeline_router_state_age_seconds 2.0'):
            assert line in lines, (line, r.text)


def test_metrics_off_without_a_token(tmp_path: Path) -> None:
    with running_portal(tmp_path) as portal:
        assert portal.client().get("/metrics").status_code == 404
