"""One record per call and its queue_log-style events, written to the store off
the router thread.

The engine hands records (`store.CallRecord`, upserted field by field) and
events (``enter``, ``offered``, ``ring-no-answer``, ``connected``, ...) to
`CallLog.put`; one writer thread writes them in order, so a slow disk never
stalls routing. `CallLog.close` writes what is left before it returns.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store import CallRecord

__all__ = ["CallLog", "CallEventWrite", "AgentStateWrite"]

log = logging.getLogger("homeline.call_log")


@dataclass(frozen=True, slots=True)
class CallEventWrite:
    call_id: str
    at: datetime
    event: str
    agent_id: str | None = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AgentStateWrite:
    """An agent entered ``state`` (the store's agent_state_log: occupancy)."""

    agent_id: str
    state: str
    at: datetime


class CallLog:
    def __init__(self, store: Any) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[CallRecord | CallEventWrite | AgentStateWrite | None] = (
            queue.SimpleQueue())
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._write, name="call-log", daemon=True)
        self._thread.start()

    def put(self, item: CallRecord | CallEventWrite | AgentStateWrite) -> None:
        self._queue.put(item)

    def event(self, call_id: str, at: datetime, event: str, agent_id: str | None = None,
              **data: Any) -> None:
        self._queue.put(CallEventWrite(call_id, at, event, agent_id, data or None))

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _write(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if isinstance(item, CallRecord):
                    self._store.record_call(item)
                elif isinstance(item, AgentStateWrite):
                    self._store.add_agent_state(item.agent_id, item.state, item.at)
                else:
                    self._store.add_call_event(item.call_id, item.at, item.event,
                                               item.agent_id, dict(item.data or {}) or None)
            except Exception as exc:  # the store is failing: say so, keep the engine up
                what = item.agent_id if isinstance(item, AgentStateWrite) else item.call_id
                log.warning("call log for %s not stored: %s", what, exc)
                self.errors.append(f"call log {what}: {exc!r}")
