"""The secure half of the rendered configuration: TLS and WSS transports, the
HTTPS server, endpoints per phone kind, the guard's AMI user."""
from __future__ import annotations

import re

import pytest

from homeline.pbx.render import AgentLine, RenderError, RenderSettings, render_config

KEYS = dict(tls_cert_file="/srv/homeline/x/etc/keys/server.pem",
            tls_key_file="/srv/homeline/x/etc/keys/server-key.pem",
            tls_ca_file="/srv/homeline/x/etc/keys/ca.pem")
AGENTS = [AgentLine("amy", "Amy", "udp"), AgentLine("bob", "Bob", "tls"),
          AgentLine("wen", "Wen", "webrtc")]


def _settings(**over: object) -> RenderSettings:
    base: dict[str, object] = dict(sip_port=5060, ami_port=5038, agi_port=4573,
                                   ami_secret="s3cret", guard_secret="g0ard",
                                   agent_secrets={"amy": "a", "bob": "b", "wen": "w"},
                                   secure_bind="192.0.2.10", **KEYS)
    base.update(over)
    return RenderSettings(**base)  # type: ignore[arg-type]


def _section(text: str, name: str) -> str:
    match = re.search(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert match, f"no [{name}] in\n{text}"
    return match.group(1)


def test_tls_and_wss_on_the_secure_address_udp_stays_on_loopback():
    files = render_config(_settings(), AGENTS)
    pjsip = files["pjsip.conf"]
    assert "bind=127.0.0.1:5060" in _section(pjsip, "homeline-udp")
    tls = _section(pjsip, "homeline-tls")
    for line in ("protocol=tls", "bind=192.0.2.10:5061", "method=sslv23",
                 f"cert_file={KEYS['tls_cert_file']}", f"priv_key_file={KEYS['tls_key_file']}"):
        assert line in tls
    assert "protocol=wss" in _section(pjsip, "homeline-wss")
    # no anonymous endpoint and no anonymous identifier
    assert "endpoint_identifier_order=username,ip\n" in pjsip
    assert not re.search(r"^\[anonymous\]", pjsip, re.M)
    assert "#include pjsip-blocked.conf" in pjsip
    http = files["http.conf"]
    assert "tlsenable=yes" in http and "tlsbindaddr=192.0.2.10:8089" in http
    assert not re.search(r"^bindaddr=", http, re.M)  # no plain-HTTP listener
    assert "noload => res_http_websocket.so" not in files["modules.conf"]
    assert "noload => res_ari.so" in files["modules.conf"]


def test_each_agent_gets_the_endpoint_of_its_phone_kind():
    pjsip = render_config(_settings(), AGENTS)["pjsip.conf"]
    assert "[amy](homeline-agent-endpoint)" in pjsip
    assert "[bob](homeline-agent-endpoint-tls)" in pjsip
    assert "[wen](homeline-agent-endpoint-webrtc)" in pjsip
    tls = _section(pjsip, "homeline-agent-endpoint-tls")
    for line in ("transport=homeline-tls", "media_encryption=sdes",
                 "media_encryption_optimistic=no", "media_address=192.0.2.10"):
        assert line in tls
    webrtc = _section(pjsip, "homeline-agent-endpoint-webrtc")
    for line in ("transport=homeline-wss", "webrtc=yes",
                 f"dtls_cert_file={KEYS['tls_cert_file']}"):
        assert line in webrtc
    common = _section(pjsip, "homeline-agent-common")
    for line in ("rtp_symmetric=yes", "force_rport=yes", "rewrite_contact=yes"):
        assert line in common
    assert "media_address=127.0.0.1" in _section(pjsip, "homeline-agent-endpoint")


def test_a_wildcard_secure_address_pins_no_media_address():
    pjsip = render_config(_settings(secure_bind="0.0.0.0"), AGENTS)["pjsip.conf"]
    assert "media_address" not in _section(pjsip, "homeline-agent-endpoint-tls")
    assert "bind=0.0.0.0:5061" in _section(pjsip, "homeline-tls")


def test_without_a_certificate_there_is_no_tls_and_no_secure_agent():
    files = render_config(_settings(tls_cert_file="", tls_key_file="", tls_ca_file=""),
                          AGENTS[:1])
    assert "[homeline-tls]" not in files["pjsip.conf"]
    assert "enabled=no" in files["http.conf"]
    with pytest.raises(RenderError, match="bob: phone tls needs a TLS certificate"):
        render_config(_settings(tls_cert_file="", tls_key_file="", tls_ca_file=""), AGENTS)
    with pytest.raises(RenderError, match="phone 'sip' must be one of udp, tls, webrtc"):
        render_config(_settings(), [AgentLine("amy", "Amy", "sip")])


def test_the_guard_user_reads_security_events_only():
    manager = render_config(_settings(), AGENTS)["manager.conf"]
    guard = _section(manager, "homeline-guard")
    assert "read=security\n" in guard and "write=\n" in guard
    assert "permit=127.0.0.1/255.255.255.255" in guard
    assert "eventfilter(action(include),name(InvalidAccountID))=" in guard
    engine = _section(manager, "homeline")
    assert "read=call,reporting,user\n" in engine
