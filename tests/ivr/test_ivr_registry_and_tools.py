"""FlowRegistry reloads, `homeline flow simulate|graph|reload`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ivr_testkit import FLOWS, MINIMAL, OPEN_NOW

from homeline.cli import main
from ivr.commands import DigitsEntered, Route
from ivr.engine import CallSession
from ivr.registry import FlowRegistry


def test_new_version_applies_to_new_calls_only(tmp_path, catalog, queues):
    (tmp_path / "mini.yaml").write_text(MINIMAL, encoding="utf-8")
    clock = [0.0]
    reg = FlowRegistry(tmp_path, catalog=catalog, queues=queues, check_interval_s=1.0,
                       clock=lambda: clock[0])
    v1 = reg.current("mini")
    live = CallSession(v1, call_id="live", caller="1")
    live.start(OPEN_NOW)
    (tmp_path / "mini.yaml").write_text(MINIMAL.replace("billing: {type: route, queue: billing}",
                                                        "billing: {type: route, queue: sales}"),
                                        encoding="utf-8")
    assert reg.current("mini") is v1          # checked at most once a second
    clock[0] = 2.0
    v2 = reg.current("mini")
    assert v2.version != v1.version
    # the call in progress keeps its version: 1 still means billing for it
    route = [c for c in live.step(DigitsEntered("1"), OPEN_NOW) if isinstance(c, Route)]
    assert route[0].request.queue == "billing" and route[0].request.flow_version == v1.version
    fresh = CallSession(reg.current("mini"), call_id="new", caller="1")
    fresh.start(OPEN_NOW)
    route = [c for c in fresh.step(DigitsEntered("1"), OPEN_NOW) if isinstance(c, Route)]
    assert route[0].request.queue == "sales"


def test_broken_new_version_keeps_the_running_one(tmp_path, catalog, queues):
    (tmp_path / "mini.yaml").write_text(MINIMAL, encoding="utf-8")
    trigger = tmp_path / "flows.reload"
    reg = FlowRegistry(tmp_path, catalog=catalog, queues=queues, trigger=trigger,
                       check_interval_s=3600)
    v1 = reg.current("mini")
    (tmp_path / "mini.yaml").write_text(MINIMAL.replace("queue: tech", "queue: nowhere"),
                                        encoding="utf-8")
    trigger.touch()
    os.utime(trigger, ns=(1, 1))
    reg.request_reload()
    assert reg.current("mini") is v1
    assert [p.code for p in reg.problems["mini"]] == ["unknown-queue"]
    report = reg.reload()
    assert report.kept == {"mini": v1.version} and report.loaded == {}


def test_simulate_prints_a_transcript_and_json(capsys):
    flow = str(FLOWS / "support-line.yaml")
    now = "2026-11-25T10:00:00+00:00"
    assert main(["flow", "simulate", flow, "--now", now, "--input",
                 "lookup:fail,3,2,timeout,say:internet,timeout"]) == 0
    out = capsys.readouterr().out
    assert "language  fr" in out
    assert "route     queue=tech intent=internet language=fr" in out
    assert "outcome   routed" in out
    assert main(["flow", "simulate", flow, "--now", now, "--json", "--input",
                 "lookup:tier=gold,1,1,1234#,timeout,timeout"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # too short, then no input twice: billing without an account number, callback offer
    assert doc["outcome"] is None and doc["waiting_at"] == "billing"
    assert doc["variables"]["customer_tier"] == "gold"


def test_simulate_rejects_bad_input_clearly(capsys):
    assert main(["flow", "simulate", str(FLOWS / "main-menu.yaml"), "--input", "1,banana"]) == 2
    assert "input 'banana' not understood" in capsys.readouterr().err


def test_interactive_simulation_in_a_terminal_session():
    exe = Path(sys.executable).with_name("homeline")
    proc = subprocess.run([str(exe), "flow", "simulate", str(FLOWS / "main-menu.yaml")],
                          input="3\n2\n1\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "route     queue=billing intent=billing language=es" in proc.stdout


def test_graph_writes_dot_svg_and_png(tmp_path, capsys):
    out = tmp_path / "g" / "support"
    assert main(["flow", "graph", str(FLOWS / "support-line.yaml"), "-o", str(out)]) == 0
    dot = out.with_suffix(".dot").read_text()
    assert '"main-menu" -> "account-number" [label="key 1"]' in dot
    if shutil.which("dot"):
        assert out.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))
        assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_graph_of_a_broken_flow_says_why(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("queue: tech", "queue: 7"), encoding="utf-8")
    assert main(["flow", "graph", str(bad)]) == 1
    assert "[wrong-type]" in capsys.readouterr().err
