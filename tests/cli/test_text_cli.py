"""`homeline secrets set NAME` (value from stdin, 0600) and `homeline text check`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", *args], input=stdin, text=True,
                          capture_output=True, cwd=REPO, timeout=60, check=False)


def test_secrets_set_reads_stdin_and_keeps_the_file_0600(tmp_path: Path) -> None:
    r = _run("secrets", "set", "sms:auth_token", "--stack", str(tmp_path),
             stdin="tok-123-secret\n")
    assert r.returncode == 0, r.stderr
    assert "tok-123-secret" not in r.stdout + r.stderr
    path = tmp_path / "secrets.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["sms:auth_token"] == "tok-123-secret"
    r = _run("secrets", "set", "messenger:page_token", "--stack", str(tmp_path),
             stdin="page\n")
    assert r.returncode == 0
    data = json.loads(path.read_text())
    assert data == {"sms:auth_token": "tok-123-secret", "messenger:page_token": "page"}


def test_secrets_set_refuses_empty_values_and_unknown_names(tmp_path: Path) -> None:
    assert _run("secrets", "set", "sms:auth_token", "--stack", str(tmp_path),
                stdin="\n").returncode == 2
    assert _run("secrets", "set", "web:session", "--stack", str(tmp_path),
                stdin="x\n").returncode == 2
    assert not (tmp_path / "secrets.json").exists()


def test_text_check(tmp_path: Path) -> None:
    ok = _run("text", "check")
    assert ok.returncode == 0 and "7 intents" in ok.stdout
    bad = tmp_path / "text.yaml"
    bad.write_text("languages: [en]\nsurprise: 1\nagent_words: {en: [agent]}\n",
                   encoding="utf-8")
    r = _run("text", "check", str(bad))
    assert r.returncode == 1
    assert "surprise" in r.stdout and "[unknown-key]" in r.stdout
    assert "[missing-key]" in r.stdout  # messages, intents: every problem at once
