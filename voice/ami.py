"""AMI adapter: a supervised connection to Asterisk's manager interface.

Built on asterisk-ami's ``AMIClient``, with what a long-running engine needs
and the library leaves out:

- ``timeout=None`` on the socket: the library's default of 3 s ends its reader
  thread after 3 s without traffic, and an idle PBX is silent for minutes;
- login, then reconnect with exponential backoff whenever the connection drops
  (Asterisk restarted, socket closed, or a pack the library cannot parse, which
  makes its reader thread give up); ``on_connected`` runs after every login so
  the caller can rebuild its view of the world;
- actions from any thread (one lock around the socket and the ActionID counter),
  each with its own timeout; list actions (``EventList: start`` ...
  ``...Complete``) gathered into one result.

Protocol reference: Asterisk wiki, "AMI v2 Specification" (packets are
``Key: Value`` lines ended by an empty line; every action may carry an
``ActionID`` that Asterisk echoes in its response and list events).
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from asterisk.ami import AMIClient, SimpleAction
from asterisk.ami.response import FutureResponse

__all__ = ["AmiConnection", "AmiError", "AmiEvent", "AmiReply", "AmiResponse"]

log = logging.getLogger("homeline.ami")


class AmiError(Exception):
    """An AMI action failed, timed out, or the connection is not up."""


@dataclass(frozen=True, slots=True)
class AmiEvent:
    name: str
    fields: Mapping[str, str]

    def get(self, key: str, default: str = "") -> str:
        value = self.fields.get(key, default)
        return value if isinstance(value, str) else default


@dataclass(frozen=True, slots=True)
class AmiResponse:
    status: str
    fields: Mapping[str, str]
    events: tuple[AmiEvent, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AmiReply:
    """The answer to an action sent with `AmiConnection.send`: ``ok`` or why not."""

    action: str
    ok: bool
    message: str = ""


@dataclass
class _PendingList:
    complete_event: str
    events: list[AmiEvent] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class _Future(FutureResponse):  # type: ignore[misc]
    """The library's future calls ``Condition.notifyAll`` (deprecated since
    Python 3.10, a warning that kills its reader thread when warnings are
    errors); this one notifies with ``notify_all``."""

    def set_response(self, response: object) -> None:
        try:
            if self._callback is not None:
                self._callback(response)
        finally:
            with self._lock:
                self._response = response
                self._lock.notify_all()

    response = property(FutureResponse.get_response, set_response)


class _Client(AMIClient):  # type: ignore[misc]
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._send_lock = threading.Lock()

    def send_action(self, action: object, callback: Callable[..., None] | None = None) -> _Future:
        with self._send_lock:
            if "ActionID" not in action.keys:  # type: ignore[attr-defined]
                action.keys["ActionID"] = self.next_action_id()  # type: ignore[attr-defined]
            future = _Future(callback, self._timeout)
            self._futures[action.keys["ActionID"]] = future  # type: ignore[attr-defined]
            self.send(action)
        return future


class AmiConnection:
    """A logged-in AMI session that keeps itself logged in.

    ``on_event(AmiEvent)`` is called on the library's reader thread for every
    event that is not part of a list action; it must not block for long.
    ``on_connected()`` is called (on the supervisor thread) after every
    successful login, the first one included.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: Callable[[AmiEvent], None],
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        backoff_s: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self._host, self._port = host, port
        self._username, self._secret = username, secret
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._backoff = backoff_s
        self._client: _Client | None = None
        self._up = threading.Event()
        self._dropped = threading.Event()
        self._stopping = threading.Event()
        self._lists: dict[str, _PendingList] = {}
        self._ids = itertools.count(1)
        self._lists_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.connects = 0
        self.last_error = ""

    # -- lifecycle ---------------------------------------------------------
    def start(self, wait_s: float | None = 10.0) -> None:
        """Start the supervisor; with ``wait_s``, wait for the first login."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._supervise, name="ami-supervisor", daemon=True)
        self._thread.start()
        if wait_s is not None and not self._up.wait(wait_s):
            self.stop()
            raise AmiError(
                f"could not log in to AMI at {self._host}:{self._port} as {self._username!r} "
                f"within {wait_s:.0f} s: {self.last_error or 'no answer'}"
            )

    def stop(self) -> None:
        self._stopping.set()
        self._dropped.set()
        client = self._client
        if client is not None:
            self._close(client)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._thread = None

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._up.wait(timeout_s)

    def drop(self) -> None:
        """Close the socket as a network fault would; the supervisor reconnects."""
        client = self._client
        if client is not None:
            self._close(client)

    # -- actions -------------------------------------------------------------
    def action(self, name: str, timeout_s: float = 5.0, **fields: str) -> AmiResponse:
        """Send one action and wait for its response; ``Response: Error`` raises."""
        response = self._send(name, timeout_s, fields, list_complete=None)
        return response

    def send(self, name: str, on_reply: Callable[[AmiReply], None] | None = None,
             **fields: str) -> None:
        """Send one action without waiting for Asterisk's answer.

        ``on_reply(AmiReply)`` runs on the library's reader thread when the
        response arrives (or at once when the action cannot be sent); it must
        not block. Asterisk handles one session's actions in the order they
        were sent (manager.c: ``session_do`` reads and processes one message
        at a time), so a Setvar sent before a Redirect is applied before it.
        """
        client = self._client
        if client is None or not self._up.is_set():
            if on_reply is not None:
                on_reply(AmiReply(name, False, f"not connected to Asterisk ({self.last_error})"))
            return

        def answered(response: object) -> None:
            if on_reply is None:
                return
            status = str(getattr(response, "status", ""))
            keys = getattr(response, "keys", {}) or {}
            ok = status.lower() != "error"
            try:
                on_reply(AmiReply(name, ok, str(keys.get("Message", "" if ok else "no message"))))
            except Exception:  # a handler bug must not kill the library's reader thread
                log.exception("AMI reply handler for %s failed", name)

        try:
            client.send_action(SimpleAction(name, ActionID=f"hl-{next(self._ids)}", **fields),
                               answered)
        except OSError as exc:
            if on_reply is not None:
                on_reply(AmiReply(name, False, f"send failed: {exc}"))

    def action_list(
        self, name: str, complete_event: str, timeout_s: float = 10.0, **fields: str
    ) -> AmiResponse:
        """Send a list action and gather its events up to ``complete_event``."""
        return self._send(name, timeout_s, fields, list_complete=complete_event)

    def _send(
        self, name: str, timeout_s: float, fields: Mapping[str, str], list_complete: str | None
    ) -> AmiResponse:
        client = self._client
        if client is None or not self._up.is_set():
            raise AmiError(f"AMI action {name}: not connected to Asterisk ({self.last_error})")
        action_id = f"hl-{next(self._ids)}"
        response_seen = threading.Event()
        holder: dict[str, object] = {}
        pending = _PendingList(list_complete) if list_complete else None
        if pending is not None:
            with self._lists_lock:
                self._lists[action_id] = pending

        def on_response(response: object) -> None:
            holder["response"] = response
            response_seen.set()

        try:
            try:
                client.send_action(SimpleAction(name, ActionID=action_id, **fields), on_response)
            except OSError as exc:
                raise AmiError(f"AMI action {name}: send failed: {exc}") from exc
            deadline = time.monotonic() + timeout_s
            if not response_seen.wait(timeout_s):
                raise AmiError(f"AMI action {name}: no response within {timeout_s:.1f} s")
            response = holder["response"]
            status = str(getattr(response, "status", ""))
            keys = {str(k): str(v) for k, v in (getattr(response, "keys", {}) or {}).items()}
            if status.lower() == "error":
                raise AmiError(f"AMI action {name} failed: {keys.get('Message', 'no message')}")
            events: tuple[AmiEvent, ...] = ()
            if pending is not None:
                if not pending.done.wait(max(0.0, deadline - time.monotonic())):
                    raise AmiError(
                        f"AMI action {name}: {list_complete} not seen in {timeout_s:.1f} s"
                    )
                events = tuple(pending.events)
            return AmiResponse(status=status, fields=keys, events=events)
        finally:
            if pending is not None:
                with self._lists_lock:
                    self._lists.pop(action_id, None)

    # -- reader-thread callbacks -------------------------------------------
    def _event(self, event: object, source: object = None) -> None:
        try:
            name = str(getattr(event, "name", ""))
            keys = {str(k): v for k, v in (getattr(event, "keys", {}) or {}).items()}
            ami_event = AmiEvent(name=name, fields=keys)
            action_id = keys.get("ActionID")
            if isinstance(action_id, str):
                with self._lists_lock:
                    pending = self._lists.get(action_id)
                if pending is not None:
                    if name == pending.complete_event:
                        pending.done.set()
                    else:
                        pending.events.append(ami_event)
                    return
            self._on_event(ami_event)
        except Exception:  # a handler bug must not kill the library's reader thread
            log.exception("AMI event handler failed")

    def _disconnected(self, source: object = None, error: object = None) -> None:
        if error is not None:
            self.last_error = f"connection lost: {error!r}"
        else:
            self.last_error = "connection closed by Asterisk"
        self._up.clear()
        self._dropped.set()

    # -- supervisor ----------------------------------------------------------
    @staticmethod
    def _close(client: _Client) -> None:
        try:
            if client.finished is not None:
                client.finished.set()
            if client._socket is not None:
                client._socket.close()
        except OSError:
            pass

    def _login_once(self) -> bool:
        client = _Client(address=self._host, port=self._port, timeout=None)
        client.add_event_listener(self._event)
        client.add_listener(on_disconnect=self._disconnected)
        try:
            future = client.login(self._username, self._secret)
        except OSError as exc:
            self.last_error = f"connect to {self._host}:{self._port} failed: {exc.strerror or exc}"
            self._close(client)
            return False
        got = threading.Event()
        result: dict[str, object] = {}

        def wait_login() -> None:
            result["response"] = future.response
            got.set()

        threading.Thread(target=wait_login, daemon=True).start()
        if not got.wait(5.0) or result.get("response") is None:
            self.last_error = "login: no response within 5 s"
            self._close(client)
            return False
        response = result["response"]
        if response.is_error():  # type: ignore[attr-defined]
            message = response.keys.get("Message", "")  # type: ignore[attr-defined]
            self.last_error = f"login as {self._username!r} refused: {message}"
            self._close(client)
            return False
        self._client = client
        self._dropped.clear()
        self._up.set()
        self.connects += 1
        self.last_error = ""
        return True

    def _supervise(self) -> None:
        delay = self._backoff[0]
        while not self._stopping.is_set():
            if not self._login_once():
                log.warning("AMI: %s; retrying in %.1f s", self.last_error, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            log.info("AMI: logged in to %s:%s (#%d)", self._host, self._port, self.connects)
            if self._on_connected is not None:
                try:
                    self._on_connected()
                except Exception:
                    log.exception("AMI on_connected handler failed")
            self._dropped.wait()
            self._up.clear()
            if self._client is not None:
                self._close(self._client)
            if self._stopping.is_set():
                break
            log.warning("AMI: %s; reconnecting", self.last_error)
            if self._on_disconnected is not None:
                try:
                    self._on_disconnected(self.last_error)
                except Exception:
                    log.exception("AMI on_disconnected handler failed")
