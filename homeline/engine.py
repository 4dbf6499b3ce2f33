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

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, assert_never, get_args

from homeline.nodes import PositionQuestion
from homeline.timelines import CallTimeline, Timelines
from routing.events import (
    AgentStateChanged,
    CallArrived,
    CallbackAccepted,
    CallEnded,
    CallerAbandoned,
    CallQueued,
    Decision,
    Event,
    EventIgnored,
    OfferCall,
    TimerFired,
    split_by_channel,
)
from store import CallRecord, DoubleBooking, FencedOut
from voice.agi_runner import IvrOutcome
from voice.ami import AmiConnection, AmiError, AmiEvent
from voice.ami_events import AmiTranslator, agent_of_channel
from voice.executor import VoiceExecutor
from voice.fastagi import AgiChannel, Handler
from voice.supervise import SuperviseExecutor

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
    agi_max_calls: int = 4096  # FastAGI sessions served at once (voice/fastagi.py)


SWITCH_INTERVAL_S = 0.0005  # see Engine.start


def _journal_to_continue(path: Path) -> bool:
    """True when ``path`` holds a router journal to append to. A last line that an
    engine killed mid-write left torn is cut off first: its event's outcome is in
    the stored state that the restore line carries."""
    import json
    import os

    from routing.journal import JOURNAL_FORMAT

    try:
        with open(path, "rb+") as fp:
            try:
                head = json.loads(fp.readline())
            except ValueError:
                return False
            if not isinstance(head, dict) or head.get("journal") != JOURNAL_FORMAT:
                return False
            size = fp.seek(0, os.SEEK_END)
            fp.seek(max(0, size - 1))
            if fp.read(1) != b"\n":  # torn: back to the end of the last whole line
                pos = size
                while pos > 0:
                    step = min(65536, pos)
                    fp.seek(pos - step)
                    chunk = fp.read(step)
                    cut = chunk.rfind(b"\n")
                    if cut >= 0:
                        fp.truncate(pos - step + cut + 1)
                        break
                    pos -= step
            return True
    except FileNotFoundError:
        return False


# -- what reaches the router thread ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouterEventPosted:
    """A router event from outside (an agent's hours or state changed, an AMI answer)."""

    event: Event


@dataclass(frozen=True, slots=True)
class AmiEventReceived:
    event: AmiEvent


@dataclass(frozen=True, slots=True)
class HeldCaller:
    """A caller on hold that Asterisk holds and the stored router state does not
    (the engine stopped between routing them and writing it down): what the IVR
    left on the channel (HOMELINE_QUEUE, _LANGUAGE, _INTENT) is enough to route."""

    call_id: str
    channel: str
    queue: str
    language: str
    intent: str
    caller: str
    waited_s: int


@dataclass(frozen=True, slots=True)
class AmiResynced:
    """What Asterisk holds after a (re)connect: channels and device states."""

    channels: tuple[AmiEvent, ...]
    devices: tuple[AmiEvent, ...]
    held: tuple[HeldCaller, ...] = ()


T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Reply(Protocol[T_contra]):
    """Where the router thread puts its answer to a question from a call."""

    def put(self, item: T_contra, /) -> None: ...


class LoopReply(Generic[T]):
    """An answer for a coroutine on the FastAGI event loop: the router thread's
    ``put`` resolves the future on that loop (``call_soon_threadsafe``, asyncio docs
    "Concurrency and Multithreading"); a late answer, after the caller gave up
    waiting, is dropped."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.future: asyncio.Future[T] = self._loop.create_future()

    def put(self, item: T, /) -> None:
        self._loop.call_soon_threadsafe(self._resolve, item)

    def _resolve(self, item: T) -> None:
        if not self.future.done():
            self.future.set_result(item)

    async def get(self, timeout_s: float) -> T | None:
        try:
            return await asyncio.wait_for(self.future, timeout_s)
        except TimeoutError:
            return None


@dataclass(frozen=True, slots=True)
class RouteAsked:
    arrived: CallArrived
    channel: str
    reply: Reply[tuple[int, float]] | None  # None: the IVR does not wait for the answer


@dataclass(frozen=True, slots=True)
class PositionAsked:
    """A caller on hold is due their announcement: where are they in line?"""

    call_id: str
    reply: Reply[tuple[int, float] | None]


@dataclass(frozen=True, slots=True)
class IvrEnded:
    call_id: str
    outcome: IvrOutcome


@dataclass(frozen=True, slots=True)
class StopRequested:
    pass


@dataclass(frozen=True, slots=True)
class OutboxRang:
    """Another engine wrote to this engine's outbox (homeline/nodes.py): read it now."""


@dataclass(frozen=True, slots=True)
class LeadershipWon:
    """This node's engine is the router leader now (store/leader.py): it adopts the
    stored router state (directory, snapshot or None) and what its Asterisk holds."""

    restore: tuple[Any, Any] | None


@dataclass(frozen=True, slots=True)
class LeadershipLost:
    """This node's engine was deposed (another leads): it follows again."""

    why: str


Message = (RouterEventPosted | AmiEventReceived | AmiResynced | RouteAsked | PositionAsked
           | IvrEnded | StopRequested | OutboxRang | LeadershipWon | LeadershipLost)


def _seconds(duration: str) -> int:
    """CoreShowChannel's ``Duration`` (HH:MM:SS) in seconds; 0 when unreadable."""
    try:
        h, m, sec = (int(x) for x in duration.split(":"))
    except ValueError:
        return 0
    return h * 3600 + m * 60 + sec


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
        records: Callable[[str], bool] = lambda _queue_id: False,
        keeper: Any = None,
        payment_flow: Any = None,
        restore: tuple[Any, Any] | None = None,
        supervisors: tuple[str, ...] = (),
        chats: Any = None,
        on_fenced: Callable[[str], None] | None = None,
        cluster: Any = None,
    ) -> None:
        """``restore``: (directory, snapshot) of a router state kept in the store; the
        engine adopts it, with what Asterisk still holds, at its first AMI login.
        ``chats``: the text conversations' executor (`web.chatexec.ChatExecutor`);
        the engine then reads the web app's chat requests from the store.
        ``cluster``: this node's `homeline.nodes.NodeLink` when several nodes share
        the store: the engine follows (forwards its router events to the leader and
        carries out the leader's decisions about its channels) until `lead`."""
        self._cluster = cluster
        self._pending_routes: dict[str, Reply[tuple[int, float]]] = {}
        self._position_asks: dict[str, Reply[tuple[int, float] | None]] = {}
        self._chats = chats
        # a leader deposed by a newer epoch (store.leader): it carries nothing out more
        self._on_fenced = on_fenced
        self.fenced: str | None = None
        self._save_failed = False  # the last router-state save failed: save it whole
        self._double_booked = False  # the store refused the last save: DoubleBooking
        self._chat_seq = chats.requests_seq() if chats is not None else 0
        self._chats_resumed = False
        self._polled_at = 0.0
        self._hold_s = hold_s
        self._records = records
        self._keeper = keeper  # voice.recording.RecordingKeeper: recordings to keep
        self._core = router  # the router itself (``_router`` may wrap it in a journal)
        self._restore = restore
        self._deferred: list[Message] = []
        self.config = config
        self._router = router
        self._flow_for_new_call = flow_for_new_call
        self._recordings = recordings
        self._survey_flow = survey_flow
        self._store = store
        self._hours_seq = store.hours_seq() if store is not None else 0
        self._requests_seq = store.agent_requests_seq() if store is not None else 0
        if restore is not None:
            self._requests_seq = self._stored_feed("agent_requests", self._requests_seq)
        # the agents' requests the stored router state has handled: saved with it
        self._requests_done = self._requests_seq
        self._feeds_saved: dict[str, int] | None = None  # what the store has of them
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
            agent_via=None if cluster is None else (
                lambda agent_id: cluster.agent_via(agent_id,
                                                   self._translator.registered(agent_id))),
        )
        self._agi: Any = None
        self._errors: list[str] = []
        self._payments: Any = None  # voice.payment.PaymentDesk: pause for payment
        if payment_flow is not None and store is not None:
            from voice.payment import PaymentDesk

            self._payments = PaymentDesk(
                self._ami, store, flow=payment_flow, channel_of=self._translator.channel_of,
                recorded=lambda call_id: self._records((self._calls.get(call_id) or
                                                        CallTimeline(call_id)).queue or ""),
                clock=self._clock, recordings=recordings, note=self._calls.note)
            self._payments_seq = store.payments_seq()
        # listen/whisper/barge asked for on the supervisor desk (store.desk feed)
        self._supervise_seq = (store.supervise_requests_seq()
                               if store is not None and supervisors else 0)
        self._supervise = SuperviseExecutor(
            self._ami, self._translator, supervisors=supervisors, agents=agent_ids,
            record=lambda call_id, at, agent, data: self._calls.event(
                call_id, at, "supervisor", agent, **data),
            note=self._calls.note, now=clock)

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        from voice.fastagi import FastAGIServer

        # The FastAGI loop thread releases the GIL at every socket read and write;
        # while the router or AMI thread computes, each time it wants the GIL back
        # it waits up to the switch interval (5 ms by default, sys.setswitchinterval
        # docs; the "convoy effect" of CPython issue bpo-7946), several times per
        # key press. A shorter interval keeps a key's turnaround in milliseconds.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))

        if self.config.journal_path is not None:
            from routing.journal import Recorder

            # every event and decision as JSON lines: `homeline route replay` reproduces them.
            # An engine that takes over a stored state continues the journal it finds
            # (its restore line follows at the first AMI login), otherwise starts one.
            path = self.config.journal_path
            go_on = self._restore is not None and _journal_to_continue(path)
            self._journal = open(path, "a" if go_on else "w", encoding="utf-8")  # noqa: SIM115
            self._router = Recorder(self._router, self._journal, start=self._clock(),
                                    header=not go_on)
        self._router_thread = threading.Thread(
            target=self._router_loop, name="router", daemon=True
        )
        self._router_thread.start()
        if self._cluster is not None:
            self._cluster.start_doorbell(lambda: self._inbox.put(OutboxRang()))
        handlers: dict[str, Handler] = {"ivr": self._ivr_call,
                                                   "position": self._position_call}
        if self._survey_flow is not None:
            handlers["survey"] = self._survey_call
        if self._payments is not None:
            handlers["payment"] = self._payments.agi_call
        self._agi = FastAGIServer(
            host=self.config.agi_host, port=self.config.agi_port, handlers=handlers,
            max_calls=self.config.agi_max_calls)
        self._agi.start()
        if self._keeper is not None:
            self._keeper.start()
        try:
            self._ami.start(wait_s=15)
        except AmiError:
            self.stop()
            raise

    @property
    def agi_port(self) -> int:
        return int(self._agi.port)

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
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
        if self._keeper is not None:
            self._keeper.stop()
        if self._chats is not None:
            self._chats.stop()
        self._calls.close()

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

    def lead(self, restore: tuple[Any, Any] | None) -> None:
        """This node's engine won the router leadership (from any thread): it takes
        over ``restore`` (directory, stored snapshot) as after a restart."""
        self._inbox.put(LeadershipWon(restore))

    def follow(self, why: str) -> None:
        """This node's engine was deposed (from any thread): it stops routing, keeps
        serving its node, and leads again only after winning the lock anew."""
        self._inbox.put(LeadershipLost(why))

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

    # -- FastAGI side (every call a coroutine on the FastAGI event loop) ------------
    async def _ivr_call(self, agi: AgiChannel, env: Mapping[str, str]) -> None:
        from voice.agi_runner import run_call

        call_id = env.get("agi_uniqueid", "")
        channel = env.get("agi_channel", "")
        caller = env.get("agi_callerid", "")
        timeline = self._calls.of(call_id)
        timeline.caller, timeline.channel = caller, channel
        timeline.note("IVR answered")
        answered_at = self._clock()
        with self._lock:
            self._in_ivr.add(call_id)
        outcome: IvrOutcome = "error"

        async def on_route(route: Any) -> Any:
            return await self._route_from_ivr(route, channel, timeline)

        flow = self._flow_for_new_call()  # this call keeps this version to its end
        try:
            result = await run_call(
                agi, flow, call_id=call_id, caller=caller,
                on_route=on_route, recordings=self._recordings, log=log, now=self._clock,
            )
            outcome = ivr_outcome(result.outcome)
            timeline.outcome = outcome
            # inputs are "node:what" ("main:1", "account:[secure: 8 digits]", "main:timeout"):
            # keep the keys pressed, never a secure entry (it is masked there already)
            keys = [i.split(":", 1)[1] for i in result.inputs if ":" in i]
            timeline.digits = "".join(k for k in keys if k and set(k) <= set("0123456789*#"))
            timeline.note(f"IVR finished: {outcome or 'no outcome'}")
            self._record_ivr(call_id, caller, answered_at, flow, result, outcome)
        finally:
            with self._lock:
                self._in_ivr.discard(call_id)
            self._inbox.put(IvrEnded(call_id, outcome))

    def _record_ivr(self, call_id: str, caller: str, answered_at: datetime, flow: Any,
                    result: Any, outcome: IvrOutcome) -> None:
        """The IVR's part of the call record; a call that ends in the IVR or the
        dialplan (after hours, voicemail, transfer, hang-up) ends here too."""
        now = self._clock()
        keep = set(getattr(flow, "record_variables", ()))  # never secure: checked at load
        variables = {k: str(v) for k, v in result.variables.items() if k in keep}
        ends_here = outcome not in ("routed", "callback")
        self._calls.record(CallRecord(
            call_id, caller=caller or None, arrived_at=answered_at,
            intent=result.intent or None, language=result.language or None,
            flow=result.flow or None, flow_version=result.flow_version or None,
            variables=variables or None, ended_at=now if ends_here else None,
            outcome=f"ivr-{outcome}" if ends_here else None,
            queue_id=result.route.queue if result.route is not None else None))
        # the path is node ids only (no values): the portal's Current caller shows it
        self._calls.event(call_id, now, "ivr-ended", None, outcome=outcome,
                          path=list(getattr(result, "path", ())))
        if outcome in ("voicemail", "transfer"):
            self._calls.event(call_id, now, outcome)

    async def _position_call(self, agi: AgiChannel, env: Mapping[str, str]) -> None:
        """[homeline-hold]'s announcement: the caller's place in line, as it is now."""
        from ivr.engine import announcement
        from voice.hold import announce_on_hold

        call_id = env.get("agi_uniqueid", "")
        reply: LoopReply[tuple[int, float] | None] = LoopReply()
        self._inbox.put(PositionAsked(call_id, reply))
        where = await reply.get(self.config.route_reply_timeout_s)
        if where is None:
            return  # not waiting any more (an offer is on its way): say nothing
        position, wait_s = where
        log.info("call %s on hold: told position %d, expected wait %.0f s", call_id,
                 position, wait_s)
        self._calls.note(call_id, f"on hold: told position {position}, expected wait "
                         f"{wait_s:.0f} s")
        await announce_on_hold(agi, announcement(position, round(wait_s)), log)

    async def _survey_call(self, agi: AgiChannel, env: Mapping[str, str]) -> None:
        from voice.agi_runner import run_survey

        result = await run_survey(agi, self._survey_flow, recordings=self._recordings, log=log,
                            now=self._clock)
        self.surveys.append(result)
        if result.call_id and result.score is not None:
                self._calls.record(CallRecord(result.call_id, survey_score=result.score,
                                          survey_comment=result.comment_path or None))
        if result.call_id:
            self._calls.note(result.call_id,
                             f"survey: score {result.score} for agent {result.agent or '?'}")

    async def _route_from_ivr(self, route: Any, channel: str, timeline: CallTimeline) -> Any:
        from voice.agi_runner import RouteAck

        request = route.request
        timeline.intent, timeline.language = request.intent, request.language
        timeline.queue, timeline.arrived_at = request.queue, self._clock()
        self._calls.event(request.call_id, timeline.arrived_at, "enter", None,
                          queue=request.queue, priority=request.priority)
        self._calls.record(CallRecord(request.call_id, queue_id=request.queue,
                                      queued_at=timeline.arrived_at))
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
        if not route.needs_position:  # nothing to announce: the caller need not wait
            self._inbox.put(RouteAsked(arrived, channel, None))
            return RouteAck(hold_s=self._hold_s(request.queue),
                            record=self._records(request.queue))
        reply: LoopReply[tuple[int, float]] = LoopReply()
        self._inbox.put(RouteAsked(arrived, channel, reply))
        position, wait_s = await reply.get(self.config.route_reply_timeout_s) or (0, 0.0)
        return RouteAck(position=position, expected_wait_s=round(wait_s),
                        hold_s=self._hold_s(request.queue), record=self._records(request.queue))

    # -- AMI side ------------------------------------------------------------------
    def _ami_connected(self) -> None:
        # Rebuild our view of the world: which agents are registered, which calls live.
        try:
            channels = self._ami.action_list("CoreShowChannels", "CoreShowChannelsComplete")
            devices = self._ami.action_list("DeviceStateList", "DeviceStateListComplete")
            held = self._held_callers(channels.events) if self._restore is not None else ()
        except AmiError as exc:
            log.warning("AMI resync failed: %s", exc)
            return
        self._inbox.put(AmiResynced(channels.events, devices.events, held))

    def _held_callers(self, channels: tuple[AmiEvent, ...]) -> tuple[HeldCaller, ...]:
        """Callers in [homeline-hold] the stored state does not know (AMI Getvar of the
        variables the IVR set; blocking, on the AMI supervisor thread, before routing)."""
        assert self._restore is not None
        known = {c.call_id for c in self._restore[1].calls}
        out = []
        for ch in channels:
            uid = ch.get("Uniqueid")
            if ch.get("Context") != "homeline-hold" or uid in known:
                continue
            got = {}
            for var in ("HOMELINE_QUEUE", "HOMELINE_LANGUAGE", "HOMELINE_INTENT"):
                reply = self._ami.action("Getvar", Channel=ch.get("Channel"), Variable=var)
                got[var] = reply.fields.get("Value", "")
            if got["HOMELINE_QUEUE"]:
                out.append(HeldCaller(uid, ch.get("Channel"), got["HOMELINE_QUEUE"],
                                      got["HOMELINE_LANGUAGE"], got["HOMELINE_INTENT"],
                                      ch.get("CallerIDNum"), _seconds(ch.get("Duration"))))
        out.sort(key=lambda h: (-h.waited_s, h.call_id))  # longest waiting first
        return tuple(out)

    # -- the router thread -----------------------------------------------------------
    def _router_loop(self) -> None:
        # a chat accept shows in < 1 s; another node's outbox rings (NOTIFY) or is polled
        poll_s = 0.25 if self._chats is not None or self._cluster is not None else 1.0
        while True:
            timeout = poll_s if self._store is not None else None
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
            if self._store is not None and time.monotonic() - self._polled_at > poll_s:
                self._poll_store()  # a busy engine still reads what agents asked for
            if self._restore is not None and not isinstance(message,
                                                            AmiResynced | LeadershipLost):
                self._deferred.append(message)  # after the stored state is adopted
                continue
            try:
                self._dispatch(message)
            except Exception as exc:  # a bug here must not stop routing for everyone
                log.exception("router thread: %s failed", type(message).__name__)
                self._errors.append(f"{type(message).__name__}: {exc!r}")

    def _poll_store(self) -> None:
        """What agents changed themselves (CLI or portal: hours, available, break,
        end of wrap-up) takes effect for routing at once, in the order they did it."""
        self._polled_at = time.monotonic()
        if self._store is None or self._restore is not None:
            return
        if self._cluster is not None:
            try:
                self._cluster.flush()  # what a store outage held back, in order
            except Exception as exc:
                log.warning("the store still refuses what this node holds back: %s", exc)
            if not self._cluster.leading:
                self._poll_decisions()  # a follower routes nothing itself
                return
            self._poll_node_events()
        self._poll_chats()
        try:
            changes, self._hours_seq = self._store.hours_events_since(self._hours_seq)
            requests, requests_end = self._store.agent_requests_since(self._requests_seq)
        except Exception as exc:  # the store is unavailable: keep routing on what we know
            log.warning("reading agent changes from the store failed: %s", exc)
            return
        for event in changes:
            self._handle(event)
        for i, event in enumerate(requests):
            if i == len(requests) - 1:  # its save says the whole batch is read; a crash
                self._requests_done = requests_end  # before it re-reads the batch
            self._handle(event)
        self._requests_seq = self._requests_done = requests_end
        if self._payments is not None:
            try:
                payments, self._payments_seq = self._store.payments_since(self._payments_seq)
            except Exception as exc:
                log.warning("reading payment requests from the store failed: %s", exc)
                payments = []
            for p in payments:
                if p.status == "requested":
                    self._payments.requested(p.seq, p.agent_id, p.call_id)
        self._poll_supervise()

    def _poll_chats(self) -> None:
        """Text conversations handed to a person, and what agents did with the chats
        offered to them (accept, pass, end, a customer's call back), in order; at the
        first poll, what the store says of chats made true in the router."""
        if self._chats is None:
            return
        if not self._chats_resumed:
            self._chats_resumed = True
            known = {c.call_id: c.phase for c in self._core.snapshot(self._clock()).calls
                     if c.channel != "voice"}
            for event in self._chats.resume(known):
                self._handle(event)
        asked, self._chat_seq = self._chats.requests_since(self._chat_seq)
        for request, event in asked:
            decisions = self._handle(event)
            if request.kind == "accept" and any(isinstance(d, EventIgnored)
                                                for d in decisions):
                self._chats.accept_refused(request.route_id, "the offer had passed")

    def _poll_node_events(self) -> None:
        """The leader: router events the other nodes' engines saw, in order."""
        assert self._cluster is not None
        try:
            rows = self._cluster.events()
        except Exception as exc:  # the store is unavailable: read them at the next poll
            log.warning("reading the other nodes' events failed: %s", exc)
            return
        for seq, node, event in rows:
            if self.fenced is not None:
                return
            if isinstance(event, PositionQuestion):
                self._answer_position(node, event.call_id)
            elif event is not None:
                self._handle(event, origin=node)
            try:
                self._cluster.handled(seq)
            except FencedOut as exc:
                self._deposed(exc)
            except Exception as exc:
                log.warning("the other nodes' events: progress not stored: %s", exc)

    def _answer_position(self, node: str, call_id: str) -> None:
        assert self._cluster is not None
        try:
            self._cluster.answer_position(node, call_id, self._core.position(call_id),
                                          self._clock())
        except FencedOut as exc:
            self._deposed(exc)
        except Exception as exc:  # the caller hears nothing this time: the AGI times out
            log.warning("position of %s for node %s not sent: %s", call_id, node, exc)

    def _poll_decisions(self) -> None:
        """A follower: the leader's decisions about this node's channels, carried
        out in order, each batch once."""
        assert self._cluster is not None
        try:
            batches = self._cluster.decisions()
        except Exception as exc:
            log.warning("reading the leader's decisions failed: %s", exc)
            return
        for seq, decisions, answers in batches:
            for answer in answers:
                asked = self._position_asks.pop(answer.call_id, None)
                if asked is not None:
                    asked.put(answer.where)
            for decision in decisions:
                call_id = getattr(decision, "call_id", None)
                reply = self._pending_routes.pop(call_id, None) if call_id else None
                if reply is not None:  # the IVR waits to announce the caller's place
                    queued = isinstance(decision, CallQueued)
                    reply.put((decision.position, decision.expected_wait_s) if queued
                              else (0, 0.0))
            voice, _text = split_by_channel(decisions)  # chats stay with the leader
            self._executor.carry_out_all(voice)
            try:
                self._cluster.carried_out(seq)
            except Exception as exc:
                log.warning("decision batch %d carried out, progress not stored: %s",
                            seq, exc)

    def _poll_supervise(self) -> None:
        """Listen/whisper/barge asked for on the desk: carried out in the order asked."""
        if self._store is None or not hasattr(self._store, "supervise_requests_since"):
            return
        try:
            asked, self._supervise_seq = self._store.supervise_requests_since(
                self._supervise_seq)
        except Exception as exc:  # the store is unavailable: nothing to carry out now
            log.warning("reading supervise requests from the store failed: %s", exc)
            return
        for request in asked:
            self._supervise.carry_out(request.supervisor, request.agent_id, request.call_id,
                                      request.mode)

    def _dispatch(self, message: Message) -> None:
        match message:
            case RouterEventPosted():
                self._handle(message.event)
            case AmiEventReceived():
                if self._keeper is not None and message.event.name == "Hangup":
                    self._keeper.call_ended(message.event.get("Uniqueid"))
                if self._payments is not None:
                    self._payments.observe(message.event)
                if message.event.name == "OriginateResponse":  # a listen/whisper/barge?
                    self._supervise.originate_response(message.event.fields)
                for event in self._translator.translate(message.event):
                    self._handle(event)
            case AmiResynced():
                if self._restore is not None:
                    self._adopt(message)
                elif self._cluster is not None and not self._cluster.leading:
                    self._follow_stored_calls(message)
                for event in self._translator.resync(message.channels, message.devices):
                    self._handle(event)
            case RouteAsked():
                self._route_asked(message)
            case PositionAsked():
                if self._cluster is not None and not self._cluster.leading:
                    self._ask_leader(message)  # only the leader's router knows
                else:
                    message.reply.put(self._core.position(message.call_id))
            case IvrEnded():
                self._ivr_ended(message)
            case OutboxRang():
                self._poll_store()
            case LeadershipWon():
                self._won_leadership(message)
            case LeadershipLost():
                self._lost_leadership(message)
            case StopRequested():
                pass
            case _:
                assert_never(message)

    def _lost_leadership(self, lost: LeadershipLost) -> None:
        """Deposed: the router state here is stale (the new leader adopted the stored
        one); this engine forwards its events and carries out decisions again."""
        assert self._cluster is not None
        log.warning("deposed as the router leader: %s; this node follows", lost.why)
        self._cluster.follow()
        self.fenced = None
        self._wake = None
        self._restore = None
        deferred, self._deferred = self._deferred, []
        for message in deferred:
            self._dispatch(message)

    def _won_leadership(self, won: LeadershipWon) -> None:
        """Lead from now on: the stored state is adopted with what this node's
        Asterisk holds (`_adopt`, at the resync that follows), then the other nodes'
        events from where the last leader stopped."""
        assert self._cluster is not None
        self._cluster.lead()
        if won.restore is None:
            return
        self._requests_seq = self._requests_done = self._stored_feed(
            "agent_requests", self._requests_seq)
        self._restore = won.restore
        threading.Thread(target=self._ami_connected, name="adopt", daemon=True).start()

    def _ask_leader(self, asked: PositionAsked) -> None:
        assert self._cluster is not None
        self._position_asks[asked.call_id] = asked.reply
        try:
            self._cluster.ask_position(asked.call_id, self._clock())
        except Exception as exc:  # held back: a late answer finds nobody waiting
            log.warning("position of %s: asked when the store takes it: %s",
                        asked.call_id, exc)

    def _route_asked(self, asked: RouteAsked) -> None:
        self._translator.track(asked.arrived.call_id, asked.channel)
        decisions = self._handle(asked.arrived)
        position, wait_s = 0, 0.0
        for decision in decisions:
            if isinstance(decision, CallQueued) and decision.call_id == asked.arrived.call_id:
                position, wait_s = decision.position, decision.expected_wait_s
        if asked.reply is None:
            return
        if self._cluster is not None and not self._cluster.leading:
            self._pending_routes[asked.arrived.call_id] = asked.reply  # the leader answers
            return
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

    # -- restart ------------------------------------------------------------------------
    def _adopt(self, resynced: AmiResynced) -> None:
        """Take over from an engine that stopped: its router state from the store, and
        what Asterisk still holds. Waiting callers keep their order; a call bridged
        to an agent keeps that agent busy; a ringing call whose agent did not answer
        goes back in line; calls whose channel is gone end."""
        from routing.journal import Recorder
        from routing.router import Router

        assert self._restore is not None
        directory, snapshot = self._restore
        self._restore = None
        now = self._clock()
        alive = {c.get("Uniqueid"): c for c in resynced.channels}
        cluster = self._cluster

        def elsewhere(call_id: str) -> bool:  # held by another node's Asterisk
            return cluster is not None and cluster.call_node(call_id) != cluster.node

        by_bridge: dict[str, list[str]] = {}
        for c in resynced.channels:
            if c.get("BridgeId"):
                by_bridge.setdefault(c.get("BridgeId"), []).append(c.get("Channel"))
        bridged = set()
        for call in snapshot.calls:
            ch = alive.get(call.call_id)
            if ch is None or not ch.get("BridgeId") or call.agent is None:
                continue
            peers = by_bridge.get(ch.get("BridgeId"), [])
            if any(agent_of_channel(p) == call.agent for p in peers):
                bridged.add(call.call_id)
        router, decisions = Router.restore(directory, snapshot, now=now, bridged=bridged)
        self._core = router
        if isinstance(self._router, Recorder):
            self._router.restored(router, snapshot, bridged, now, decisions)
        self._router = self._router if isinstance(self._router, Recorder) else router
        for agent in snapshot.agents:
            if agent.registered:
                self._translator.assume_registered(agent.agent_id)
        gone: list[Event] = []
        for call in snapshot.calls:
            ch = alive.get(call.call_id)
            if ch is not None:
                connected = call.phase == "connected" or call.call_id in bridged
                self._translator.track(call.call_id, ch.get("Channel"),
                                       agent_id=call.agent if connected else None)
                # the agent's leg in the same bridge: what a supervisor's ChanSpy joins
                legs = [p for p in by_bridge.get(ch.get("BridgeId"), [])
                        if ch.get("BridgeId") and agent_of_channel(p) == call.agent]
                if connected and legs:
                    self._translator.calls[call.call_id].agent_channel = legs[0]
            elif call.callback and call.phase in ("waiting", "retry"):
                pass  # a callback has no channel while it waits: it keeps its place
            elif call.channel != "voice":
                pass  # a chat lives in the store, not in Asterisk: it goes on as it was
            elif elsewhere(call.call_id):
                pass  # its node's engine reports its hang-up (a follower's event)
            elif call.phase == "connected":
                gone.append(CallEnded(call.call_id, by="system"))
            else:
                gone.append(CallerAbandoned(call.call_id))
        log.info("adopted the stored router state: %d call(s), %d bridged, %d gone, "
                 "%d caller(s) on hold not in it", len(snapshot.calls), len(bridged),
                 len(gone), len(resynced.held))
        # stored first, as `_handle` does: a deposed leader's save is refused (FencedOut)
        # and then nothing of the adoption is carried out
        self._save_changes(now, full=True)
        self._carry_out(now, TimerFired(), decisions)
        for event in gone:
            self._handle(event)
        for held in resynced.held:
            self._translator.track(held.call_id, held.channel)
            self._handle(CallArrived(call_id=held.call_id, queue_id=held.queue,
                                     language=held.language or None, intent=held.intent,
                                     caller=held.caller))
        deferred, self._deferred = self._deferred, []
        for message in deferred:
            self._dispatch(message)

    def _follow_stored_calls(self, resynced: AmiResynced) -> None:
        """A follower (re)started: the calls of its node the router holds (the stored
        state) are followed again where their channel lives; those whose channel is
        gone are reported to the leader as ended."""
        assert self._cluster is not None and self._store is not None
        try:
            snapshot = self._store.load_router_snapshot()
        except Exception as exc:
            log.warning("the stored router state could not be read: %s", exc)
            return
        if snapshot is None:
            return
        alive = {c.get("Uniqueid"): c for c in resynced.channels}
        gone: list[Event] = []
        for call in snapshot.calls:
            if call.channel != "voice" or call.callback or call.call_id in self._translator.calls:
                continue
            if self._cluster.call_node(call.call_id) != self._cluster.node:
                continue
            ch = alive.get(call.call_id)
            if ch is not None:
                self._translator.track(call.call_id, ch.get("Channel"),
                                       agent_id=call.agent if call.phase == "connected"
                                       else None)
            elif call.phase == "connected":
                gone.append(CallEnded(call.call_id, by="system"))
            else:
                gone.append(CallerAbandoned(call.call_id))
        for event in gone:
            self._handle(event)

    def _stored_feed(self, feed: str, default: int) -> int:
        """How far the stored router state read ``feed`` (a restart or a new leader
        goes on from there: a request made while no engine ran is not lost)."""
        try:
            return int(self._store.router_feeds().get(feed, default))
        except Exception as exc:
            log.warning("the stored feed positions could not be read: %s", exc)
            return default

    def _save_changes(self, now: datetime, *, full: bool = False) -> None:
        """Router state that must survive a restart, written as it changes."""
        if self._store is None or self.fenced is not None:
            return  # deposed: the store is the next leader's (what it has, it adopts)
        # a change set the store refused is gone from the router's dirty sets: after a
        # failure the next save is the whole state (a store outage loses nothing)
        full = full or self._save_failed
        try:
            changes = (self._core.snapshot(now).as_changes() if full
                       else self._core.snapshot_changes(now))
            if full or changes.agents or changes.calls or changes.gone_calls or \
                    changes.last_agent:
                feeds = {"agent_requests": self._requests_done}
                # the position rides along only when it moved (not every save's cost)
                self._store.save_router_changes(
                    changes, feeds=None if feeds == self._feeds_saved else feeds)
                self._feeds_saved = feeds
            if self._save_failed:
                log.warning("router state stored whole again after a failed save")
            self._save_failed = False
        except FencedOut as exc:  # another engine leads: stop, never act on this state
            self._deposed(exc)
        except DoubleBooking as exc:  # never ring an agent twice: the offers wait
            log.error("%s; the offers of this change are not carried out", exc)
            self._errors.append(f"double booking: {exc}")
            self._save_failed = True
            self._double_booked = True
        except Exception as exc:  # keep routing; say so loudly
            if self._on_fenced is not None:
                # one of several engines (store.leader): a state not stored is one the
                # next leader will not know, so it is not carried out; this leader steps
                # down and whoever leads next (it, again) adopts the stored state
                if self.fenced is None:
                    self.fenced = f"router state not stored: {exc}"
                    log.error("%s; nothing more is carried out", self.fenced)
                    self._errors.append(self.fenced)
                    self._on_fenced(self.fenced)
                return
            if not self._save_failed:
                log.warning("router state not stored (the whole state is saved at the "
                            "next change): %s", exc)
                self._errors.append(f"router state: {exc!r}")
            self._save_failed = True

    def _deposed(self, exc: FencedOut) -> None:
        if self.fenced is None:
            self.fenced = str(exc)
            log.error("deposed: %s; nothing more is carried out", exc)
            self._errors.append(f"deposed: {exc}")
            if self._on_fenced is not None:
                self._on_fenced(str(exc))

    def _handle(self, event: Event, origin: str | None = None) -> list[Decision]:
        """``origin``: the node whose engine saw ``event`` (None: this engine)."""
        now = self._clock()
        cluster = self._cluster
        if cluster is not None:
            try:
                if not cluster.leading:  # a follower: the leader routes
                    cluster.forward(event, now)
                    return []
                if not cluster.admits(event, origin or cluster.node, now):
                    return []
            except FencedOut as exc:
                self._deposed(exc)
                return []
            except Exception as exc:  # the store is unavailable: held back, in order
                log.warning("%s held back until the store takes it: %s",
                            type(event).__name__, exc)
                return []
        decisions: list[Decision] = list(self._router.handle(event, now))
        self._save_changes(now)
        if self._double_booked:
            self._double_booked = False
            decisions = [d for d in decisions if not isinstance(d, OfferCall)]
        self._carry_out(now, event, decisions)
        return decisions

    def _send_to_nodes(self, now: datetime, decisions: list[Decision]) -> list[Decision]:
        """The leader: decisions about other nodes' channels go to those nodes (one
        batch each, fenced); this node's own are returned, to carry out here."""
        assert self._cluster is not None
        here: list[Decision] = []
        there: dict[str, list[Decision]] = {}
        for decision in decisions:
            node = self._cluster.owner(decision)
            (here if node == self._cluster.node else there.setdefault(node, [])).append(
                decision)
        for node, batch in there.items():
            try:
                self._cluster.send(node, batch, now)
            except FencedOut as exc:
                self._deposed(exc)
                return []
            except Exception as exc:  # held back, in order, until the store takes them
                log.warning("%d decision(s) for node %s held back: %s", len(batch), node,
                            exc)
        return here

    def _carry_out(self, now: datetime, event: Event, decisions: list[Decision]) -> None:
        if self.fenced is not None:  # the store refused this state: a newer leader routes
            if decisions:
                log.warning("deposed: %d decision(s) after %s not carried out",
                            len(decisions), type(event).__name__)
            return
        self._calls.follow(event, now)
        for decision in decisions:
            self._calls.decided(decision, now)
        for listener in self._listeners:
            listener("event", event)
            for decision in decisions:
                listener("decision", decision)
        if self._cluster is not None:
            decisions = self._send_to_nodes(now, decisions)
        voice, text = split_by_channel(decisions)
        self._executor.carry_out_all(voice)
        if text:
            if self._chats is not None:
                self._chats.carry_out_all(text)
            else:  # chats reach the router only through the chat executor's feed
                for d in text:
                    log.error("no chat executor: %s for %s (%s) not carried out",
                              type(d).__name__, d.call_id, d.channel)
