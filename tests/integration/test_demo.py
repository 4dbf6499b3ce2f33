"""The demo starts the agent portal beside the engine and gives a login for one
agent that works while the calls go through; ``homeline demo --json`` prints only
JSON, the portal's address and login in it; everything is stopped afterwards."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from homeline.demo import DEMO_CALLS, PORTAL_AGENT, run_demo

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _closed(url: str) -> bool:
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_the_portal_login_works_while_the_demo_runs() -> None:
    lines: list[str] = []
    seen: dict[str, Any] = {}

    def say(line: str) -> None:
        lines.append(line)
        if line.startswith("call from") and "me" not in seen:
            # the demo is running: the printed login opens the printed portal
            portal_line = next(x for x in lines if x.startswith("agent portal: "))
            url = portal_line.split()[2]
            password = portal_line.split("password ", 1)[1].split()[0]
            with httpx.Client(base_url=url, timeout=10) as client:
                r = client.post("/api/session", json={"user": PORTAL_AGENT, "password": password})
                seen["login"] = r.status_code
                seen["me"] = client.get("/api/me").json()
                seen["page"] = client.get("/agent").status_code
            seen["url"] = url

    result = run_demo(say=say, calls=DEMO_CALLS[:1], name=f"demo{os.getpid()}", portal_port=0)
    assert result.failed == 0, result.calls
    assert result.portal is not None and result.portal["url"] == seen["url"]
    assert result.portal["user"] == PORTAL_AGENT
    assert seen["login"] == 200, seen
    assert seen["me"]["user"] == {"name": PORTAL_AGENT, "role": "agent", "agent": PORTAL_AGENT}
    assert seen["page"] == 200
    assert _closed(result.portal["url"])  # stopped with the demo
    # the demo ends with the statistics of its own call: one billing call, answered
    # by a free agent well within the queue's T (20 s: the default service_level)
    assert result.stats is not None
    billing = result.stats["queues"]["billing"]
    assert (billing["offered"], billing["answered"], billing["abandoned"]) == (1, 1, 0)
    assert billing["service_level"] == 1.0 and 0 < billing["asa_s"] < 20
    assert result.stats["queues"]["tech"]["offered"] == 0
    at = lines.index("statistics of these calls (homeline stats):")
    row = next(x for x in lines[at:] if x.split()[0] == "billing")
    assert row.split()[1:4] == ["1", "1", "0"] and "100.0%" in row


def test_demo_json_is_only_json_with_the_portal_in_it() -> None:
    done = subprocess.run([sys.executable, "-m", "homeline", "demo", "--json",
                           "--portal-port", "0"], capture_output=True, text=True, timeout=280,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)  # the whole of stdout: one JSON document
    assert out["failed"] == 0, out["calls"]
    portal = out["portal"]
    assert portal["url"].startswith("http://127.0.0.1:") and portal["user"] == PORTAL_AGENT
    assert len(portal["password"]) >= 8
    assert _closed(portal["url"])
    # per queue: offered, answered, abandoned, asa_s, service_level of the demo's calls
    stats = out["stats"]
    assert set(stats) == {"billing", "tech", "general"}
    for queue in ("billing", "tech"):
        calls = [c for c in DEMO_CALLS if c.expect_queue == queue]
        f = stats[queue]
        assert set(f) == {"offered", "answered", "abandoned", "asa_s", "service_level"}
        assert (f["offered"], f["answered"], f["abandoned"]) == (len(calls), len(calls), 0)
        assert 0 < f["asa_s"] < 20 and f["service_level"] == 1.0
    assert stats["general"] == {"offered": 0, "answered": 0, "abandoned": 0, "asa_s": None,
                                "service_level": None}
