"""The web app starts and stops cleanly: `WebServer` in a thread, `homeline serve` as
a process; pages carry the security headers; the adapter imports no composition root."""
from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from web_testkit import AGENTS, REPO, SECRET, Portal, running_portal

from homeline.stack import free_port
from web import WebError, WebServer, WebSettings, create_app


def test_a_server_in_a_thread_stops_and_frees_its_port(tmp_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    with running_portal(tmp_path) as portal:
        port = int(portal.url.rsplit(":", 1)[1])
        assert httpx.get(portal.url + "/login", timeout=5).status_code == 200
    # stopped: nothing listens there any more, the port can be bound again, no thread left
    with pytest.raises(httpx.ConnectError):
        httpx.get(portal.url + "/login", timeout=2)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    assert not [t for t in threading.enumerate()
                if t.ident not in before and t.name == "homeline-web"]


def test_a_busy_port_is_an_error_naming_it(portal: Portal) -> None:
    port = int(portal.url.rsplit(":", 1)[1])
    app = create_app(portal.store, portal.directory, portal.clock,
                     WebSettings(session_secret=SECRET))
    server = WebServer(app, "127.0.0.1", port)
    with pytest.raises(WebError, match=f"could not listen on 127.0.0.1:{port}"):
        server.start()
    server.stop()  # nothing to stop: no error
    with pytest.raises(WebError, match="both a certificate file and its key"):
        WebServer(app, "127.0.0.1", 0, certfile=Path("cert.pem"))


def test_pages_redirect_render_and_send_security_headers(portal: Portal) -> None:
    c = portal.client()
    r = c.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    r = c.get("/login")
    assert r.status_code == 200 and '<form id="login"' in r.text
    assert "<script>" not in r.text  # scripts only from /static (the CSP allows no other)
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert (r.headers["x-frame-options"], r.headers["x-content-type-options"],
            r.headers["cache-control"]) == ("DENY", "nosniff", "no-store")
    js = c.get("/static/portal.js")
    assert js.status_code == 200 and "X-CSRF-Token" in js.text
    for script in ("portal.js", "phone.js"):  # nothing written to the browser's storage
        code = c.get(f"/static/{script}").text
        assert "setItem" not in code and "localStorage." not in code and "indexedDB." not in code
    a, csrf = portal.login("alice")
    r = a.get("/agent")
    assert r.status_code == 200 and f'<meta name="csrf-token" content="{csrf}">' in r.text
    assert 'data-agent="alice">alice (agent, agent alice)</span>' in r.text
    assert a.get("/login", follow_redirects=False).headers["location"] == "/agent"
    r = c.get("/api/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "no such API path '/api/nothing-here'"}
    r = a.patch("/api/me", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 405 and "PATCH not allowed" in r.json()["error"]
    r = a.put("/api/agents/alice/hours", content=b"x" * 70_000,
              headers={"X-CSRF-Token": csrf, "content-type": "application/json"})
    assert r.status_code == 413


def test_homeline_serve_runs_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOMELINE_STATE": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeline", "serve", "--port", str(port), "--db",
         str(tmp_path / "serve.sqlite3"), "--agents", str(AGENTS),
         "--stack", str(tmp_path / "stack")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/me", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "homeline serve did not come up"
                time.sleep(0.2)
        assert r.status_code == 401 and "server" not in r.headers
        # the cookie's secret was made once, with the stack's secrets, 0600
        secrets = tmp_path / "stack" / "secrets.json"
        assert secrets.stat().st_mode & 0o777 == 0o600
        assert '"web:session"' in secrets.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"web app on http://127.0.0.1:{port}/" in out


def test_serve_refuses_half_an_https_configuration(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "homeline", "serve", "--certfile",
                        str(tmp_path / "c.pem")], cwd=REPO, capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2 and "--certfile and --keyfile go together" in r.stderr


def test_the_web_adapter_imports_no_composition_root_but_the_agent_api() -> None:
    used: dict[str, set[str]] = {}
    for path in sorted((REPO / "web").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
            elif isinstance(node, ast.Import):
                mod = node.names[0].name
            else:
                continue
            if mod.split(".")[0] == "homeline":
                used.setdefault(path.name, set()).add(mod)
    # the desk sets an agent's state through the same agent API as the portal
    assert used == {"api.py": {"homeline.agent_api"}, "desk.py": {"homeline.agent_api"}}
