"""Agents manage their own hours: portal functions, the store (SQLite and PostgreSQL), the
CLI (on either store too), immediate effect."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pg_kit import StoreMaker
from routing_testkit import offers

from routing import AgentRegistered, CallArrived, Directory, HoursError
from routing.hours import add_hours, cancel_hours, set_hours, show_hours
from routing.router import Router

REPO = Path(__file__).resolve().parents[2]
DIRECTORY = REPO / "dialplans" / "agents.yaml"
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # Wednesday 07:00 in Paris


@pytest.fixture()
def directory() -> Directory:
    from routing import load_directory

    return load_directory(DIRECTORY)


def test_set_show_add_cancel_and_refusals(directory: Directory, make_store: StoreMaker) -> None:
    with make_store() as store:
        v = show_hours(store, directory, "alice", NOW)
        assert v.source == str(DIRECTORY) and v.weekly_hours == 10
        # Wed 18:00-21:00 Paris starts in 11 h < 12 h notice: dropping it is refused
        with pytest.raises(HoursError) as ei:
            set_hours(store, directory, "alice", ["Mon 18:00-21:00"], NOW)
        assert ei.value.codes == ("notice",)
        ev = set_hours(store, directory, "alice",
                       ["Mon 18:00-22:00", "Wed 18:00-21:00", "Fri 08:00-12:00"], NOW)
        assert [str(x) for x in ev.windows] == ["Mon 18:00-22:00", "Wed 18:00-21:00",
                                                "Fri 08:00-12:00"]
        v = show_hours(store, directory, "alice", NOW)
        assert v.source == "store" and v.weekly_hours == 11
        add_hours(store, directory, "alice", "2026-12-05", "14:00", "17:00", NOW)
        cancel_hours(store, directory, "alice", date(2026, 12, 4), None, None, NOW)
        v = show_hours(store, directory, "alice", datetime(2026, 12, 1, tzinfo=UTC))
        assert v.this_week_hours == 11 - 4 + 3
        with pytest.raises(HoursError) as ei:
            set_hours(store, directory, "alice", ["Mon 00:00-24:00", "Tue 00:00-24:00"], NOW)
        assert ei.value.codes == ("budget-over",)
        with pytest.raises(HoursError) as ei:
            add_hours(store, directory, "alice", "2026-12-05", "16:00", "18:00", NOW)
        assert ei.value.codes == ("window-overlap",)
        with pytest.raises(HoursError) as ei:
            set_hours(store, directory, "nobody", ["Mon 18:00-21:00"], NOW)
        assert ei.value.codes == ("unknown-agent",)


def test_stored_hours_reach_a_running_router(directory: Directory, make_store: StoreMaker) -> None:
    with make_store() as store:
        router = Router(store.apply_hours(directory), now=NOW)
        seq = store.hours_seq()
        for a in router.agent_ids():
            router.handle(AgentRegistered(a), NOW)
        # nobody speaks French with billing>=3 at 06:00 UTC on a Wednesday
        assert offers(router.handle(CallArrived("c1", "billing", "fr"), NOW)) == []
        # alice (another process: the CLI) adds hours starting in 12 h; at that time ...
        add_hours(store, directory, "alice", "2026-11-25", "07:00", "11:00",
                  datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
        events, seq = store.hours_events_since(seq)
        assert [e.agent_id for e in events] == ["alice"] and seq == 1
        ds = router.handle(events[0], NOW)
        (o,) = offers(ds)
        assert o.agent_id == "alice" and o.call_id == "c1"
        assert store.hours_events_since(seq) == ([], seq)


def run_cli(*args: str, db: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", "agent", "hours", *args,
                           "--db", str(db), "--now", NOW.isoformat()],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_cli_hours(store_address: str) -> None:
    db = store_address  # an SQLite file, a postgresql:// URL (--db takes either)
    r = run_cli("show", "bruno", "--json", db=db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["weekly_hours"] == 20
    r = run_cli("set", "bruno", "Mon 08:00-12:00", "Sun 02:00-01:00", db=db)
    assert r.returncode == 1
    assert "bruno:windows: Sun 02:00-01:00: end is not after start" in r.stderr
    r = run_cli("set", "bruno", "Wed 08:00-12:00", "Thu 08:00-12:00", "Sat 10:00-14:00", db=db)
    assert r.returncode == 0, r.stderr
    assert "Sat 10:00-14:00" in r.stdout and "12 h a week" in r.stdout
    r = run_cli("add", "bruno", "2026-12-02", "13:00", "15:00", "--json", db=db)
    assert json.loads(r.stdout)["changes"] == ["add 2026-12-02 13:00-15:00"]
    r = run_cli("cancel", "bruno", "2026-12-03", db=db)
    assert r.returncode == 0, r.stderr
    assert "cancel 2026-12-03 08:00-12:00" in r.stdout
