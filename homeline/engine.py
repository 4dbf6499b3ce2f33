"""The engine: FastAGI IVR + router + voice executor, wired together.

Threads (the router core itself is single-threaded and pure):

- FastAGI threads, one per call (``voice.fastagi``), run the flow; a ``route``
  command posts the call to the router thread and waits for its answer
  (queue position, expected wait) so the IVR can announce it;
- the AMI reader thread translates nothing itself: it posts AMI events (and
  the answers to actions sent earlier) to the router thread;
- the router thread is the only caller of ``Router.handle(event, now)``; it
  hands every decision to the `VoiceExecutor`, which sends AMI actions without
  waiting for them, and keeps the single wake-up time the router asked for.

Everything reaches the router thread as one typed message (`Message`), taken
apart by an exhaustive ``match``; one clock (``clock``) drives the engine, the
router and the IVR.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, assert_never, get_args

from homeline.timelines import CallTimeline, Timelines
from routing.events import (
    AgentStateChanged,
    CallArrived,
    CallbackAccepted,
    CallQueued,
    Decision,
    Event,
    OfferCall,
    TimerFired,
)
from voice.agi_runner import IvrOutcome
from voice.ami import AmiConnection, AmiError, AmiEvent
from voice.ami_events import AmiTranslator
from voice.executor import VoiceExecutor

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
    journal_path: Path | None = None
    route_reply_timeout_s: float = 5.0


# -- what reaches the router thread ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouterEventPosted:
    """A router event from outside (an agent's hours or state changed, an AMI answer)."""

    event: Event


@dataclass(frozen=True, slots=True)
class AmiEventReceived:
    event: AmiEvent


@dataclass(frozen=True, slots=True)
class AmiResynced:
    """What Asterisk holds after a (re)connect: channels and device states."""

    channels: tuple[AmiEvent, ...]
    devices: tuple[AmiEvent, ...]


@dataclass(frozen=True, slots=True)
class RouteAsked:
    arrived: CallArrived
    channel: str
    reply: queue.SimpleQueue[tuple[int, float]]


@dataclass(frozen=True, slots=True)
class IvrEnded:
    call_id: str
    outcome: IvrOutcome


@dataclass(frozen=True, slots=True)
class StopRequested:
    pass


Message = (RouterEventPosted | AmiEventReceived | AmiResynced | RouteAsked | IvrEnded
           | StopRequested)


def ivr_outcome(text: str) -> IvrOutcome:
    for known in get_args(IvrOutcome):
        if text == known:
            return known  # type: ignore[no-any-return]
    return "error"


class Engine:
    KEEP_TIMELINES = Timelines.KEEP

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
        voicemail_box: Callable[[str], str] | None = None,
        hold_s: Callable[[str], int] = lambda _queue_id: 0,
    ) -> None:
        self._hold_s = hold_s
        self.config = config
        self._router = router
        self._flow_for_new_call = flow_for_new_call
        self._recordings = recordings
        self._survey_flow = survey_flow
        self._store = store
        self._hours_seq = store.hours_seq() if store is not None else 0
        self._requests_seq = store.agent_requests_seq() if store is not None else 0
        self.surveys: list[Any] = []
        self._clock = clock
        self._translator = AmiTranslator(agent_ids)
        # SimpleQueue: put/get in C, no Condition objects; every call passes here
        # several times (route request, AMI events, IVR done)
        self._inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._wake: datetime | None = None
        self._in_ivr: set[str] = set()
        self._lock = threading.Lock()
        self._calls = Timelines(store)
        self._listeners: list[Callable[[str, Any], None]] = []
        self._router_thread: threading.Thread | None = None
        self._journal: Any = None
        self._ami = AmiConnection(
            config.ami_host, config.ami_port, config.ami_user, config.ami_secret,
            on_event=lambda event: self._inbox.put(AmiEventReceived(event)),
            on_connected=self._ami_connected,
        )
        self._executor = VoiceExecutor(
            self._ami, self._translator, post=self.post, note=self._calls.note,
            set_wake=self._set_wake, in_ivr=self._is_in_ivr,
            on_agent_state=self._agent_state_changed,
            voicemail_box=voicemail_box or (lambda queue_id: queue_id or "general"),
            survey=survey_flow is not None,
        )
        self._agi: Any = None
        self._errors: list[str] = []

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        from voice.fastagi import FastAGIServer

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
            self._inbox.put(StopRequested())
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
    @property
    def errors(self) -> list[str]:
        return self._errors + self._calls.errors

    def subscribe(self, listener: Callable[[str, Any], None]) -> None:
        """``listener(kind, payload)`` for every router event and decision (router thread)."""
        self._listeners.append(listener)

    def timeline(self, call_id: str) -> CallTimeline | None:
        return self._calls.get(call_id)

    def timelines(self) -> list[CallTimeline]:
        return self._calls.all()

    def registered_agents(self) -> set[str]:
        return self._translator.registered_agents()

    @property
    def ami(self) -> AmiConnection:
        return self._ami

    def post(self, event: Event) -> None:
        """Feed one router event (e.g. an agent's hours changed) from any thread."""
        self._inbox.put(RouterEventPosted(event))

    def _is_in_ivr(self, call_id: str) -> bool:
        with self._lock:
            return call_id in self._in_ivr

    def _set_wake(self, at: datetime) -> None:
        self._wake = at

    def _agent_state_changed(self, change: AgentStateChanged) -> None:
        log.info("agent %s: %s -> %s (%s)", change.agent_id, change.old, change.new,
                 change.trigger)

    # -- FastAGI side (one thread per call) --------------------------------------
    def _ivr_call(self, agi: Any, env: Mapping[str, str]) -> None:
        from voice.agi_runner import run_call

        call_id = env.get("agi_uniqueid", "")
        channel = env.get("agi_channel", "")
        caller = env.get("agi_callerid", "")
        timeline = self._calls.of(call_id)
        timeline.caller, timeline.channel = caller, channel
        timeline.note("IVR answered")
        with self._lock:
            self._in_ivr.add(call_id)
        outcome: IvrOutcome = "error"

        def on_route(route: Any) -> Any:
            return self._route_from_ivr(route, channel, timeline)

        try:
            result = run_call(
                agi, self._flow_for_new_call(), call_id=call_id, caller=caller,
                on_route=on_route, recordings=self._recordings, log=log, now=self._clock,
            )
            outcome = ivr_outcome(result.outcome)
            timeline.outcome = outcome
            keys = [i for i in result.inputs if set(i) <= set("0123456789*#")]
            timeline.digits = "".join(keys)
            timeline.note(f"IVR finished: {outcome or 'no outcome'}")
        finally:
            with self._lock:
                self._in_ivr.discard(call_id)
            self._inbox.put(IvrEnded(call_id, outcome))

    def _survey_call(self, agi: Any, env: Mapping[str, str]) -> None:
        from voice.agi_runner import run_survey

        result = run_survey(agi, self._survey_flow, recordings=self._recordings, log=log,
                            now=self._clock)
        self.surveys.append(result)
        if result.call_id:
            self._calls.note(result.call_id,
                             f"survey: score {result.score} for agent {result.agent or '?'}")

    def _route_from_ivr(self, route: Any, channel: str, timeline: CallTimeline) -> Any:
        from voice.agi_runner import RouteAck

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
            skills=tuple(request.skills),
            data=tuple(sorted((str(k), str(v)) for k, v in request.data.items())),
        )
        reply: queue.SimpleQueue[tuple[int, float]] = queue.SimpleQueue()
        self._inbox.put(RouteAsked(arrived, channel, reply))
        try:
            position, wait_s = reply.get(timeout=self.config.route_reply_timeout_s)
        except queue.Empty:
            position, wait_s = 0, 0.0
        return RouteAck(position=position, expected_wait_s=round(wait_s),
                        hold_s=self._hold_s(request.queue))

    # -- AMI side ------------------------------------------------------------------
    def _ami_connected(self) -> None:
        # Rebuild our view of the world: which agents are registered, which calls live.
        try:
            channels = self._ami.action_list("CoreShowChannels", "CoreShowChannelsComplete")
            devices = self._ami.action_list("DeviceStateList", "DeviceStateListComplete")
        except AmiError as exc:
            log.warning("AMI resync failed: %s", exc)
            return
        self._inbox.put(AmiResynced(channels.events, devices.events))

    # -- the router thread -----------------------------------------------------------
    def _router_loop(self) -> None:
        while True:
            timeout = 1.0 if self._store is not None else None
            if self._wake is not None:
                until_wake = max(0.0, (self._wake - self._clock()).total_seconds())
                timeout = until_wake if timeout is None else min(timeout, until_wake)
            try:
                message = self._inbox.get(timeout=timeout)
            except queue.Empty:
                self._poll_store()
                if self._wake is not None and self._wake <= self._clock():
                    self._wake = None
                    self._handle(TimerFired())
                continue
            if isinstance(message, StopRequested):
                return
            try:
                self._dispatch(message)
            except Exception as exc:  # a bug here must not stop routing for everyone
                log.exception("router thread: %s failed", type(message).__name__)
                self._errors.append(f"{type(message).__name__}: {exc!r}")

    def _poll_store(self) -> None:
        """What agents changed themselves (CLI or portal: hours, available, break,
        end of wrap-up) takes effect for routing at once, in the order they did it."""
        if self._store is None:
            return
        try:
            changes, self._hours_seq = self._store.hours_events_since(self._hours_seq)
            requests, self._requests_seq = self._store.agent_requests_since(
                self._requests_seq)
        except Exception as exc:  # the store is unavailable: keep routing on what we know
            log.warning("reading agent changes from the store failed: %s", exc)
            return
        for event in [*changes, *requests]:
            self._handle(event)

    def _dispatch(self, message: Message) -> None:
        match message:
            case RouterEventPosted():
                self._handle(message.event)
            case AmiEventReceived():
                for event in self._translator.translate(message.event):
                    self._handle(event)
            case AmiResynced():
                for event in self._translator.resync(message.channels, message.devices):
                    self._handle(event)
            case RouteAsked():
                self._route_asked(message)
            case IvrEnded():
                self._ivr_ended(message)
            case StopRequested():
                pass
            case _:
                assert_never(message)

    def _route_asked(self, asked: RouteAsked) -> None:
        self._translator.track(asked.arrived.call_id, asked.channel)
        decisions = self._handle(asked.arrived)
        position, wait_s = 0, 0.0
        for decision in decisions:
            if isinstance(decision, CallQueued) and decision.call_id == asked.arrived.call_id:
                position, wait_s = decision.position, decision.expected_wait_s
        asked.reply.put((position, wait_s))

    def _ivr_ended(self, ended: IvrEnded) -> None:
        """What the IVR's outcome means for the router; the dialplan moves the caller."""
        match ended.outcome:
            case "callback":
                # the caller accepted a callback in the IVR and hangs up; they keep
                # their place (routing.router: a callback call survives the hang-up)
                self._handle(CallbackAccepted(ended.call_id))
            case "routed" | "transfer" | "voicemail" | "hangup" | "caller-hangup" | "error":
                pass  # the dialplan's own path for each (extensions.conf.tmpl)
            case _:
                assert_never(ended.outcome)
        self._executor.ivr_ended(ended.call_id)

    def _handle(self, event: Event) -> list[Decision]:
        now = self._clock()
        decisions: list[Decision] = list(self._router.handle(event, now))
        self._calls.follow(event, now)
        for decision in decisions:
            if isinstance(decision, OfferCall):
                self._calls.offered(decision.call_id, decision.agent_id, decision.reason.text)
        for listener in self._listeners:
            listener("event", event)
            for decision in decisions:
                listener("decision", decision)
        self._executor.carry_out_all(decisions)
        return decisions
