"""Take payment over real HTTP: only the agent themselves, only on a connected call,
CSRF as for every change; the request lands in the store's payments feed the engine
reads, and the agent reads its status back (a supervisor may read, never ask)."""
from __future__ import annotations

from web_testkit import NOW, Portal

from routing.events import CallArrived
from routing.snapshot import AgentSnapshot, CallSnapshot, RouterChanges


def _alice_on_a_call(portal: Portal) -> None:
    t = NOW.timestamp()
    arrival = CallArrived("c-21", "billing", "en", "billing", "+33123456789")
    portal.store.save_router_changes(RouterChanges(
        t, t, 3, agents=(AgentSnapshot("alice", "on_call", since=t - 30),),
        calls=(CallSnapshot(arrival, t - 90, t - 60, 1, "billing", "connected", "alice",
                            answered_at=t - 30),)))


def test_only_the_agent_on_a_connected_call_may_take_a_payment(portal: Portal) -> None:
    alice, csrf = portal.login("alice")
    h = {"X-CSRF-Token": csrf}
    assert alice.get("/api/agents/alice/payment").json() == {"payment": None}
    r = alice.post("/api/agents/alice/payment", json={}, headers=h)
    assert r.status_code == 409 and "no connected call" in r.json()["error"]
    _alice_on_a_call(portal)
    assert alice.post("/api/agents/alice/payment", json={}).status_code == 403  # no CSRF
    r = alice.post("/api/agents/alice/payment", json={}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"seq": 1, "status": "requested", "call_id": "c-21"}
    assert r.headers["cache-control"] == "no-store"
    feed, seq = portal.store.payments_since(0)
    assert seq == 1 and [(p.agent_id, p.call_id, p.status) for p in feed] == [
        ("alice", "c-21", "requested")]
    portal.store.set_payment_status(1, "accepted", "payment accepted", NOW)
    got = alice.get("/api/agents/alice/payment").json()["payment"]
    assert (got["seq"], got["status"], got["call_id"]) == (1, "accepted", "c-21")

    bruno, bcsrf = portal.login("bruno")
    assert bruno.post("/api/agents/alice/payment", json={},
                      headers={"X-CSRF-Token": bcsrf}).status_code == 403
    assert bruno.get("/api/agents/alice/payment").status_code == 403
    sam, scsrf = portal.login("sam")
    assert sam.get("/api/agents/alice/payment").status_code == 200
    assert sam.post("/api/agents/alice/payment", json={},
                    headers={"X-CSRF-Token": scsrf}).status_code == 403
    assert portal.store.payments_seq() == 1
