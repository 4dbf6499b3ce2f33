"""One pjsua2 Endpoint per process, driven by one dedicated thread.

pjsua2 allows a single ``Endpoint`` per process and every pjsua2 call must come
from a thread known to pjlib. :class:`SoftphoneHost` therefore starts one thread
that creates the Endpoint (which registers that thread with pjlib), runs every
pjsua2 call, and polls with ``libHandleEvents(10)``: ``uaConfig.threadCnt = 0``
and ``medConfig.threadCnt = 0`` mean no pjsua worker threads, so SIP, RTP and
RFC 4733 events, and thus every pjsua2 callback, arrive on that thread too
(pjsua_media.c creates the media endpoint on the SIP endpoint's ioqueue).
The only other pjlib thread is the null sound device's clock, which drives the
conference bridge (players, recorders) and never enters Python.

Other threads post work through a queue and wait on futures
(:meth:`SoftphoneHost.call`). pjsua2 objects are referenced only from this
module's registries, so they are also destroyed on the pjsua2 thread.
"""
from __future__ import annotations

import atexit
import functools
import heapq
import itertools
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

from softphone.errors import SoftphoneError, SoftphoneTimeout, SoftphoneUnavailable

__all__ = ["SoftphoneHost", "load_pjsua2", "pj_callback", "pj_error_text"]

T = TypeVar("T")

_THREAD_NAME = "softphone-pjsua2"
_POLL_MS = 10
# A Homeline wheel raises pjsua's compiled-in PJSUA_MAX_CALLS (stock: 4).
_WANTED_MAX_CALLS = 64


def load_pjsua2() -> Any:
    """Import pjsua2 or raise :class:`SoftphoneUnavailable` saying how to get it."""
    try:
        import pjsua2
    except ImportError as exc:
        raise SoftphoneUnavailable(
            "the pjsua2 module is not installed in this Python environment: "
            "run `homeline setup` (it builds and installs the pjsua2 wheel)"
        ) from exc
    return pjsua2


def pj_error_text(exc: BaseException) -> str:
    """Readable text of a pjsua2 ``Error`` (SWIG class with ``info()``) or any exception."""
    info = getattr(exc, "info", None)
    if callable(info):
        try:
            return str(info()).strip()
        except Exception:  # noqa: BLE001 - best effort formatting only
            pass
    return f"{type(exc).__name__}: {exc}"


def _quiet_pjlib(level: int) -> None:
    """Apply the log level before ``libCreate``: pjlib logs at its compiled-in
    level 5 until ``libInit`` reads LogConfig, and pjsua2 exposes no setter for
    that window. ``pj_log_set_level`` (pj/log.h) only stores an int."""
    import ctypes

    try:
        import _pjsua2  # the SWIG extension that statically links pjlib

        ctypes.CDLL(_pjsua2.__file__).pj_log_set_level(ctypes.c_int(level))
    except (ImportError, OSError, AttributeError):
        pass  # cosmetic only


def pj_callback(fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """Wrap a pjsua2 callback method (on an object with a ``host`` attribute).

    An exception escaping a SWIG director method would unwind through pjsua's C
    code; it is recorded on the host (and printed to stderr) instead.
    """

    @functools.wraps(fn)
    def wrapper(self: Any, prm: Any) -> None:
        try:
            fn(self, prm)
        except Exception as exc:  # noqa: BLE001 - must not cross into C
            self.host.callback_failed(f"{type(self).__name__}.{fn.__name__}", exc)

    return wrapper


class SoftphoneHost:
    """Owns the process's pjsua2 Endpoint and its thread.

    ``bind``: the address every SIP transport and RTP socket binds to (loopback).
    ``codecs``: codec names to enable, in priority order (others are disabled).
    ``log_level``: pjsip log level (0 = silent); ``log_file``: where to write it.

    Thread-safe: every method may be called from any thread. Use as a context
    manager or call :meth:`close` (idempotent). Only one open host per process.
    """

    _guard = threading.Lock()
    _open: SoftphoneHost | None = None

    def __init__(
        self,
        *,
        bind: str = "127.0.0.1",
        codecs: Iterable[str] = ("PCMU", "PCMA"),
        log_level: int = 0,
        log_file: str | Path | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        self._pj = load_pjsua2()
        self.bind = bind
        self._codecs = tuple(codecs)
        self._log_level = log_level
        self._log_file = str(log_file) if log_file else ""
        self._tasks: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._closed = False
        self._close_lock = threading.Lock()
        self._ep: Any = None
        self._shared_transport: int | None = None
        self._shared_port = 0
        self._own_transports: set[int] = set()
        self._tls_transports: dict[str, tuple[int, int]] = {}
        self._callback_errors: list[str] = []
        # pjsua2 object registries, touched on the pjsua2 thread only
        self.accounts: dict[int, Any] = {}
        self.calls: dict[int, Any] = {}
        self._reap_queue: list[Callable[[], None]] = []
        self._keys = itertools.count(1)
        self._workdir = Path(tempfile.mkdtemp(prefix="homeline-softphone-"))
        with SoftphoneHost._guard:
            if SoftphoneHost._open is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                raise SoftphoneError(
                    "a SoftphoneHost is already open in this process (pjsua2 allows one "
                    "Endpoint per process): reuse it or close it first"
                )
            SoftphoneHost._open = self
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name=_THREAD_NAME, daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout=start_timeout)
        except BaseException as exc:
            self._stop.set()
            self._thread.join(timeout=start_timeout)
            self._release_guard()
            shutil.rmtree(self._workdir, ignore_errors=True)
            if isinstance(exc, SoftphoneError):
                raise
            if isinstance(exc, FutureTimeout):
                raise SoftphoneTimeout(f"pjsua2 did not start within {start_timeout:g} s") from exc
            raise SoftphoneUnavailable(f"pjsua2 failed to start: {pj_error_text(exc)}") from exc
        # daemon thread + atexit: an unclosed host still shuts pjsua2 down cleanly
        atexit.register(self.close)

    # -- public ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def workdir(self) -> Path:
        """Private temporary directory (generated tones); removed by :meth:`close`."""
        return self._workdir

    @property
    def shared_port(self) -> int:
        """UDP port of the transport shared by accounts without their own."""
        return self._shared_port

    @property
    def callback_errors(self) -> list[str]:
        """Errors raised inside pjsua2 callbacks (should stay empty)."""
        return list(self._callback_errors)

    def callback_failed(self, where: str, exc: BaseException) -> None:
        text = f"{where}: {type(exc).__name__}: {exc}"
        self._callback_errors.append(text)
        print(f"softphone: error in pjsua2 callback {text}", file=sys.stderr)

    def call(self, fn: Callable[[], T], timeout: float = 10.0, what: str = "pjsua2 work") -> T:
        """Run ``fn`` on the pjsua2 thread and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            return fn()
        future = self.submit(fn)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout as exc:
            raise SoftphoneTimeout(f"{what} did not finish within {timeout:g} s") from exc

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn`` for the pjsua2 thread; the future carries its result."""
        if self._closed or self._stop.is_set() or not self._thread.is_alive():
            raise SoftphoneError("the SoftphoneHost is closed")
        future: Future[T] = Future()
        self._tasks.put((fn, future))
        return future

    def close(self, timeout: float = 15.0) -> None:
        """Hang up every call, unregister and delete every account, destroy the
        Endpoint and join the thread. Safe to call twice and from any thread but
        the pjsua2 thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if threading.current_thread() is self._thread:
            raise SoftphoneError("SoftphoneHost.close() cannot run on the pjsua2 thread")
        self._stop.set()
        self._tasks.put(None)  # wake the loop
        self._thread.join(timeout)
        atexit.unregister(self.close)
        self._release_guard()
        shutil.rmtree(self._workdir, ignore_errors=True)
        if self._thread.is_alive():
            raise SoftphoneTimeout(f"the pjsua2 thread did not stop within {timeout:g} s")

    def __enter__(self) -> SoftphoneHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- used by the phone classes, on the pjsua2 thread -------------------------------

    @property
    def pj(self) -> Any:
        return self._pj

    @property
    def endpoint(self) -> Any:
        return self._ep

    def next_key(self) -> int:
        return next(self._keys)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the pjsua2 thread after ``delay`` s (pjsua2 thread only)."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))

    def after_events(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the current ``libHandleEvents`` returns, before any queued
        work: used to drop Call objects after their DISCONNECTED callback returned."""
        self._reap_queue.append(fn)

    def create_transport(self, port: int = 0, *, tls_ca_file: str | Path | None = None
                         ) -> tuple[int, int]:
        """New transport on ``bind:port`` (0 = free port): (transport id, port).

        UDP, or with ``tls_ca_file`` SIP over TLS (RFC 3261 section 26.2) whose
        server certificate must chain to that CA and name the host dialled
        (pjsip's ``verifyServer``; pjlib's ssl_sock_ossl checks the subjectAltName).
        """
        pj = self._pj
        cfg = pj.TransportConfig()
        cfg.port = port
        cfg.boundAddress = self.bind
        cfg.publicAddress = self.bind
        kind = pj.PJSIP_TRANSPORT_UDP
        if tls_ca_file is not None:
            kind = pj.PJSIP_TRANSPORT_TLS
            cfg.tlsConfig.CaListFile = str(tls_ca_file)
            # pjsip's default method is TLSv1 alone, which OpenSSL 3 refuses;
            # SSLv23 negotiates the highest version (TLS 1.3 with Asterisk 22)
            cfg.tlsConfig.method = pj.PJSIP_SSLV23_METHOD
            cfg.tlsConfig.verifyServer = True
            cfg.tlsConfig.verifyClient = False
            cfg.tlsConfig.requireClientCert = False
        tid = self._ep.transportCreate(kind, cfg)
        self._own_transports.add(tid)
        info = self._ep.transportGetInfo(tid)
        return tid, int(str(info.localName).rsplit(":", 1)[1])

    def tls_transport(self, ca_file: str | Path, port: int = 0) -> tuple[int, int]:
        """The host's TLS transport for ``ca_file``, made on first use and kept until
        the Endpoint goes: a TLS client connection outlives the account that
        opened it (pjsip keeps it for reuse), and destroying the TLS factory
        under it leaves pjsip reading freed memory for the next Contact."""
        key = str(Path(ca_file).resolve())
        if key not in self._tls_transports:
            tid, real_port = self.create_transport(port, tls_ca_file=key)
            self._own_transports.discard(tid)
            self._tls_transports[key] = (tid, real_port)
        return self._tls_transports[key]

    def shared_transport(self) -> tuple[int, int]:
        if self._shared_transport is None:
            self._shared_transport, self._shared_port = self.create_transport(0)
            self._own_transports.discard(self._shared_transport)
        return self._shared_transport, self._shared_port

    def close_transport(self, tid: int) -> None:
        # pjsua_transport_close asserts (aborts the process) on an already closed id
        if tid in self._own_transports:
            self._own_transports.discard(tid)
            try:
                self._ep.transportClose(tid)
            except Exception:  # noqa: BLE001 - closing at shutdown, nothing to report to
                pass

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Handle pjsua2 events for up to ``seconds`` (pjsua2 thread only)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            self._ep.libHandleEvents(_POLL_MS)
            self._run_reaps()

    # -- the thread ------------------------------------------------------------------

    def _main(self, ready: Future[None]) -> None:
        try:
            self._start_endpoint()
        except BaseException as exc:  # noqa: BLE001 - reported to the constructor
            self._destroy_endpoint()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            while not self._stop.is_set():
                self._run_tasks()
                self._run_timers()
                self._ep.libHandleEvents(_POLL_MS)
                self._run_reaps()
        finally:
            self._stop.set()  # also when the loop died: submit() must fail fast
            self._teardown()

    def _start_endpoint(self) -> None:
        pj = self._pj
        _quiet_pjlib(self._log_level)
        ep = pj.Endpoint()
        self._ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = min(_WANTED_MAX_CALLS, pj.UaConfig().maxCalls)
        cfg.uaConfig.userAgent = "Homeline softphone (pjsua2)"
        cfg.logConfig.level = self._log_level
        cfg.logConfig.consoleLevel = self._log_level if not self._log_file else 0
        cfg.logConfig.filename = self._log_file
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        # With VAD on, a silent null device sends no RTP at all (pjmedia silence
        # detector); callers and agents must always stream.
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.sndAutoCloseTime = -1  # keep the bridge clock running between calls
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        self.shared_transport()
        ep.libStart()
        self._set_codecs()

    def _set_codecs(self) -> None:
        wanted = [c.upper() for c in self._codecs]
        for info in self._ep.codecEnum2():
            codec_id = str(info.codecId)
            name = codec_id.split("/", 1)[0].upper()
            prio = 255 - wanted.index(name) if name in wanted else 0
            self._ep.codecSetPriority(codec_id, prio)

    def _run_tasks(self) -> None:
        while True:
            try:
                item = self._tasks.get_nowait()
            except queue.Empty:
                return
            if item is None:
                continue
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(exc)

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            try:
                fn()
            except Exception:  # noqa: BLE001 - a timer has nobody to report to
                pass

    def _run_reaps(self) -> None:
        while self._reap_queue:
            fn = self._reap_queue.pop(0)
            try:
                fn()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass

    def _teardown(self) -> None:
        """Orderly shutdown on the pjsua2 thread: calls, accounts, Endpoint."""
        # fail work that was queued after close() began
        while True:
            try:
                item = self._tasks.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[1].set_running_or_notify_cancel():
                item[1].set_exception(SoftphoneError("the SoftphoneHost is closed"))
        self._timers.clear()
        if self._ep is None:
            return
        try:
            self._each_call("hangup_quietly")
            self.pump(2.0, until=lambda: not self.calls)
            self._each_account("start_unregister")
            self.pump(2.0, until=lambda: all(a.unregistered for a in self.accounts.values()))
            self._each_call("release")
            self.calls.clear()
            self._run_reaps()
            self._each_account("release")
            self.accounts.clear()
        finally:
            self._destroy_endpoint()

    # Helpers so that no local variable keeps a pjsua2 object alive past libDestroy:
    # a Call destroyed after it trips an assertion in pjsua_call_set_user_data.
    def _each_call(self, method: str) -> None:
        for key in list(self.calls):
            getattr(self.calls[key], method)()

    def _each_account(self, method: str) -> None:
        for key in list(self.accounts):
            if key in self.accounts:
                getattr(self.accounts[key], method)()

    def _destroy_endpoint(self) -> None:
        ep, self._ep = self._ep, None
        if ep is None:
            return
        try:
            # Calls were hung up and accounts unregistered (and waited for) in
            # _teardown; NO_RX_MSG skips pjsua_destroy2's unconditional 1 s sleep.
            ep.libDestroy(self._pj.PJSUA_DESTROY_NO_RX_MSG)
        except Exception:  # noqa: BLE001 - already half torn down
            pass
        del ep  # Endpoint's destructor clears pjsua2's singleton

    def _release_guard(self) -> None:
        with SoftphoneHost._guard:
            if SoftphoneHost._open is self:
                SoftphoneHost._open = None
