"""FastAGI server: Asterisk's ``AGI(agi://host:port/<script>)`` calls land here.

pyst2 0.5.1's own ``asterisk/fastagi.py`` is Python-2 only and ``AGI.__init__``
installs a SIGHUP handler (main thread only), so ``SocketAGI`` subclasses
``asterisk.agi.AGI`` to speak over the socket and skip the signal handler; a Python 3
``socketserver.ThreadingTCPServer`` gives one thread per call (threads are kept for
the next call, up to a cap, and end when idle: ``_CallThreads``).

Protocol (Asterisk docs, "AGI" and res_agi.c): after connecting, Asterisk sends
``agi_<name>: <value>`` lines ending with a blank line; each command we send is
answered by ``200 result=<n> [(<data>)] [endpos=<n>]``, ``510`` (invalid command),
``511`` (command not permitted on a dead channel) or ``520`` (usage, multi-line).
When the caller hangs up, FastAGI writes ``HANGUP`` on the socket; after that every
command gets ``511``; an EOF means the channel is gone.
"""
from __future__ import annotations

import logging
import queue
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import asterisk.agi

from ivr.errors import AgiProtocolError

__all__ = ["SocketAGI", "AgiReply", "FastAGIServer", "AgiCallEnded", "Handler",
           "AGIHangup"]

AGIHangup = asterisk.agi.AGIHangup
_LOG = logging.getLogger("homeline.voice.fastagi")
_REPLY = re.compile(r"^(\d{3})[ -](.*)$")
_KV = re.compile(r"(\w+)=(\S*)(?:\s+\(([^)]*)\))?")
MAX_LINE = 8192
ENV_TIMEOUT_S = 10.0
MAX_CALL_THREADS = 1024  # calls served at once; more wait in the listen queue
IDLE_THREAD_TIMEOUT_S = 30.0  # a call thread with no call for this long ends


class _Null:
    """pyst2 writes every command and result to ``stderr``; secure digits must not leak."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class AgiReply:
    """A parsed ``200 result=...`` line: ``result``, the parenthesised ``data``, extras."""

    code: int
    result: str
    data: str
    extras: Mapping[str, str]


class SocketAGI(asterisk.agi.AGI):  # type: ignore[misc]
    """pyst2's AGI over a FastAGI socket; never installs a signal handler."""

    def __init__(self, rfile: IO[str], wfile: IO[str]) -> None:
        self.stdin, self.stdout, self.stderr = rfile, wfile, _Null()
        self._got_sighup = False
        self.env: dict[str, str] = {}
        self._get_agi_env()

    def _get_agi_env(self) -> None:
        """Read the AGI environment block: ``agi_name: value`` lines up to a blank
        line (Asterisk wiki, "AGI Commands"). pyst2's own version pretty-prints the
        whole block to stderr for every call, which under load cost a third of the
        engine's CPU time even with stderr discarded."""
        while True:
            line = self.stdin.readline(MAX_LINE)
            if line == "":
                raise asterisk.agi.AGIResultHangup("connection closed before the AGI environment")
            line = line.strip()
            if not line:
                return
            key, sep, value = line.partition(":")
            if sep and key.strip():
                self.env[key.strip()] = value.strip()

    def _readline(self) -> str:
        line = self.stdin.readline(MAX_LINE)
        if line == "":
            raise asterisk.agi.AGIResultHangup("connection closed by Asterisk")
        return str(line).strip()

    def read_reply(self) -> AgiReply:
        """Read one reply; ``HANGUP``/511/EOF raise ``AGIHangup``, 510/520 ``AgiProtocolError``."""
        line = self._readline()
        if line == "HANGUP":
            raise asterisk.agi.AGIResultHangup("caller hung up")
        m = _REPLY.match(line)
        if not m:
            raise AgiProtocolError(f"unexpected AGI reply {line[:80]!r}")
        code, rest = int(m.group(1)), m.group(2)
        if code == 511:
            raise asterisk.agi.AGIResultHangup("channel is dead (511)")
        if code == 520:
            while not line.startswith("520 "):
                line = self._readline()
            raise AgiProtocolError("AGI usage error (520)")
        if code != 200:
            raise AgiProtocolError(f"AGI replied {code}: {rest[:80]}")
        extras: dict[str, str] = {}
        result, data = "", ""
        for key, value, paren in _KV.findall(rest):
            if key == "result":
                result, data = value, paren
            else:
                extras[key] = value
        if data == "hangup":
            raise asterisk.agi.AGIResultHangup("caller hung up")
        return AgiReply(code, result, data, extras)

    def command(self, name: str, *args: str | int) -> AgiReply:
        """Send one AGI command (arguments already validated/quoted) and parse its reply."""
        try:
            self.send_command(name, *args)
        except (BrokenPipeError, ConnectionError, OSError) as exc:
            raise asterisk.agi.AGISIGPIPEHangup("socket closed") from exc
        return self.read_reply()

    # pyst2's own helpers call get_result(); route it through the stricter parser.
    def get_result(self, stdin: Any = None) -> dict[str, tuple[str, str]]:
        reply = self.read_reply()
        if reply.result == "-1":
            raise asterisk.agi.AGIAppError("Error executing application, or hangup")
        out = {"result": (reply.result, reply.data)}
        out.update({k: (v, "") for k, v in reply.extras.items()})
        return out

    def execute(self, command: str, *args: Any) -> dict[str, tuple[str, str]]:
        try:
            self.send_command(command, *args)
        except (BrokenPipeError, ConnectionError, OSError) as exc:
            raise asterisk.agi.AGISIGPIPEHangup("socket closed") from exc
        return self.get_result()


Handler = Callable[[SocketAGI, Mapping[str, str]], None]


@dataclass(frozen=True, slots=True)
class AgiCallEnded:
    """One FastAGI session ended: ``reason`` is completed, hangup, unknown-script or error."""

    script: str
    uniqueid: str
    reason: str
    detail: str = ""
    duration_s: float = 0.0


class _RequestHandler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        srv = self.server
        started = time.monotonic()
        script, uniqueid, reason, detail = "", "", "completed", ""
        me = threading.current_thread()
        with srv.lock:
            srv.active[me] = self.connection
        try:
            rf = self.connection.makefile("r", encoding="utf-8", errors="replace", newline="\n")
            wf = self.connection.makefile("w", encoding="utf-8", newline="\n")
            # Asterisk sends the environment at once; a peer that does not is not Asterisk.
            self.connection.settimeout(srv.env_timeout_s)
            agi = SocketAGI(rf, wf)
            self.connection.settimeout(None)
            env = dict(agi.env)
            script = env.get("agi_network_script", "").split("?", 1)[0].strip("/")
            uniqueid = env.get("agi_uniqueid", "")
            handler = srv.handlers.get(script)
            if handler is None:
                reason = "unknown-script"
                known = ", ".join(sorted(srv.handlers)) or "none"
                agi.command("VERBOSE", '"Homeline: unknown FastAGI script '
                            f'{_safe(script)!r} (known: {known}); hanging up"', 1)
                agi.command("HANGUP")
            else:
                handler(agi, env)
        except asterisk.agi.AGIHangup as exc:
            reason, detail = "hangup", str(exc)
        except (ConnectionError, OSError) as exc:
            reason, detail = "hangup", f"socket: {exc.__class__.__name__}"
        except AgiProtocolError as exc:
            reason, detail = "error", str(exc)
            _LOG.error("FastAGI %s call %s: %s", script or "?", uniqueid or "?", exc)
        except Exception as exc:  # a bug in a handler: keep the server up, say what it was
            reason, detail = "error", f"{exc.__class__.__name__}: {exc}"
            _LOG.exception("FastAGI %s call %s failed", script or "?", uniqueid or "?")
        finally:
            with srv.lock:
                srv.active.pop(me, None)
        event = AgiCallEnded(script, uniqueid, reason, detail, time.monotonic() - started)
        if reason == "hangup":
            _LOG.info("FastAGI %s call %s ended by hang-up", script, uniqueid)
        if srv.on_event is not None:
            try:
                srv.on_event(event)
            except Exception:  # an observer's bug must not turn into a call failure
                _LOG.exception("FastAGI on_event observer failed")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "?", text)[:40]


class _CallThreads:
    """One thread per call, at most ``max_threads`` at once; a thread whose call is
    over waits ``idle_timeout_s`` for the next one, then ends.

    Starting a thread for every call costs the accept loop a clone() and two GIL
    hand-offs while the next callers wait in the listen queue; a finished call's
    thread blocking on a SimpleQueue (C, no Python lock) costs nothing.
    concurrent.futures.ThreadPoolExecutor was tried first: its submit() takes a
    Python Semaphore per call and showed up in the accept loop's profile instead.

    At the cap, :meth:`run` blocks the accept loop until a thread is free, so new
    connections wait in the kernel's listen queue (``request_queue_size``) rather
    than being refused. That is what res_agi copes with best (res_agi.c,
    launch_netscript / run_agi): its non-blocking connect() completes as soon as the
    kernel has queued the connection, it writes the AGI environment into the socket
    buffer and then waits for our first command while reading (and dropping) the
    channel's frames, and a caller who hangs up meanwhile ends that AGI as HANGUP.
    The call is not answered until the IVR's first command, so the caller hears
    ringing, not dead air. A refusal instead (accept and close at once) would make
    the AGI return SUCCESS with no outcome, which the dialplan can only treat as an
    IVR error; only when the listen queue itself overflows does connect() time out
    (MAX_AGI_CONNECT, 2 s) and AGISTATUS=FAILURE send the call to the fallback.
    """

    def __init__(self, name: str, max_threads: int = 1024,
                 idle_timeout_s: float = 30.0) -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads}")
        if idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be positive, not {idle_timeout_s}")
        self._name = name
        self.max_threads = max_threads
        self.idle_timeout_s = idle_timeout_s
        self._jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._idle = 0  # threads waiting for a job that no run() has claimed yet
        self._closed = False
        self._refusing = False
        self._threads: set[threading.Thread] = set()
        self._started = 0

    def alive(self) -> int:
        """Call threads that exist now (busy or idle)."""
        with self._lock:
            return len(self._threads)

    def idle(self) -> int:
        with self._lock:
            return self._idle

    def run(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on a call thread; at the cap, wait for one to be free.

        Raises RuntimeError once :meth:`close` was called (also while waiting)."""
        with self._lock:
            while (not self._refusing and self._idle == 0
                   and len(self._threads) >= self.max_threads):
                self._freed.wait()
            if self._refusing:
                raise RuntimeError("call threads closed")
            if self._idle > 0:
                # claimed and queued under the lock: a thread that times out meanwhile
                # sees the job in the queue and runs it instead of ending (_next_job)
                self._idle -= 1
                self._jobs.put((fn, args))
                return
            self._started += 1
            thread = threading.Thread(target=self._work, args=((fn, args),), daemon=True,
                                      name=f"{self._name}-{self._started}")
            self._threads.add(thread)
        thread.start()

    def _work(self, job: tuple[Callable[..., None], tuple[Any, ...]] | None) -> None:
        me = threading.current_thread()
        try:
            while job is not None:
                fn, args = job
                try:
                    fn(*args)
                except Exception:  # process_request_thread handles its own; be safe
                    _LOG.exception("FastAGI call thread")
                del fn, args, job  # a finished call's socket must not wait with us
                with self._lock:
                    if self._closed:
                        return
                    self._idle += 1
                    self._freed.notify()
                job = self._next_job()
        finally:
            with self._lock:
                self._threads.discard(me)
                self._freed.notify()

    def _next_job(self) -> tuple[Callable[..., None], tuple[Any, ...]] | None:
        """The next job, or None to end: closed, or idle for ``idle_timeout_s``."""
        try:
            return self._jobs.get(timeout=self.idle_timeout_s)
        except queue.Empty:
            pass
        with self._lock:
            try:
                # a run() claimed an idle thread just as this one timed out: threads
                # are interchangeable, so this one takes the job it queued
                return self._jobs.get_nowait()
            except queue.Empty:
                self._idle -= 1
                return None

    def refuse_new(self) -> None:
        """No new calls from now on: :meth:`run` raises, also one waiting at the cap."""
        with self._lock:
            self._refusing = True
            self._freed.notify_all()

    def close(self, timeout: float = 1.0) -> None:
        """Idle threads exit now, busy ones after their call; wait ``timeout`` s for them."""
        with self._lock:
            self._closed = self._refusing = True
            threads = list(self._threads)
            self._freed.notify_all()
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False
    # a burst of calls must queue in the kernel, not overflow it: an overflowed
    # listen queue drops the SYN and Asterisk retries 1 s later (the caller hears
    # nothing and any key pressed meanwhile is lost). The kernel caps this at
    # net.core.somaxconn.
    request_queue_size = 4096

    def __init__(self, addr: tuple[str, int], handlers: Mapping[str, Handler],
                 on_event: Callable[[AgiCallEnded], None] | None,
                 env_timeout_s: float = ENV_TIMEOUT_S,
                 max_call_threads: int = MAX_CALL_THREADS,
                 idle_timeout_s: float = IDLE_THREAD_TIMEOUT_S) -> None:
        self.handlers = dict(handlers)
        self.env_timeout_s = env_timeout_s
        self.on_event = on_event
        self.lock = threading.Lock()
        self.active: dict[threading.Thread, socket.socket] = {}
        self.call_threads = _CallThreads("fastagi-call", max_call_threads, idle_timeout_s)
        super().__init__(addr, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            self.call_threads.run(self.process_request_thread, request, client_address)
        except RuntimeError:  # stopping: no new calls
            self.shutdown_request(request)


class FastAGIServer:
    """FastAGI on ``host:port`` (0 = a free port), one thread per call.

    ``handlers`` maps ``agi_network_script`` (``ivr`` in ``agi://host:port/ivr``) to a
    callable ``(agi, env) -> None``. At most ``max_call_threads`` calls run at once;
    more wait in the listen queue (see ``_CallThreads``). A call thread with no call
    for ``idle_timeout_s`` ends.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 handlers: Mapping[str, Handler] | None = None, *,
                 on_event: Callable[[AgiCallEnded], None] | None = None,
                 env_timeout_s: float = ENV_TIMEOUT_S,
                 max_call_threads: int = MAX_CALL_THREADS,
                 idle_timeout_s: float = IDLE_THREAD_TIMEOUT_S) -> None:
        self._server = _Server((host, port), handlers or {}, on_event, env_timeout_s,
                               max_call_threads, idle_timeout_s)
        self._thread: threading.Thread | None = None

    def call_threads(self) -> tuple[int, int]:
        """(call threads alive, of which idle): for monitoring and the soak."""
        threads = self._server.call_threads
        return threads.alive(), threads.idle()

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def active_calls(self) -> int:
        with self._server.lock:
            return len(self._server.active)

    def start(self) -> FastAGIServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.2},
                                            name=f"fastagi:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener, then wait up to ``timeout`` s for calls in progress.

        Calls still running after that have their sockets shut down, which ends
        them as a hang-up.
        """
        # first: the accept loop may be waiting for a free call thread (at the cap)
        self._server.call_threads.refuse_new()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()
        if not self._wait_for_calls(timeout):
            with self._server.lock:
                sockets = list(self._server.active.values())
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._wait_for_calls(1.0)
        self._server.call_threads.close(timeout=1.0)

    def _wait_for_calls(self, timeout: float) -> bool:
        """True once no call is in progress, False if ``timeout`` s passed first."""
        deadline = time.monotonic() + timeout
        while True:
            with self._server.lock:
                if not self._server.active:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def __enter__(self) -> FastAGIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
