"""Logging in and out of the web app over real HTTP: cookies, CSRF, throttling, expiry."""
from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from web_testkit import USERS, Portal, running_portal

HOURS = "/api/agents/alice/hours"
GOOD = {"windows": ["Mon 18:00-22:00", "Wed 18:00-21:00", "Fri 08:00-12:00"]}


def test_everything_but_login_needs_a_session(portal: Portal) -> None:
    c = portal.client()
    for method, path in [("GET", "/api/me"), ("GET", HOURS), ("PUT", HOURS),
                         ("POST", "/api/agents/alice/state"),
                         ("GET", "/api/agents/alice/current-call"), ("DELETE", "/api/session")]:
        r = c.request(method, path, json=GOOD if method == "PUT" else None)
        assert r.status_code == 401, (method, path, r.text)
        assert "not logged in" in r.json()["error"]
    r = c.get("/agent", follow_redirects=False)  # a page: to the login page instead
    assert (r.status_code, r.headers["location"]) == (303, "/login")


def test_login_sets_a_signed_httponly_strict_cookie_holding_no_session_id(
        portal: Portal) -> None:
    c = portal.client()
    r = c.post("/api/session", json={"user": "alice", "password": USERS["alice"][2]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == {"name": "alice", "role": "agent", "agent": "alice"}
    assert len(body["csrf"]) >= 32
    cookie = r.headers["set-cookie"]
    flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age", "samesite"} <= flags
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in flags  # plain HTTP here: see the HTTPS test
    assert USERS["alice"][2] not in cookie
    assert r.headers["cache-control"] == "no-store"
    # the store keeps only a digest of the token: nothing in the table logs anyone in
    (row,) = portal.store._read("SELECT id, user_name FROM web_sessions")
    assert row[1] == "alice" and len(row[0]) == 64 and row[0] not in cookie
    me = c.get("/api/me").json()
    assert me["user"]["name"] == "alice" and me["csrf"] == body["csrf"]
    # a tampered cookie is no session at all
    value = c.cookies["homeline"]
    forged = portal.client(cookies={"homeline": value[:-3] + ("AAA" if value[-3:] != "AAA"
                                                               else "BBB")})
    assert forged.get("/api/me").status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_answer(portal: Portal) -> None:
    c = portal.client()
    r1 = c.post("/api/session", json={"user": "alice", "password": "not-her-password"})
    r2 = c.post("/api/session", json={"user": "mallory", "password": "whatever-it-is"})
    assert r1.status_code == r2.status_code == 401
    assert r1.json() == r2.json() == {"error": "wrong user name or password"}
    assert "set-cookie" not in r1.headers


@pytest.mark.parametrize(("body", "content_type", "status", "field"), [
    (b'{"user": "alice", "password": ', "application/json", 400, "body"),
    (b'["alice", "pw"]', "application/json", 400, "body"),
    (b'{"user": "alice", "password": "x", "remember": true}', "application/json", 400,
     "remember"),
    (b'{"user": "alice"}', "application/json", 400, "password"),
    (b'{"user": 7, "password": "x"}', "application/json", 400, "user"),
    (b'{"user": "alice", "user": "bruno", "password": "x"}', "application/json", 400, "user"),
    (b"user=alice&password=x", "application/x-www-form-urlencoded", 415, None),
])
def test_a_malformed_login_is_refused_naming_the_field(
        portal: Portal, body: bytes, content_type: str, status: int, field: str | None) -> None:
    r = portal.client().post("/api/session", content=body,
                             headers={"content-type": content_type})
    assert r.status_code == status, r.text
    err = r.json()
    assert err.get("field") == field
    if field is not None:
        assert err["error"].startswith(f"{field}: ")
    if field == "remember":
        assert "allowed: user, password" in err["error"]


def test_state_changes_need_the_csrf_token_and_the_same_origin(portal: Portal) -> None:
    c, csrf = portal.login("alice")
    r = c.put(HOURS, json=GOOD)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.put(HOURS, json=GOOD, headers={"X-CSRF-Token": csrf[:-1] + "x"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.delete("/api/session")
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    # the right token from another site's page is still refused
    r = c.put(HOURS, json=GOOD, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "Origin" in r.json()["error"]
    r = c.put(HOURS, json=GOOD, headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    r = portal.client().post("/api/session", headers={"Origin": "http://evil.example"},
                             json={"user": "alice", "password": USERS["alice"][2]})
    assert r.status_code == 403  # no login CSRF either
    # nothing was saved by the refused requests
    assert portal.store.hours("alice") is None
    r = c.put(HOURS, json=GOOD, headers={"X-CSRF-Token": csrf, "Origin": portal.url})
    assert r.status_code == 200, r.text
    assert portal.store.hours("alice") is not None


def test_logout_ends_the_session_on_the_server(portal: Portal) -> None:
    c, csrf = portal.login("alice")
    stolen = dict(c.cookies)
    r = c.delete("/api/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json() == {"logged_out": "alice"}
    assert "expires=thu, 01 jan 1970" in r.headers["set-cookie"].lower()
    assert c.get("/api/me").status_code == 401
    # the cookie as it was before the logout opens nothing any more
    assert portal.client(cookies=stolen).get("/api/me").status_code == 401
    assert portal.store._read("SELECT COUNT(*) FROM web_sessions")[0][0] == 0


def test_a_new_login_replaces_the_session_it_came_with(portal: Portal) -> None:
    c, first = portal.login("alice")
    before = dict(c.cookies)
    r = c.post("/api/session", json={"user": "alice", "password": USERS["alice"][2]})
    assert r.status_code == 200 and r.json()["csrf"] != first
    assert portal.client(cookies=before).get("/api/me").status_code == 401
    assert c.get("/api/me").status_code == 200


def test_a_session_ends_after_the_idle_timeout_and_activity_keeps_it(tmp_path: Path) -> None:
    with running_portal(tmp_path, idle_timeout_s=60) as portal:
        c, _ = portal.login("alice")
        for _ in range(3):  # 120 s in all, never 60 s without a request
            portal.clock.advance(40)
            assert c.get("/api/me").status_code == 200
        portal.clock.advance(61)
        r = c.get("/api/me")
        assert r.status_code == 401 and "session ended" in r.json()["error"]
        assert portal.store._read("SELECT COUNT(*) FROM web_sessions")[0][0] == 0
        assert c.get("/agent", follow_redirects=False).headers["location"] == "/login"


def test_repeated_failures_lock_the_user_out_for_a_while(tmp_path: Path) -> None:
    with running_portal(tmp_path, login_max_failures=5, login_lockout_s=300) as portal:
        c = portal.client()
        for _ in range(5):
            r = c.post("/api/session", json={"user": "alice", "password": "guess-guess"})
            assert r.status_code == 401
        r = c.post("/api/session", json={"user": "alice", "password": USERS["alice"][2]})
        assert r.status_code == 429, r.text  # even the right password, while locked
        assert r.headers["retry-after"] == "300" and r.json()["retry_after_s"] == 300
        assert "too many failed logins" in r.json()["error"]
        portal.clock.advance(120)
        r = c.post("/api/session", json={"user": "alice", "password": USERS["alice"][2]})
        assert r.status_code == 429 and r.headers["retry-after"] == "180"
        portal.clock.advance(181)
        r = c.post("/api/session", json={"user": "alice", "password": USERS["alice"][2]})
        assert r.status_code == 200, r.text


def test_failures_from_one_address_lock_that_address_whatever_the_names(
        tmp_path: Path) -> None:
    with running_portal(tmp_path, login_max_failures=5) as portal:
        c = portal.client()
        for name in ("u1", "u2", "u3", "bruno", "u5"):
            assert c.post("/api/session", json={"user": name, "password": "guess-guess"}
                          ).status_code == 401
        r = c.post("/api/session", json={"user": "sam", "password": USERS["sam"][2]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_https_cookies_are_secure_and_host_only(tmp_path: Path) -> None:
    import ssl
    import subprocess

    from web import WebServer, WebSettings, create_app

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    # a throw-away self-signed certificate for 127.0.0.1, only for this test
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    with running_portal(tmp_path) as portal:
        app = create_app(portal.store, portal.directory, portal.clock,
                         WebSettings(session_secret="another-secret-0123456789", https=True))
        with WebServer(app, "127.0.0.1", 0, certfile=cert, keyfile=key) as server:
            assert server.url.startswith("https://127.0.0.1:")
            with httpx.Client(base_url=server.url, timeout=10,
                              verify=ssl.create_default_context(cafile=str(cert))) as c:
                r = c.post("/api/session", json={"user": "alice",
                                                 "password": USERS["alice"][2]})
                assert r.status_code == 200, r.text
                cookie = r.headers["set-cookie"]
                assert cookie.startswith("__Host-homeline=")
                assert "; secure" in cookie.lower() and "domain=" not in cookie.lower()
                assert c.get("/api/me").json()["user"]["name"] == "alice"
            # plain HTTP to the HTTPS port gets no answer from the app
            with httpx.Client(base_url=server.url.replace("https", "http"), timeout=5) as c:
                with pytest.raises(httpx.HTTPError):
                    c.get("/api/me")


def test_session_digest_is_what_the_store_keeps(portal: Portal) -> None:
    """The cookie's token (inside the signed value) hashes to the stored id."""
    import base64
    import json

    c, _ = portal.login("bruno")
    payload = c.cookies["homeline"].split(".")[0]
    token = json.loads(base64.b64decode(payload))["t"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert portal.store.session(digest) is not None
    assert portal.store.session(token) is None
