"""What happened to each call, for people (the demo, the CLI) and for call records.

The engine feeds every router event here (`Timelines.follow`) and the
executors add notes; a call's record goes to the store when the call ends.
Only the most recent calls are kept in memory; a live call is never dropped.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from routing.events import CallEnded, CallerAbandoned, Event, OfferAnswered, OfferNotAnswered

__all__ = ["CallTimeline", "Timelines"]

log = logging.getLogger("homeline.timelines")


@dataclass
class CallTimeline:
    call_id: str
    caller: str = ""
    channel: str = ""
    digits: str = ""
    intent: str = ""
    language: str = ""
    queue: str = ""
    agent: str | None = None
    reason: str = ""
    answered: bool = False
    ended: bool = False
    outcome: str = ""
    arrived_at: datetime | None = None  # left the IVR for the router
    answered_at: datetime | None = None
    offers: list[str] = field(default_factory=list)
    steps: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.steps.append((time.time(), what))


class Timelines:
    KEEP = 10_000

    def __init__(self, store: Any = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._by_call: OrderedDict[str, CallTimeline] = OrderedDict()
        self.errors: list[str] = []

    def get(self, call_id: str) -> CallTimeline | None:
        with self._lock:
            return self._by_call.get(call_id)

    def all(self) -> list[CallTimeline]:
        with self._lock:
            return list(self._by_call.values())

    def of(self, call_id: str) -> CallTimeline:
        with self._lock:
            timeline = self._by_call.get(call_id)
            if timeline is None:
                timeline = self._by_call[call_id] = CallTimeline(call_id=call_id)
                while len(self._by_call) > self.KEEP:
                    oldest = next(iter(self._by_call.values()))
                    if not oldest.ended and oldest.outcome in ("", "routed"):
                        break  # never forget a call that is still live
                    self._by_call.popitem(last=False)
            return timeline

    def note(self, call_id: str, what: str) -> None:
        self.of(call_id).note(what)

    def offered(self, call_id: str, agent_id: str, reason: str) -> None:
        timeline = self.of(call_id)
        timeline.agent, timeline.reason = agent_id, reason
        timeline.offers.append(agent_id)

    def follow(self, event: Event, now: datetime) -> None:
        """Keep the call's timeline (and, at its end, its call record) up to date."""
        match event:
            case OfferAnswered():
                timeline = self.of(event.call_id)
                timeline.answered, timeline.agent, timeline.answered_at = (
                    True, event.agent_id, now)
                timeline.note(f"agent {event.agent_id} answered")
            case CallEnded():
                timeline = self.of(event.call_id)
                timeline.ended = True
                timeline.note(f"hang-up by {event.by}")
                self.save_record(timeline, f"ended-by-{event.by}", now)
            case CallerAbandoned():
                timeline = self.of(event.call_id)
                timeline.ended = True
                timeline.note("caller hung up before an agent answered")
                self.save_record(timeline, "abandoned", now)
            case OfferNotAnswered():
                self.note(event.call_id, f"{event.agent_id} did not answer ({event.cause})")
            case _:
                pass  # other events change no call's story

    def save_record(self, timeline: CallTimeline, outcome: str, now: datetime) -> None:
        """One call record per call in the store (queue_log-style facts, no secrets)."""
        if self._store is None:
            return
        from store import CallRecord

        try:
            self._store.record_call(CallRecord(
                call_id=timeline.call_id, queue_id=timeline.queue or None,
                agent_id=timeline.agent if timeline.answered else None,
                caller=timeline.caller or None, arrived_at=timeline.arrived_at,
                answered_at=timeline.answered_at, ended_at=now,
                outcome=outcome, reason=timeline.reason or None,
            ))
        except Exception as exc:
            log.warning("call record for %s not stored: %s", timeline.call_id, exc)
            self.errors.append(f"call record {timeline.call_id}: {exc!r}")
