"""What the agent portal (and ``homeline agent state``) calls: an agent sets their state.

The request goes to the store's change feed; a running engine reads it with
``Store.agent_requests_since`` and feeds the router the event (`AgentMadeAvailable`,
`AgentWentOnBreak`, `AgentEndedWrapUp`): it applies at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.directory import Directory
from routing.windows import check_aware
from store import AGENT_STATE_ACTIONS, Store

__all__ = ["AgentStateRequest", "UnknownAgentError", "request_agent_state"]


class UnknownAgentError(ValueError):
    """The agent id is not in the directory, or the state is not one an agent may ask for."""


@dataclass(frozen=True, slots=True)
class AgentStateRequest:
    agent_id: str
    action: str
    why: str
    seq: int  # the store's sequence number of the request


def request_agent_state(store: Store, directory: Directory, agent_id: str, action: str,
                        now: datetime, why: str = "") -> AgentStateRequest:
    """Ask for ``action`` (available, break, end-wrap-up) on behalf of ``agent_id``."""
    check_aware(now)
    known = [a.id for a in directory.agents]
    if agent_id not in known:
        raise UnknownAgentError(f"{directory.source}: unknown agent {agent_id!r}; known: "
                                f"{', '.join(known) or '(none)'}")
    if action not in AGENT_STATE_ACTIONS:
        raise UnknownAgentError(f"agent state {action!r}: not one of "
                                f"{', '.join(AGENT_STATE_ACTIONS)}")
    why = why.strip() or ("asked for a break" if action == "break" else "")
    seq = store.request_agent_state(agent_id, action, why, now)
    return AgentStateRequest(agent_id, action, why, seq)
