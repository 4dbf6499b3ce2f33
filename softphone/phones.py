"""Local SIP accounts: :class:`AgentPhone` (registers, answers) and :class:`TestCaller`.

Routing of incoming INVITEs to accounts is pjsua's (pjsua_acc.c,
``pjsua_acc_find_for_incoming``): the account whose user part matches the To and
Request-URI users wins. User names must therefore be unique within a host; each
agent also gets its own UDP transport (own port) when pjsua still has a free
transport slot (pjsua keeps at most 8), otherwise it shares the host's.
"""
from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import Any, Self

from softphone.errors import RegistrationError, SoftphoneError, SoftphoneTimeout
from softphone.events import (
    EventLog,
    IncomingCall,
    MessageReceived,
    Registered,
    RegistrationFailed,
    SoftphoneEvent,
    Unregistered,
)
from softphone.host import SoftphoneHost, pj_callback, pj_error_text
from softphone.legs import CallLeg, make_pj_call_class

__all__ = ["AgentPhone", "TestCaller"]


def _split_server(server: str) -> tuple[str, int]:
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SoftphoneError(f"server must be HOST:PORT, got {server!r}")
    return host, int(port)


def _request_user(message: str) -> str | None:
    """User part of the Request-URI of a SIP request (RFC 3261 section 25.1), or None."""
    line = message.split("\r\n", 1)[0].split("\n", 1)[0]
    parts = line.split(" ")
    if len(parts) != 3 or not parts[1].startswith(("sip:", "sips:")):
        return None
    rest = parts[1].split(":", 1)[1]
    return rest.split("@", 1)[0] if "@" in rest else None


@functools.cache
def _make_pj_account_class(pj: Any) -> type:
    class PjAccount(pj.Account):  # type: ignore[misc]
        """Lives in ``host.accounts`` only; callbacks run on the pjsua2 thread."""

        def __init__(self, phone: _Phone) -> None:
            super().__init__()
            self.phone = phone
            self.host = phone.host
            self.unregistered = True

        @pj_callback
        def onRegState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            code, reason, expires = int(prm.code), str(prm.reason), int(prm.expiration)
            now = time.monotonic()
            user = self.phone.user
            event: SoftphoneEvent
            if 200 <= code < 300 and expires > 0:
                self.unregistered = False
                event = Registered(now, user, code, reason, expires)
            elif 200 <= code < 300:
                self.unregistered = True
                event = Unregistered(now, user, code, reason)
            else:
                self.unregistered = True
                event = RegistrationFailed(now, user, code, reason)
            self.phone.events.append(event)

        @pj_callback
        def onInstantMessage(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            self.phone.events.append(MessageReceived(time.monotonic(), self.phone.user,
                                                     str(prm.fromUri), str(prm.msgBody)))

        @pj_callback
        def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            self.phone._on_incoming(self, prm.callId, _request_user(str(prm.rdata.wholeMsg)))

        def start_unregister(self) -> None:
            if not self.unregistered:
                try:
                    self.setRegistration(False)
                except Exception:  # noqa: BLE001 - shutting down
                    self.unregistered = True

        def release(self) -> None:
            try:
                self.shutdown()
            except Exception:  # noqa: BLE001 - shutting down
                pass
            self.phone.host.close_transport(self.phone._transport)
            self.phone.host.accounts.pop(self.phone._key, None)

    return PjAccount


class _Phone:
    """Common part: one pjsua2 account on the host, its event log and call legs."""

    def __init__(self, host: SoftphoneHost, user: str, *, display_name: str | None,
                 own_transport: bool, port: int, tls_ca_file: str | Path | None = None
                 ) -> None:
        if not user or any(c in user for c in "@:;<> "):
            raise SoftphoneError(f"invalid SIP user {user!r}")
        self.host = host
        self.user = user
        self.display_name = display_name
        self.events = EventLog()
        self._calls: list[CallLeg] = []
        self._calls_lock = threading.Lock()
        self._call_added = threading.Condition(self._calls_lock)
        self._key = 0
        self._wait_cursor = 0
        self._transport = -1
        self.port = 0
        self._closed = False
        self._own_transport = own_transport
        self._wanted_port = port
        self._tls_ca_file = tls_ca_file

    # -- public ----------------------------------------------------------------------

    @property
    def calls(self) -> list[CallLeg]:
        """Every call leg of this account, oldest first."""
        with self._calls_lock:
            return list(self._calls)

    @property
    def uri(self) -> str:
        """Direct URI of this account's transport: ``sip:user@127.0.0.1:port``."""
        return f"sip:{self.user}@{self.host.bind}:{self.port}"

    def close(self, timeout: float = 5.0) -> None:
        """Hang up this account's calls, unregister, delete the account. Idempotent."""
        if self._closed or self.host.closed:
            self._closed = True
            return
        self._closed = True
        for leg in self.calls:
            leg.hangup()
        for leg in self.calls:
            try:
                leg.wait_disconnected(timeout)
            except SoftphoneError:
                pass

        def release() -> None:
            account = self.host.accounts.get(self._key)
            if account is None:
                return
            account.start_unregister()
            self.host.pump(2.0, until=lambda: account.unregistered)
            account.release()

        self.host.call(release, timeout + 3.0, f"closing account {self.user}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pjsua2 thread ---------------------------------------------------------------

    def _create(self, configure: Any) -> None:
        def create() -> None:
            host, pj = self.host, self.host.pj
            for other in host.accounts.values():
                if other.phone.user == self.user:
                    raise SoftphoneError(
                        f"an account with user {self.user!r} already exists on this host "
                        "(pjsua routes incoming calls by user part)")
            tid = -1
            if self._tls_ca_file is not None:
                try:
                    tid, self.port = host.tls_transport(self._tls_ca_file, self._wanted_port)
                except Exception as exc:
                    raise SoftphoneError(
                        f"cannot create a TLS transport for {self.user} (CA "
                        f"{self._tls_ca_file}): {pj_error_text(exc)}") from exc
            elif self._own_transport or self._wanted_port:
                try:
                    tid, self.port = host.create_transport(self._wanted_port)
                except Exception as exc:
                    if self._wanted_port:
                        raise SoftphoneError(
                            f"cannot bind UDP {host.bind}:{self._wanted_port} for "
                            f"{self.user}: {pj_error_text(exc)}") from exc
            if tid < 0:
                tid, self.port = host.shared_transport()
            self._transport = tid
            cfg = pj.AccountConfig()
            cfg.sipConfig.transportId = tid
            cfg.mediaConfig.transportConfig.port = 0  # ephemeral RTP ports
            cfg.mediaConfig.transportConfig.boundAddress = host.bind
            cfg.mediaConfig.transportConfig.publicAddress = host.bind
            # loopback only: never rewrite Contact/Via from what the registrar saw,
            # and no RFC 5626 outbound (keeps Contact a plain sip:user@host:port)
            cfg.natConfig.contactRewriteUse = 0
            cfg.natConfig.viaRewriteUse = 0
            cfg.natConfig.sdpNatRewriteUse = 0
            cfg.natConfig.sipOutboundUse = 0
            cfg.natConfig.iceEnabled = False
            if self._tls_ca_file is None:
                cfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED  # plain RTP on loopback
            else:
                # SRTP (RFC 3711) keyed by SDES (RFC 4568): the keys ride in the SDP,
                # so only over TLS (srtpSecureSignaling 1 = TLS needed); mandatory:
                # a call without SRTP fails rather than falling back to plain RTP
                cfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
                cfg.mediaConfig.srtpSecureSignaling = 1
                keyings = pj.IntVector()
                keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
                cfg.mediaConfig.srtpOpt.keyings = keyings
            configure(cfg, pj)
            account = _make_pj_account_class(pj)(self)
            self._key = host.next_key()
            host.accounts[self._key] = account
            try:
                account.create(cfg)
            except Exception as exc:
                host.accounts.pop(self._key, None)
                host.close_transport(tid)
                raise SoftphoneError(f"cannot create account {self.user}: "
                                     f"{pj_error_text(exc)}") from exc

        self.host.call(create, 10.0, f"creating account {self.user}")

    def _new_leg(self, account: Any, direction: str, call_id: int) -> tuple[CallLeg, Any]:
        host = self.host
        key = host.next_key()
        leg = CallLeg(host, key, self.user, direction, self.events)
        pj_call = make_pj_call_class(host.pj)(host, account, leg, call_id)
        host.calls[key] = pj_call
        with self._calls_lock:
            self._calls.append(leg)
            self._call_added.notify_all()
        return leg, pj_call

    def _on_incoming(self, account: Any, call_id: int, request_user: str | None) -> None:
        raise NotImplementedError


class AgentPhone(_Phone):
    """A home agent's softphone on ``host``.

    ``server``: registrar ``HOST:PORT`` (``None``: no registration, reachable at
    :attr:`uri`). ``password``/``auth_user``/``realm``: digest credentials
    (RFC 3261 section 22; realm ``*`` answers any challenge).
    ``tls_ca_file``: register and take calls over SIP over TLS, trusting that CA
    (the server's certificate must name the ``server`` host), with mandatory
    SDES-SRTP media; ``None``: plain UDP and RTP (loopback).
    Incoming calls get 180 Ringing at once, then 200 OK after ``answer_delay``
    seconds if ``auto_answer``; ``no_answer=True`` leaves them ringing (the caller
    or a timeout ends them). ``play``/``record``: WAV played into / recorded from
    every answered call (``play_loop``: over and over); ``record`` may contain
    ``{n}`` (1, 2, ... per call).
    All methods are thread-safe.
    """

    def __init__(
        self,
        host: SoftphoneHost,
        user: str,
        *,
        server: str | None = None,
        password: str | None = None,
        auth_user: str | None = None,
        realm: str = "*",
        domain: str | None = None,
        auto_answer: bool = True,
        answer_delay: float = 0.0,
        no_answer: bool = False,
        play: str | Path | None = None,
        record: str | Path | None = None,
        play_loop: bool = False,
        display_name: str | None = None,
        own_transport: bool = True,
        port: int = 0,
        register_expires: int = 300,
        tls_ca_file: str | Path | None = None,
    ) -> None:
        super().__init__(host, user, display_name=display_name,
                         own_transport=own_transport, port=port, tls_ca_file=tls_ca_file)
        self.server = server
        self.auto_answer = auto_answer and not no_answer
        self.answer_delay = answer_delay
        self.no_answer = no_answer
        self.play = Path(play).resolve() if play else None
        self.play_loop = play_loop
        self.record = str(record) if record else None
        if self.play is not None and not self.play.is_file():
            raise SoftphoneError(f"no such WAV file: {self.play}")
        reg_host = None
        if server is not None:
            reg_host, _ = _split_server(server)
        id_domain = domain or reg_host or host.bind
        self.secure = tls_ca_file is not None
        # ;transport=tls (RFC 3261 section 19.1.1): reach the registrar over TLS;
        # calls then come back over the same connection (Asterisk rewrite_contact)
        tail = ";transport=tls" if self.secure else ""
        self._registrar = f"sip:{server}{tail}" if server else ""
        self._reg_start = 0

        def configure(cfg: Any, pj: Any) -> None:
            name = f'"{display_name}" ' if display_name else ""
            cfg.idUri = f"{name}<sip:{user}@{id_domain}>"
            if server is not None:
                cfg.regConfig.registrarUri = self._registrar
                cfg.regConfig.registerOnAdd = True
                cfg.regConfig.timeoutSec = register_expires
                cfg.regConfig.retryIntervalSec = 0  # report failures, do not loop
                cfg.regConfig.unregWaitMsec = 1500
                cred = pj.AuthCredInfo("digest", realm, auth_user or user, 0, password or "")
                cfg.sipConfig.authCreds.append(cred)

        self._create(configure)

    @property
    def registered(self) -> bool:
        last = self._last_reg_event()
        return isinstance(last, Registered)

    def wait_registered(self, timeout: float = 10.0) -> Registered:
        """Wait for the registrar's 2xx. Raises :class:`RegistrationError` on a
        failure response (401 wrong credentials, 403, 404 ...) and
        :class:`SoftphoneTimeout` if no answer comes in time."""
        if self.server is None:
            raise SoftphoneError(f"{self.user} has no registrar (server=None)")
        event = self.events.wait_for(
            lambda e: isinstance(e, Registered | RegistrationFailed), timeout,
            start=self._reg_start, what=f"REGISTER answer for {self.user} from {self.server}",
        )
        if isinstance(event, RegistrationFailed):
            raise RegistrationError(self.user, event.status, event.reason, self.server)
        assert isinstance(event, Registered)
        return event

    def register(self, timeout: float = 10.0) -> Registered:
        """(Re-)send REGISTER and wait for the result (see :meth:`wait_registered`)."""
        self._reg_start = len(self.events)
        self._with_account(lambda a: a.setRegistration(True), "register")
        return self.wait_registered(timeout)

    def unregister(self, timeout: float = 5.0) -> Unregistered:
        """Send REGISTER with Expires: 0 and wait for the registrar's answer."""
        start = len(self.events)
        self._with_account(lambda a: a.setRegistration(False), "unregister")
        event = self.events.wait_for(
            lambda e: isinstance(e, Unregistered | RegistrationFailed), timeout,
            start=start, what=f"unREGISTER answer for {self.user}",
        )
        if isinstance(event, RegistrationFailed):
            raise RegistrationError(self.user, event.status, event.reason, str(self.server))
        assert isinstance(event, Unregistered)
        return event

    def wait_call(self, timeout: float = 10.0, *, index: int | None = None) -> CallLeg:
        """Wait for incoming call number ``index`` (0-based). By default, successive
        calls of this method return successive incoming calls (first the oldest not
        yet returned), whether they arrived before or after the wait began."""
        deadline = time.monotonic() + timeout
        with self._call_added:
            want = self._wait_cursor if index is None else index
            if index is None:
                self._wait_cursor += 1
            while len(self._calls) <= want:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if index is None:
                        self._wait_cursor -= 1
                    raise SoftphoneTimeout(
                        f"no incoming call #{want + 1} for {self.user} within {timeout:g} s")
                self._call_added.wait(remaining)
            return self._calls[want]

    # -- pjsua2 thread ---------------------------------------------------------------

    def _last_reg_event(self) -> SoftphoneEvent | None:
        for event in reversed(self.events.snapshot()):
            if isinstance(event, Registered | RegistrationFailed | Unregistered):
                return event
        return None

    def _with_account(self, fn: Any, what: str) -> None:
        def run() -> None:
            account = self.host.accounts.get(self._key)
            if account is None:
                raise SoftphoneError(f"cannot {what}: account {self.user} is closed")
            try:
                fn(account)
            except Exception as exc:
                raise SoftphoneError(f"cannot {what} {self.user}: {pj_error_text(exc)}") from exc
        self.host.call(run, 5.0, f"{what} {self.user}")

    def _on_incoming(self, account: Any, call_id: int, request_user: str | None) -> None:
        leg, pj_call = self._new_leg(account, "incoming", call_id)
        if request_user is not None and request_user != self.user:
            # pjsua hands INVITEs for unknown users to the best-scoring account
            # (pjsua_acc_find_for_incoming); an agent must not answer those.
            pj_call.answer_with(404)
            return
        ci = pj_call.getInfo()
        leg.call_id = str(ci.callIdString)
        leg.remote_uri = str(ci.remoteUri)
        leg.local_uri = str(ci.localUri)
        self.events.append(IncomingCall(time.monotonic(), self.user, leg.call_id,
                                        leg.remote_uri, leg.local_uri))
        leg.events.append(IncomingCall(time.monotonic(), self.user, leg.call_id,
                                       leg.remote_uri, leg.local_uri))
        n = len(self.calls)
        if self.play is not None:
            pj_call.set_player(self.play, self.play_loop)
        if self.record is not None:
            path = Path(self.record.replace("{n}", str(n))).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            pj_call.set_recorder(path)
            leg._recording = path
        pj_call.answer_with(180)
        if self.auto_answer:
            key = leg._key

            def answer() -> None:
                call = self.host.calls.get(key)
                if call is not None and not call.released:
                    try:
                        call.answer_with(200)
                    except Exception:  # noqa: BLE001 - caller cancelled meanwhile
                        pass

            self.host.call_later(self.answer_delay, answer)


class TestCaller(_Phone):
    """A scripted caller: places calls as ``sip:<user>@<domain>`` without registering.

    Shares the host's UDP transport unless ``own_transport``. Incoming calls to
    this user are declined (603), unless ``answer_after`` is given: then they
    ring and are answered after that many seconds (a caller being called back).
    All methods are thread-safe.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(
        self,
        host: SoftphoneHost,
        user: str = "caller",
        *,
        domain: str | None = None,
        display_name: str | None = None,
        own_transport: bool = False,
        port: int = 0,
        answer_after: float | None = None,
    ) -> None:
        super().__init__(host, user, display_name=display_name,
                         own_transport=own_transport, port=port)
        self.answer_after = answer_after
        id_domain = domain or host.bind

        def configure(cfg: Any, pj: Any) -> None:
            name = f'"{display_name}" ' if display_name else ""
            cfg.idUri = f"{name}<sip:{user}@{id_domain}>"

        self._create(configure)

    def call(self, uri: str, *, play: str | Path | None = None,
             record: str | Path | None = None, timeout: float = 5.0) -> CallLeg:
        """Send an INVITE to ``uri`` (e.g. ``sip:100@127.0.0.1:5060``); returns at once
        with the leg (use :meth:`CallLeg.wait_confirmed`). ``play``/``record``
        start when audio is active."""
        if not uri.startswith(("sip:", "sips:")):
            raise SoftphoneError(f"not a SIP URI: {uri!r}")
        play_path = Path(play).resolve() if play else None
        if play_path is not None and not play_path.is_file():
            raise SoftphoneError(f"no such WAV file: {play_path}")
        record_path = Path(record).resolve() if record else None

        def make() -> CallLeg:
            host, pj = self.host, self.host.pj
            account = host.accounts.get(self._key)
            if account is None:
                raise SoftphoneError(f"caller {self.user} is closed")
            leg, pj_call = self._new_leg(account, "outgoing", pj.PJSUA_INVALID_ID)
            prm = pj.CallOpParam(True)
            prm.opt.audioCount = 1
            prm.opt.videoCount = 0
            prm.opt.textCount = 0  # no RFC 4103 text stream in the offer
            try:
                pj_call.makeCall(uri, prm)
            except Exception as exc:
                host.calls.pop(leg._key, None)
                raise SoftphoneError(f"cannot call {uri} from {self.user}: "
                                     f"{pj_error_text(exc)}") from exc
            ci = pj_call.getInfo()
            leg.call_id = str(ci.callIdString)
            leg.remote_uri = str(ci.remoteUri)
            leg.local_uri = str(ci.localUri)
            if play_path is not None:
                pj_call.set_player(play_path, False)
            if record_path is not None:
                record_path.parent.mkdir(parents=True, exist_ok=True)
                pj_call.set_recorder(record_path)
                leg._recording = record_path
            return leg

        return self.host.call(make, timeout, f"calling {uri}")

    def _on_incoming(self, account: Any, call_id: int, request_user: str | None) -> None:
        leg, pj_call = self._new_leg(account, "incoming", call_id)
        if self.answer_after is None:
            pj_call.answer_with(603)
            return
        ci = pj_call.getInfo()
        leg.call_id = str(ci.callIdString)
        leg.remote_uri = str(ci.remoteUri)
        leg.local_uri = str(ci.localUri)  # the number that was dialled
        pj_call.answer_with(180)
        key = leg._key

        def answer() -> None:
            call = self.host.calls.get(key)
            if call is not None and not call.released:
                try:
                    call.answer_with(200)
                except Exception:  # noqa: BLE001 - the caller side cancelled meanwhile
                    pass

        self.host.call_later(self.answer_after, answer)
