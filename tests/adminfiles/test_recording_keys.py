"""agents.yaml's recording keys: a queue's ``record`` and the policy's retention,
checked at load time like every other key (adminfiles.Problem, every problem at once)."""
from __future__ import annotations

from pathlib import Path

import pytest

from homeline.paths import DIALPLANS_DIR
from routing import DirectoryError, load_directory


def test_record_and_retention_are_read_and_kept_in_the_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "policy: {recording_retention_days: 14}\n"
        "queues:\n"
        "  billing: {skills: {billing: 1}, record: true}\n"
        "  tech: {skills: {tech: 1}}\n"
        "agents:\n"
        "  alice: {zone: UTC, skills: {billing: 2}, windows: ['Mon 09:00-12:00']}\n",
        encoding="utf-8")
    d = load_directory(path)
    assert d.queue("billing").record is True and d.queue("tech").record is False
    assert d.policy.recording_retention_days == 14
    again = type(d).from_dict(d.to_dict(), source="<round trip>")
    assert again.queue("billing").record is True
    assert again.policy.recording_retention_days == 14


def test_a_wrong_record_or_retention_is_reported_with_the_others(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "policy: {recording_retention_days: -1}\n"
        "queues:\n"
        "  billing: {skills: {billing: 1}, record: 'yes please'}\n"
        "  tech: {skills: {tech: 1}, record: 1}\n"
        "agents:\n"
        "  alice: {zone: UTC, windows: ['Mon 09:00-12:00']}\n",
        encoding="utf-8")
    with pytest.raises(DirectoryError) as err:
        load_directory(path)
    found = {(p.node, p.key, p.code) for p in err.value.problems}
    assert found == {
        ("policy", "recording_retention_days", "out-of-range"),
        ("queue/billing", "record", "wrong-type"),
        ("queue/tech", "record", "wrong-type"),
    }, found
    assert all(str(p).startswith(f"{path}:") for p in err.value.problems)


def test_the_shipped_directory_still_loads() -> None:
    d = load_directory(DIALPLANS_DIR / "agents.yaml")
    assert d.policy.recording_retention_days > 0
