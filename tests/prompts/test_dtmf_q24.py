"""ITU-T Q.24 (AT&T column) receiver battery, generated in the test."""

from __future__ import annotations

from collections import Counter

import pytest
from q24_cases import RATE, all_cases

from prompts.dtmf import detect

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_q24_case(case) -> None:  # type: ignore[no-untyped-def]
    got = detect(case.make(), RATE)
    assert got.digits == case.expect, f"{case.name}: expected {case.expect!r}, got {got.digits!r}"


def test_q24_battery_summary() -> None:
    """Runs the whole battery once more and prints the pass count per group."""
    total: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    failures = []
    for case in CASES:
        total[case.group] += 1
        got = detect(case.make(), RATE).digits
        if got == case.expect:
            passed[case.group] += 1
        else:
            failures.append(f"{case.name}: expected {case.expect!r}, got {got!r}")
    for group in total:
        print(f"Q.24 {group:10s} {passed[group]}/{total[group]}")
    print(f"Q.24 battery: {sum(passed.values())}/{len(CASES)} cases passed")
    assert len(CASES) >= 300
    assert not failures, "\n".join(failures)
