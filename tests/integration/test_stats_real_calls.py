"""Live statistics from a scripted sequence of REAL calls (real Asterisk, the engine,
pjsua2 caller and agent), checked over real HTTP (``GET /api/stats``) and the CLI
(``homeline stats --json``) against figures worked out by hand.

Queue billing: T = 8 s, SL = answered within T / (offered - abandoned within T).
One agent, amy, answers 0.5 s after her phone rings.

1. c1: amy is free: offered at once, answered after ~1 s (<= T). amy hangs up after
   2 s; the caller stays for the post-call survey and scores 4.
2. c2: amy is on break; she comes back 12 s after the caller reached the queue:
   answered after ~12.5 s (> T).
3. c3: amy is on break; the caller hangs up after 4 s: abandoned within T.

By hand: offered 3, answered 2, abandoned 1 (within T: 1), answered within T 1,
SL = 1 / (3 - 1) = 0.5, abandonment 1/3, ASA = (w1 + w2) / 2 with w1 ~ 1 s and
w2 ~ 12.5 s (each within its bounds below); amy: 2 offers, 2 answered, survey 4.0;
surveys by intent: billing 4.0 (1).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from homeline.agent_api import request_agent_state
from routing.events import AgentStateChanged
from web import Passwords, new_password

from .conftest import Live, dial_and_press, directory_data, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]

REPO = Path(__file__).resolve().parents[2]
T = 8
AGENTS = {"amy": {"skills": {"billing": 3}}}
QUEUES = {"billing": {"service_level": {"target": 0.8, "answer_s": T},
                      "sl_definition": "answered_within_t_over_offered_minus_short_abandons"}}


def _record(live: Live, caller: str, done: str = "ended") -> object:
    assert live.store is not None
    rows = [r for r in live.store.calls() if r.caller == caller]
    if not rows:
        return None
    r = rows[0]
    if done == "ended":
        ok = r.ended_at is not None and (r.answered_at is None or r.wrap_up_s is not None)
    else:
        ok = r.survey_score is not None
    return r if ok else None


def _state(live: Live, new: str, since: int) -> bool:
    return any(k == "decision" and isinstance(p, AgentStateChanged) and p.agent_id == "amy"
               and p.new == new for k, p in live.events[since:])


def _routed(live: Live, caller: str) -> bool:
    t = live.timeline_of(caller)
    return bool(t and t.outcome == "routed")


def test_stats_of_real_calls_match_the_hand_worked_figures(live_factory, tmp_path):
    live = live_factory(AGENTS, queues=QUEUES, survey="support-line")
    assert live.store is not None and live.directory is not None
    start = datetime.now(UTC)
    amy = live.agent("amy", answer_delay=0.5)
    live.wait_registered("amy")
    password = new_password()
    live.store.add_user("sam", "supervisor", None, Passwords().hash(password), start)
    web = live.stack.start_web(live.store, port=0, https=False)

    # 1. answered at once; a survey scored 4
    caller, leg = dial_and_press(live, "+15550401", "1")
    with caller:
        agent_leg = amy.wait_call(20, index=0)
        agent_leg.wait_confirmed(10)
        time.sleep(2.0)
        agent_leg.hangup()
        # the caller is now in the survey (Dial option g): press 4 after its prompt starts
        time.sleep(2.0)
        leg.send_dtmf("4")
        if not wait_for(lambda: _record(live, "+15550401", "survey"), 10):
            leg.send_dtmf("4")  # the prompt had not begun: it asks again
        assert wait_for(lambda: _record(live, "+15550401", "survey"), 20), live.store.calls()
        leg.hangup()
        leg.wait_disconnected(10)
    assert wait_for(lambda: _record(live, "+15550401"), 10)

    # 2. amy on break; back 12 s after the caller reached the queue
    mark = len(live.events)
    request_agent_state(live.store, live.directory, "amy", "break", datetime.now(UTC),
                        why="test")
    assert wait_for(lambda: _state(live, "break", mark), 10)
    caller, leg = dial_and_press(live, "+15550402", "1")
    with caller:
        assert wait_for(lambda: _routed(live, "+15550402"), 20)
        time.sleep(12.0)
        request_agent_state(live.store, live.directory, "amy", "available", datetime.now(UTC))
        agent_leg = amy.wait_call(20, index=1)
        agent_leg.wait_confirmed(10)
        time.sleep(1.5)
        agent_leg.hangup()
        time.sleep(1.0)  # in the survey now: leave without scoring
        leg.hangup()
        leg.wait_disconnected(10)
    assert wait_for(lambda: _record(live, "+15550402"), 15)

    # 3. amy on break; the caller gives up after 4 s
    mark = len(live.events)
    request_agent_state(live.store, live.directory, "amy", "break", datetime.now(UTC),
                        why="test")
    assert wait_for(lambda: _state(live, "break", mark), 10)
    caller, leg = dial_and_press(live, "+15550403", "1")
    with caller:
        assert wait_for(lambda: _routed(live, "+15550403"), 20)
        time.sleep(4.0)
        leg.hangup()
        leg.wait_disconnected(10)
    assert wait_for(lambda: _record(live, "+15550403"), 15)

    # the waits, from the records the engine wrote
    recs = {r.caller: r for r in live.store.calls()}
    w1, w2 = ((recs[c].answered_at - recs[c].queued_at).total_seconds()
              for c in ("+15550401", "+15550402"))
    w3 = (recs["+15550403"].ended_at - recs["+15550403"].queued_at).total_seconds()
    assert 0.2 <= w1 <= 3.0 and 12.0 <= w2 <= 17.0 and 3.5 <= w3 <= 6.0, (w1, w2, w3)
    assert recs["+15550403"].outcome == "abandoned"

    def check(d: dict) -> None:
        b = d["queues"]["billing"]
        assert (b["offered"], b["answered"], b["abandoned"], b["abandoned_within_t"],
                b["answered_within_t"]) == (3, 2, 1, 1, 1), b
        assert b["service_level"] == 0.5  # 1 / (3 - 1)
        assert b["sl_definition"] == QUEUES["billing"]["sl_definition"]
        assert b["abandon_rate"] == round(1 / 3, 4)
        assert b["asa_s"] == round((w1 + w2) / 2, 1)
        assert (0.2 + 12.0) / 2 <= b["asa_s"] <= (3.0 + 17.0) / 2
        assert (b["survey_count"], b["survey_avg"]) == (1, 4.0)
        assert b["waiting_now"] == 0 and b["longest_wait_now_s"] is None
        assert d["total"]["offered"] == 3 and d["total"]["service_level"] == 0.5
        amy_f = d["agents"]["amy"]
        assert (amy_f["offers"], amy_f["missed"], amy_f["answered"]) == (2, 0, 2), amy_f
        assert (amy_f["survey_count"], amy_f["survey_avg"]) == (1, 4.0)
        # talk ~2 s and ~1.5 s, wrap-up ~1 s each (the test queue's wrap_up_s)
        assert 2.0 <= amy_f["aht_s"] <= 6.0, amy_f
        assert amy_f["occupancy"] is not None and 0 < amy_f["occupancy"] < 1
        assert d["intents"] == {"billing": {"survey_count": 1, "survey_avg": 4.0}}

    # over real HTTP, as a supervisor
    with httpx.Client(base_url=web.url, timeout=10) as client:
        r = client.post("/api/session", json={"user": "sam", "password": password})
        assert r.status_code == 200, r.text
        r = client.get("/api/stats", params={"since": start.isoformat()})
        assert r.status_code == 200, r.text
        check(r.json())

    # and the CLI, on the same store file and the same directory as YAML
    agents_yaml = tmp_path / "agents.yaml"
    # JSON is YAML, without the aliases yaml.safe_dump writes for shared values
    agents_yaml.write_text(json.dumps(directory_data(AGENTS, start, 4, QUEUES)),
                           encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "homeline", "stats", "--json", "--since",
                           start.isoformat(), "--db", str(live.store.path), "--agents",
                           str(agents_yaml)], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr
    check(json.loads(done.stdout))
