"""`homeline postgres run` as a user runs it: a URL to use with --db, and nothing left
running or on disk once it is stopped."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from store import open_store

REPO = Path(__file__).resolve().parents[2]


def test_a_throw_away_server_serves_the_cli_and_leaves_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "homeline", "postgres", "run", "--no-fsync"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=env)
    try:
        assert proc.stdout is not None
        head = [proc.stdout.readline() for _ in range(3)]
        assert head[2].startswith("serving until Ctrl-C"), (head, proc.stderr)
        pid, root = re.match(r"PostgreSQL (\d+) on 127\.0\.0\.1:\d+, in (\S+) ",
                             head[0]).groups()  # type: ignore[union-attr]
        url = head[1].split("=", 1)[1].strip()
        assert url.startswith("postgresql://homeline:")
        with open_store(url) as s:
            s.request_agent_state("alice", "break", "lunch", datetime.now(UTC))
        r = subprocess.run([sys.executable, "-m", "homeline", "agent", "state", "alice",
                            "available", "--json"], capture_output=True, text=True, cwd=REPO,
                           timeout=60, env={**env, "HOMELINE_STORE": url})
        assert r.returncode == 0, r.stderr
        assert '"seq": 2' in r.stdout  # the same feed, through $HOMELINE_STORE
        assert Path(f"/proc/{pid}").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in out
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() and not Path(root).exists()
