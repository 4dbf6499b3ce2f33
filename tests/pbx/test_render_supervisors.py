"""Supervisors' own endpoints (dialplans/supervisors.yaml): rendered like agents', with
the same phone kinds, never dialled as agents; the spy context runs ChanSpy with the
options each mode needs. The file is admin-edited: every problem reported at once."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from homeline.pbx.render import AgentLine, RenderError, RenderSettings, render_config
from homeline.supervisors import (
    DEFAULT_SUPERVISORS_FILE,
    SupervisorsError,
    load_supervisors,
    supervisors_from_dict,
)
from voice.supervise import CHANSPY_OPTIONS, SUPERVISE_CONTEXT

KEYS = dict(tls_cert_file="/k/server.pem", tls_key_file="/k/server-key.pem",
            tls_ca_file="/k/ca.pem")


def _render(supervisors: list[AgentLine]) -> dict[str, str]:
    secrets = {"amy": "a", **{s.agent_id: f"pw-{s.agent_id}" for s in supervisors}}
    settings = RenderSettings(sip_port=5060, ami_port=5038, agi_port=4573, ami_secret="s",
                              agent_secrets=secrets, **KEYS)  # type: ignore[arg-type]
    return render_config(settings, [AgentLine("amy", "Amy")], supervisors=supervisors)


def test_a_supervisor_gets_an_endpoint_but_is_never_rung_as_an_agent() -> None:
    files = _render([AgentLine("sam", "Sam Lead", "udp"), AgentLine("sue", "Sue", "webrtc")])
    pjsip, ext = files["pjsip.conf"], files["extensions.conf"]
    assert "[sam](homeline-agent-endpoint)" in pjsip and "password=pw-sam" in pjsip
    assert "[sue](homeline-agent-endpoint-webrtc)" in pjsip
    assert "HOMELINE_FALLBACK_DIAL=PJSIP/amy\n" in ext  # the fallback rings agents only
    agent_ctx = ext.split("[homeline-agent]", 1)[1].split("[homeline-agent-dial]", 1)[0]
    assert "exten => amy," in agent_ctx and "sam," not in agent_ctx and "=sam" not in agent_ctx
    spy = ext.split(f"[{SUPERVISE_CONTEXT}]", 1)[1].split("\n[", 1)[0]
    for mode, options in CHANSPY_OPTIONS.items():
        assert re.search(rf"exten => {mode},1,.*\n same => n,ChanSpy\(\$\{{HOMELINE_SPY}},"
                         rf"{options}\)\n same => n,Hangup\(\)", spy), (mode, spy)


def test_a_supervisor_endpoint_may_not_take_an_agents_name() -> None:
    with pytest.raises(RenderError, match="duplicate or reserved"):
        _render([AgentLine("amy", "Another Amy")])


def test_the_shipped_supervisors_file_loads() -> None:
    sups = load_supervisors(DEFAULT_SUPERVISORS_FILE, agent_ids=["alice", "bruno"])
    assert [(s.id, s.phone) for s in sups] == [("sam", "udp")]


def test_every_problem_of_the_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "supervisors.yaml"
    path.write_text("supervisors:\n"
                    "  Bad Id: {name: X}\n"
                    "  amy: {name: Amy again}\n"
                    "  sam: {name: Sam, phone: carrier-pigeon, colour: red}\n"
                    "  sue: {phone: udp}\n"
                    "extra: 1\n", encoding="utf-8")
    with pytest.raises(SupervisorsError) as err:
        load_supervisors(path, agent_ids=["amy"])
    codes = sorted(p.code for p in err.value.problems)
    assert codes == ["bad-choice", "duplicate-endpoint", "missing-key", "name", "unknown-key",
                     "unknown-key"], str(err.value)
    text = str(err.value)
    assert f"{path}:sam:phone: 'carrier-pigeon' is not one of udp, tls, webrtc [bad-choice]" \
        in text
    assert f"{path}:sam:colour: unknown key 'colour' (allowed: name, phone) [unknown-key]" \
        in text


def test_no_file_no_supervisors_and_a_mapping_is_required() -> None:
    assert supervisors_from_dict({"supervisors": None}) == ()
    with pytest.raises(SupervisorsError, match="wrong-type"):
        supervisors_from_dict(["sam"])


def test_the_commands_refuse_a_bad_supervisors_file_naming_every_problem(
        tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    bad = tmp_path / "supervisors.yaml"
    bad.write_text("supervisors:\n  alice: {name: Alice}\n  sam: {name: Sam, phone: fax}\n",
                   encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "homeline", "serve", "--supervisors", str(bad),
                        "--db", str(tmp_path / "s.sqlite3")], cwd=repo, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(repo)})
    assert r.returncode == 1, r.stderr
    assert f"{bad}:alice:-: 'alice' is also an agent id" in r.stderr  # the shipped directory
    assert f"{bad}:sam:phone: 'fax' is not one of udp, tls, webrtc [bad-choice]" in r.stderr
    assert not (tmp_path / "s.sqlite3").exists()
