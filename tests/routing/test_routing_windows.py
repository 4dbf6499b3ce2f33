"""Hour windows: parsing, DST, policy validation, the directory loader."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from routing import Directory, DirectoryError, HoursChange, HoursPolicy, HourWindow, Schedule
from routing.directory import load_directory
from routing.windows import validate_change, validate_weekly

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_parse_and_format() -> None:
    w = HourWindow.parse("sat 09:00-13:30")
    assert (w.day, w.start, w.end, w.minutes) == (5, 540, 810, 270)
    assert str(w) == "Sat 09:00-13:30"
    assert HourWindow.parse("Sun 22:00-24:00").end == 1440
    for bad in ("Mon 9-10", "Xyz 10:00-11:00", "Mon 25:00-26:00", "Mon 10:61-11:00"):
        with pytest.raises(ValueError):
            HourWindow.parse(bad)


def test_window_spanning_spring_forward_is_two_real_hours() -> None:
    # Europe/Paris: 2026-03-29 02:00 CET -> 03:00 CEST (tz database, EU rule "last Sunday")
    s = Schedule(ZoneInfo("Europe/Paris"), (HourWindow.parse("Sun 01:00-04:00"),))
    ivs = s.intervals(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC))
    assert [(b - a) for a, b in ivs] == [timedelta(hours=2)]


def test_window_spanning_fall_back_is_four_real_hours() -> None:
    # America/New_York: 2026-11-01 02:00 EDT -> 01:00 EST; 00:00-03:00 lasts 4 hours
    s = Schedule(ZoneInfo("America/New_York"), (HourWindow.parse("Sun 00:00-03:00"),))
    ivs = s.intervals(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    assert [(b - a) for a, b in ivs] == [timedelta(hours=4)]


def test_state_at_and_adjacent_windows_merge_across_midnight() -> None:
    s = Schedule(ZoneInfo("Asia/Kolkata"), (HourWindow.parse("Mon 22:00-24:00"),
                                            HourWindow.parse("Tue 00:00-02:00")))
    mon_23 = datetime(2026, 11, 30, 23, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    is_open, until = s.state_at(mon_23)
    assert is_open and until == datetime(2026, 12, 1, 2, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    is_open, opens = s.state_at(until)  # type: ignore[arg-type]
    assert not is_open and opens == datetime(2026, 12, 7, 22, 0, tzinfo=ZoneInfo("Asia/Kolkata"))


def test_one_off_add_and_cancel() -> None:
    z = ZoneInfo("Europe/London")
    s = Schedule(z, (HourWindow.parse("Mon 09:00-17:00"),),
                 (HoursChange(date(2026, 11, 30), 12 * 60, 13 * 60, "cancel"),
                  HoursChange(date(2026, 12, 1), 9 * 60, 10 * 60, "add")))
    assert s.state_at(datetime(2026, 11, 30, 11, 59, tzinfo=z))[0]
    assert not s.state_at(datetime(2026, 11, 30, 12, 30, tzinfo=z))[0]
    assert s.state_at(datetime(2026, 12, 1, 9, 30, tzinfo=z))[0]
    assert not s.state_at(datetime(2026, 12, 8, 9, 30, tzinfo=z))[0]


def test_weekly_validation_reports_every_problem_with_codes() -> None:
    ws = [HourWindow.parse(t) for t in ("Mon 10:00-12:00", "Mon 11:00-13:00", "Tue 10:00-10:10",
                                        "Wed 12:00-11:00", "Sun 02:30-05:00")]
    probs = validate_weekly(ws, "Europe/Berlin", HoursPolicy(), now=NOW)
    codes = sorted(p.code for p in probs)
    assert codes == ["time-nonexistent", "window-order", "window-overlap", "window-short"]
    gap = next(p for p in probs if p.code == "time-nonexistent")
    assert "02:30 does not exist in Europe/Berlin on 2027-03-28" in gap.message
    over = [HourWindow(d, 0, 300) for d in range(7)]  # 35 h
    assert [p.code for p in validate_weekly(over, "UTC", HoursPolicy())] == ["budget-over"]
    assert [p.code for p in validate_weekly([], "UTC", HoursPolicy())] == ["budget-under"]
    assert [p.code for p in validate_weekly([], "Mars/Olympus", HoursPolicy(
        min_weekly_hours=0))] == ["zone-unknown"]


def test_change_validation_notice_overlap_budget() -> None:
    pol = HoursPolicy(notice_hours=24, max_weekly_hours=10)
    ws = [HourWindow.parse("Mon 09:00-17:00")]
    soon = HoursChange(date(2026, 11, 25), 18 * 60, 20 * 60, "add")
    assert [p.code for p in validate_change(soon, ws, [], "UTC", pol, NOW)] == ["notice"]
    overlap = HoursChange(date(2026, 11, 30), 16 * 60, 18 * 60, "add")
    codes = [p.code for p in validate_change(overlap, ws, [], "UTC", pol, NOW)]
    assert codes == ["window-overlap"]
    big = HoursChange(date(2026, 12, 1), 9 * 60, 12 * 60, "add")  # 8 + 3 > 10
    assert [p.code for p in validate_change(big, ws, [], "UTC", pol, NOW)] == ["budget-over"]
    gap = HoursChange(date(2027, 3, 28), 2 * 60 + 30, 4 * 60, "add")
    assert "time-nonexistent" in [p.code for p in validate_change(gap, ws, [], "Europe/Paris",
                                                                  pol, NOW)]


def test_sample_directory_loads() -> None:
    d = load_directory(REPO / "dialplans" / "agents.yaml", now=NOW)
    assert len(d.agents) == 6 and {q.id for q in d.queues} == {"billing", "tech", "sales",
                                                               "general"}
    assert len({a.zone for a in d.agents}) == 6
    assert Directory.from_dict(d.to_dict()).to_dict() == d.to_dict()


def test_directory_errors_all_at_once(tmp_path: Path) -> None:
    f = tmp_path / "agents.yaml"
    f.write_text(
        "agents:\n"
        "  alice: {zone: Europe/Paris, windows: ['Mon 18:00-21:00'], colour: red}\n"
        "  alice: {zone: Europe/Paris, windows: ['Mon 18:00-21:00']}\n")
    with pytest.raises(DirectoryError) as ei:
        load_directory(f)
    assert ei.value.codes == ("duplicate-key",)
    assert str(ei.value.problems[0]) == (f"{f}:alice:-: key 'alice' given twice (lines 2 and "
                                         "3); only one is allowed [duplicate-key]")
    f.write_text(
        "agents:\n"
        "  Alice: {}\n"
        "  bob: {zone: Nowhere/Land, skills: {billing: 9}, windows: ['Mon 21:00-18:00'],\n"
        "        languages: {english: 5}, colour: red}\n"
        "  homeline-x: {}\n"
        "queues:\n"
        "  billing: {overflow: missing, selection: random, expansion: [{after_s: 5}]}\n"
        "policy: {ring_timeout_s: 0, hours: {notice: 3}}\n")
    with pytest.raises(DirectoryError) as ei:
        load_directory(f)
    lines = str(ei.value).splitlines()
    assert f"{f}:bob:zone: unknown time zone 'Nowhere/Land' (use an IANA name like " \
           "'Europe/Paris') [zone-unknown]" in lines
    assert set(ei.value.codes) >= {"id", "zone-unknown", "out-of-range", "window-order", "name",
                                   "unknown-key", "overflow-target", "bad-choice", "required"}
    assert any(line.startswith(f"{f}:queue/billing:overflow:") for line in lines)
    assert any("allowed: name, zone, skills" in line for line in lines)
    assert len(lines) >= 10
