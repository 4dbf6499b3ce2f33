"""The agent state machine as data: (state, trigger) -> next state.

The router picks the trigger from what happened (e.g. ``missed`` or
``missed_limit`` after a ring-no-answer, depending on the miss count); the
table says which moves are legal. A missing pair is a `TransitionError` naming
both. ``homeline route states`` prints this table (``--dot`` for graphviz).

Chats and the state. The state is the agent's presence and phone: ``reserved``,
``on_call`` and ``wrap_up`` are about a voice call only. A text conversation
(sms, messenger) takes a *chat slot* instead, held by the router beside the
state (`routing.router`: the agent's chats, each offered, connected or wrapping
up), so an agent with chats below their capacity stays ``available`` and
offerable for more chats (and, by their mix rule, for a call or not). An
agent at full chat capacity stays ``available`` too but is not offerable for
that channel. A chat offer not accepted in time is ``chat_missed``: a
cool-down like a missed call (``missed``), or a break at the miss limit
(``chat_missed_limit``); open chats go on through ``missed`` and ``break``.
"""
from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from routing.errors import TransitionError

__all__ = ["AgentState", "TRANSITIONS", "next_state", "to_dot"]


class AgentState(StrEnum):
    OFFLINE = "offline"  # no reachable SIP contact
    AVAILABLE = "available"
    RESERVED = "reserved"  # an offer is ringing the agent's softphone
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BREAK = "break"
    MISSED = "missed"  # just let an offer ring out; short cool-down


S = AgentState
_T: dict[tuple[AgentState, str], AgentState] = {
    (S.OFFLINE, "registered"): S.AVAILABLE,
    (S.OFFLINE, "registered_on_break"): S.BREAK,
    (S.OFFLINE, "unregistered"): S.OFFLINE,
    (S.OFFLINE, "went_on_break"): S.OFFLINE,
    (S.OFFLINE, "made_available"): S.OFFLINE,  # remembered; takes effect on register
    (S.AVAILABLE, "unregistered"): S.OFFLINE,
    (S.AVAILABLE, "registered"): S.AVAILABLE,
    (S.AVAILABLE, "went_on_break"): S.BREAK,
    (S.AVAILABLE, "made_available"): S.AVAILABLE,
    (S.AVAILABLE, "offered"): S.RESERVED,
    (S.AVAILABLE, "chat_missed"): S.MISSED,  # a chat offer passed on unaccepted
    (S.AVAILABLE, "chat_missed_limit"): S.BREAK,
    (S.RESERVED, "answered"): S.ON_CALL,
    (S.RESERVED, "missed"): S.MISSED,
    (S.RESERVED, "missed_limit"): S.BREAK,
    (S.RESERVED, "withdrawn"): S.AVAILABLE,  # caller hung up while ringing
    (S.RESERVED, "unregistered"): S.OFFLINE,
    (S.RESERVED, "went_on_break"): S.BREAK,
    (S.RESERVED, "registered"): S.RESERVED,
    (S.RESERVED, "made_available"): S.RESERVED,
    (S.ON_CALL, "ended"): S.WRAP_UP,
    (S.ON_CALL, "unregistered"): S.ON_CALL,  # the call is up on Asterisk; finish it
    (S.ON_CALL, "registered"): S.ON_CALL,
    (S.ON_CALL, "went_on_break"): S.ON_CALL,  # remembered for after wrap-up
    (S.ON_CALL, "made_available"): S.ON_CALL,
    (S.WRAP_UP, "wrap_done"): S.AVAILABLE,
    (S.WRAP_UP, "wrap_done_break"): S.BREAK,
    (S.WRAP_UP, "wrap_done_offline"): S.OFFLINE,
    (S.WRAP_UP, "made_available"): S.AVAILABLE,
    (S.WRAP_UP, "went_on_break"): S.BREAK,
    (S.WRAP_UP, "unregistered"): S.OFFLINE,
    (S.WRAP_UP, "registered"): S.WRAP_UP,
    (S.BREAK, "made_available"): S.AVAILABLE,
    (S.BREAK, "went_on_break"): S.BREAK,
    (S.BREAK, "unregistered"): S.OFFLINE,
    (S.BREAK, "registered"): S.BREAK,
    (S.MISSED, "cooled_down"): S.AVAILABLE,
    (S.MISSED, "chat_missed"): S.MISSED,  # another chat offer made before the first passed
    (S.MISSED, "chat_missed_limit"): S.BREAK,
    (S.MISSED, "made_available"): S.AVAILABLE,
    (S.MISSED, "went_on_break"): S.BREAK,
    (S.MISSED, "unregistered"): S.OFFLINE,
    (S.MISSED, "registered"): S.MISSED,
}
TRANSITIONS = MappingProxyType(_T)


def next_state(state: AgentState, trigger: str) -> AgentState:
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        allowed = [t for (s, t) in TRANSITIONS if s is state]
        raise TransitionError(state.value, trigger, allowed) from None


def to_dot() -> str:
    lines = ["digraph agent_states {", "  rankdir=LR;"]
    for (s, t), n in TRANSITIONS.items():
        if s is not n:
            lines.append(f'  {s.value} -> {n.value} [label="{t}"];')
    lines.append("}")
    return "\n".join(lines)
