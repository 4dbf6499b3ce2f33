"""The web app as the composition root wires it to a stack (homeline/webapp.py):
HTTPS with the stack's certificate, the phone in the page for webrtc agents only,
the stack described once in stack.json and attached to from another process.

Real HTTPS over 127.0.0.1 (uvicorn, Python's ssl verifying against the stack's
test CA); no Asterisk is needed for what the web app is told.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from web_testkit import serving_stack

from homeline.stack import PbxStack, Ports, SecureAccess
from homeline.webapp import phone_settings, wss_host
from routing import Directory

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def _directory() -> Directory:
    agent = {"zone": "UTC", "skills": {"billing": 3}, "languages": {"en": 5},
             "windows": ["Wed 05:00-09:00"]}
    return Directory.from_dict({
        "policy": {"ring_timeout_s": 10, "week_zone": "UTC"},
        "queues": {"billing": {"skills": {"billing": 1}, "languages": ["en"], "aht_s": 60}},
        "agents": {"wendy": {**agent, "phone": "webrtc"}, "tom": {**agent, "phone": "tls"},
                   "uma": agent},
    }, source="<test>")


def _stack(tmp_path: Path, **secure: object) -> PbxStack:
    return PbxStack("wiring", _directory(), tmp_path / "state", Ports.free(),
                    secure=SecureAccess(**secure))  # type: ignore[arg-type]


def test_phone_settings_only_for_webrtc_agents(tmp_path: Path) -> None:
    stack = _stack(tmp_path, bind="192.0.2.10", names=("pbx.example.org",))
    phone = phone_settings(stack)
    assert phone is not None
    assert phone.wss_url == f"wss://pbx.example.org:{stack.ports.https}/ws"
    assert phone.sip_domain == "pbx.example.org"
    assert phone.credentials("wendy") == stack.agent_secret("wendy")
    assert phone.credentials("tom") is None and phone.credentials("uma") is None
    # without names: the secure bind; a wildcard bind falls back to loopback
    assert wss_host(_stack(tmp_path / "a", bind="192.0.2.10")) == "192.0.2.10"
    assert wss_host(_stack(tmp_path / "b", bind="0.0.0.0")) == "127.0.0.1"
    # no webrtc agent at all: no phone (the API answers 404)
    none = PbxStack("plain", Directory.from_dict({
        "queues": {"q": {"skills": {}, "languages": ["en"]}},
        "agents": {"uma": {"zone": "UTC", "languages": {"en": 5},
                            "windows": ["Wed 05:00-09:00"]}}},
        source="<t>"), tmp_path / "c", Ports.free())
    assert phone_settings(none) is None


def test_stack_json_round_trip(tmp_path: Path) -> None:
    stack = _stack(tmp_path, bind="192.0.2.10", names=("pbx.example.org", "10.0.0.5"))
    path = stack.save_state()
    again = PbxStack.from_state(path.parent, stack.directory)
    assert (again.name, again.ports, again.secure) == (stack.name, stack.ports, stack.secure)
    assert json.loads(path.read_text())["tls"] == {"cert": None, "key": None, "ca": None}
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a Homeline stack"):
        PbxStack.from_state(path.parent, stack.directory)


def test_web_app_of_a_stack_over_https_gives_each_agent_only_their_phone(
        tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    with serving_stack(stack, tmp_path, {"wendy": ("agent", "wendy"),
                                         "uma": ("agent", "uma")}) as (url, verify):
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=url, verify=verify, timeout=10) as c:
            r = c.post("/api/session", json={"user": "wendy", "password": "wendy-password"})
            assert r.status_code == 200, r.text
            phone = c.get("/api/agents/wendy/phone")
            assert phone.status_code == 200, phone.text
            assert phone.json() == {
                "wss_url": f"wss://127.0.0.1:{stack.ports.https}/ws",
                "sip_uri": "sip:wendy@127.0.0.1", "authorization_user": "wendy",
                "password": stack.agent_secret("wendy"), "ice_servers": []}
            # the CSP lets the page's script reach Asterisk's WSS, nothing else
            csp = phone.headers["content-security-policy"]
            assert f"connect-src 'self' wss://127.0.0.1:{stack.ports.https};" in csp
            assert c.get("/api/agents/uma/phone").status_code == 403  # not hers
        with httpx.Client(base_url=url, verify=verify, timeout=10) as c:
            c.post("/api/session", json={"user": "uma", "password": "uma-password"})
            r = c.get("/api/agents/uma/phone")
            assert r.status_code == 404 and "no WebRTC endpoint" in r.json()["error"]
    assert stack.web is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/login", verify=False, timeout=2)
