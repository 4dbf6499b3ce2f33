"""An agent's hours, state and current call over real HTTP: each agent only their own,
the same validation and [codes] as `homeline agent hours`, into the same store rows."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from web_testkit import AGENTS, NOW, REPO, Portal

from routing.events import AgentHoursChanged, AgentMadeAvailable, AgentWentOnBreak
from routing.hours import show_hours
from routing.snapshot import AgentSnapshot, CallSnapshot, RouterChanges
from store import CallRecord, SqliteStore

GOOD = ["Mon 18:00-22:00", "Wed 18:00-21:00", "Fri 08:00-12:00"]
# a bad day, a window too short, one ending before it starts, and one overlapping
BAD = ["Mon 18:00-22:00", "Xyz 10:00-11:00", "Tue 10:00-10:10", "Thu 12:00-11:00",
       "Mon 21:00-23:00"]


def cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", *args, "--db", str(db),
                           "--directory", str(AGENTS), "--now", NOW.isoformat()],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_an_agent_reads_and_changes_only_their_own_data(portal: Portal) -> None:
    c, csrf = portal.login("alice")
    h = {"X-CSRF-Token": csrf}
    r = c.get("/api/agents/alice/hours")
    assert r.status_code == 200, r.text
    assert r.json() == show_hours(portal.store, portal.directory, "alice", NOW).as_dict()
    for method, path, body in [
            ("GET", "/api/agents/bruno/hours", None),
            ("PUT", "/api/agents/bruno/hours", {"windows": GOOD}),
            ("POST", "/api/agents/bruno/state", {"state": "break", "reason": "sabotage"}),
            ("GET", "/api/agents/bruno/current-call", None),
            ("GET", "/api/agents/nobody/hours", None)]:  # no hint whether it exists
        r = c.request(method, path, json=body, headers=h)
        assert r.status_code == 403, (method, path, r.text)
        assert "alice" in r.json()["error"]
    assert portal.store.hours("bruno") is None
    assert portal.store.agent_requests_since(0) == ([], 0)


def test_supervisors_read_everyone_but_change_no_one(portal: Portal) -> None:
    for name in ("sam", "ada"):
        c, csrf = portal.login(name)
        r = c.get("/api/agents/bruno/hours")
        assert r.status_code == 200 and r.json()["zone"] == "America/Sao_Paulo"
        assert c.get("/api/agents/bruno/current-call").status_code == 200
        r = c.put("/api/agents/bruno/hours", json={"windows": GOOD},
                  headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and "only agent 'bruno'" in r.json()["error"]
        r = c.post("/api/agents/bruno/state", json={"state": "available"},
                   headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403
        r = c.get("/api/agents/nobody/hours")
        assert r.status_code == 404 and "unknown agent 'nobody'" in r.json()["error"]
    assert portal.store.hours("bruno") is None


def test_hours_refused_with_every_problem_and_the_clis_codes(portal: Portal,
                                                             tmp_path: Path) -> None:
    c, csrf = portal.login("alice")
    r = c.put("/api/agents/alice/hours", json={"windows": BAD}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422, r.text
    problems = r.json()["problems"]
    codes = [p["code"] for p in problems]
    assert codes == ["window-format", "window-short", "window-order", "window-overlap"]
    assert all(p["node"] == "alice" for p in problems)
    assert r.json()["error"].startswith("hours refused:\n")
    # the CLI refuses the same hours with the same lines
    out = cli("agent", "hours", "set", "alice", *BAD, db=tmp_path / "cli.sqlite3")
    assert out.returncode == 1
    assert out.stderr.splitlines()[1:] == r.json()["error"].splitlines()[1:]
    assert portal.store.hours("alice") is None
    # within the notice period nothing may change (Wed 18:00 Paris is 11 h away)
    r = c.put("/api/agents/alice/hours", json={"windows": ["Mon 18:00-21:00"]},
              headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and [p["code"] for p in r.json()["problems"]] == ["notice"]


@pytest.mark.parametrize(("body", "field"), [
    ({"windows": "Mon 18:00-21:00"}, "windows"),
    ({"windows": ["Mon 18:00-21:00", 7]}, "windows[1]"),
    ({"windows": GOOD, "zone": "UTC"}, "zone"),
    ({}, "windows"),
])
def test_malformed_hours_are_a_400_naming_the_field(portal: Portal, body: dict[str, object],
                                                    field: str) -> None:
    c, csrf = portal.login("alice")
    r = c.put("/api/agents/alice/hours", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and r.json()["error"].startswith(f"{field}: ")


def test_saved_hours_land_in_the_store_as_the_clis_do(portal: Portal, tmp_path: Path) -> None:
    c, csrf = portal.login("alice")
    seq = portal.store.hours_seq()
    r = c.put("/api/agents/alice/hours", json={"windows": GOOD}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert r.json()["saved"] is True and r.json()["windows"] == GOOD
    assert r.json()["source"] == "store" and r.json()["weekly_hours"] == 11
    cli_db = tmp_path / "cli.sqlite3"
    out = cli("agent", "hours", "set", "alice", *GOOD, db=cli_db)
    assert out.returncode == 0, out.stderr
    with SqliteStore(cli_db) as by_cli:
        assert portal.store.hours("alice") == by_cli.hours("alice")
        assert by_cli.hours_events_since(0)[0] == portal.store.hours_events_since(seq)[0]
    # what a running engine reads from the change feed
    events, new_seq = portal.store.hours_events_since(seq)
    assert new_seq == seq + 1
    (ev,) = events
    assert isinstance(ev, AgentHoursChanged) and ev.agent_id == "alice"
    assert [str(w) for w in ev.windows] == GOOD
    assert c.get("/api/agents/alice/hours").json()["windows"] == GOOD


def test_state_requests_reach_the_change_feed(portal: Portal) -> None:
    c, csrf = portal.login("alice")
    h = {"X-CSRF-Token": csrf}
    r = c.post("/api/agents/alice/state", json={"state": "break", "reason": "lunch"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"agent": "alice", "state": "break", "reason": "lunch", "seq": 1,
                        "applied": "by a running engine, from the store"}
    assert c.post("/api/agents/alice/state", json={"state": "available"},
                  headers=h).status_code == 200
    assert portal.store.agent_requests_since(0) == (
        [AgentWentOnBreak("alice", "lunch"), AgentMadeAvailable("alice")], 2)
    for body, field in [({"state": "asleep"}, "state"), ({"reason": "x"}, "state"),
                        ({"state": "break", "why": "x"}, "why"),
                        ({"state": "break", "reason": "x" * 201}, "reason"),
                        ({"state": ["break"]}, "state")]:
        r = c.post("/api/agents/alice/state", json=body, headers=h)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
    assert "available, break, end-wrap-up" in c.post(
        "/api/agents/alice/state", json={"state": "asleep"}, headers=h).json()["error"]
    assert portal.store.agent_requests_seq() == 2


def test_current_call_is_what_the_engine_saved_and_nothing_secure(portal: Portal) -> None:
    from routing.events import CallArrived

    c, _ = portal.login("alice")
    r = c.get("/api/agents/alice/current-call")
    assert r.json() == {"agent": "alice", "state": None, "call": None, "as_of": None}
    t = NOW.timestamp()
    arrival = CallArrived("c-17", "billing", "fr", "billing", "+33123456789",
                          data=(("account_type", "pro"),))
    portal.store.save_router_changes(RouterChanges(
        t, t, 3, agents=(AgentSnapshot("alice", "on_call", since=t - 30),
                         AgentSnapshot("bruno", "available", since=t - 900)),
        calls=(CallSnapshot(arrival, t - 90, t - 60, 1, "billing", "connected", "alice",
                            answered_at=t - 30),)))
    portal.store.record_call(CallRecord("c-17", caller="+33123456789", intent="billing",
                                        language="fr", variables={"plan": "gold"}))
    body = c.get("/api/agents/alice/current-call").json()
    assert body["state"] == {"state": "on_call", "since": "2026-11-25T05:59:30+00:00"}
    assert body["call"] == {
        "call_id": "c-17", "phase": "connected", "queue": "billing",
        "arrived_at": "2026-11-25T05:58:30+00:00", "answered_at": "2026-11-25T05:59:30+00:00",
        "caller": "+33123456789", "intent": "billing", "language": "fr",
        "data": {"account_type": "pro"}, "variables": {"plan": "gold"}}
    assert body["as_of"] == NOW.isoformat()
    s, _ = portal.login("sam")
    bruno = s.get("/api/agents/bruno/current-call").json()
    assert bruno["state"]["state"] == "available" and bruno["call"] is None
