"""Journal replay (library and CLI), the simulated fair-share week, weekly staffing."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

from routing_testkit import at, small_directory

from routing import AgentRegistered, CallArrived, OfferAnswered, TimerFired
from routing.journal import Recorder, decode_event, replay
from routing.router import Router
from routing.simulate import simulate_week
from routing.staffing import ForecastRow, open_slots, read_forecast, week_staffing

REPO = Path(__file__).resolve().parents[2]


def record_journal(path: Path) -> None:
    d = small_directory()
    with path.open("w", encoding="utf-8") as fp:
        rec = Recorder(Router(d, now=at(0)), fp, start=at(0))
        for a in ("alice", "bob", "carol"):
            rec.handle(AgentRegistered(a), at(0))
        rec.handle(CallArrived("c1", "billing", "fr", "refund", "+33"), at(1))
        rec.handle(CallArrived("c2", "billing", "fr", "refund", "+34"), at(1, 5))
        rec.handle(TimerFired(), at(1, 15))
        rec.handle(OfferAnswered("c2", "alice"), at(1, 20))


def test_replay_cli_reproduces_and_detects_tampering(tmp_path: Path) -> None:
    j = tmp_path / "router.jsonl"
    record_journal(j)
    res = replay(j.read_text().splitlines(), source=str(j))
    assert res.identical and res.events == 7 and res.decisions > 7
    out = subprocess.run([sys.executable, "-m", "homeline", "route", "replay", str(j), "--json",
                          "--print"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "alice chosen by longest-idle" in out.stdout
    assert json.loads(out.stdout.splitlines()[-1])["identical"] is True
    lines = j.read_text().splitlines()
    rec = json.loads(lines[4])  # the first call's decisions: claim it went to bob
    for d in rec["decisions"]:
        if d["type"] == "OfferCall":
            d["agent_id"] = "bob"
    lines[4] = json.dumps(rec)
    j.write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, "-m", "homeline", "route", "replay", str(j)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "1 mismatch" in out.stdout
    assert f"{j}:5: CallArrived" in out.stderr


def test_journal_header_carries_the_policy_in_force() -> None:
    import io

    from routing import RoutingPolicy

    d = small_directory()
    buf = io.StringIO()
    rec = Recorder(Router(d, now=at(0), policy=RoutingPolicy(ring_timeout_s=7)), buf,
                   start=at(0))
    rec.handle(AgentRegistered("alice"), at(0))
    (offer,) = [x for x in rec.handle(CallArrived("c1", "billing", "fr"), at(1))
                if type(x).__name__ == "OfferCall"]
    assert offer.ring_timeout_s == 7
    res = replay(buf.getvalue().splitlines())
    assert res.identical and res.events == 2


def test_simulated_week_is_seeded_pure_and_counts_every_call() -> None:
    fair = simulate_week(1, rule="fair-share")
    print(f"\n{fair.summary()}")
    assert fair.answered + fair.abandoned == fair.calls > 3000
    assert 0 < fair.abandoned < 0.3 * fair.calls
    hours = sorted(h for _, _, h, _, _ in fair.per_agent)
    assert hours[0] >= 12 and hours[-1] <= 31 and hours[-1] / hours[0] >= 1.5
    # fair shares split the work done: their sum is the handled total, give or take
    # the minutes a call ran past its agent's window
    handled = sum(m for _, _, _, m, _ in fair.per_agent)
    owed = sum(f for _, _, _, _, f in fair.per_agent)
    assert 0.99 * handled <= owed <= handled
    assert simulate_week(1, rule="fair-share") == fair  # seeded and pure


def test_week_staffing_needed_vs_signed_up(tmp_path: Path) -> None:
    from routing import load_directory

    d = load_directory(REPO / "dialplans" / "agents.yaml")
    rows = [ForecastRow(0, 18 * 60 + m, "billing", 20, 240) for m in (0, 30, 60, 90)]
    plan = week_staffing(d, rows, date(2026, 11, 30), zone="Europe/Paris")
    # Mon 18:00-20:00 Paris: alice (Paris 18-21) and diego (Mexico City 09-15 = 16-22 Paris)
    assert [(r.label, r.needed, r.signed_up) for r in plan] == [
        ("Mon 18:00", 5, 2), ("Mon 18:30", 5, 2), ("Mon 19:00", 5, 2), ("Mon 19:30", 5, 2)]
    (slot,) = open_slots(plan)
    assert str(slot) == "billing: Mon 18:00-20:00 (+3 agent(s))"
    f = tmp_path / "forecast.csv"
    f.write_text("interval,skill,calls,aht_s\nMon 18:00,billing,20,240\nTue 9:15,tech,3,300\n"
                 "Xyz 10:00,tech,1,1\n")
    try:
        read_forecast(f)
    except Exception as exc:  # noqa: BLE001 - checking the message below
        msg = str(exc)
    assert f"{f}:line 3:interval: intervals start on :00 or :30" in msg
    assert f"{f}:line 4:interval:" in msg
    f.write_text("interval,skill,calls,aht_s\nMon 18:00,billing,20,240\nMon 18:30,billing,20,240\n")
    out = subprocess.run([sys.executable, "-m", "homeline", "staffing", "week", "--forecast",
                          str(f), "--week-of", "2026-12-02", "--db", str(tmp_path / "s.db"),
                          "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["week_of"] == "2026-11-30"
    assert res["open_slots"] == [{"skill": "billing", "window": "Mon 18:00-19:00", "agents": 3}]


def test_a_journal_continued_after_a_restore_replays_identically(tmp_path: Path) -> None:
    # an engine killed with calls waiting, started again over the stored state: its
    # journal goes on in the same file with a restore line, and replays as one story
    from homeline.engine import _journal_to_continue

    j = tmp_path / "router.jsonl"
    record_journal(j)  # c1 waiting, c2 connected to alice
    d = small_directory()
    old = Router(d, now=at(0))
    for line in j.read_text().splitlines()[1:]:
        r = json.loads(line)
        old.handle(decode_event(r["event"]), datetime.fromisoformat(r["at"]))
    snapshot = old.snapshot(at(1, 20))
    whole = j.read_text()
    with j.open("a", encoding="utf-8") as fp:
        fp.write('{"at": "2026-11-30T18:01:25+00:00", "deci')  # the engine died mid-line
    assert _journal_to_continue(j)
    assert j.read_text() == whole  # the torn line is cut off, the rest kept
    router, decisions = Router.restore(d, snapshot, now=at(3), bridged={"c2"})
    with j.open("a", encoding="utf-8") as fp:
        rec = Recorder(router, fp, header=False)
        rec.restored(router, snapshot, {"c2"}, at(3), decisions)
        rec.handle(CallArrived("c3", "billing", "en", "refund", "+44"), at(3, 10))
        rec.handle(TimerFired(), at(4))
    lines = j.read_text().splitlines()
    assert sum(1 for x in lines if '"journal"' in x) == 1  # one header, whatever restarts
    assert sum(1 for x in lines if '"restore"' in x) == 1
    res = replay(lines, source=str(j))
    assert res.identical, res.mismatches
    assert res.events == 7 + 2
    # and the restore line is checked like any other: a tampered snapshot is caught
    i = next(n for n, x in enumerate(lines) if '"restore"' in x)
    r = json.loads(lines[i])
    calls = r["restore"]["snapshot"]["calls"]
    assert [c["arrival"]["call_id"] for c in calls if c["phase"] == "waiting"] == ["c1"]
    r["restore"]["snapshot"]["calls"] = [c for c in calls if c["phase"] != "waiting"]
    lines[i] = json.dumps(r)  # claim c1 was not waiting: c3 would be first in line
    tampered = replay(lines, source=str(j))
    assert not tampered.identical and "CallArrived" in tampered.mismatches[0]


def test_a_file_that_is_no_journal_is_not_continued(tmp_path: Path) -> None:
    from homeline.engine import _journal_to_continue

    p = tmp_path / "notes.txt"
    p.write_text("hello\n")
    assert not _journal_to_continue(p)
    assert not _journal_to_continue(tmp_path / "missing.jsonl")
    assert p.read_text() == "hello\n"
