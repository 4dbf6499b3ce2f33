"""Pause for payment: the caller types a card number into the IVR's secure capture
while the agent stays on the call, hearing silence, and the recording is paused.

The agent clicks "take payment" in the portal; the request reaches the engine
through the store (table ``payments``, read like ``agent_requests``) and
`PaymentDesk.requested` carries it out on the live call, without waiting on
Asterisk (every AMI answer comes back on the AMI reader thread):

1. ``MixMonitorMute`` (Direction both, State 1) on the caller's channel, when the
   call is recorded (app_mixmonitor: "MixMonitorMute", class call). Only when
   Asterisk confirmed the mute does the capture start; a refused mute is a
   failed payment, never a recorded card number. (The recording's ``b`` option
   already keeps out audio while the caller is not bridged: two locks.)
2. One ``Redirect`` of both channels out of their bridge (manager.c
   action_redirect: a Channel and an ExtraChannel in the same bridge are both
   given their after-bridge goto): the caller to ``[homeline-payment]``, which
   runs the ``payment`` flow over FastAGI (`PaymentDesk.agi_call`: its secure
   ``collect`` node, then the ``lookup`` that sends the number to the payment
   service); the agent to ``[homeline-payment-agent]``, which waits in silence.
   The agent's channel is out of any bridge: no audio, no RFC 4733 event of the
   caller's reaches it.
3. When the flow is done the dialplan sends ``UserEvent HomelinePaymentDone``;
   the desk unmutes the recording and ``Bridge``s the two channels back
   (features.c action_bridge: each channel continues after the bridge at the
   next priority of where it was, so the dialplan handles either hang-up), then
   writes "accepted" or "declined" for the agent's portal.

The digits live only inside the flow's session on the FastAGI loop: the flow
masks them in every input it reports, the desk reads nothing but which end
node the flow reached, and no AMI action, event, log line or store row carries
them. Only ``call``-class actions are used (MixMonitorMute, Redirect, Bridge,
Hangup), each checked by `check_payment_action` before it is sent.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, assert_never

from voice.ami import AmiEvent, AmiReply
from voice.fastagi import AgiChannel, AgiReply

__all__ = ["PaymentDesk", "PAYMENT_CONTEXT", "PAYMENT_AGENT_CONTEXT", "check_payment_action",
           "PaymentResult"]

log = logging.getLogger("homeline.voice.payment")

PAYMENT_CONTEXT = "homeline-payment"
PAYMENT_AGENT_CONTEXT = "homeline-payment-agent"
PaymentResult = Literal["accepted", "declined", "caller-left"]
Phase = Literal["muting", "moving", "capturing", "bridging", "done"]


class AmiSender(Protocol):
    def send(self, name: str, on_reply: Callable[[AmiReply], None] | None = None,
             **fields: str) -> None: ...


class PaymentStore(Protocol):
    def set_payment_status(self, seq: int, status: str, detail: str, now: datetime,
                           call_id: str | None = None) -> None: ...


def check_payment_action(name: str, fields: Mapping[str, str]) -> None:
    """The only actions the desk sends, and Redirect only into the two payment contexts."""
    if name == "Redirect":
        if fields.get("Context") != PAYMENT_CONTEXT or (
                "ExtraChannel" in fields and fields.get("ExtraContext") != PAYMENT_AGENT_CONTEXT):
            raise ValueError(f"payment Redirect refused: contexts {fields.get('Context')!r}, "
                             f"{fields.get('ExtraContext')!r} are not {PAYMENT_CONTEXT}, "
                             f"{PAYMENT_AGENT_CONTEXT}")
    elif name not in ("MixMonitorMute", "Bridge", "Hangup"):
        raise ValueError(f"payment action {name!r} refused: only MixMonitorMute, Redirect, "
                         "Bridge and Hangup")
    for value in fields.values():
        if any(c.isdigit() for c in value) and len([c for c in value if c.isdigit()]) > 11 \
                and not _channel_like(value):
            raise ValueError("payment action refused: a field looks like a card number")


def _channel_like(value: str) -> bool:
    return "/" in value or "." in value  # PJSIP/amy-00000001, a Uniqueid 1733059200.12


@dataclass(slots=True)
class _Capture:
    seq: int
    call_id: str
    agent_id: str
    caller_channel: str
    agent_channel: str
    recorded: bool
    phase: Phase = "muting"
    result: PaymentResult | None = None
    agent_left: bool = False


class PaymentDesk:
    """Carries out "take payment" requests; ``requested`` and ``observe`` run on the
    router thread, AMI replies on the AMI reader thread, ``agi_call`` on the FastAGI
    loop: one lock around the captures."""

    def __init__(self, ami: AmiSender, store: PaymentStore, *, flow: Any,
                 channel_of: Callable[[str], str | None], recorded: Callable[[str], bool],
                 clock: Callable[[], datetime], recordings: Any = None,
                 note: Callable[[str, str], None] = lambda _call_id, _text: None) -> None:
        self._ami = ami
        self._note = note
        self._store = store
        self._flow = flow
        self._channel_of = channel_of
        self._recorded = recorded
        self._clock = clock
        self._recordings = recordings
        self._lock = threading.Lock()
        self._legs: dict[str, tuple[str, str]] = {}  # call id -> (agent id, agent channel)
        self._captures: dict[str, _Capture] = {}  # call id -> the payment in progress

    # -- router thread -----------------------------------------------------------------
    def observe(self, event: AmiEvent) -> None:
        """Follow the AMI events the payment needs: which agent channel answered a call,
        the end of a capture, and hang-ups."""
        match event.name:
            case "DialEnd":
                if event.get("DialStatus").upper() == "ANSWER" and event.get("DestChannel"):
                    from voice.ami_events import agent_of_channel

                    agent = agent_of_channel(event.get("DestChannel"))
                    if agent is not None:
                        with self._lock:
                            self._legs[event.get("Uniqueid")] = (agent, event.get("DestChannel"))
            case "UserEvent":
                if event.get("UserEvent") == "HomelinePaymentDone":
                    self._captured(event.get("Uniqueid"))
            case "Hangup":
                self._hung_up(event.get("Uniqueid"), event.get("Channel"))
            case _:
                pass

    def requested(self, seq: int, agent_id: str, call_id: str | None) -> None:
        """The agent asked to take a payment: start it, or say why not."""
        with self._lock:
            found = [(cid, leg) for cid, leg in self._legs.items() if leg[0] == agent_id
                     and (call_id is None or cid == call_id)]
            busy = bool(found) and found[-1][0] in self._captures
        if not found:
            self._status(seq, "failed", "no call of yours is connected", call_id)
            return
        cid, (_agent, agent_channel) = found[-1]
        caller_channel = self._channel_of(cid)
        if busy or caller_channel is None:
            self._status(seq, "failed", "a payment is already in progress" if busy
                         else "the caller's channel is not known", cid)
            return
        cap = _Capture(seq, cid, agent_id, caller_channel, agent_channel, self._recorded(cid))
        with self._lock:
            self._captures[cid] = cap
        self._status(seq, "capturing", "the caller is entering their card details", cid)
        if cap.recorded:
            self._send("MixMonitorMute", lambda r: self._muted(cap, r),
                       Channel=caller_channel, Direction="both", State="1")
        else:
            self._move(cap)

    # -- the steps (AMI reader thread) ----------------------------------------------------
    def _muted(self, cap: _Capture, reply: AmiReply) -> None:
        if not reply.ok:
            self._fail(cap, f"the recording could not be paused ({reply.message})")
            return
        self._move(cap)

    def _move(self, cap: _Capture) -> None:
        cap.phase = "moving"

        def moved(reply: AmiReply) -> None:
            if not reply.ok:
                self._resume_recording(cap)
                self._fail(cap, f"the caller could not be moved ({reply.message})")
                return
            cap.phase = "capturing"
            self._note(cap.call_id, f"payment {cap.seq}: caller in the secure capture"
                       f"{', recording paused' if cap.recorded else ''}; agent hears silence")
            log.info("call %s: payment %d: caller in the secure capture, agent %s waits",
                     cap.call_id, cap.seq, cap.agent_id)

        self._send("Redirect", moved, Channel=cap.caller_channel, Context=PAYMENT_CONTEXT,
                   Exten="s", Priority="1", ExtraChannel=cap.agent_channel,
                   ExtraContext=PAYMENT_AGENT_CONTEXT, ExtraExten="s", ExtraPriority="1")

    def _captured(self, call_id: str) -> None:
        with self._lock:
            cap = self._captures.get(call_id)
        if cap is None or cap.phase not in ("capturing", "moving"):
            return
        cap.phase = "bridging"
        result = cap.result or "declined"
        if cap.agent_left:
            # nobody to bridge back to: the caller goes on at once (survey, or the end)
            self._resume_recording(cap)
            self._send("Redirect", None, Channel=cap.caller_channel, Context=PAYMENT_CONTEXT,
                       Exten="s", Priority="agent-left")
            self._finish(cap, result, "the agent left during the payment")
            return

        def bridged(reply: AmiReply) -> None:
            if not reply.ok:
                self._finish(cap, result, f"not bridged back to the agent ({reply.message})")
                return
            self._finish(cap, result, "")

        self._resume_recording(cap)
        self._send("Bridge", bridged, Channel1=cap.caller_channel, Channel2=cap.agent_channel,
                   Tone="no")

    def _hung_up(self, uniqueid: str, channel: str) -> None:
        with self._lock:
            self._legs.pop(uniqueid, None)
            cap = self._captures.get(uniqueid)
            by_agent = next((c for c in self._captures.values()
                             if c.agent_channel == channel and c.phase != "done"), None)
        if cap is not None and cap.phase != "done":
            # the caller left during the capture: end the agent's waiting leg too
            self._send("Hangup", None, Channel=cap.agent_channel)
            self._finish(cap, "caller-left", "the caller hung up during the payment")
        elif by_agent is not None:
            by_agent.agent_left = True

    def _resume_recording(self, cap: _Capture) -> None:
        if cap.recorded:
            self._send("MixMonitorMute", None, Channel=cap.caller_channel, Direction="both",
                       State="0")

    def _finish(self, cap: _Capture, result: PaymentResult, why: str) -> None:
        cap.phase = "done"
        with self._lock:
            if self._captures.get(cap.call_id) is cap:
                del self._captures[cap.call_id]
        match result:
            case "accepted":
                self._status(cap.seq, "accepted", why or "payment accepted", cap.call_id)
            case "declined":
                self._status(cap.seq, "declined", why or "payment declined", cap.call_id)
            case "caller-left":
                self._status(cap.seq, "failed", why, cap.call_id)
            case _:
                assert_never(result)
        text = why if result == "caller-left" else (
            f"{result}{' (' + why + ')' if why else ''}, back with the agent")
        self._note(cap.call_id, f"payment {cap.seq}: {text}")
        log.info("call %s: payment %d: %s", cap.call_id, cap.seq, result)

    def _fail(self, cap: _Capture, why: str) -> None:
        cap.phase = "done"
        with self._lock:
            self._captures.pop(cap.call_id, None)
        self._status(cap.seq, "failed", why, cap.call_id)
        self._note(cap.call_id, f"payment {cap.seq} failed: {why}")
        log.warning("call %s: payment %d failed: %s", cap.call_id, cap.seq, why)

    def _send(self, name: str, on_reply: Callable[[AmiReply], None] | None,
              **fields: str) -> None:
        check_payment_action(name, fields)
        self._ami.send(name, on_reply, **fields)

    def _status(self, seq: int, status: str, detail: str, call_id: str | None) -> None:
        try:
            self._store.set_payment_status(seq, status, detail, self._clock(), call_id=call_id)
        except Exception as exc:  # the agent's page waits; the call must go on
            log.warning("payment %d: status %s not stored: %s", seq, status, exc)

    # -- FastAGI loop: the secure capture on the caller's channel ---------------------------
    async def agi_call(self, agi: AgiChannel, env: Mapping[str, str]) -> None:
        """``agi://.../payment`` from [homeline-payment]: run the payment flow."""
        from voice.agi_runner import RouteAck, run_call

        call_id = env.get("agi_uniqueid", "")
        with self._lock:
            cap = self._captures.get(call_id)
        if cap is None:
            log.warning("call %s: payment capture reached with no payment asked", call_id)
            return

        async def no_route(_route: Any) -> RouteAck:
            raise RuntimeError("the payment flow routes nowhere")

        route: Callable[[Any], Awaitable[RouteAck]] = no_route
        # a logger of its own, below INFO: the flow's summary line (masked anyway) stays out
        result = await run_call(_StaysOnTheCall(agi), self._flow, call_id=call_id,
                                caller=env.get("agi_callerid", ""), on_route=route,
                                recordings=self._recordings, log=_quiet, now=self._clock)
        last = result.path[-1] if result.path else ""
        cap.result = ("caller-left" if result.outcome == "caller-hangup"
                      else "accepted" if last == "accepted" else "declined")


class _StaysOnTheCall(AgiChannel):
    """The payment flow's AGI channel: its end nodes (``hangup`` with a prompt, the
    flow language's way to finish) end the capture, not the call: the caller goes
    back to the agent, so the AGI ``HANGUP`` they send is answered here and never
    reaches Asterisk; every other command goes to the real channel."""

    def __init__(self, agi: AgiChannel) -> None:  # no super(): it wraps, not owns, a socket
        self._inner = agi
        self.env = agi.env

    async def command(self, name: str, *args: str | int) -> AgiReply:
        if name == "HANGUP":
            return AgiReply(200, "1", "", {})
        return await self._inner.command(name, *args)


_quiet = logging.getLogger("homeline.voice.payment.flow")
_quiet.setLevel(logging.WARNING)
