"""Broken inputs of the call path get clear errors that name the file and field."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from homeline.paths import DIALPLANS_DIR
from homeline.pbx.render import AgentLine, RenderError, RenderSettings, render_config
from homeline.secrets import SecretStore, SecretStoreError


def _settings(**over: object) -> RenderSettings:
    base = dict(sip_port=5070, ami_port=5039, agi_port=4574, ami_secret="s3cret",
                agent_secrets={"amy": "pw"})
    base.update(over)
    return RenderSettings(**base)  # type: ignore[arg-type]


def _homeline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


def test_the_shipped_templates_render_every_file_asterisk_needs():
    files = render_config(_settings(), [AgentLine("amy", "Amy Lee")])
    assert set(files) == {"pjsip.conf", "extensions.conf", "manager.conf", "rtp.conf",
                          "musiconhold.conf", "modules.conf", "logger.conf", "stasis.conf",
                          "voicemail.conf", "http.conf", "pjsip-blocked.conf"}
    assert "[amy](homeline-agent-endpoint)" in files["pjsip.conf"]
    assert "password=pw" in files["pjsip.conf"]
    assert "AGI(agi://127.0.0.1:4574/ivr)" in files["extensions.conf"]
    manager = files["manager.conf"]
    assert "bindaddr=127.0.0.1" in manager and "read=call,reporting" in manager
    # originate only for callbacks, which voice.executor.check_originate guards
    assert "\nwrite=call,reporting,message,originate\n" in manager
    for right in ("system", "command", "config"):
        assert f"write={right}" not in manager and f",{right}" not in manager
    assert "{{" not in "".join(files.values())
    assert "decline=agi_exec_start_type" in files["stasis.conf"]


def test_a_broken_template_names_the_file_line_and_known_placeholders(tmp_path: Path):
    templates = tmp_path / "templates"
    shutil.copytree(DIALPLANS_DIR / "templates", templates)
    path = templates / "rtp.conf.tmpl"
    path.write_text(path.read_text() + "rtpchecksums={{rtp_checksum}}\n")
    with pytest.raises(RenderError) as err:
        render_config(_settings(), [AgentLine("amy", "Amy")], templates_dir=templates)
    message = str(err.value)
    assert f"{path}:" in message and "unknown placeholder {{rtp_checksum}}" in message
    assert "rtp_start" in message  # the known placeholders are listed


def test_a_missing_template_is_named(tmp_path: Path):
    templates = tmp_path / "templates"
    shutil.copytree(DIALPLANS_DIR / "templates", templates)
    (templates / "manager.conf.tmpl").unlink()
    with pytest.raises(RenderError, match=r"manager\.conf\.tmpl: cannot read template"):
        render_config(_settings(), [AgentLine("amy", "Amy")], templates_dir=templates)


@pytest.mark.parametrize("agent, field", [
    (AgentLine("Amy Lee", "x"), "id must be"),
    (AgentLine("homeline-x", "x"), "reserved"),
    (AgentLine("amy", "Amy; evil=1"), "name"),
])
def test_agent_values_that_would_break_the_configuration_are_refused(agent, field):
    secrets = {agent.agent_id: "pw"}
    with pytest.raises(RenderError, match=field):
        render_config(_settings(agent_secrets=secrets), [agent])


def test_impossible_ports_are_refused():
    with pytest.raises(RenderError, match="sip_port"):
        render_config(_settings(sip_port=70000), [AgentLine("amy", "Amy")])
    with pytest.raises(RenderError, match="rtp_end"):
        render_config(_settings(rtp_start=20000, rtp_end=10000), [AgentLine("amy", "Amy")])


def test_secrets_are_generated_once_private_and_checked(tmp_path: Path):
    store = SecretStore(tmp_path / "secrets.json")
    first = store.get("sip:amy")
    assert len(first) >= 20 and store.get("sip:amy") == first
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "secrets.json", 0o644)
    with pytest.raises(SecretStoreError, match="0600"):
        store.get("sip:amy")


def test_dialplan_render_reports_every_problem_of_a_broken_agent_file(tmp_path: Path):
    broken = tmp_path / "agents.yaml"
    broken.write_text("agents:\n  Bad Id:\n    zone: UTC\n  amy:\n    zone: Mars/Base\n")
    env = {**os.environ, "HOMELINE_STATE": str(tmp_path / "state")}
    done = _homeline("dialplan", "render", "--agents", str(broken), "--out",
                     str(tmp_path / "etc"), env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(str(broken))]
    assert any("Bad Id" in line for line in lines), done.stderr
    assert any("amy" in line and "Mars/Base" in line for line in lines), done.stderr
    assert not (tmp_path / "etc").exists()


def test_dialplan_render_of_the_shipped_directory_writes_the_files(tmp_path: Path):
    env = {**os.environ, "HOMELINE_STATE": str(tmp_path / "state")}
    done = _homeline("dialplan", "render", "--out", str(tmp_path / "etc"), env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc" / "pjsip.conf").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "state" / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert "password=" in (tmp_path / "etc" / "pjsip.conf").read_text()
