"""The SIP guard: blocks addresses with repeated failed registrations.

Runs beside the Asterisk instance it guards (``PbxStack.start_guard``; `homeline
engine run` starts it for the main instance). It reads Asterisk's security
events over AMI as its own user (``read=security``, nothing else, no write
class: manager-guard.conf.tmpl), counts them with the pure rules of
:mod:`voice.sip_guard`, and carries out each block or unblock in the way
Asterisk itself offers: it rewrites the instance's ``pjsip-blocked.conf`` (a
res_pjsip_acl ``type=acl`` section, #included by pjsip.conf) and reloads
res_pjsip through the instance's CLI socket. res_pjsip_acl then answers every
request from a blocked address with 403 Forbidden (and a FailedACL event);
reloading res_pjsip does not touch transports (no ``allow_reload``), so calls
and TLS connections in progress stay up.

Why not fail2ban or a firewall: both are outside Homeline's reach (no netfilter
rules from a test or a PBX), and Asterisk's ACL is the layer that sees SIP.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from voice.ami import AmiConnection, AmiEvent
from voice.sip_guard import (
    AddressBlocked,
    AddressUnblocked,
    AuthFailure,
    FailureGuard,
    GuardRules,
    acl_text,
    auth_failure,
)

__all__ = ["SipGuard", "BLOCKED_FILE"]

log = logging.getLogger("homeline.sip_guard")

BLOCKED_FILE = "pjsip-blocked.conf"


class SipGuard:
    """Security events in, ACL changes out, for one Asterisk instance."""

    def __init__(self, instance: Any, *, ami_port: int, user: str, secret: str,
                 rules: GuardRules | None = None, ami_host: str = "127.0.0.1",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.instance = instance
        self.guard = FailureGuard(rules)
        self._clock = clock
        self._lock = threading.Condition()
        self._pending: list[AuthFailure] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failures: list[AuthFailure] = []  # every failure seen, oldest first
        self.actions: list[AddressBlocked | AddressUnblocked] = []
        self.errors: list[str] = []
        self._ami = AmiConnection(ami_host, ami_port, user, secret, on_event=self._on_event)

    def start(self, wait_s: float = 10.0) -> None:
        self._write(())
        self._thread = threading.Thread(target=self._run, name="sip-guard", daemon=True)
        self._thread.start()
        self._ami.start(wait_s)

    def stop(self) -> None:
        self._ami.stop()
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def blocked(self) -> tuple[str, ...]:
        with self._lock:
            return self.guard.blocked()

    # -- AMI reader thread ---------------------------------------------------------
    def _on_event(self, event: AmiEvent) -> None:
        try:
            failure = auth_failure(event.name, event.fields)
        except ValueError as exc:
            self.errors.append(str(exc))
            log.warning("SIP guard: %s", exc)
            return
        if failure is None:
            return
        with self._lock:
            self._pending.append(failure)
            self._lock.notify_all()

    # -- the guard's own thread: decisions and their execution --------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                wake = self.guard.next_wake()
                timeout = None if wake is None else max(
                    0.0, (wake - self._clock()).total_seconds())
                if not self._pending and not self._stopping:
                    self._lock.wait(timeout)
                if self._stopping:
                    return
                pending, self._pending = self._pending, []
                now = self._clock()
                changes: list[AddressBlocked | AddressUnblocked] = []
                for failure in pending:
                    self.failures.append(failure)
                    changes += self.guard.failed(failure, now)
                changes += self.guard.expire(now)
                blocked = self.guard.blocked()
            if changes:
                self._carry_out(changes, blocked)

    def _carry_out(self, changes: list[AddressBlocked | AddressUnblocked],
                   blocked: tuple[str, ...]) -> None:
        for change in changes:
            match change:
                case AddressBlocked():
                    log.warning("SIP guard: blocking %s until %s after %d failed "
                                "authentications", change.address,
                                change.until.isoformat(timespec="seconds"), change.failures)
                case AddressUnblocked():
                    log.info("SIP guard: %s unblocked", change.address)
        try:
            self._write(blocked)
            self.instance.cli("module reload res_pjsip.so", timeout=15)
        except Exception as exc:  # noqa: BLE001 - reported; the guard keeps running
            self.errors.append(f"cannot apply the ACL {blocked}: {exc}")
            log.error("SIP guard: cannot apply the ACL %s: %s", blocked, exc)
            return
        self.actions.extend(changes)

    def _write(self, blocked: tuple[str, ...]) -> None:
        path = self.instance.etc_dir / BLOCKED_FILE
        tmp = path.with_name(BLOCKED_FILE + ".tmp")
        tmp.write_text(acl_text(blocked), encoding="utf-8")
        # as prepare() leaves the rest of etc/: readable by Asterisk, written by root
        os.chown(tmp, 0, self.instance.root.asterisk_gid)
        tmp.chmod(0o640)
        tmp.replace(path)
