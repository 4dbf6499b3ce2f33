"""`homeline calls` and `homeline agent state` as a user runs them, on a real store (a file,
or a PostgreSQL database: ``--db`` takes either)."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pg_kit import StoreMaker

from homeline.agent_api import UnknownAgentError, request_agent_state
from routing import AgentEndedWrapUp, AgentWentOnBreak, load_directory
from store import CallRecord, SqliteStore

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)


def homeline(*args: str, db: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture()
def db(make_store: StoreMaker) -> str:
    path = make_store.address()
    with make_store() as s:
        s.record_call(CallRecord("old", caller="+1", arrived_at=NOW - timedelta(hours=5),
                                 ended_at=NOW - timedelta(hours=5) + timedelta(minutes=1),
                                 outcome="ivr-ended", flow="support-line", flow_version="2"))
        t = NOW - timedelta(minutes=30)
        s.record_call(CallRecord("new", caller="+2", arrived_at=t, queued_at=t + timedelta(
            seconds=25), answered_at=t + timedelta(seconds=40), ended_at=t + timedelta(
            minutes=7), queue_id="billing", agent_id="alice", outcome="completed",
            intent="billing", language="fr", wrap_up_s=20.0, survey_score=4,
            variables={"account_type": "pro"}))
        s.add_call_event("new", t + timedelta(seconds=25), "enter", data={"queue": "billing"})
        s.add_call_event("new", t + timedelta(seconds=26), "offered", "alice")
        s.add_call_event("new", t + timedelta(seconds=40), "connected", "alice")
    return path


def test_calls_json_has_records_and_their_events(db: str) -> None:
    r = homeline("calls", "--json", db=db)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["call_id"] for x in rows] == ["old", "new"]
    new = rows[1]
    assert (new["agent_id"], new["outcome"], new["survey_score"], new["variables"]) == (
        "alice", "completed", 4, {"account_type": "pro"})
    assert [e["event"] for e in new["events"]] == ["enter", "offered", "connected"]
    assert rows[0]["events"] == [] and rows[0]["flow_version"] == "2"


def test_calls_since_an_age_or_a_time_and_csv(db: str) -> None:
    r = homeline("calls", "--since", "2h", "--csv", "--now", NOW.isoformat(), db=db)
    assert r.returncode == 0, r.stderr
    (row,) = list(csv.DictReader(io.StringIO(r.stdout)))
    assert (row["call_id"], row["queue_id"], row["wrap_up_s"]) == ("new", "billing", "20.0")
    r = homeline("calls", "--since", (NOW - timedelta(hours=6)).isoformat(), db=db)
    assert r.returncode == 0 and "old" in r.stdout and "new" in r.stdout
    r = homeline("calls", "--since", "yesterday", db=db)
    assert r.returncode == 2 and "not an ISO time" in r.stderr and "2h" in r.stderr
    assert r.stdout == ""


def test_calls_into_a_closed_pipe_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "many.sqlite3"
    with SqliteStore(path) as s:
        for i in range(3000):
            s.record_call(CallRecord(f"call-{i:05d}", caller="+33123456789",
                                     arrived_at=NOW + timedelta(seconds=i), outcome="completed"))
    proc = subprocess.Popen([sys.executable, "-m", "homeline", "calls", "--db", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100)  # like `| head -c 100`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_agent_state_cli_feeds_the_engine_and_checks_the_agent(
        make_store: StoreMaker) -> None:
    db = make_store.address()
    r = homeline("agent", "state", "alice", "break", "--why", "school run", db=db)
    assert r.returncode == 0, r.stderr
    assert "alice: break (school run) saved" in r.stdout
    r = homeline("agent", "state", "alice", "end-wrap-up", "--json", db=db)
    assert json.loads(r.stdout) == {"agent": "alice", "state": "end-wrap-up", "why": "",
                                    "seq": 2}
    r = homeline("agent", "state", "zoe", "available", db=db)
    assert r.returncode == 2 and "unknown agent 'zoe'; known: alice" in r.stderr
    r = homeline("agent", "state", "alice", "lunch", db=db)
    assert r.returncode == 2 and "invalid choice: 'lunch'" in r.stderr
    with make_store() as s:
        assert s.agent_requests_since(0) == (
            [AgentWentOnBreak("alice", "school run"), AgentEndedWrapUp("alice")], 2)


def test_agent_api_for_the_portal(make_store: StoreMaker) -> None:
    directory = load_directory(REPO / "dialplans" / "agents.yaml")
    with make_store() as s:
        req = request_agent_state(s, directory, "bruno", "break", NOW)
        assert (req.why, req.seq) == ("asked for a break", 1)
        with pytest.raises(UnknownAgentError, match="unknown agent 'zoe'"):
            request_agent_state(s, directory, "zoe", "break", NOW)
        with pytest.raises(UnknownAgentError, match="not one of available, break"):
            request_agent_state(s, directory, "bruno", "away", NOW)
        assert s.agent_requests_since(0) == ([AgentWentOnBreak("bruno", "asked for a break")],
                                             1)


def test_calls_show_what_supervisors_did_on_a_call(db: str, make_store: StoreMaker) -> None:
    t = NOW - timedelta(minutes=28)
    with make_store() as s:
        s.add_call_event("new", t, "supervisor", "alice", {"action": "hand-raised",
                                                          "by": "alice", "hand": 1})
        s.add_call_event("new", t + timedelta(seconds=20), "supervisor", "alice",
                         {"action": "whisper", "by": "sam", "result": "ringing-supervisor"})
    r = homeline("calls", db=db)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if " new " in line)
    assert lines[at + 1:at + 3] == [
        f"    {t.isoformat(timespec='seconds')} supervisor alice: hand-raised alice",
        f"    {(t + timedelta(seconds=20)).isoformat(timespec='seconds')} supervisor sam: "
        "whisper alice (ringing-supervisor)"]
    rows = json.loads(homeline("calls", "--json", db=db).stdout)
    assert [e["data"].get("by") for e in rows[1]["events"] if e["event"] == "supervisor"] == [
        "alice", "sam"]
