"""The SIP guard's rules and its reading of Asterisk's security events (pure)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice.sip_guard import (
    AddressBlocked,
    AddressUnblocked,
    AuthFailure,
    FailureGuard,
    GuardRules,
    acl_text,
    auth_failure,
)

T0 = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)

# Recorded from Asterisk 22.10.1+dfsg+~cs6.17.60671434-1 (Debian sid), AMI user
# with read=security, one pjsua2 REGISTER over TLS each (tests/integration/
# test_secure_sip.py): an unknown user ("mallory") and a known one with a wrong
# password. Challenge/Response/Nonce values shortened.
UNKNOWN_USER = [
    ("InvalidAccountID", {
        "Privilege": "security,all", "EventTV": "2026-12-01T11:10:59.789+0000",
        "Severity": "Error", "Service": "PJSIP", "EventVersion": "1", "AccountID": "mallory",
        "SessionID": "4cb9ff08-3821-4bdb-b148-80e0156baf4f",
        "LocalAddress": "IPV4/TLS/127.0.0.1/46821", "RemoteAddress": "IPV4/TLS/127.0.0.2/34593"}),
    ("InvalidAccountID", {
        "Privilege": "security,all", "EventTV": "2026-12-01T11:10:59.789+0000",
        "Severity": "Error", "Service": "PJSIP", "EventVersion": "1", "AccountID": "mallory",
        "SessionID": "4cb9ff08-3821-4bdb-b148-80e0156baf4f",
        "LocalAddress": "IPV4/TLS/127.0.0.1/46821", "RemoteAddress": "IPV4/TLS/127.0.0.2/34593"}),
    ("ChallengeResponseFailed", {
        "Privilege": "security,all", "EventTV": "2026-12-01T11:10:59.789+0000",
        "Severity": "Error", "Service": "PJSIP", "EventVersion": "1", "AccountID": "<unknown>",
        "SessionID": "4cb9ff08-3821-4bdb-b148-80e0156baf4f",
        "LocalAddress": "IPV4/TLS/127.0.0.1/46821", "RemoteAddress": "IPV4/TLS/127.0.0.2/34593",
        "Challenge": "1796123459/4b3fe28c", "Response": "acf88293", "ExpectedResponse": ""}),
]
WRONG_PASSWORD = ("ChallengeResponseFailed", {
    "Privilege": "security,all", "EventTV": "2026-12-01T11:11:00.805+0000", "Severity": "Error",
    "Service": "PJSIP", "EventVersion": "1", "AccountID": "amy",
    "SessionID": "8a756e9a-7c9a-4be8-8163-10902e8863c3",
    "LocalAddress": "IPV4/TLS/127.0.0.1/46821", "RemoteAddress": "IPV4/TLS/127.0.0.2/34593",
    "Challenge": "1796123460/31c0c93c", "Response": "5d1e0c1a", "ExpectedResponse": ""})


def _failure(address: str = "192.0.2.7") -> AuthFailure:
    return AuthFailure(address, "amy", "ChallengeResponseFailed", "TLS")


def test_recorded_events_count_each_refused_request_once():
    failures = [auth_failure(name, fields) for name, fields in [*UNKNOWN_USER, WRONG_PASSWORD]]
    assert failures == [
        AuthFailure("127.0.0.2", "mallory", "InvalidAccountID", "TLS",
                    "4cb9ff08-3821-4bdb-b148-80e0156baf4f"),
        AuthFailure("127.0.0.2", "mallory", "InvalidAccountID", "TLS",
                    "4cb9ff08-3821-4bdb-b148-80e0156baf4f"),
        None,  # the artificial endpoint's second report of the same refusal
        AuthFailure("127.0.0.2", "amy", "ChallengeResponseFailed", "TLS",
                    "8a756e9a-7c9a-4be8-8163-10902e8863c3"),
    ]


def test_other_events_are_not_failures_and_bad_addresses_are_errors():
    assert auth_failure("SuccessfulAuth", {"RemoteAddress": "IPV4/UDP/192.0.2.1/5060"}) is None
    assert auth_failure("ChallengeSent", {"RemoteAddress": "IPV4/UDP/192.0.2.1/5060"}) is None
    v6 = auth_failure("InvalidPassword", {"RemoteAddress": "IPV6/UDP/2001:db8::1/5060",
                                           "AccountID": "x"})
    assert v6 == AuthFailure("2001:db8::1", "x", "InvalidPassword", "UDP")
    for bad in ("", "IPV4/UDP/192.0.2.1", "IPX/UDP/192.0.2.1/5060", "IPV4/UDP/not-an-ip/5060"):
        with pytest.raises(ValueError, match="RemoteAddress"):
            auth_failure("InvalidAccountID", {"RemoteAddress": bad})


def test_the_limit_within_the_window_blocks_and_the_block_expires():
    guard = FailureGuard(GuardRules(max_failures=3, window_s=60, block_s=600))
    assert guard.failed(_failure(), T0) == []
    assert guard.failed(_failure(), T0 + timedelta(seconds=10)) == []
    assert guard.blocked() == ()
    blocked = guard.failed(_failure(), T0 + timedelta(seconds=20))
    assert blocked == [AddressBlocked("192.0.2.7", T0 + timedelta(seconds=620), 3)]
    assert guard.blocked() == ("192.0.2.7",)
    assert guard.next_wake() == T0 + timedelta(seconds=620)
    # failures while blocked change nothing (requests that were in flight)
    assert guard.failed(_failure(), T0 + timedelta(seconds=30)) == []
    assert guard.expire(T0 + timedelta(seconds=619)) == []
    assert guard.expire(T0 + timedelta(seconds=620)) == [AddressUnblocked("192.0.2.7")]
    assert guard.blocked() == () and guard.next_wake() is None


def test_failures_outside_the_window_do_not_add_up():
    guard = FailureGuard(GuardRules(max_failures=2, window_s=60, block_s=600))
    assert guard.failed(_failure(), T0) == []
    assert guard.next_wake() == T0 + timedelta(seconds=60)  # when it is forgotten
    assert guard.failed(_failure(), T0 + timedelta(seconds=61)) == []
    assert guard.expire(T0 + timedelta(seconds=200)) == []
    assert guard.next_wake() is None  # nothing left to remember


def test_addresses_are_counted_apart_and_loopback_never_blocked():
    guard = FailureGuard(GuardRules(max_failures=1, window_s=60, block_s=60))
    assert guard.failed(_failure("127.0.0.1"), T0) == []
    assert guard.failed(_failure("::1"), T0) == []
    assert [b.address for b in guard.failed(_failure("198.51.100.2"), T0)] == ["198.51.100.2"]
    assert [b.address for b in guard.failed(_failure("192.0.2.7"), T0)] == ["192.0.2.7"]
    assert guard.blocked() == ("192.0.2.7", "198.51.100.2")  # sorted, not in arrival order
    unblocked = guard.expire(T0 + timedelta(seconds=60))
    assert unblocked == [AddressUnblocked("192.0.2.7"), AddressUnblocked("198.51.100.2")]


def test_naive_times_and_senseless_rules_are_refused():
    with pytest.raises(ValueError, match="aware"):
        FailureGuard().failed(_failure(), datetime(2026, 12, 1, 11, 0))
    with pytest.raises(ValueError, match="max_failures"):
        GuardRules(max_failures=0)
    with pytest.raises(ValueError, match="positive"):
        GuardRules(block_s=0)


def test_acl_text_is_a_deny_list_or_nothing():
    assert "[" not in acl_text(())
    text = acl_text(("192.0.2.7", "2001:db8::1"))
    assert "[homeline-blocked]\ntype=acl\ndeny=192.0.2.7/32\ndeny=2001:db8::1/128\n" in text


@given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=40))
def test_blocked_exactly_when_the_limit_is_reached_within_the_window(offsets):
    rules = GuardRules(max_failures=4, window_s=60, block_s=30)
    guard = FailureGuard(rules)
    times: list[datetime] = []
    for offset in sorted(offsets):
        now = T0 + timedelta(seconds=offset)
        guard.expire(now)
        was_blocked = bool(guard.blocked())
        decided = guard.failed(_failure(), now)
        if not was_blocked:
            times = [t for t in times if t > now - timedelta(seconds=60)] + [now]
            assert bool(decided) == (len(times) >= 4)
            if decided:
                times = []
        else:
            assert decided == []
