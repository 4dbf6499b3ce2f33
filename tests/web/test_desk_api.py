"""Raised hands and the supervisor desk over real HTTP: who may do what, and what
reaches the store (the hands, the supervise feed the engine reads, the agent
requests, the call's ``supervisor`` events)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_testkit import NOW, Portal, running_portal

from routing.events import AgentMadeAvailable, CallArrived
from routing.snapshot import AgentSnapshot, CallSnapshot, RouterChanges
from store import CallRecord


@pytest.fixture()
def desk(tmp_path: Path) -> Iterator[Portal]:
    # sam has a phone of his own (supervisors.yaml); ada, an admin, has none
    with running_portal(tmp_path, idle_timeout_s=600, supervisors=("sam",)) as p:
        yield p


def on_a_call(portal: Portal, call_id: str = "c-17") -> None:
    """alice connected to a billing call, bruno on break, as the engine saves it."""
    t = NOW.timestamp()
    arrival = CallArrived(call_id, "billing", "fr", "billing", "+33123456789")
    portal.store.save_router_changes(RouterChanges(
        t, t, 3, agents=(AgentSnapshot("alice", "on_call", since=t - 30),
                         AgentSnapshot("bruno", "break", since=t - 3600)),
        calls=(CallSnapshot(arrival, t - 90, t - 60, 1, "billing", "connected", "alice",
                            answered_at=t - 30),)))
    portal.store.record_call(CallRecord(call_id, caller="+33123456789", intent="billing",
                                        language="fr", queue_id="billing"))


def supervisor_events(portal: Portal, call_id: str) -> list[dict[str, object]]:
    return [{"agent": e.agent_id, **e.data} for e in portal.store.call_events([call_id])[call_id]
            if e.event == "supervisor"]


def test_a_hand_raised_on_a_call_is_picked_up_and_answered(desk: Portal) -> None:
    on_a_call(desk)
    alice, a_csrf = desk.login("alice")
    r = alice.post("/api/hand", json={"text": "  caller  wants a refund "},
                   headers={"X-CSRF-Token": a_csrf})
    assert r.status_code == 201, r.text
    hand = r.json()["hand"]
    assert (hand["text"], hand["call_id"], hand["picked_by"]) == ("caller wants a refund",
                                                                  "c-17", None)

    sam, s_csrf = desk.login("sam")
    view = sam.get("/api/desk").json()
    [shown] = view["hands"]
    assert shown["agent"] == "alice" and shown["agent_state"] == "on a call"
    assert shown["call"] == {"call_id": "c-17", "live": True, "phase": "connected",
                             "queue": "billing", "caller": "+33123456789",
                             "intent": "billing", "language": "fr",
                             "arrived": NOW.timestamp() - 90,
                             "answered_at": NOW.timestamp() - 30, "waited_s": 60.0,
                             "supervised": None}
    by_agent = {a["id"]: a for a in view["agents"]}
    assert by_agent["alice"]["call"]["call_id"] == "c-17"
    assert by_agent["bruno"]["label"] == "break" and by_agent["bruno"]["call"] is None

    # the desk's fragments do not change with the clock alone: the event stream sends
    # them again only on a change, so a reply being typed in the page is not swapped away
    def fragments() -> str:
        page = sam.get("/supervisor").text
        return page.split('<div id="hands"', 1)[1].split('<div id="ended"', 1)[0]

    before = fragments()
    desk.clock.advance(7)
    assert fragments() == before

    h = {"X-CSRF-Token": s_csrf}
    assert sam.post(f"/api/desk/hands/{hand['id']}/pick-up", headers=h).status_code == 200
    assert alice.get("/api/hand").json()["hand"]["picked_by"] == "sam"
    r = sam.post(f"/api/desk/hands/{hand['id']}/reply", json={"text": "Offer the voucher"},
                 headers=h)
    assert r.status_code == 200, r.text
    assert alice.get("/api/hand").json()["hand"]["reply"] == "Offer the voucher"
    # the agent lowers it; the desk no longer lists it
    assert alice.delete("/api/hand", headers={"X-CSRF-Token": a_csrf}).json() == {"hand": None}
    assert sam.get("/api/desk").json()["hands"] == []
    r = sam.post(f"/api/desk/hands/{hand['id']}/reply", json={"text": "late"}, headers=h)
    assert r.status_code == 409 and "lowered already" in r.json()["error"]
    assert supervisor_events(desk, "c-17") == [
        {"agent": "alice", "action": "hand-raised", "by": "alice", "hand": hand["id"]},
        {"agent": "alice", "action": "hand-picked-up", "by": "sam", "hand": hand["id"]},
        {"agent": "alice", "action": "hand-replied", "by": "sam", "hand": hand["id"]}]


def test_only_supervisors_use_the_desk_and_only_agents_raise_hands(desk: Portal) -> None:
    alice, a_csrf = desk.login("alice")
    h = {"X-CSRF-Token": a_csrf}
    hand = alice.post("/api/hand", json={}, headers=h).json()["hand"]
    assert hand["call_id"] is None  # between calls
    for method, path, body in [("GET", "/api/desk", None),
                               ("POST", f"/api/desk/hands/{hand['id']}/pick-up", {}),
                               ("POST", "/api/desk/supervise",
                                {"agent": "bruno", "call": "c-1", "mode": "listen"}),
                               ("POST", "/api/desk/agents/bruno/state", {"state": "break"})]:
        r = alice.request(method, path, json=body, headers=h)
        assert r.status_code == 403 and "supervisors and admins" in r.json()["error"], path
    page = alice.get("/supervisor")
    assert page.status_code == 403 and 'id="not-supervisor"' in page.text
    sam, s_csrf = desk.login("sam")
    r = sam.post("/api/hand", json={"text": "me too"}, headers={"X-CSRF-Token": s_csrf})
    assert r.status_code == 403 and "only an agent" in r.json()["error"]
    # no CSRF token, no change
    r = sam.post(f"/api/desk/hands/{hand['id']}/pick-up")
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    page = sam.get("/supervisor")
    assert page.status_code == 200 and f'data-hand="{hand["id"]}"' in page.text
    assert "Between calls." in page.text
    r = alice.post("/api/hand", json={"text": "x" * 281}, headers=h)
    assert r.status_code == 400 and "at most 280" in r.json()["error"]


def test_listen_whisper_barge_go_to_the_engine_feed_only_for_a_live_call(desk: Portal) -> None:
    sam, s_csrf = desk.login("sam")
    h = {"X-CSRF-Token": s_csrf}
    ask = {"agent": "alice", "call": "c-17", "mode": "whisper"}
    r = sam.post("/api/desk/supervise", json=ask, headers=h)
    assert r.status_code == 409 and "not alice's call now" in r.json()["error"]
    on_a_call(desk)
    r = sam.post("/api/desk/supervise", json={**ask, "mode": "shout"}, headers=h)
    assert r.status_code == 400 and "listen, whisper, barge" in r.json()["error"]
    r = sam.post("/api/desk/supervise", json=ask, headers=h)
    assert r.status_code == 202, r.text
    assert r.json()["ringing"] == "PJSIP/sam"
    [req], _ = desk.store.supervise_requests_since(0)
    assert (req.supervisor, req.agent_id, req.call_id, req.mode) == ("sam", "alice", "c-17",
                                                                     "whisper")
    # an admin with no phone of their own cannot be rung
    ada, ad_csrf = desk.login("ada")
    r = ada.post("/api/desk/supervise", json=ask, headers={"X-CSRF-Token": ad_csrf})
    assert r.status_code == 409 and "supervisors.yaml" in r.json()["error"]
    assert 'class="spy"' in sam.get("/supervisor").text
    assert "listen, whisper and barge are off" in ada.get("/supervisor").text


def test_a_supervisor_ends_a_stuck_break_recorded_with_who(desk: Portal) -> None:
    on_a_call(desk)
    sam, s_csrf = desk.login("sam")
    page = sam.get("/supervisor").text
    assert 'data-agent="bruno" data-state="available">End break' in page
    r = sam.post("/api/desk/agents/bruno/state", json={"state": "available",
                                                       "reason": "forgot to come back"},
                 headers={"X-CSRF-Token": s_csrf})
    assert r.status_code == 202, r.text
    assert r.json()["reason"] == "set by supervisor sam: forgot to come back"
    events, _ = desk.store.agent_requests_since(0)
    assert events == [AgentMadeAvailable("bruno")]
    rows = desk.store._read("SELECT agent_id, action, why FROM agent_requests")
    assert rows == [("bruno", "available", "set by supervisor sam: forgot to come back")]
    r = sam.post("/api/desk/agents/nobody/state", json={"state": "break"},
                 headers={"X-CSRF-Token": s_csrf})
    assert r.status_code == 404
