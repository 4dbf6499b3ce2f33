"""`homeline stats` as a user runs it, on a real store file, figures worked out by hand.

billing (T = 20 s, over offered): c1 answered after 10 s by alice (talk 100 s, wrap-up
20 s, survey 4), c2 abandoned after 25 s. sales (T = 15 s, minus short abandons):
c3 abandoned after 5 s. Before the period: c0.
billing: offered 2, answered 1, SL 1/2, ASA 10 s, AHT 120 s, abandonment 1/2.
sales: offered 1, abandoned within T 1, SL undefined (0 / (1 - 1)).
all: offered 3, answered 1, SL 1 / (3 - 1) = 0.5.
"""
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

from store import CallRecord, SqliteStore

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=1)
AGENTS = """
policy: {week_zone: UTC, hours: {notice_hours: 0}}
queues:
  billing: {skills: {billing: 1}, service_level: {target: 0.8, answer_s: 20}}
  sales:
    skills: {sales: 1}
    service_level: {target: 0.9, answer_s: 15}
    sl_definition: answered_within_t_over_offered_minus_short_abandons
agents:
  alice: {skills: {billing: 3}, windows: ["Tue 10:00-12:00"]}
"""


def homeline(*args: str, db: Path, agents: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", "stats", *args, "--db", str(db),
                           "--agents", str(agents), "--now", NOW.isoformat()],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)


def at(sec: float) -> datetime:
    return T0 + timedelta(seconds=sec)


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS, encoding="utf-8")
    db = tmp_path / "s.sqlite3"
    with SqliteStore(db) as s:
        s.record_call(CallRecord("c0", queue_id="billing", queued_at=at(-120),
                                 ended_at=at(-100), outcome="abandoned"))
        s.record_call(CallRecord("c1", queue_id="billing", agent_id="alice", queued_at=at(0),
                                 answered_at=at(10), ended_at=at(110), outcome="ended-by-agent",
                                 intent="billing", language="en", wrap_up_s=20.0,
                                 survey_score=4))
        s.add_call_event("c1", at(0), "enter", data={"queue": "billing"})
        s.add_call_event("c1", at(1), "offered", "alice")
        s.add_call_event("c1", at(10), "connected", "alice")
        s.record_call(CallRecord("c2", queue_id="billing", queued_at=at(600), ended_at=at(625),
                                 outcome="abandoned", language="en"))
        s.record_call(CallRecord("c3", queue_id="sales", queued_at=at(900), ended_at=at(905),
                                 outcome="abandoned", language="es"))
        s.add_agent_state("alice", "available", at(-10))
        s.add_agent_state("alice", "on_call", at(10))
        s.add_agent_state("alice", "wrap_up", at(110))
        s.add_agent_state("alice", "break", at(130))
    return db, agents


def test_stats_json_has_the_hand_worked_figures(files: tuple[Path, Path]) -> None:
    db, agents = files
    r = homeline("--since", "1h", "--json", db=db, agents=agents)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    b, sales, tot = d["queues"]["billing"], d["queues"]["sales"], d["total"]
    assert (b["offered"], b["answered"], b["abandoned"], b["service_level"], b["asa_s"],
            b["aht_s"], b["abandon_rate"]) == (2, 1, 1, 0.5, 10.0, 120.0, 0.5)
    assert (sales["offered"], sales["abandoned_within_t"], sales["service_level"]) == (1, 1, None)
    assert (tot["offered"], tot["answered"], tot["service_level"]) == (3, 1, 0.5)
    alice = d["agents"]["alice"]
    # staffed 11:00-11:02:10 of the period (130 s), busy 10 s .. 130 s (120 s)
    assert alice["occupancy"] == round(120 / 130, 4)
    assert (alice["survey_avg"], alice["handled_min_per_signed_h"]) == (4.0, round(100 / 60, 3))
    assert d["intents"] == {"billing": {"survey_count": 1, "survey_avg": 4.0}}


def test_stats_one_queue_csv_and_text(files: tuple[Path, Path]) -> None:
    db, agents = files
    r = homeline("--since", T0.isoformat(), "--queue", "sales", "--csv", db=db, agents=agents)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    got = {(row["kind"], row["name"]): row for row in rows}
    assert got[("queue", "sales")]["offered"] == "1" and ("queue", "billing") not in got
    assert got[("total", "*")]["abandoned"] == "1"
    r = homeline("--since", "1h", db=db, agents=agents)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("billing"))
    assert line.split()[1:5] == ["2", "1", "1", "0"] and "50.0%" in line and "10.0s" in line
    r = homeline("--queue", "nope", db=db, agents=agents)
    assert r.returncode == 2 and "billing, sales" in r.stderr
