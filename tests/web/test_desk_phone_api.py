"""The desk's phone in the page over real HTTP: who gets which SIP credentials.

A supervisor whose own endpoint is ``phone: webrtc`` (dialplans/supervisors.yaml)
gets the desk's phone section and, from ``GET /api/desk/phone``, their own
credentials only; a udp/tls supervisor's password never reaches a browser (404),
an agent never gets a supervisor's (403), nor a supervisor an agent's (403). The
stack's wiring (homeline/webapp.py ``phone_settings``) is checked over real HTTPS.
"""
from __future__ import annotations

from pathlib import Path

import httpx
from web_testkit import NOW, Portal, running_portal, serving_stack

from homeline.stack import PbxStack, Ports
from homeline.supervisors import Supervisor
from homeline.webapp import phone_settings
from routing import Directory
from web import Passwords, PhoneSettings

PHONE = PhoneSettings("wss://pbx.example.org:8089/ws", "pbx.example.org",
                      lambda a: "alice-sip" if a == "alice" else None,
                      supervisor_credentials=lambda u: "sam-sip" if u == "sam" else None)
SECRETS = ("alice-sip", "sam-sip")


def _tess(portal: Portal) -> httpx.Client:
    """tess: a supervisor whose own phone is a udp softphone (no browser phone)."""
    portal.store.add_user("tess", "supervisor", None, Passwords().hash("tess-password"), NOW)
    c = portal.client()
    assert c.post("/api/session", json={"user": "tess", "password": "tess-password"}
                  ).status_code == 200
    return c


def test_a_webrtc_supervisor_gets_their_own_credentials_and_nobody_else_does(
        tmp_path: Path) -> None:
    with running_portal(tmp_path, phone=PHONE, supervisors=("sam", "tess")) as portal:
        sam, _ = portal.login("sam")
        r = sam.get("/api/desk/phone")
        assert r.status_code == 200, r.text
        assert r.json() == {"wss_url": "wss://pbx.example.org:8089/ws",
                            "sip_uri": "sip:sam@pbx.example.org",
                            "authorization_user": "sam", "password": "sam-sip",
                            "ice_servers": []}
        assert r.headers["cache-control"] == "no-store"
        # the desk page has the phone, which fetches the credential: never in the HTML
        page = sam.get("/supervisor")
        assert page.status_code == 200
        assert '<section id="phone" data-config="/api/desk/phone">' in page.text
        assert '<script src="/static/phone.js" defer></script>' in page.text
        assert "the WebRTC phone in this page" in page.text
        assert not any(s in page.text for s in SECRETS)
        assert "connect-src 'self' wss://pbx.example.org:8089;" in \
            page.headers["content-security-policy"]
        # a supervisor is not an agent: an agent's phone stays the agent's
        assert sam.get("/api/agents/alice/phone").status_code == 403

        # agents never get a supervisor's credentials (nor the desk's phone section)
        alice, _ = portal.login("alice")
        r = alice.get("/api/desk/phone")
        assert r.status_code == 403 and "for supervisors and admins" in r.json()["error"]
        assert "sam-sip" not in r.text
        assert alice.get("/api/agents/alice/phone").json()["password"] == "alice-sip"
        agent_page = alice.get("/agent").text
        assert '<section id="phone" data-config="/api/agents/alice/phone">' in agent_page
        assert not any(s in agent_page for s in SECRETS)

        # a supervisor whose phone is udp/tls: no browser phone, the password stays put
        tess = _tess(portal)
        r = tess.get("/api/desk/phone")
        assert r.status_code == 404 and "no WebRTC phone of their own" in r.json()["error"]
        desk = tess.get("/supervisor").text
        assert 'id="phone"' not in desk and "/static/phone.js" not in desk
        assert "PJSIP/tess" in desk  # still rung on their own softphone
        # an admin with no endpoint of their own: none either
        ada, _ = portal.login("ada")
        assert ada.get("/api/desk/phone").status_code == 404
        assert 'id="phone"' not in ada.get("/supervisor").text
        # not logged in
        anon = portal.client()
        assert anon.get("/api/desk/phone").status_code == 401
        assert anon.get("/supervisor", follow_redirects=False).status_code == 303


def test_no_phone_in_the_page_configured_means_none_on_the_desk(tmp_path: Path) -> None:
    with running_portal(tmp_path, supervisors=("sam",)) as portal:
        sam, _ = portal.login("sam")
        r = sam.get("/api/desk/phone")
        assert r.status_code == 404 and "no WebRTC phone" in r.json()["error"]
        page = sam.get("/supervisor").text
        assert 'id="phone"' not in page and "PJSIP/sam" in page


def _directory(agent_phone: str) -> Directory:
    return Directory.from_dict({
        "policy": {"ring_timeout_s": 10, "week_zone": "UTC"},
        "queues": {"billing": {"skills": {"billing": 1}, "languages": ["en"], "aht_s": 60}},
        "agents": {"wendy": {"zone": "UTC", "skills": {"billing": 3}, "languages": {"en": 5},
                             "windows": ["Wed 05:00-09:00"], "phone": agent_phone}},
    }, source="<test>")


def test_the_stack_gives_the_browser_only_webrtc_supervisors_passwords(tmp_path: Path) -> None:
    supervisors = (Supervisor("sam", "Sam Lead", "webrtc"), Supervisor("tess", "Tess", "udp"),
                   Supervisor("tim", "Tim", "tls"))
    # no webrtc agent, one webrtc supervisor: the phone in the page is on (for the desk)
    stack = PbxStack("deskphone", _directory("udp"), tmp_path / "state", Ports.free(),
                     supervisors=supervisors)
    phone = phone_settings(stack)
    assert phone is not None
    assert phone.wss_url == f"wss://127.0.0.1:{stack.ports.https}/ws"
    assert phone.supervisor_credentials("sam") == stack.agent_secret("sam")
    assert phone.supervisor_credentials("tess") is None
    assert phone.supervisor_credentials("tim") is None
    assert phone.supervisor_credentials("wendy") is None  # an agent is not a supervisor
    assert phone.credentials("sam") is None  # nor a supervisor an agent
    assert phone.credentials("wendy") is None  # a udp agent
    # nobody on webrtc: no phone in the page at all
    plain = PbxStack("plain", _directory("udp"), tmp_path / "plain", Ports.free(),
                     supervisors=supervisors[1:])
    assert phone_settings(plain) is None

    users = {"sam": ("supervisor", None), "tess": ("supervisor", None)}
    with serving_stack(stack, tmp_path, users) as (url, verify):
        for user, status in (("sam", 200), ("tess", 404)):
            with httpx.Client(base_url=url, verify=verify, timeout=10) as c:
                r = c.post("/api/session", json={"user": user, "password": f"{user}-password"})
                assert r.status_code == 200, r.text
                r = c.get("/api/desk/phone")
                assert r.status_code == status, r.text
                if user == "sam":
                    assert r.json() == {
                        "wss_url": f"wss://127.0.0.1:{stack.ports.https}/ws",
                        "sip_uri": "sip:sam@127.0.0.1", "authorization_user": "sam",
                        "password": stack.agent_secret("sam"), "ice_servers": []}
                else:  # tess's udp password reaches neither the API nor her page
                    assert stack.agent_secret("tess") not in r.text
                    assert stack.agent_secret("tess") not in c.get("/supervisor").text

