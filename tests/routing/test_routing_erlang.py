"""Erlang C against the published figures, and its numerics at large loads."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from routing.erlang import agents_needed, erlang_b, erlang_c, erlang_figures


def test_textbook_case() -> None:
    # 360 calls / 30 min, AHT 240 s -> 48 Erlang; 80 % in 20 s needs 54 agents
    need = agents_needed(360, 1800, 240, 0.8, 20)
    assert need.agents == 54 and need.traffic_erlangs == 48
    r = erlang_figures(360, 1800, 240, 55, 15)
    assert round(r.p_wait, 4) == 0.2387
    assert round(r.asa_s, 2) == 8.18
    assert round(r.service_level, 4) == 0.8459
    print(f"\nErlang C: 54 agents needed; with 55: P(wait)={r.p_wait:.4f} "
          f"ASA={r.asa_s:.2f} s SL(15 s)={r.service_level:.4f}")


def test_overloaded_and_empty() -> None:
    assert erlang_c(40, 48) == 1.0
    r = erlang_figures(360, 1800, 240, 48, 20)
    assert r.p_wait == 1.0 and math.isinf(r.asa_s)
    assert agents_needed(0, 1800, 240, 0.8, 20).agents == 0
    with pytest.raises(ValueError):
        agents_needed(10, 0, 240, 0.8, 20)


@pytest.mark.parametrize("traffic", [300.0, 1000.0, 5000.0])
def test_large_loads_stay_finite_and_monotone(traffic: float) -> None:
    n = int(traffic) + 1
    cs = [erlang_c(k, traffic) for k in range(n, n + 200, 20)]
    assert all(0.0 < c <= 1.0 for c in cs)
    assert cs == sorted(cs, reverse=True)
    b = erlang_b(n, traffic)
    assert 0.0 < b < 1.0
    need = agents_needed(traffic * 1800 / 240, 1800, 240, 0.8, 20)
    assert traffic < need.agents < traffic * 1.1 and need.service_level >= 0.8


def test_cli_json() -> None:
    out = subprocess.run([sys.executable, "-m", "homeline", "staffing", "erlang", "--calls",
                          "360", "--interval-s", "1800", "--aht-s", "240", "--sl-target", "0.8",
                          "--answer-s", "15", "--agents", "55", "--json"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == {"agents": 55, "p_wait": 0.2387, "asa_s": 8.18,
                                      "service_level": 0.8459, "occupancy": 0.8727}
    out = subprocess.run([sys.executable, "-m", "homeline", "staffing", "erlang", "--calls",
                          "360", "--aht-s", "240", "--answer-s", "20", "--json"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout)["agents"] == 54
