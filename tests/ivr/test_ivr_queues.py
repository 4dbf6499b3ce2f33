"""Route nodes name queues of the agent directory (`dialplans/agents.yaml`), not a fixed list:
`homeline flow check`, `homeline flow reload` and `homeline engine run` all check them."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ivr_testkit import FLOWS, MINIMAL

from homeline.cli import main
from ivr.registry import FlowRegistry
from routing import load_directory

REPO = Path(__file__).resolve().parents[2]
ONLY_GENERAL = """\
queues:
  general: {languages: [en, es, fr]}
  vip: {languages: [en]}
agents: {}
"""


def test_flow_check_uses_the_queues_of_the_shipped_directory(write_flow, capsys):
    path = write_flow(MINIMAL.replace("queue: tech", "queue: tehc"))
    assert main(["flow", "check", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{path}:tech:queue: unknown queue 'tehc': the agent directory defines "
                     "billing, general, sales, tech [unknown-queue]"]


def test_flow_check_with_another_directory(write_flow, tmp_path, capsys):
    agents = tmp_path / "agents.yaml"
    agents.write_text(ONLY_GENERAL, encoding="utf-8")
    flow = write_flow(MINIMAL)
    assert main(["flow", "check", "--agents", str(agents), str(flow)]) == 1
    found = sorted(re.findall(r":(\w+):queue: unknown queue '(\w+)': the agent directory "
                              r"defines general, vip \[unknown-queue\]",
                              capsys.readouterr().out))
    assert found == [("billing", "billing"), ("tech", "tech")]
    # the shipped flows do not fit that directory either, and say so
    assert main(["flow", "check", "--agents", str(agents), str(FLOWS)]) == 1
    out = capsys.readouterr().out
    assert "main-menu.yaml:billing:queue:" in out and "support-line.yaml:" in out


def test_a_broken_directory_is_reported_in_the_same_format(write_flow, tmp_path, capsys):
    agents = tmp_path / "agents.yaml"
    agents.write_text("queues:\n  general: {}\n  general: {}\nagents: {}\ncolour: red\n",
                      encoding="utf-8")
    assert main(["flow", "check", "--agents", str(agents), str(write_flow(MINIMAL))]) == 1
    out, err = capsys.readouterr()
    assert err == f"route queues not checked: {agents} has problems\n"
    assert out.splitlines() == [
        f"{agents}:queue/general:-: key 'general' given twice (lines 2 and 3); only one is "
        "allowed [duplicate-key]",
        f"{agents}:-:colour: unknown key 'colour' (allowed: agents, queues, policy) "
        "[unknown-key]",
    ]


def test_the_registry_refuses_a_flow_naming_a_queue_the_directory_lacks(tmp_path, catalog):
    agents = tmp_path / "agents.yaml"
    agents.write_text(ONLY_GENERAL, encoding="utf-8")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "mini.yaml").write_text(MINIMAL, encoding="utf-8")
    reg = FlowRegistry(flows, catalog=catalog, queues=load_directory(agents).queue_ids)
    assert reg.names() == []
    assert sorted((p.node, p.code) for p in reg.problems["mini"]) == [
        ("billing", "unknown-queue"), ("tech", "unknown-queue")]


def test_engine_run_refuses_to_start_with_a_flow_naming_unknown_queues(tmp_path):
    agents = tmp_path / "agents.yaml"
    agents.write_text(ONLY_GENERAL, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOMELINE_STATE": str(tmp_path / "state"),
           "HOMELINE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "homeline", "engine", "run", "--agents", str(agents),
         "--flow", "main-menu"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "main-menu.yaml:billing:queue: unknown queue 'billing': the agent directory " \
           "defines general, vip [unknown-queue]" in done.stderr
    assert "Asterisk" not in done.stderr  # refused before it looked for the PBX
