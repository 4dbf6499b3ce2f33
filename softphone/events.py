"""What a softphone saw, as immutable values, and a thread-safe log of them.

Every event carries ``at`` (``time.monotonic()`` seconds when the pjsua2 thread
saw it) and ``user`` (the local account's user part). Events are appended by the
pjsua2 thread only; any thread may read or wait on an :class:`EventLog`.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from softphone.errors import SoftphoneTimeout

__all__ = [
    "SoftphoneEvent",
    "MessageReceived",
    "Registered",
    "RegistrationFailed",
    "Unregistered",
    "IncomingCall",
    "CallStateChanged",
    "AudioStarted",
    "DtmfReceived",
    "EventLog",
]


@dataclass(frozen=True, slots=True)
class Registered:
    at: float
    user: str
    status: int
    reason: str
    expires: int

    def describe(self) -> str:
        return f"registered {self.user} ({self.status} {self.reason}, expires {self.expires} s)"


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    at: float
    user: str
    status: int
    reason: str

    def describe(self) -> str:
        return f"registration of {self.user} failed: {self.status} {self.reason}"


@dataclass(frozen=True, slots=True)
class Unregistered:
    at: float
    user: str
    status: int
    reason: str

    def describe(self) -> str:
        return f"unregistered {self.user} ({self.status} {self.reason})"


@dataclass(frozen=True, slots=True)
class IncomingCall:
    at: float
    user: str
    call_id: str
    from_uri: str
    to_uri: str

    def describe(self) -> str:
        return f"incoming call from {self.from_uri} to {self.to_uri} (Call-ID {self.call_id})"


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    """pjsip invite-session state: CALLING, INCOMING, EARLY, CONNECTING, CONFIRMED,
    DISCONNECTED; ``status``/``reason`` are the last SIP status line seen."""

    at: float
    user: str
    call_id: str
    state: str
    status: int
    reason: str

    def describe(self) -> str:
        status = f" ({self.status} {self.reason})" if self.status else ""
        return f"call {self.call_id}: {self.state}{status}"


@dataclass(frozen=True, slots=True)
class AudioStarted:
    at: float
    user: str
    call_id: str

    def describe(self) -> str:
        return f"call {self.call_id}: audio started"


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """One DTMF digit; ``method`` is ``"rfc4733"`` (RTP telephone-event) or ``"sip-info"``."""

    at: float
    user: str
    call_id: str
    digit: str
    method: str
    duration_ms: int

    def describe(self) -> str:
        return f"call {self.call_id}: DTMF {self.digit!r} via {self.method}"


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A SIP MESSAGE (RFC 3428) to this account, e.g. Homeline telling an agent why
    they were put on break."""

    at: float
    user: str
    sender: str
    body: str

    def describe(self) -> str:
        return f"message from {self.sender}: {self.body!r}"


SoftphoneEvent = (
    Registered
    | RegistrationFailed
    | Unregistered
    | IncomingCall
    | CallStateChanged
    | AudioStarted
    | DtmfReceived
    | MessageReceived
)


class EventLog:
    """Append-only, thread-safe list of events with blocking waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[SoftphoneEvent] = []

    def append(self, event: SoftphoneEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def snapshot(self) -> list[SoftphoneEvent]:
        with self._cond:
            return list(self._events)

    def __len__(self) -> int:
        with self._cond:
            return len(self._events)

    def wait_for(
        self,
        match: Callable[[SoftphoneEvent], bool],
        timeout: float,
        *,
        start: int = 0,
        what: str = "event",
    ) -> SoftphoneEvent:
        """First event at index >= ``start`` for which ``match`` is true.

        Raises :class:`SoftphoneTimeout` naming ``what`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self._events):
                    event = self._events[index]
                    index += 1
                    if match(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SoftphoneTimeout(f"no {what} within {timeout:g} s")
                self._cond.wait(remaining)

    def wait_new(self, start: int, timeout: float) -> list[SoftphoneEvent]:
        """Events from index ``start`` on, waiting up to ``timeout`` s for at least one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._events) <= start:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)
            return self._events[start:]
