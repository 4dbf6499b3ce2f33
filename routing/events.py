"""Events the router consumes (past tense) and decisions it returns (imperative).

All are frozen, slotted dataclasses of plain values, so they can be journaled
as JSON lines (`routing.journal`) and replayed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

from routing.windows import HoursChange, HourWindow

__all__ = [
    # events
    "Event",
    "AgentRegistered",
    "AgentUnregistered",
    "AgentMadeAvailable",
    "AgentWentOnBreak",
    "AgentEndedWrapUp",
    "AgentHoursChanged",
    "CallArrived",
    "CallbackAccepted",
    "CallbackNotAnswered",
    "OfferAnswered",
    "OfferNotAnswered",
    "CallEnded",
    "CallerAbandoned",
    "TimerFired",
    # decisions
    "Decision",
    "Reason",
    "OfferCall",
    "CancelOffer",
    "CallQueued",
    "OfferCallback",
    "AgentPutOnBreak",
    "AgentStateChanged",
    "WakeAt",
    "CallOverflowed",
    "CallRejected",
    "EventIgnored",
    "OfferChat",
    "ReplyWithWait",
    "OfferChatCallback",
    "VoiceDecision",
    "TextDecision",
    "split_by_channel",
]


# ---------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class AgentRegistered:
    """The agent's SIP contact became reachable (PJSIP contact/device state)."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentUnregistered:
    """The agent's SIP contact is gone or unreachable."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentMadeAvailable:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentWentOnBreak:
    agent_id: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class AgentEndedWrapUp:
    """The agent finished wrap-up early (``homeline agent state AGENT end-wrap-up``).

    Only ends wrap-up: the agent becomes available, or goes on the break they
    asked for during the call. In any other state the router ignores it (a
    late click must not pull an agent off a break).
    """

    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentHoursChanged:
    """The agent's hours were changed (CLI or portal); routing uses them at once."""

    agent_id: str
    windows: tuple[HourWindow, ...]
    changes: tuple[HoursChange, ...] = ()


@dataclass(frozen=True, slots=True)
class CallArrived:
    """A caller finished the IVR and asks for an agent.

    ``required_skills`` (name, level) pairs override the queue's skills when given;
    ``skills`` (names, from the IVR's route node) are required on top of the
    queue's own, at the queue's level for a skill it names, else level 1.
    ``data`` is what the flow decided to pass along (never a secure value):
    the router keeps it with the call and journals it.
    ``channel`` (`routing.model.CHANNELS`): a text conversation (sms, messenger) is
    routed like a call (same events after this one, keyed by ``call_id``) but takes
    a chat slot of the agent, within their capacity and mix rule.
    """

    call_id: str
    queue_id: str
    language: str | None = None
    intent: str = ""
    caller: str = ""
    priority: int = 0
    required_skills: tuple[tuple[str, int], ...] = ()
    skills: tuple[str, ...] = ()
    data: tuple[tuple[str, str], ...] = ()
    channel: str = "voice"


@dataclass(frozen=True, slots=True)
class CallbackAccepted:
    """The caller accepted a callback: they hang up but keep their place in line."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CallbackNotAnswered:
    """The agent took a callback, but the caller did not answer being called back
    (``cause``: no-answer, busy, unavailable, agent-left ...)."""

    call_id: str
    cause: str = "no-answer"


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferNotAnswered:
    """The offer rang out, was rejected or failed (``cause``: no-answer, rejected, busy ...)."""

    call_id: str
    agent_id: str
    cause: str = "no-answer"


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A connected call hung up (``by``: caller, agent or system)."""

    call_id: str
    by: str = "caller"


@dataclass(frozen=True, slots=True)
class CallerAbandoned:
    """The caller hung up before being connected (waiting or while an agent rang)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The time asked for by a `WakeAt` came (or any time: the router checks what is due)."""


Event = (AgentRegistered | AgentUnregistered | AgentMadeAvailable | AgentWentOnBreak
         | AgentEndedWrapUp | AgentHoursChanged | CallArrived | CallbackAccepted
         | CallbackNotAnswered | OfferAnswered
         | OfferNotAnswered | CallEnded | CallerAbandoned | TimerFired)


# ---------------------------------------------------------------- decisions
@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision was made: the rule, the chosen agent, who else was eligible.

    ``text`` is one human-readable line (the demo prints it); the other fields
    carry the same facts for programs.
    """

    rule: str
    text: str
    chosen: str | None = None
    others: tuple[str, ...] = ()  # other eligible agents, best first (at most runners_up)
    more_eligible: bool = False  # there were more eligible agents than listed
    queue_id: str | None = None
    step: int = 0
    requirement: str = ""
    window: str = ""  # the chosen agent's open window, local time
    window_closes_at: datetime | None = None
    idle_s: float | None = None
    excluded: tuple[tuple[str, str], ...] = ()  # (agent_id, why) for notable exclusions


@dataclass(frozen=True, slots=True)
class OfferCall:
    """Ring ``endpoint`` (PJSIP) for ``call_id``; give up after ``ring_timeout_s``."""

    call_id: str
    agent_id: str
    endpoint: str
    ring_timeout_s: float
    reason: Reason
    callback: bool = False  # the caller hung up earlier: call them back through the agent
    caller: str = ""


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing the agent (ring timeout passed in the router's view)."""

    call_id: str
    agent_id: str
    why: str
    channel: str = "voice"


@dataclass(frozen=True, slots=True)
class CallQueued:
    """The call waits; announce ``position`` (1 = next) and ``expected_wait_s``."""

    call_id: str
    queue_id: str
    position: int
    expected_wait_s: float
    reason: Reason
    channel: str = "voice"


@dataclass(frozen=True, slots=True)
class OfferCallback:
    call_id: str
    expected_wait_s: float


@dataclass(frozen=True, slots=True)
class AgentPutOnBreak:
    """Tell the agent they were put on break, and why."""

    agent_id: str
    why: str


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    agent_id: str
    old: str
    new: str
    trigger: str


@dataclass(frozen=True, slots=True)
class WakeAt:
    """Call ``handle(TimerFired(), at)`` at ``at`` (replaces any earlier wake-up)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class CallOverflowed:
    """The call left its queue for ``target`` (another queue id or an external target)."""

    call_id: str
    from_queue: str
    target: str
    why: str
    channel: str = "voice"


@dataclass(frozen=True, slots=True)
class CallRejected:
    """Nothing can ever serve this call (unknown queue, no agent with the skill at all ...)."""

    call_id: str
    why: str
    code: str = "no-agent"
    queue_id: str = ""  # the queue the call was in (or asked for)
    channel: str = "voice"


@dataclass(frozen=True, slots=True)
class EventIgnored:
    """The event referred to something the router does not know (stale or duplicate)."""

    event: str
    why: str = field(default="")


@dataclass(frozen=True, slots=True)
class OfferChat:
    """Offer the conversation ``call_id`` to the agent (their portal's chat panel);
    it passes to the next agent if not accepted (`OfferAnswered`) within ``timeout_s``."""

    call_id: str
    agent_id: str
    channel: str
    timeout_s: float
    reason: Reason
    customer: str = ""


@dataclass(frozen=True, slots=True)
class ReplyWithWait:
    """Tell the waiting customer, on their channel, that an agent will answer in about
    ``expected_wait_s`` (their place: ``position``, 1 = next)."""

    call_id: str
    channel: str
    queue_id: str
    position: int
    expected_wait_s: float


@dataclass(frozen=True, slots=True)
class OfferChatCallback:
    """Offer the waiting customer a phone call back instead of waiting in the chat
    (accepting it is `CallbackAccepted`: the conversation keeps its place and becomes
    a voice callback)."""

    call_id: str
    channel: str
    expected_wait_s: float


VoiceDecision = (OfferCall | CancelOffer | CallQueued | OfferCallback | AgentPutOnBreak
                 | AgentStateChanged | WakeAt | CallOverflowed | CallRejected | EventIgnored)
"""What the voice executor carries out (`split_by_channel` keeps chats' decisions away)."""
TextDecision = (OfferChat | ReplyWithWait | OfferChatCallback | CancelOffer | CallQueued
                | CallOverflowed | CallRejected)
"""What concerns a text conversation: carried out by the text executor (its channel's)."""
Decision = VoiceDecision | OfferChat | ReplyWithWait | OfferChatCallback


def split_by_channel(decisions: list[Decision]
                     ) -> tuple[list[VoiceDecision], list[TextDecision]]:
    """The decisions for the voice executor and those for text conversations, in order.

    Decisions about an interaction carry its ``channel``; the agent-side ones
    (state changes, breaks) and wake-ups go to the voice side, which owns them today.
    """
    voice: list[VoiceDecision] = []
    text: list[TextDecision] = []
    for d in decisions:
        match d:
            case OfferChat() | ReplyWithWait() | OfferChatCallback():
                text.append(d)
            case CancelOffer() | CallQueued() | CallOverflowed() | CallRejected():
                if d.channel == "voice":
                    voice.append(d)
                else:
                    text.append(d)
            case (OfferCall() | OfferCallback() | AgentPutOnBreak() | AgentStateChanged()
                  | WakeAt() | EventIgnored()):
                voice.append(d)
            case _:
                assert_never(d)
    return voice, text
