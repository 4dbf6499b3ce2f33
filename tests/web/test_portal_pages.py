"""The portal's pages, its vendor files and the phone's API over real HTTP (no browser):
each page only for the logged-in agent, the libraries from the npm cache only,
a clear refusal when setup was not run, the phone's identity only for its agent."""
from __future__ import annotations

from pathlib import Path

import pytest
from web_testkit import Portal, running_portal

from web import PhoneSettings
from web.vendor import VENDOR_FILES

PAGES = ("/agent", "/agent/hours", "/agent/hours/panel", "/agent/caller")


@pytest.fixture(scope="module")
def vendor_dir() -> Path:
    from homeline.provision.browser_libs import ensure_browser_libs

    return ensure_browser_libs()


def test_pages_need_a_login_and_are_never_cached(portal: Portal) -> None:
    anon = portal.client()
    for path in PAGES:
        r = anon.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/login"), path
    c, _ = portal.login("alice")
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["cache-control"] == "no-store"
        assert "<script>" not in r.text and "style=" not in r.text  # the CSP allows neither
    assert 'content="' in c.get("/agent").text  # the CSRF token in its <meta> tag


def test_users_without_an_agent_get_a_refusal_page(portal: Portal) -> None:
    c, _ = portal.login("sam")
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 403 and 'id="not-agent"' in r.text, path
    r = c.get("/agent/events")  # the stream says the page has nothing to show
    assert r.status_code == 200 and "event: ended" in r.text


def test_vendor_files_come_from_the_npm_cache_only(tmp_path: Path, vendor_dir: Path) -> None:
    with running_portal(tmp_path, vendor_dir=vendor_dir) as portal:
        c = portal.client()
        for name, rel in VENDOR_FILES.items():
            r = c.get(f"/static/vendor/{name}")
            assert r.status_code == 200, name
            assert r.content == (vendor_dir / rel).read_bytes()
        assert c.get("/static/vendor/package.json").status_code == 404
        assert c.get("/static/vendor/..%2Fpackage-lock.json").status_code == 404
        login = c.get("/login").text
        assert '/static/vendor/htmx.min.js' in login and 'id="vendor-missing"' not in login


def test_without_setup_the_libraries_are_a_clear_503(tmp_path: Path) -> None:
    with running_portal(tmp_path, vendor_dir=tmp_path / "not-installed") as portal:
        c = portal.client()
        r = c.get("/static/vendor/jssip.min.js")
        assert r.status_code == 503 and "run `homeline setup`" in r.text
        page = c.get("/login").text
        assert 'id="vendor-missing"' in page and "homeline setup" in page
        assert "/static/vendor/" not in page  # no script tag that would fail


def test_the_phone_identity_is_only_for_its_agent(tmp_path: Path) -> None:
    with running_portal(tmp_path) as portal:  # no WebRTC endpoints configured
        c, _ = portal.login("alice")
        r = c.get("/api/agents/alice/phone")
        assert r.status_code == 404 and "not configured" in r.json()["error"]
    phone = PhoneSettings("wss://pbx.example.org:8089/ws", "pbx.example.org",
                          lambda a: "alice-sip" if a == "alice" else None,
                          ice_servers=("stun:stun.example.org:3478",))
    with running_portal(tmp_path / "2", phone=phone) as portal:
        c, _ = portal.login("alice")
        assert c.get("/api/agents/alice/phone").json() == {
            "wss_url": "wss://pbx.example.org:8089/ws", "sip_uri": "sip:alice@pbx.example.org",
            "authorization_user": "alice", "password": "alice-sip",
            "ice_servers": [{"urls": "stun:stun.example.org:3478"}]}
        assert "connect-src 'self' wss://pbx.example.org:8089;" in c.get(
            "/login").headers["content-security-policy"]
        assert c.get("/api/agents/bruno/phone").status_code == 403
        b, _ = portal.login("bruno")
        r = b.get("/api/agents/bruno/phone")
        assert r.status_code == 404 and "no WebRTC endpoint" in r.json()["error"]
        s, _ = portal.login("sam")
        assert s.get("/api/agents/alice/phone").status_code == 403  # supervisors too
    with pytest.raises(ValueError, match="must be wss://"):
        PhoneSettings("ws://pbx:8088/ws", "pbx", lambda a: None)


def test_the_event_stream_is_not_activity(tmp_path: Path) -> None:
    with running_portal(tmp_path, idle_timeout_s=60, events_poll_s=0.05) as portal:
        c, _ = portal.login("alice")
        portal.clock.advance(50)
        with c.stream("GET", "/agent/events", timeout=5) as r:
            assert r.status_code == 200
            first = next(r.iter_lines())
            assert first == "event: state"
        portal.clock.advance(20)  # 70 s since the last request: the stream did not count
        assert c.get("/api/me").status_code == 401


def test_setup_installs_the_libraries_once(vendor_dir: Path) -> None:
    """`homeline setup` keyed on the lock file: a second run installs nothing."""
    import os
    import subprocess
    import sys

    from web_testkit import REPO

    out = subprocess.run([sys.executable, "-m", "homeline", "setup", "--only-browser-libs"],
                         capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"[setup] browser libraries: {vendor_dir}"]
    assert (vendor_dir / ".complete").is_file() and (vendor_dir / "install.log").is_file()
    assert not (REPO / "node_modules").exists()  # never into the repository
