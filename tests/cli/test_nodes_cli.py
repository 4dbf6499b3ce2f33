"""`homeline asterisk up --node NAME`: what it refuses before starting anything (a
node the nodes file does not list, a missing trunk secret, a broken nodes file),
each said on stderr; and `homeline secrets set node:trunk` storing the secret."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _homeline(tmp_path: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOMELINE_STATE": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "homeline", *argv], cwd=REPO, env=env,
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_asterisk_up_as_a_node_refuses_what_it_cannot_render(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("nodes:\n  a: {sip: 127.0.0.1:5060}\n  b: {sip: 127.0.0.1:5070}\n",
                     encoding="utf-8")
    done = _homeline(tmp_path, "asterisk", "up", "--node", "c", "--nodes", str(nodes))
    assert done.returncode == 1
    assert "--node c: not a node of the nodes file (nodes: a, b)" in done.stderr, done.stderr
    done = _homeline(tmp_path, "asterisk", "up", "--node", "a", "--nodes", str(nodes))
    assert done.returncode == 1
    assert "homeline secrets set node:trunk" in done.stderr, done.stderr
    stored = _homeline(tmp_path, "secrets", "set", "node:trunk", stdin="x" * 24 + "\n")
    assert stored.returncode == 0 and "node:trunk stored in" in stored.stdout, stored.stderr
    assert "x" * 24 not in stored.stdout + stored.stderr  # never printed
    nodes.write_text("nodes:\n  a: {sip: nowhere}\n  b: {}\n", encoding="utf-8")
    done = _homeline(tmp_path, "asterisk", "up", "--node", "a", "--nodes", str(nodes))
    assert done.returncode == 1
    assert f"{nodes}:node/a:sip: 'nowhere' is not host:port [wrong-type]" in done.stderr
    assert f"{nodes}:node/b:sip: no 'sip' (host:port) [missing-key]" in done.stderr
