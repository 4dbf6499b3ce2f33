"""FastAGI server: Asterisk's ``AGI(agi://host:port/<script>)`` calls land here.

One asyncio event loop (uvloop's, on libuv: in bench/call_path.py it cut the
engine's CPU per call from 1.1-1.4 ms to about 0.95 ms and moved the IVR's knee
from 400 to 450 calls/s), in one thread of its own, serves every call: a call
is a coroutine, not a thread. Under load this matters more than anything else in the
engine: with a thread per call (pyst2's blocking ``AGI`` over a socket, which this
module used before), each AGI reply woke one of hundreds of threads that then
queued for the GIL, so the time from Asterisk's reply to our next command grew
past half a second on a busy 2-core machine, and res_agi drops every key pressed
in that gap ("Idle the channel until we get a command", res_agi.c run_agi: it
reads the channel's frames, DTMF included, and frees them). On the event loop a
reply is handled as soon as it is read, with no thread hand-off.

Protocol (Asterisk docs, "AGI"; res_agi.c): after connecting, Asterisk sends
``agi_<name>: <value>`` lines ending with a blank line; each command we send is
answered by ``200 result=<n> [(<data>)] [endpos=<n>]``, ``510`` (invalid command),
``511`` (command not permitted on a dead channel) or ``520`` (usage, multi-line,
ending with a ``520 End of proper usage.`` line). When the caller hangs up,
FastAGI writes ``HANGUP`` on the socket; after that every command gets ``511``;
an EOF means the channel is gone. res_agi reads commands with ``fgets`` from a
stdio stream but waits for the next one with ``poll`` on the socket
(``ast_waitfor_nandfds``), so a second command sent before the first is answered
could sit in stdio's buffer unseen: we send one command at a time.

At most ``max_calls`` calls are served at once; a further connection is accepted
but not read until a call ends. res_agi copes with that as with a slow script: it
has written the environment into the socket buffer and waits for our first
command, so the caller hears ringing (the IVR answers as its first command).
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import uvloop

from ivr.errors import AgiProtocolError

__all__ = ["AgiChannel", "AgiReply", "AgiHangup", "AgiCallEnded", "FastAGIServer",
           "Handler", "parse_reply", "read_environment"]

_LOG = logging.getLogger("homeline.voice.fastagi")
_REPLY = re.compile(r"^(\d{3})[ -](.*)$")
_KV = re.compile(r"(\w+)=(\S*)(?:\s+\(([^)]*)\))?")
MAX_ENV_BYTES = 65536  # the stream's limit: the environment block or one reply line
ENV_TIMEOUT_S = 10.0
MAX_CALLS = 4096  # calls served at once; further connections wait, unread


class AgiHangup(Exception):
    """The caller hung up or the channel is gone (``HANGUP``, 511, EOF)."""


@dataclass(frozen=True, slots=True)
class AgiReply:
    """A parsed ``200 result=...`` line: ``result``, the parenthesised ``data``, extras."""

    code: int
    result: str
    data: str
    extras: Mapping[str, str]


def parse_reply(line: str) -> AgiReply:
    """One reply line (without its newline) -> AgiReply.

    ``HANGUP``, 511 and ``result=... (hangup)`` raise AgiHangup; a 510 or anything
    that is not a reply raises AgiProtocolError. A 520 is multi-line: the caller
    reads to its end (see AgiChannel) before this raises for it.
    """
    if line == "HANGUP":
        raise AgiHangup("caller hung up")
    m = _REPLY.match(line)
    if not m:
        raise AgiProtocolError(f"unexpected AGI reply {line[:80]!r}")
    code, rest = int(m.group(1)), m.group(2)
    if code == 511:
        raise AgiHangup("channel is dead (511)")
    if code == 520:
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
        raise AgiHangup("caller hung up")
    return AgiReply(code, result, data, extras)


async def _line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError) as exc:  # a line over the limit
        raise AgiProtocolError(f"AGI line longer than {MAX_ENV_BYTES} bytes") from exc
    except ConnectionError as exc:
        raise AgiHangup(f"socket: {exc.__class__.__name__}") from exc
    if not raw:
        raise AgiHangup("connection closed by Asterisk")
    return raw.decode("utf-8", errors="replace").strip()


async def read_environment(reader: asyncio.StreamReader) -> dict[str, str]:
    """The AGI environment block: ``agi_name: value`` lines up to a blank line
    (res_agi.c setup_env), read as one block: it is in the socket buffer at once."""
    try:
        block = await reader.readuntil(b"\n\n")
    except asyncio.IncompleteReadError as exc:
        raise AgiHangup("connection closed before the AGI environment") from exc
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError(f"AGI environment longer than {MAX_ENV_BYTES} bytes") from exc
    except ConnectionError as exc:
        raise AgiHangup(f"socket: {exc.__class__.__name__}") from exc
    env: dict[str, str] = {}
    for line in block.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            env[key.strip()] = value.strip()
    return env


class AgiChannel:
    """One FastAGI session: send a command, read its reply (one at a time, see above)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 env: Mapping[str, str]) -> None:
        self._reader, self._writer = reader, writer
        self.env = dict(env)

    async def command(self, name: str, *args: str | int) -> AgiReply:
        """Send one AGI command (arguments already validated/quoted) and parse its reply."""
        text = " ".join([name, *(str(a) for a in args)])
        if "\n" in text or "\r" in text:
            raise AgiProtocolError("refusing to send an AGI command with a line break")
        try:
            self._writer.write(f"{text}\n".encode())
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise AgiHangup("socket closed") from exc
        line = await _line(self._reader)
        if line.startswith("520-"):  # usage text up to "520 End of proper usage."
            while not line.startswith("520 "):
                line = await _line(self._reader)
        return parse_reply(line)


Handler = Callable[[AgiChannel, Mapping[str, str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AgiCallEnded:
    """One FastAGI session ended: ``reason`` is completed, hangup, unknown-script or error."""

    script: str
    uniqueid: str
    reason: str
    detail: str = ""
    duration_s: float = 0.0


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "?", text)[:40]


class FastAGIServer:
    """FastAGI on ``host:port`` (0 = a free port), every call a coroutine on one loop.

    ``handlers`` maps ``agi_network_script`` (``ivr`` in ``agi://host:port/ivr``) to a
    coroutine function ``(agi, env) -> None``. ``on_event`` (called on the loop's
    thread) hears how each session ended.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 handlers: Mapping[str, Handler] | None = None, *,
                 on_event: Callable[[AgiCallEnded], None] | None = None,
                 env_timeout_s: float = ENV_TIMEOUT_S, max_calls: int = MAX_CALLS) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, not {max_calls}")
        if env_timeout_s <= 0:
            raise ValueError(f"env_timeout_s must be positive, not {env_timeout_s}")
        self._host, self._port = host, port
        self.handlers = dict(handlers or {})
        self.on_event = on_event
        self.env_timeout_s = env_timeout_s
        self.max_calls = max_calls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._active = 0
        self._ready = threading.Event()
        self._failed: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> FastAGIServer:
        if self._thread is not None:
            return self
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"fastagi:{self._port}",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._failed is not None:
            self._thread.join(5)
            self._thread = None
            raise self._failed
        return self

    def _run(self) -> None:
        assert self._loop is not None
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # e.g. the port is taken: start() raises it
            self._failed = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _listen(self) -> None:
        self._slots = asyncio.Semaphore(self.max_calls)
        # backlog: a burst of calls must queue in the kernel, not overflow it: an
        # overflowed listen queue drops the SYN and Asterisk retries 1 s later
        # (the caller hears nothing). The kernel caps it at net.core.somaxconn.
        self._server = await asyncio.start_server(self._accepted, self._host, self._port,
                                                  backlog=4096, limit=MAX_ENV_BYTES)
        self._port = int(self._server.sockets[0].getsockname()[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener, wait up to ``timeout`` s for calls in progress, then
        end the rest (their sockets close: Asterisk sees the script end)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            done = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), loop)
            try:
                done.result(timeout + 5)
            except Exception:  # noqa: BLE001 - stopping anyway
                _LOG.exception("FastAGI shutdown")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._thread = None

    async def _shutdown(self, timeout: float) -> None:
        if self._server is not None:
            self._server.close()
        tasks = set(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()

    def __enter__(self) -> FastAGIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation ----------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    def active_calls(self) -> int:
        """Calls being served now (not those waiting for a free slot)."""
        return self._active

    def sessions(self) -> int:
        """Connections open now: served and waiting."""
        return len(self._tasks)

    def run_soon(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the server's loop (from any thread)."""
        if self._loop is None:
            raise RuntimeError("FastAGI server not started")
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    # -- one connection -------------------------------------------------------------
    async def _accepted(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            assert self._slots is not None
            async with self._slots:
                self._active += 1
                try:
                    await self._serve(reader, writer)
                finally:
                    self._active -= 1
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        script, uniqueid, reason, detail = "", "", "completed", ""
        try:
            # Asterisk sends the environment at once; a peer that does not is not Asterisk.
            env = await asyncio.wait_for(read_environment(reader), self.env_timeout_s)
            agi = AgiChannel(reader, writer, env)
            script = env.get("agi_network_script", "").split("?", 1)[0].strip("/")
            uniqueid = env.get("agi_uniqueid", "")
            handler = self.handlers.get(script)
            if handler is None:
                reason = "unknown-script"
                known = ", ".join(sorted(self.handlers)) or "none"
                await agi.command("VERBOSE", '"Homeline: unknown FastAGI script '
                                  f'{_safe(script)!r} (known: {known}); hanging up"', 1)
                await agi.command("HANGUP")
            else:
                await handler(agi, env)
        except TimeoutError:
            reason, detail = "hangup", "no AGI environment in time"
        except AgiHangup as exc:
            reason, detail = "hangup", str(exc)
        except (ConnectionError, OSError) as exc:
            reason, detail = "hangup", f"socket: {exc.__class__.__name__}"
        except asyncio.CancelledError:
            reason, detail = "hangup", "server stopping"
        except AgiProtocolError as exc:
            reason, detail = "error", str(exc)
            _LOG.error("FastAGI %s call %s: %s", script or "?", uniqueid or "?", exc)
        except Exception as exc:  # a bug in a handler: keep the server up, say what it was
            reason, detail = "error", f"{exc.__class__.__name__}: {exc}"
            _LOG.exception("FastAGI %s call %s failed", script or "?", uniqueid or "?")
        if reason == "hangup":
            _LOG.info("FastAGI %s call %s ended by hang-up", script, uniqueid)
        if self.on_event is not None:
            event = AgiCallEnded(script, uniqueid, reason, detail, time.monotonic() - started)
            try:
                self.on_event(event)
            except Exception:  # an observer's bug must not turn into a call failure
                _LOG.exception("FastAGI on_event observer failed")
