"""Blocking addresses that keep failing to authenticate: the rules, and the
reading of Asterisk's security events. Pure: no socket, file, thread or clock.

Asterisk reports every failed authentication as an AMI event of class
``security`` (Asterisk wiki "Asterisk Security Event Logger"; res_pjsip raises
them in res_pjsip/security_events.c):

- ``InvalidAccountID``: a request from someone no endpoint is identified for
  (an unknown user name), answered by the artificial endpoint's challenge;
- ``ChallengeResponseFailed``: a known endpoint, digest response wrong
  (RFC 3261 section 22.4: a wrong password);
- ``InvalidPassword``: the same, as some channel drivers name it.

``RemoteAddress`` is ``IPV4/<transport>/<address>/<port>`` (or ``IPV6/...``).
Each refused request counts once. An unknown user's REGISTER with credentials
is reported twice, as InvalidAccountID and then as ChallengeResponseFailed for
``AccountID: <unknown>`` (the artificial endpoint, res_pjsip
pjsip_distributor.c); the second report is not counted. Seen on Asterisk 22.10:
an unknown user's try (REGISTER, 401, REGISTER with credentials, 401) counts
2, a wrong password's 1 (the first REGISTER of a known user is only challenged).
An address with ``max_failures`` failures within ``window_s`` seconds is
blocked for ``block_s`` seconds (:class:`FailureGuard`); loopback is never
blocked (the PBX's own callers and tests live there).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["AUTH_FAILURE_EVENTS", "AddressBlocked", "AddressUnblocked", "AuthFailure",
           "FailureGuard", "GuardRules", "acl_text", "auth_failure"]

AUTH_FAILURE_EVENTS = ("InvalidAccountID", "ChallengeResponseFailed", "InvalidPassword")


@dataclass(frozen=True, slots=True)
class GuardRules:
    """How many failures from one address, within how long, block it for how long."""

    max_failures: int = 5
    window_s: float = 60.0
    block_s: float = 600.0
    never_block: tuple[str, ...] = ("127.0.0.1", "::1")

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError(f"max_failures: {self.max_failures} must be at least 1")
        if self.window_s <= 0 or self.block_s <= 0:
            raise ValueError(f"window_s ({self.window_s}) and block_s ({self.block_s}) "
                             "must be positive")


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """One failed authentication, as Asterisk reported it."""

    address: str
    account: str
    event: str
    transport: str
    session: str = ""  # Asterisk's SessionID: the SIP Call-ID


@dataclass(frozen=True, slots=True)
class AddressBlocked:
    address: str
    until: datetime
    failures: int


@dataclass(frozen=True, slots=True)
class AddressUnblocked:
    address: str


def auth_failure(name: str, fields: Mapping[str, str]) -> AuthFailure | None:
    """The failure an AMI security event reports, or None for any other event.

    Raises ``ValueError`` for a failure event whose RemoteAddress is not
    ``IPV4|IPV6/<transport>/<address>/<port>`` (a protocol violation).
    """
    if name not in AUTH_FAILURE_EVENTS:
        return None
    if name == "ChallengeResponseFailed" and fields.get("AccountID") == "<unknown>":
        return None  # the artificial endpoint: already reported as InvalidAccountID
    remote = fields.get("RemoteAddress", "")
    parts = remote.split("/")
    if len(parts) != 4 or parts[0] not in ("IPV4", "IPV6"):
        raise ValueError(f"{name}: RemoteAddress {remote!r} is not "
                         "IPV4|IPV6/<transport>/<address>/<port>")
    try:
        address = str(ipaddress.ip_address(parts[2].strip("[]")))
    except ValueError as exc:
        raise ValueError(f"{name}: RemoteAddress {remote!r}: {exc}") from exc
    return AuthFailure(address, fields.get("AccountID", ""), name, parts[1].upper(),
                       fields.get("SessionID", ""))


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime, got naive {now.isoformat()}")
    return now


@dataclass(slots=True)
class _Address:
    failures: list[datetime] = field(default_factory=list)
    blocked_until: datetime | None = None


class FailureGuard:
    """Counts failures per address; says when to block and when to let go."""

    def __init__(self, rules: GuardRules | None = None) -> None:
        self.rules = rules or GuardRules()
        self._seen: dict[str, _Address] = {}

    def failed(self, failure: AuthFailure, now: datetime) -> list[AddressBlocked]:
        """Record ``failure``; an :class:`AddressBlocked` when it crosses the limit."""
        now = _aware(now)
        if failure.address in self.rules.never_block:
            return []
        entry = self._seen.setdefault(failure.address, _Address())
        if entry.blocked_until is not None:
            return []  # already blocked (a request in flight when the ACL changed)
        since = now - timedelta(seconds=self.rules.window_s)
        entry.failures = [t for t in entry.failures if t > since] + [now]
        if len(entry.failures) < self.rules.max_failures:
            return []
        entry.blocked_until = now + timedelta(seconds=self.rules.block_s)
        count, entry.failures = len(entry.failures), []
        return [AddressBlocked(failure.address, entry.blocked_until, count)]

    def expire(self, now: datetime) -> list[AddressUnblocked]:
        """Unblock the addresses whose time is up (in address order); forget
        addresses whose failures all fell out of the window."""
        now = _aware(now)
        since = now - timedelta(seconds=self.rules.window_s)
        out = []
        for address in sorted(self._seen):
            entry = self._seen[address]
            if entry.blocked_until is not None and entry.blocked_until <= now:
                entry.blocked_until = None
                out.append(AddressUnblocked(address))
            entry.failures = [t for t in entry.failures if t > since]
            if entry.blocked_until is None and not entry.failures:
                del self._seen[address]
        return out

    def blocked(self) -> tuple[str, ...]:
        return tuple(sorted(a for a, e in self._seen.items() if e.blocked_until is not None))

    def next_wake(self) -> datetime | None:
        """When :meth:`expire` next has something to do (None: nothing pending)."""
        times = [e.blocked_until for e in self._seen.values() if e.blocked_until is not None]
        times += [e.failures[0] + timedelta(seconds=self.rules.window_s)
                  for e in self._seen.values() if e.failures]
        return min(times) if times else None


def acl_text(blocked: tuple[str, ...], section: str = "homeline-blocked") -> str:
    """pjsip-blocked.conf for ``blocked`` addresses: one res_pjsip_acl ``type=acl``
    section of ``deny`` rules (Asterisk ACLs allow what no rule denies: Asterisk
    wiki "Named ACLs"). No addresses: no section at all."""
    lines = ["; pjsip-blocked.conf written by the SIP guard (homeline/sip_guard.py):",
             "; addresses with repeated failed registrations, blocked for a while."]
    if blocked:
        lines += ["", f"[{section}]", "type=acl"]
        for address in blocked:
            ip = ipaddress.ip_address(address)
            lines.append(f"deny={ip}/{ip.max_prefixlen}")
    return "\n".join(lines) + "\n"
