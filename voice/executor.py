"""The voice executor: every router decision carried out on a live call.

One method, `VoiceExecutor.carry_out`, dispatches on the decision type with an
exhaustive ``match`` ending in ``assert_never``: a decision type added to
``routing.events.VoiceDecision`` that nobody carries out is a mypy error here.
Decisions about text conversations (``routing.events.TextDecision``) never come
here: the engine splits the router's decisions by channel first
(``routing.events.split_by_channel``).

Nothing here blocks the router thread: AMI actions go out with
`AmiConnection.send` and their answers come back on the AMI reader thread,
where a failure becomes a router event posted to the engine (``post``), e.g.
a Redirect that could not move the caller to an agent is an
``OfferNotAnswered(cause="pbx-error")`` the router re-routes.

Where the channel goes is the dialplan's business (dialplans/templates/
extensions.conf.tmpl): each decision moves the caller to one Homeline context
(``homeline-agent``, ``homeline-hold``, ``homeline-voicemail``,
``homeline-rejected``, ``homeline-external``, ``homeline-callback-offer``)
after setting the channel variables that context reads. Only the ``call``
write class is used (Setvar, Redirect) and ``message`` for the agent's notice
(MessageSend); callbacks use Originate of a ``Local/`` channel into the one
fixed context ``homeline-callback`` (checked before sending).
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, assert_never

from routing.events import (
    AgentPutOnBreak,
    AgentStateChanged,
    CallbackNotAnswered,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CancelOffer,
    Event,
    EventIgnored,
    OfferCall,
    OfferCallback,
    OfferNotAnswered,
    VoiceDecision,
    WakeAt,
)
from voice.ami import AmiReply

__all__ = ["VoiceContexts", "VoiceExecutor", "AmiSender", "CALLBACK_CONTEXT",
           "check_originate"]

log = logging.getLogger("homeline.voice.executor")

CALLBACK_CONTEXT = "homeline-callback"
_EXTERNAL = re.compile(r"^\+?[0-9]{2,20}$")
_BOX = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class AmiSender(Protocol):
    def send(self, name: str, on_reply: Callable[[AmiReply], None] | None = None,
             **fields: str) -> None: ...


class ChannelBook(Protocol):
    """Which channel carries a call (the AMI translator keeps it)."""

    def channel_of(self, call_id: str) -> str | None: ...

    def track_callback(self, call_id: str, agent_id: str, agent_leg: str,
                       caller_leg: str) -> None: ...

    def callback_leg(self, call_id: str) -> str | None: ...

    def forget_callback(self, call_id: str) -> None: ...

    def ringing(self, call_id: str, agent_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class VoiceContexts:
    agent: str = "homeline-agent"
    hold: str = "homeline-hold"
    voicemail: str = "homeline-voicemail"
    rejected: str = "homeline-rejected"
    external: str = "homeline-external"
    callback_offer: str = "homeline-callback-offer"


def check_originate(fields: dict[str, str]) -> None:
    """The only Originate Homeline sends: a ``Local/`` channel into `CALLBACK_CONTEXT`.

    The engine's AMI user holds the ``originate`` class for callbacks; an
    Originate that could start an application or reach another context would
    be what CVE-2024-42365 warns about, so anything else is refused here,
    before it is sent.
    """
    channel = fields.get("Channel", "")
    if not channel.startswith("Local/") or not channel.endswith(f"@{CALLBACK_CONTEXT}/n"):
        raise ValueError(f"Originate refused: channel {channel!r} is not "
                         f"Local/...@{CALLBACK_CONTEXT}")
    if "Application" in fields or "Data" in fields:
        raise ValueError("Originate refused: no Application/Data, only the callback context")
    if fields.get("Context") != CALLBACK_CONTEXT:
        raise ValueError(f"Originate refused: context {fields.get('Context')!r} is not "
                         f"{CALLBACK_CONTEXT}")


class VoiceExecutor:
    """Carries out router decisions over AMI; call from the router thread only."""

    DIAL_GRACE_S = 2.0  # Dial's own timeout = the router's ring timeout + this
    REDIRECT_TRIES = 5  # "channel not up" while an earlier goto is pending
    REDIRECT_RETRY_S = 0.1

    def __init__(self, ami: AmiSender, channels: ChannelBook, *,
                 post: Callable[[Event], None],
                 note: Callable[[str, str], None],
                 set_wake: Callable[[datetime], None],
                 in_ivr: Callable[[str], bool],
                 on_agent_state: Callable[[AgentStateChanged], None] = lambda _d: None,
                 voicemail_box: Callable[[str], str] = lambda queue_id: queue_id,
                 survey: bool = False,
                 contexts: VoiceContexts | None = None,
                 agent_via: Callable[[str], str] | None = None) -> None:
        """``agent_via(agent_id)``: the PJSIP trunk endpoint to ring an agent whose
        phone is registered on another node (homeline/nodes.py), "" for this one;
        None: one node, every agent rings here."""
        self._ami = ami
        self._channels = channels
        self._post = post
        self._note = note
        self._set_wake = set_wake
        self._in_ivr = in_ivr
        self._on_agent_state = on_agent_state
        self._voicemail_box = voicemail_box
        self._survey = survey
        self.contexts = contexts or VoiceContexts()
        self._agent_via = agent_via
        # decisions that move a caller still inside the IVR wait for the AGI to end:
        # redirecting a channel inside AGI() would end the flow under its feet
        self._held: dict[str, list[VoiceDecision]] = {}
        self._dial_backs = 0  # numbers each dial-back's channel ids

    # -- the dispatch ------------------------------------------------------------
    def carry_out_all(self, decisions: Sequence[VoiceDecision]) -> None:
        # A cancelled offer followed, in the same batch, by a new offer for the
        # same call (ring timeout -> next agent) needs one Redirect, not two:
        # a second Redirect sent while Asterisk still handles the first finds the
        # channel flagged for an async goto and fails ("channel not up").
        reoffered = {d.call_id for d in decisions if isinstance(d, OfferCall)}
        for decision in decisions:
            if isinstance(decision, CancelOffer) and decision.call_id in reoffered:
                self._note(decision.call_id, f"offer cancelled: {decision.why}")
                continue
            self.carry_out(decision)

    def carry_out(self, decision: VoiceDecision) -> None:
        match decision:
            case WakeAt():
                self._set_wake(decision.at)
            case OfferCall():
                if not self._hold_while_in_ivr(decision.call_id, decision):
                    self._offer(decision)
            case CancelOffer():
                self._back_to_hold(decision)
            case CallQueued():
                self._note(decision.call_id, f"queued in {decision.queue_id}: position "
                           f"{decision.position}, expected wait "
                           f"{decision.expected_wait_s:.0f} s")
            case OfferCallback():
                if not self._hold_while_in_ivr(decision.call_id, decision):
                    self._offer_callback(decision)
            case AgentPutOnBreak():
                self._tell_agent(decision)
            case AgentStateChanged():
                self._on_agent_state(decision)
            case CallOverflowed():
                if not self._hold_while_in_ivr(decision.call_id, decision):
                    self._overflow(decision)
            case CallRejected():
                if not self._hold_while_in_ivr(decision.call_id, decision):
                    self._reject(decision)
            case EventIgnored():
                log.debug("router ignored %s: %s", decision.event, decision.why)
            case _:
                assert_never(decision)

    def ivr_ended(self, call_id: str) -> None:
        """The call's AGI session is over: carry out what waited for it."""
        for decision in self._held.pop(call_id, []):
            self.carry_out(decision)

    def _hold_while_in_ivr(self, call_id: str, decision: VoiceDecision) -> bool:
        if self._in_ivr(call_id):
            self._held.setdefault(call_id, []).append(decision)
            return True
        return False

    # -- each decision -----------------------------------------------------------------
    def _offer(self, offer: OfferCall) -> None:
        if offer.callback:
            self._dial_back(offer)
            return
        channel = self._channels.channel_of(offer.call_id)
        if channel is None:
            return  # the caller already hung up; the router has been told
        self._note(offer.call_id, f"offered to {offer.agent_id}: {offer.reason.text}")
        # The router's ring timer is the one authority on "no answer"; Dial's own
        # timeout is a safety net a little later, for when the engine is gone.
        dial_timeout_s = max(1, round(offer.ring_timeout_s + self.DIAL_GRACE_S))
        self._setvar(channel, "HOMELINE_RING_TIMEOUT", str(dial_timeout_s))
        if self._survey:
            self._setvar(channel, "HOMELINE_SURVEY", "1")
        if self._agent_via is not None:  # [homeline-agent-dial] rings through the trunk
            self._setvar(channel, "HOMELINE_AGENT_VIA", self._agent_via(offer.agent_id))
        self._channels.ringing(offer.call_id, offer.agent_id)

        def failed(message: str) -> None:
            self._note(offer.call_id, f"redirect to {offer.agent_id} failed: {message}")
            log.warning("offer %s -> %s failed: %s", offer.call_id, offer.agent_id, message)
            if self._channels.channel_of(offer.call_id) is not None:
                self._post(OfferNotAnswered(offer.call_id, offer.agent_id, cause="pbx-error"))

        self._redirect(channel, self.contexts.agent, offer.agent_id, failed)

    def _dial_back(self, offer: OfferCall) -> None:
        """A callback: ring the agent first, then call the caller back and bridge them.

        One Originate of ``Local/cb-<agent id>@homeline-callback/n`` (``/n``: no
        Local optimisation, so both legs stay ours to follow): its ;2 half rings
        the agent; when the agent answers, its ;1 half runs ``caller`` in the same
        context, which dials the caller back (extensions.conf.tmpl). ChannelId and
        OtherChannelId name the two legs, so their DialEnd/Hangup events map back
        to the call (AMI Originate, Asterisk 22 docs).
        """
        self._dial_backs += 1
        base = f"hlcb-{offer.call_id}-{self._dial_backs}"
        caller_leg, agent_leg = base, f"{base}-a"
        ring_s = max(1, round(offer.ring_timeout_s + self.DIAL_GRACE_S))
        number = "".join(ch for ch in offer.caller if ch.isdigit() or ch == "+")
        if not _EXTERNAL.fullmatch(number):
            self._note(offer.call_id, f"callback: caller number {offer.caller!r} cannot be "
                       "dialled")
            self._post(CallbackNotAnswered(offer.call_id, "no-number"))
            return
        fields = {
            "Channel": f"Local/cb-{offer.agent_id}@{CALLBACK_CONTEXT}/n",
            "Context": CALLBACK_CONTEXT, "Exten": "caller", "Priority": "1",
            "Async": "true", "Timeout": str((ring_s + 2) * 1000),
            "ChannelId": caller_leg, "OtherChannelId": agent_leg,
            "CallerID": f"Homeline callback <{number}>",
            # Originate takes several variables comma-separated (manager.c
            # astman_get_variables_order); Local copies them to its ;2 half
            "Variable": (f"HOMELINE_CALL_ID={offer.call_id},"
                         f"HOMELINE_CALLBACK_NUMBER={number},"
                         f"HOMELINE_RING_TIMEOUT={ring_s}"),
        }
        check_originate(fields)
        self._channels.track_callback(offer.call_id, offer.agent_id, agent_leg, caller_leg)
        self._note(offer.call_id, f"callback: ringing {offer.agent_id} first, then "
                   f"{number}: {offer.reason.text}")

        def answered(reply: AmiReply) -> None:
            if reply.ok:
                return
            self._note(offer.call_id, f"callback originate failed: {reply.message}")
            log.warning("callback %s -> %s failed: %s", offer.call_id, offer.agent_id,
                        reply.message)
            self._channels.forget_callback(offer.call_id)
            self._post(OfferNotAnswered(offer.call_id, offer.agent_id, cause="pbx-error"))

        self._ami.send("Originate", answered, **fields)

    def _back_to_hold(self, cancel: CancelOffer) -> None:
        leg = self._channels.callback_leg(cancel.call_id)
        if leg is not None:  # a dial-back still ringing the agent: stop it
            self._note(cancel.call_id, f"callback cancelled: {cancel.why}")
            self._ami.send("Hangup", None, Channel=leg)
            return
        channel = self._channels.channel_of(cancel.call_id)
        if channel is None:
            return
        self._note(cancel.call_id, f"offer cancelled: {cancel.why}")
        self._redirect(channel, self.contexts.hold, "s",
                       lambda m: log.warning("back to hold for %s failed: %s",
                                             cancel.call_id, m))

    def _overflow(self, overflow: CallOverflowed) -> None:
        self._note(overflow.call_id, f"overflowed from {overflow.from_queue} to "
                   f"{overflow.target}: {overflow.why}")
        if not overflow.target.startswith("ext:"):
            return  # another queue: the router keeps the call (and its arrival time)
        channel = self._channels.channel_of(overflow.call_id)
        if channel is None:
            return
        target = overflow.target[len("ext:"):]
        if target == "voicemail":
            self._to_voicemail(channel, overflow.call_id, overflow.from_queue,
                               self.contexts.voicemail)
        elif _EXTERNAL.fullmatch(target):
            self._redirect(channel, self.contexts.external, target,
                           self._failed_move(overflow.call_id, f"dial {target}"))
        else:  # the directory loader refuses these; never send the caller nowhere
            log.warning("call %s: overflow target %r is not dialable; voicemail instead",
                        overflow.call_id, overflow.target)
            self._to_voicemail(channel, overflow.call_id, overflow.from_queue,
                               self.contexts.voicemail)

    def _reject(self, rejected: CallRejected) -> None:
        self._note(rejected.call_id, f"rejected ({rejected.code}): {rejected.why}")
        channel = self._channels.channel_of(rejected.call_id)
        if channel is None:
            return
        self._setvar(channel, "HOMELINE_REJECTED", rejected.code)
        self._to_voicemail(channel, rejected.call_id, rejected.queue_id, self.contexts.rejected)

    def _to_voicemail(self, channel: str, call_id: str, queue_id: str, context: str) -> None:
        box = self._voicemail_box(queue_id)
        if not _BOX.fullmatch(box):
            box = "general"
        self._setvar(channel, "HOMELINE_VOICEMAIL_BOX", box)
        self._redirect(channel, context, "s", self._failed_move(call_id, "voicemail"))

    def _offer_callback(self, offer: OfferCallback) -> None:
        channel = self._channels.channel_of(offer.call_id)
        if channel is None:
            return
        self._note(offer.call_id, f"callback offered (expected wait "
                   f"{offer.expected_wait_s:.0f} s)")
        self._setvar(channel, "HOMELINE_EWT", str(round(offer.expected_wait_s)))
        self._redirect(channel, self.contexts.callback_offer, "s",
                       self._failed_move(offer.call_id, "callback offer"))

    def _tell_agent(self, brk: AgentPutOnBreak) -> None:
        """The agent's softphone gets a SIP MESSAGE saying why (AMI MessageSend)."""
        log.warning("agent %s put on break: %s", brk.agent_id, brk.why)
        self._ami.send("MessageSend", None, Destination=f"pjsip:{brk.agent_id}",
                       From="Homeline <sip:homeline@localhost>",
                       Body=f"You are on break: {brk.why}")

    # -- AMI helpers ---------------------------------------------------------------------
    def _failed_move(self, call_id: str, what: str) -> Callable[[str], None]:
        def failed(message: str) -> None:
            self._note(call_id, f"{what} failed: {message}")
            log.warning("call %s: %s failed: %s", call_id, what, message)
        return failed

    def _setvar(self, channel: str, name: str, value: str) -> None:
        self._ami.send("Setvar", None, Channel=channel, Variable=name, Value=value)

    def _redirect(self, channel: str, context: str, exten: str,
                  failed: Callable[[str], None], attempt: int = 1) -> None:
        """AMI Redirect, retried briefly while the channel is between two dialplan steps.

        manager.c's action_redirect answers "Redirect failed, channel not up."
        whenever ast_check_hangup() is true, which includes a soft hang-up
        still pending from an earlier async goto (Dial ending, a previous
        Redirect). That state lasts milliseconds; a real hang-up does not go
        away and the last error is reported.
        """
        def answered(reply: AmiReply) -> None:
            if reply.ok:
                return
            if "not up" in reply.message and attempt < self.REDIRECT_TRIES:
                timer = threading.Timer(self.REDIRECT_RETRY_S, self._redirect,
                                        (channel, context, exten, failed, attempt + 1))
                timer.daemon = True
                timer.start()
                return
            failed(reply.message)

        self._ami.send("Redirect", answered, Channel=channel, Context=context, Exten=exten,
                       Priority="1")
