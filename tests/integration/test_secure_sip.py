"""Agents at home: SIP over TLS with SRTP, refused strangers, blocked guessers.

Real parts only: a real Asterisk (TLS transport rendered from the templates,
the certificate from homeline/certs.py), real pjsua2 phones over TLS, real
calls routed by the engine, audio proven both ways with the DTMF probe.
"""
from __future__ import annotations

import pytest

from homeline.demo import DemoCall, place_call
from softphone import AgentPhone, RegistrationError, SoftphoneHost
from voice.sip_guard import GuardRules

from .conftest import Live, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]


def tls_agent(live: Live, agent_id: str, **kwargs: object) -> AgentPhone:
    phone = AgentPhone(live.host, agent_id, server=f"127.0.0.1:{live.stack.ports.tls}",
                       password=live.stack.agent_secret(agent_id),
                       tls_ca_file=live.stack.tls_files().cafile, **kwargs)  # type: ignore[arg-type]
    live.phones[agent_id] = phone
    phone.wait_registered(10)
    return phone


def test_tls_agent_takes_a_routed_call_with_srtp_and_audio_both_ways(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 4}, "phone": "tls"}})
    phone = tls_agent(live, "amy", answer_delay=0.3)
    live.wait_registered("amy")
    contacts = live.stack.instance.cli("pjsip show contacts")
    assert "transport=tls" in contacts.lower(), contacts

    record = place_call(DemoCall("+15550301", "1", "billing", "en"), live.host, live.engine,
                        {"amy": phone}, live.stack.ports.sip, live.work, set())
    assert record["agent"] == "amy", record
    assert record["audio_verified"] is True, record.get("audio")
    assert record["ok"] is True, record
    assert wait_for(lambda: live.channel_count() == 0, 10)


def _attempt(host, user: str, password: str, live: Live) -> tuple[int, str]:
    """One REGISTER over TLS with these credentials; the registrar's final answer."""
    phone = AgentPhone(host, user, server=f"127.0.0.1:{live.stack.ports.tls}",
                       password=password, tls_ca_file=live.stack.tls_files().cafile)
    try:
        try:
            phone.wait_registered(10)
        except RegistrationError as exc:
            return exc.status, exc.reason
        return 200, "OK"
    finally:
        phone.close()


def test_strangers_are_refused_and_repeated_failures_block_the_address(live_factory):
    live = live_factory({"amy": {"phone": "tls"}}, engine=False)
    # the test's own phones must come from an address that is not loopback's
    # 127.0.0.1 (never blocked, and matched by the callers' identify section)
    live.host.close()
    guard = live.stack.start_guard(GuardRules(max_failures=4, window_s=30, block_s=4))
    with SoftphoneHost(bind="127.0.0.2") as host:
        secret = live.stack.agent_secret("amy")
        # an unknown user and a wrong password get the same answer (no way to
        # learn which user names exist: the artificial endpoint's challenge)
        assert _attempt(host, "mallory", "guess", live)[0] == 401
        assert _attempt(host, "amy", "wrong-password", live)[0] == 401
        # an unknown user's try counts two refused REGISTERs, a wrong password one
        assert wait_for(lambda: len(guard.failures) >= 3, 5), guard.failures
        assert [(f.address, f.event, f.account) for f in guard.failures] == [
            ("127.0.0.2", "InvalidAccountID", "mallory"),
            ("127.0.0.2", "InvalidAccountID", "mallory"),
            ("127.0.0.2", "ChallengeResponseFailed", "amy")]
        assert guard.blocked() == ()
        assert _attempt(host, "amy", "wrong-again", live)[0] == 401
        assert wait_for(lambda: guard.blocked() == ("127.0.0.2",), 5), guard.failures
        assert wait_for(lambda: guard.actions, 5)
        blocked_conf = (live.stack.instance.etc_dir / "pjsip-blocked.conf").read_text()
        assert "type=acl" in blocked_conf and "deny=127.0.0.2/32" in blocked_conf
        # blocked: even the right password is refused now (res_pjsip_acl: 403)
        status, reason = _attempt(host, "amy", secret, live)
        assert status == 403, (status, reason)
        # the block lifts by itself after block_s; then the right password works
        assert wait_for(lambda: guard.blocked() == (), 10)
        assert wait_for(lambda: len(guard.actions) == 2, 5), guard.actions
        assert _attempt(host, "amy", secret, live) == (200, "OK")
    assert guard.errors == []
