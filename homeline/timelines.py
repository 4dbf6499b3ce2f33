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

from homeline.call_log import AgentStateWrite, CallLog
from routing.events import (
    AgentStateChanged,
    CallbackAccepted,
    CallEnded,
    CallerAbandoned,
    CallOverflowed,
    CallRejected,
    Decision,
    Event,
    OfferAnswered,
    OfferCall,
    OfferNotAnswered,
)
from store import CallRecord

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
    SKIP_LIVE = 4  # live calls looked past per new call (see _evict)

    def __init__(self, store: Any = None) -> None:
        self._log = CallLog(store) if store is not None else None
        self._lock = threading.Lock()
        self._by_call: OrderedDict[str, CallTimeline] = OrderedDict()
        self._errors: list[str] = []
        self._wrap: dict[str, tuple[str, datetime]] = {}  # agent -> (call, wrap-up began)
        self._last_call: dict[str, str] = {}  # agent -> the call they answered last

    @property
    def errors(self) -> list[str]:
        return self._errors + (self._log.errors if self._log is not None else [])

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

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
                self._evict()
            return timeline

    def _evict(self) -> None:
        """Forget the oldest ended calls beyond KEEP. A call still live is never
        forgotten: it moves behind the newest (a few per new call, so one call
        that never ends cannot stop the eviction and let the map grow)."""
        skipped = 0
        while len(self._by_call) > self.KEEP and skipped < self.SKIP_LIVE:
            call_id, oldest = next(iter(self._by_call.items()))
            if not oldest.ended and oldest.outcome in ("", "routed"):
                self._by_call.move_to_end(call_id)
                skipped += 1
                continue
            self._by_call.popitem(last=False)

    def note(self, call_id: str, what: str) -> None:
        self.of(call_id).note(what)

    def offered(self, call_id: str, agent_id: str, reason: str) -> None:
        timeline = self.of(call_id)
        timeline.agent, timeline.reason = agent_id, reason
        timeline.offers.append(agent_id)

    # -- what the call log gets ----------------------------------------------------------
    def record(self, rec: CallRecord) -> None:
        if self._log is not None:
            self._log.put(rec)

    def event(self, call_id: str, at: datetime, event: str, agent_id: str | None = None,
              **data: Any) -> None:
        if self._log is not None:
            self._log.event(call_id, at, event, agent_id, **data)

    def follow(self, event: Event, now: datetime) -> None:
        """Keep the call's timeline, events and (at its end) record up to date."""
        match event:
            case OfferAnswered():
                timeline = self.of(event.call_id)
                timeline.answered, timeline.agent, timeline.answered_at = (
                    True, event.agent_id, now)
                timeline.note(f"agent {event.agent_id} answered")
                self.event(event.call_id, now, "connected", event.agent_id)
                self._last_call[event.agent_id] = event.call_id
                self.record(CallRecord(event.call_id, agent_id=event.agent_id,
                                       answered_at=now))
            case CallEnded():
                timeline = self.of(event.call_id)
                timeline.ended = True
                timeline.note(f"hang-up by {event.by}")
                self.event(event.call_id, now, "completed", timeline.agent, by=event.by)
                self.save_record(timeline, f"ended-by-{event.by}", now)
            case CallerAbandoned():
                timeline = self.of(event.call_id)
                timeline.ended = True
                timeline.note("caller hung up before an agent answered")
                self.event(event.call_id, now, "abandoned")
                self.save_record(timeline, "abandoned", now)
            case OfferNotAnswered():
                self.note(event.call_id, f"{event.agent_id} did not answer ({event.cause})")
                self.event(event.call_id, now, "ring-no-answer", event.agent_id,
                           cause=event.cause)
            case CallbackAccepted():
                self.event(event.call_id, now, "callback")
            case _:
                pass  # other events change no call's story

    def decided(self, decision: Decision, now: datetime) -> None:
        """The router's decisions that are part of a call's story."""
        match decision:
            case OfferCall():
                self.offered(decision.call_id, decision.agent_id, decision.reason.text)
                self.event(decision.call_id, now, "offered", decision.agent_id,
                           rule=decision.reason.rule, callback=decision.callback)
            case CallOverflowed():
                self.event(decision.call_id, now, "overflowed", None,
                           from_queue=decision.from_queue, target=decision.target)
            case AgentStateChanged():
                if self._log is not None:  # occupancy (routing.stats) reads these
                    self._log.put(AgentStateWrite(decision.agent_id, decision.new, now))
                # wrap-up after a call: its length belongs to that call's record
                if decision.new == "wrap_up" and decision.agent_id in self._last_call:
                    self._wrap[decision.agent_id] = (self._last_call[decision.agent_id], now)
                elif decision.old == "wrap_up" and decision.agent_id in self._wrap:
                    call_id, began = self._wrap.pop(decision.agent_id)
                    self.record(CallRecord(call_id, wrap_up_s=round(
                        (now - began).total_seconds(), 3)))
            case CallRejected():
                self.event(decision.call_id, now, "rejected", None, code=decision.code)
                self.record(CallRecord(decision.call_id, outcome=f"rejected-{decision.code}",
                                       reason=decision.why))
            case _:
                pass

    def save_record(self, timeline: CallTimeline, outcome: str, now: datetime) -> None:
        """The call's record as it ends (queue_log-style facts, no secrets)."""
        self.record(CallRecord(
            call_id=timeline.call_id, queue_id=timeline.queue or None,
            agent_id=timeline.agent if timeline.answered else None,
            caller=timeline.caller or None, answered_at=timeline.answered_at, ended_at=now,
            outcome=outcome, reason=timeline.reason or None,
        ))
