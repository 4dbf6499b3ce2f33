"""The engine: FastAGI IVR + router + AMI adapter, wired together.

Threads (the router core itself is single-threaded and pure):

- FastAGI threads, one per call (``ivr.fastagi``), run the flow; a ``route``
  command posts the call to the router thread and waits for its answer
  (queue position, expected wait) so the IVR can announce it;
- the AMI reader thread translates AMI events (``routing.ami_events``) and posts
  them to the router thread;
- the router thread is the only caller of ``Router.handle(event, now)``; it
  carries out the decisions over AMI (Setvar + Redirect) and keeps the single
  wake-up time the router asked for.

An offer for a call whose IVR session is still running is held until the AGI
session ends: redirecting a channel that is inside AGI() would end the IVR
under its feet.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routing.ami import AmiConnection, AmiError, AmiEvent
from routing.ami_events import AmiTranslator
from routing.events import (
    AgentPutOnBreak,
    CallArrived,
    CallEnded,
    CallerAbandoned,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CancelOffer,
    OfferAnswered,
    OfferCall,
    OfferNotAnswered,
    TimerFired,
    WakeAt,
)

__all__ = ["Engine", "EngineConfig", "CallTimeline"]

log = logging.getLogger("homeline.engine")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: str
    agi_host: str = "127.0.0.1"
    agi_port: int = 0
    agent_context: str = "homeline-agent"
    hold_context: str = "homeline-hold"
    journal_path: Path | None = None


@dataclass
class CallTimeline:
    """What happened to one call, for people (the demo) and for call records."""

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


class Engine:
    KEEP_TIMELINES = 10_000
    DIAL_GRACE_S = 2.0  # Dial's own timeout = the router's ring timeout + this
    REDIRECT_TRIES = 5  # "channel not up" while an earlier goto is pending
    REDIRECT_RETRY_S = 0.1

    def __init__(
        self,
        config: EngineConfig,
        router: Any,
        flow_for_new_call: Callable[[], Any],
        agent_ids: list[str],
        recordings: Any = None,
        survey_flow: Any = None,
        store: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._router = router
        self._flow_for_new_call = flow_for_new_call
        self._recordings = recordings
        self._survey_flow = survey_flow
        self._store = store
        self._hours_seq = store.hours_seq() if store is not None else 0
        self.surveys: list[Any] = []
        self._clock = clock
        self._translator = AmiTranslator(agent_ids)
        # SimpleQueue: put/get in C, no Condition objects; every call passes here
        # several times (route request, AMI events, IVR done)
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake: datetime | None = None
        self._in_ivr: set[str] = set()
        self._held_offers: dict[str, list[OfferCall]] = {}
        # the most recent calls, for people watching; call records are in the store
        self._timelines: OrderedDict[str, CallTimeline] = OrderedDict()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, Any], None]] = []
        self._router_thread: threading.Thread | None = None
        self._journal = None
        self._ami = AmiConnection(
            config.ami_host, config.ami_port, config.ami_user, config.ami_secret,
            on_event=self._ami_event, on_connected=self._ami_connected,
        )
        self._agi: Any = None
        self.errors: list[str] = []

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        from ivr.fastagi import FastAGIServer

        if self.config.journal_path is not None:
            from routing.journal import Recorder

            # every event and decision as JSON lines: `homeline route replay` reproduces them
            self._journal = open(self.config.journal_path, "w", encoding="utf-8")  # noqa: SIM115
            self._router = Recorder(self._router, self._journal, start=self._clock())
        self._router_thread = threading.Thread(
            target=self._router_loop, name="router", daemon=True
        )
        self._router_thread.start()
        handlers: dict[str, Callable[..., Any]] = {"ivr": self._ivr_call}
        if self._survey_flow is not None:
            handlers["survey"] = self._survey_call
        self._agi = FastAGIServer(
            host=self.config.agi_host, port=self.config.agi_port, handlers=handlers
        )
        self._agi.start()
        try:
            self._ami.start(wait_s=15)
        except AmiError:
            self.stop()
            raise

    @property
    def agi_port(self) -> int:
        return int(self._agi.port)

    def stop(self) -> None:
        self._ami.stop()
        if self._agi is not None:
            self._agi.stop()
        if self._router_thread is not None:
            self._inbox.put(("stop", None))
            self._router_thread.join(5)
            self._router_thread = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation -------------------------------------------------------------
    def subscribe(self, listener: Callable[[str, Any], None]) -> None:
        """``listener(kind, payload)`` for every router event and decision (any thread)."""
        self._listeners.append(listener)

    def timeline(self, call_id: str) -> CallTimeline | None:
        with self._lock:
            return self._timelines.get(call_id)

    def timelines(self) -> list[CallTimeline]:
        with self._lock:
            return list(self._timelines.values())

    def registered_agents(self) -> set[str]:
        return self._translator.registered_agents()

    @property
    def ami(self) -> AmiConnection:
        return self._ami

    def post(self, event: Any) -> None:
        """Feed one router event (e.g. an agent's hours changed) from any thread."""
        self._inbox.put(("event", event))

    def _timeline_for(self, call_id: str) -> CallTimeline:
        with self._lock:
            timeline = self._timelines.get(call_id)
            if timeline is None:
                timeline = self._timelines[call_id] = CallTimeline(call_id=call_id)
                while len(self._timelines) > self.KEEP_TIMELINES:
                    oldest = next(iter(self._timelines.values()))
                    if not oldest.ended and oldest.outcome in ("", "routed"):
                        break  # never forget a call that is still live
                    self._timelines.popitem(last=False)
            return timeline

    # -- FastAGI side (one thread per call) --------------------------------------
    def _ivr_call(self, agi: Any, env: Mapping[str, str]) -> None:
        from ivr.agi_runner import run_call

        call_id = env.get("agi_uniqueid", "")
        channel = env.get("agi_channel", "")
        caller = env.get("agi_callerid", "")
        timeline = self._timeline_for(call_id)
        timeline.caller, timeline.channel = caller, channel
        timeline.note("IVR answered")
        with self._lock:
            self._in_ivr.add(call_id)

        def on_route(route: Any) -> Any:
            return self._route_from_ivr(route, channel, timeline)

        try:
            result = run_call(
                agi, self._flow_for_new_call(), call_id=call_id, caller=caller,
                on_route=on_route, recordings=self._recordings, log=log,
            )
            timeline.outcome = str(getattr(result, "outcome", ""))
            keys = [i for i in getattr(result, "inputs", ()) if set(i) <= set("0123456789*#")]
            timeline.digits = "".join(keys)
            timeline.note(f"IVR finished: {timeline.outcome or 'no outcome'}")
        finally:
            with self._lock:
                self._in_ivr.discard(call_id)
            self._inbox.put(("ivr-done", call_id))

    def _survey_call(self, agi: Any, env: Mapping[str, str]) -> None:
        from ivr.agi_runner import run_survey

        result = run_survey(agi, self._survey_flow, recordings=self._recordings, log=log)
        self.surveys.append(result)
        if result.call_id:
            self._timeline_for(result.call_id).note(
                f"survey: score {result.score} for agent {result.agent or '?'}")

    def _route_from_ivr(self, route: Any, channel: str, timeline: CallTimeline) -> Any:
        from ivr.agi_runner import RouteAck

        request = route.request
        timeline.intent, timeline.language = request.intent, request.language
        timeline.queue, timeline.arrived_at = request.queue, self._clock()
        timeline.note(
            f"route request: queue={request.queue} intent={request.intent} "
            f"language={request.language}"
        )
        arrived = CallArrived(
            call_id=request.call_id, queue_id=request.queue, language=request.language,
            intent=request.intent, caller=request.caller, priority=request.priority,
        )
        reply: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._inbox.put(("route", (arrived, channel, reply)))
        try:
            position, wait_s = reply.get(timeout=5)
        except queue.Empty:
            position, wait_s = 0, 0.0
        return RouteAck(position=position, expected_wait_s=round(wait_s))

    # -- AMI side ------------------------------------------------------------------
    def _ami_event(self, event: AmiEvent) -> None:
        self._inbox.put(("ami", event))

    def _ami_connected(self) -> None:
        # Rebuild our view of the world: which agents are registered, which calls live.
        try:
            channels = self._ami.action_list("CoreShowChannels", "CoreShowChannelsComplete")
            devices = self._ami.action_list("DeviceStateList", "DeviceStateListComplete")
        except AmiError as exc:
            log.warning("AMI resync failed: %s", exc)
            return
        self._inbox.put(("resync", (channels.events, devices.events)))

    def _save_record(self, timeline: CallTimeline, outcome: str, now: datetime) -> None:
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

    # -- the router thread -----------------------------------------------------------
    def _router_loop(self) -> None:
        while True:
            timeout = 1.0 if self._store is not None else None
            if self._wake is not None:
                until_wake = max(0.0, (self._wake - self._clock()).total_seconds())
                timeout = until_wake if timeout is None else min(timeout, until_wake)
            try:
                kind, payload = self._inbox.get(timeout=timeout)
            except queue.Empty:
                self._poll_hours()
                if self._wake is not None and self._wake <= self._clock():
                    self._wake = None
                    self._handle(TimerFired())
                continue
            if kind == "stop":
                return
            try:
                self._dispatch(kind, payload)
            except Exception as exc:  # a bug here must not stop routing for everyone
                log.exception("router thread: %s failed", kind)
                self.errors.append(f"{kind}: {exc!r}")

    def _poll_hours(self) -> None:
        """Hours an agent changed (CLI or portal) take effect for routing at once."""
        if self._store is None:
            return
        try:
            changes, self._hours_seq = self._store.hours_events_since(self._hours_seq)
        except Exception as exc:  # the store is unavailable: keep routing on what we know
            log.warning("reading hour changes from the store failed: %s", exc)
            return
        for change in changes:
            self._handle(change)

    def _dispatch(self, kind: str, payload: Any) -> None:
        if kind == "event":
            self._handle(payload)
        elif kind == "ami":
            for event in self._translator.translate(payload):
                self._handle(event)
        elif kind == "resync":
            channels, devices = payload
            for event in self._translator.resync(channels, devices):
                self._handle(event)
        elif kind == "route":
            arrived, channel, reply = payload
            self._translator.track(arrived.call_id, channel)
            decisions = self._handle(arrived)
            position, wait_s = 0, 0.0
            for decision in decisions:
                if isinstance(decision, CallQueued) and decision.call_id == arrived.call_id:
                    position, wait_s = decision.position, decision.expected_wait_s
            reply.put((position, wait_s))
        elif kind == "ivr-done":
            for offer in self._held_offers.pop(payload, []):
                self._offer(offer)

    def _handle(self, event: Any) -> list[Any]:
        now = self._clock()
        decisions = list(self._router.handle(event, now))
        self._record(now, event, decisions)
        # A cancelled offer followed, in the same batch, by a new offer for the
        # same call (ring timeout -> next agent) needs one Redirect, not two:
        # a second Redirect sent while Asterisk still handles the first finds the
        # channel flagged for an async goto and fails ("channel not up").
        reoffered = {d.call_id for d in decisions if isinstance(d, OfferCall)}
        for decision in decisions:
            if isinstance(decision, CancelOffer) and decision.call_id in reoffered:
                self._timeline_for(decision.call_id).note(f"offer cancelled: {decision.why}")
                continue
            self._carry_out(decision)
        return decisions

    def _record(self, now: datetime, event: Any, decisions: list[Any]) -> None:
        self._follow(event, now)
        for listener in self._listeners:
            listener("event", event)
            for decision in decisions:
                listener("decision", decision)

    def _follow(self, event: Any, now: datetime) -> None:
        """Keep the call's timeline (and, at its end, its call record) up to date."""
        if isinstance(event, OfferAnswered):
            timeline = self._timeline_for(event.call_id)
            timeline.answered, timeline.agent, timeline.answered_at = True, event.agent_id, now
            timeline.note(f"agent {event.agent_id} answered")
        elif isinstance(event, CallEnded):
            timeline = self._timeline_for(event.call_id)
            timeline.ended = True
            timeline.note(f"hang-up by {event.by}")
            self._save_record(timeline, f"ended-by-{event.by}", now)
        elif isinstance(event, CallerAbandoned):
            timeline = self._timeline_for(event.call_id)
            timeline.ended = True
            timeline.note("caller hung up before an agent answered")
            self._save_record(timeline, "abandoned", now)
        elif isinstance(event, OfferNotAnswered):
            self._timeline_for(event.call_id).note(
                f"{event.agent_id} did not answer ({event.cause})")

    def _carry_out(self, decision: Any) -> None:
        if isinstance(decision, WakeAt):
            self._wake = decision.at
        elif isinstance(decision, OfferCall):
            with self._lock:
                in_ivr = decision.call_id in self._in_ivr
            if in_ivr:
                self._held_offers.setdefault(decision.call_id, []).append(decision)
            else:
                self._offer(decision)
        elif isinstance(decision, CallQueued):
            timeline = self._timeline_for(decision.call_id)
            timeline.note(
                f"queued in {decision.queue_id}: position {decision.position}, "
                f"expected wait {decision.expected_wait_s:.0f} s"
            )
        elif isinstance(decision, CancelOffer):
            self._back_to_hold(decision.call_id, decision.why)
        elif isinstance(decision, AgentPutOnBreak):
            log.warning("agent %s put on break: %s", decision.agent_id, decision.why)
        elif isinstance(decision, CallOverflowed | CallRejected):
            timeline = self._timeline_for(decision.call_id)
            timeline.note(f"{type(decision).__name__}: {decision.why}")

    def _offer(self, offer: OfferCall) -> None:
        call = self._translator.calls.get(offer.call_id)
        timeline = self._timeline_for(offer.call_id)
        if call is None:
            return  # the caller already hung up; the router has been told
        timeline.agent, timeline.reason = offer.agent_id, offer.reason.text
        timeline.offers.append(offer.agent_id)
        timeline.note(f"offered to {offer.agent_id}: {offer.reason.text}")
        try:
            # Setvar then Redirect (both need only the 'call' write class; no Originate)
            # The router's ring timer is the one authority on "no answer"; Dial's
            # own timeout is a safety net a little later, for when the engine is gone.
            dial_timeout_s = max(1, round(offer.ring_timeout_s + self.DIAL_GRACE_S))
            self._ami.action("Setvar", Channel=call.channel, Variable="HOMELINE_RING_TIMEOUT",
                             Value=str(dial_timeout_s))
            if self._survey_flow is not None:
                self._ami.action("Setvar", Channel=call.channel, Variable="HOMELINE_SURVEY",
                                 Value="1")
            self._redirect(call.channel, self.config.agent_context, offer.agent_id)
        except AmiError as exc:
            timeline.note(f"redirect to {offer.agent_id} failed: {exc}")
            log.warning("offer %s -> %s failed: %s", offer.call_id, offer.agent_id, exc)
            if offer.call_id in self._translator.calls:
                self._inbox.put(("event", OfferNotAnswered(offer.call_id, offer.agent_id,
                                                           cause="pbx-error")))

    def _back_to_hold(self, call_id: str, why: str) -> None:
        call = self._translator.calls.get(call_id)
        if call is None:
            return
        self._timeline_for(call_id).note(f"offer cancelled: {why}")
        try:
            self._redirect(call.channel, self.config.hold_context, "s")
        except AmiError as exc:
            log.warning("back to hold for %s failed: %s", call_id, exc)

    def _redirect(self, channel: str, context: str, exten: str) -> None:
        """AMI Redirect, retried briefly while the channel is between two dialplan steps.

        manager.c's action_redirect answers "Redirect failed, channel not up."
        whenever ast_check_hangup() is true, which includes a soft hang-up
        still pending from an earlier async goto (Dial ending, a previous
        Redirect). That state lasts milliseconds; a real hang-up does not go
        away and the last error is raised.
        """
        for attempt in range(self.REDIRECT_TRIES):
            try:
                self._ami.action("Redirect", Channel=channel, Context=context, Exten=exten,
                                 Priority="1")
                return
            except AmiError as exc:
                if "not up" not in str(exc) or attempt == self.REDIRECT_TRIES - 1:
                    raise
                time.sleep(self.REDIRECT_RETRY_S)
