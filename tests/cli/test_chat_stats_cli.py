"""`homeline stats` on a real store file with chat routes: the text channels' section
(JSON, CSV, text), figures worked out by hand. The last hour, 10:00-11:00 UTC, seconds
after 10:00:

route  channel    agent  routed accepted reply ended  by        survey
a      sms        chloe  0      10       40    300    agent     5 (billing)
b      messenger  chloe  60     70       80    200    agent     3 (billing)
c      sms        -      400    -        -     460    customer  (abandoned before a reply)
d      sms        -      500    -        -     -      (waiting: open, not abandoned)

sms: offered 3, accepted 1, abandoned 1, open 1, abandonment 1/2, first response 40,
handle 290, survey 5. messenger: offered 1, first response 20, handle 130, survey 3.
chloe holds a 10-300 and b 70-200: 1 chat for 60 s + 2 for 130 s + 1 for 100 s:
held 290 s, average 420 / 290 = 1.448 chats, at most 2.
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

from store import SqliteStore

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=1)
AGENTS = """
policy: {week_zone: UTC, hours: {notice_hours: 0}}
queues:
  general:
    skills: {billing: 1}
    channels: [voice, sms, messenger]
    service_level: {target: 0.8, answer_s: 20}
agents:
  alice: {skills: {billing: 3}, windows: ["Tue 10:00-12:00"]}
  chloe:
    skills: {billing: 3}
    windows: ["Tue 10:00-12:00"]
    capacity: {voice: 1, sms: 3, messenger: 2}
    max_chats: 3
"""


def at(sec: float) -> datetime:
    return T0 + timedelta(seconds=sec)


def homeline(*args: str, db: Path, agents: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", "stats", *args, "--db", str(db),
                           "--agents", str(agents), "--now", NOW.isoformat()],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)


def _chat(s: SqliteStore, cid: str, channel: str, routed: float, *,
          accepted: float | None = None, reply: float | None = None,
          ended: float | None = None, by: str | None = None, score: int | None = None) -> None:
    r = s.route_chat(cid, channel, "+15550123", "general", "en", "billing", at(routed))
    if accepted is not None:
        assert s.update_chat_route(r.route_id, at(accepted), expect_states=("waiting",),
                                   state="accepted", agent_id="chloe",
                                   accepted_at=at(accepted))
    if reply is not None:
        assert s.update_chat_route(r.route_id, at(reply), first_reply_at=at(reply))
    if ended is not None:
        assert s.update_chat_route(r.route_id, at(ended), state="ended", ended_at=at(ended),
                                   ended_by=by)
    if score is not None:
        assert s.update_chat_route(r.route_id, at(ended or routed), survey_score=score)


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS, encoding="utf-8")
    db = tmp_path / "s.sqlite3"
    with SqliteStore(db) as s:
        _chat(s, "a", "sms", 0, accepted=10, reply=40, ended=300, by="agent", score=5)
        _chat(s, "b", "messenger", 60, accepted=70, reply=80, ended=200, by="agent", score=3)
        _chat(s, "c", "sms", 400, ended=460, by="customer")
        _chat(s, "d", "sms", 500)
        _chat(s, "old", "sms", -7200, ended=-7100, by="customer")  # before the period
    return db, agents


def test_chat_stats_json(files: tuple[Path, Path]) -> None:
    db, agents = files
    r = homeline("--since", "1h", "--json", db=db, agents=agents)
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)["chats"]
    sms, msg = c["channels"]["sms"], c["channels"]["messenger"]
    assert (sms["offered"], sms["accepted"], sms["abandoned"], sms["open_now"],
            sms["abandon_rate"], sms["first_response_avg_s"], sms["handle_avg_s"],
            sms["survey_avg"]) == (3, 1, 1, 1, 0.5, 40.0, 290.0, 5.0)
    assert (msg["offered"], msg["first_response_avg_s"], msg["handle_avg_s"],
            msg["survey_avg"]) == (1, 20.0, 130.0, 3.0)
    tot = c["total"]
    assert (tot["offered"], tot["first_response_avg_s"], tot["first_response_p90_s"],
            tot["handle_avg_s"], tot["survey_avg"]) == (4, 30.0, 40.0, 210.0, 4.0)
    chloe = c["agents"]["chloe"]
    assert (chloe["held_s"], chloe["concurrency_avg"], chloe["concurrency_max"],
            chloe["survey_avg"]) == (290.0, round(420 / 290, 3), 2, 4.0)
    assert list(c["agents"]) == ["chloe"]  # alice takes no chats
    assert c["intents"] == {"billing": {"survey_count": 2, "survey_avg": 4.0}}


def test_chat_stats_csv_and_text(files: tuple[Path, Path]) -> None:
    db, agents = files
    r = homeline("--since", "1h", "--csv", db=db, agents=agents)
    assert r.returncode == 0, r.stderr
    got = {(row["kind"], row["name"]): row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert got[("channel", "sms")]["first_response_p90_s"] == "40.0"
    assert got[("channel", "sms")]["abandoned"] == "1"
    assert got[("chat_queue", "general")]["offered"] == "4"
    assert got[("chat_agent", "chloe")]["concurrency_max"] == "2"
    assert got[("chat_total", "*")]["handle_avg_s"] == "210.0"
    assert got[("chat_intent", "billing")]["survey_avg"] == "4.0"
    assert got[("queue", "general")]["offered"] == "0"  # the voice rows are still there
    r = homeline("--since", "1h", db=db, agents=agents)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    sms = next(x for x in lines if x.startswith("channel sms"))
    assert sms.split()[2:] == ["3", "1", "1", "50.0%", "1", "40.0s", "40.0s", "290.0s", "5.0"]
    chloe = [x for x in lines if x.startswith("chloe")][-1]
    assert chloe.split()[1:] == ["2", "0", "30.0s", "210.0s", "290.0s", "1.45", "2", "4.0"]
    r = homeline("--since", "10s", db=db, agents=agents)
    assert "text channels: no chats routed in the period" in r.stdout.splitlines()
