"""The Asterisk side of the browser phone: SIP over secure WebSocket (RFC 7118)
on Asterisk's own HTTPS server, as JsSIP will use it. A real websocket client
(the ``websockets`` package) does the handshake with subprotocol ``sip``,
checks the certificate against Homeline's test CA, and registers a webrtc agent
with digest credentials (RFC 3261 section 22, RFC 2617 qop=auth)."""
from __future__ import annotations

import hashlib
import re
import secrets
import ssl

import pytest

from .conftest import wait_for

pytestmark = [pytest.mark.asterisk]

websockets_sync = pytest.importorskip("websockets.sync.client")


def _register(user: str, host: str, cseq: int, call_id: str, tag: str,
              authorization: str = "") -> str:
    # RFC 7118 section 5: Via transport WSS, a Contact in the .invalid domain
    # (the client has no reachable address of its own), one message per frame
    lines = [
        f"REGISTER sip:{host} SIP/2.0",
        f"Via: SIP/2.0/WSS homeline-test.invalid;branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"To: <sip:{user}@{host}>",
        f"From: <sip:{user}@{host}>;tag={tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@homeline-test.invalid;transport=ws>",
        "Expires: 300",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return "\r\n".join([*lines, "Content-Length: 0", "", ""])


def _digest(user: str, password: str, challenge: str, uri: str) -> str:
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
    realm, nonce = params["realm"], params["nonce"]
    cnonce, nc = secrets.token_hex(8), "00000001"
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"REGISTER:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    opaque = f', opaque="{params["opaque"]}"' if "opaque" in params else ""
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
            f"{opaque}")


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} header in {message!r}")


def test_wss_transport_answers_register_with_a_challenge_then_registers(live_factory):
    live = live_factory({"wendy": {"phone": "webrtc"}}, engine=False)
    stack = live.stack
    endpoint = stack.instance.cli("pjsip show endpoint wendy")
    assert re.search(r"webrtc\s*:\s*yes", endpoint), endpoint
    assert re.search(r"media_encryption\s*:\s*dtls", endpoint), endpoint
    assert re.search(r"ice_support\s*:\s*true", endpoint), endpoint

    ctx = ssl.create_default_context(cafile=str(stack.tls_files().cafile))
    url = f"wss://127.0.0.1:{stack.ports.https}/ws"
    host = "127.0.0.1"
    call_id, tag = secrets.token_hex(10), secrets.token_hex(4)
    with websockets_sync.connect(url, ssl=ctx, subprotocols=["sip"],  # type: ignore[list-item]
                                 open_timeout=5) as ws:
        assert ws.subprotocol == "sip"
        ws.send(_register("wendy", host, 1, call_id, tag))
        challenge = str(ws.recv(timeout=5))
        assert challenge.startswith("SIP/2.0 401 "), challenge
        www = _header(challenge, "WWW-Authenticate")
        assert www.startswith("Digest ") and "nonce=" in www, www
        assert "WSS" in _header(challenge, "Via")

        auth = _digest("wendy", stack.agent_secret("wendy"), www, f"sip:{host}")
        ws.send(_register("wendy", host, 2, call_id, tag, auth))
        answer = str(ws.recv(timeout=5))
        assert answer.startswith("SIP/2.0 200 "), answer
        assert wait_for(lambda: "transport=ws" in stack.instance.cli("pjsip show contacts"), 5)
    # the plain-HTTP server is off: only the TLS port listens
    from homeline.pbx.process import bound_ports

    tcp = bound_ports(stack.instance.pid())["tcp"]
    assert ("127.0.0.1", stack.ports.https) in tcp
    assert all(port != 8088 for _addr, port in tcp), tcp
