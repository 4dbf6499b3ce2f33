"""Values the store keeps about calls and agents (frozen, plain)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["CallRecord", "CallEvent", "CALL_EVENT_KINDS", "AGENT_STATE_ACTIONS", "USER_ROLES",
           "User", "WebSession"]

# queue_log-style events (Asterisk's queue_log has ENTERQUEUE, RINGNOANSWER, CONNECT,
# ABANDON, COMPLETEAGENT/COMPLETECALLER ...; https://docs.asterisk.org/Operation/Logging/
# Queue-Logs/), in Homeline's words
CALL_EVENT_KINDS = ("enter", "offered", "ring-no-answer", "connected", "abandoned",
                    "overflowed", "callback", "completed", "ivr-ended", "voicemail",
                    "transfer", "rejected", "supervisor")

# what an agent may ask for (``homeline agent state``, the portal)
AGENT_STATE_ACTIONS = ("available", "break", "end-wrap-up")

# who may log in to the web app (``homeline user add NAME --role ROLE``)
USER_ROLES = ("agent", "supervisor", "admin")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One record per call, from the IVR answering to the end (wrap-up and survey too).

    ``None`` means "not known here": `Store.record_call` keeps the stored value
    for it, so each part of the engine writes what it knows. ``variables`` holds
    only the flow's declared ``record_variables``, already filtered by the caller:
    there is no other field for flow variables, so a ``secure`` value has no way in.
    """

    call_id: str
    queue_id: str | None = None
    agent_id: str | None = None
    caller: str | None = None
    arrived_at: datetime | None = None  # the IVR answered
    answered_at: datetime | None = None  # an agent answered
    ended_at: datetime | None = None
    outcome: str | None = None
    reason: str | None = None
    queued_at: datetime | None = None  # the route request reached the router
    intent: str | None = None
    language: str | None = None
    flow: str | None = None
    flow_version: str | None = None
    wrap_up_s: float | None = None
    survey_score: int | None = None
    survey_comment: str | None = None  # path of the recorded comment
    variables: Mapping[str, str] | None = None  # the flow's record_variables only


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A queue_log-style event of a call (``event`` one of `CALL_EVENT_KINDS`)."""

    call_id: str
    at: datetime
    event: str
    agent_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0  # order within the call, given by the store


@dataclass(frozen=True, slots=True)
class User:
    """Someone who logs in to the web app. ``password_hash`` is an argon2 PHC string
    (``$argon2id$...``); the store never sees a password."""

    name: str
    role: str  # one of USER_ROLES
    agent_id: str | None  # the directory agent this user is (agents: always set)
    password_hash: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WebSession:
    """A logged-in browser. ``id`` is a digest of the cookie's token, never the token
    itself, so reading the table does not let anyone log in as the user."""

    id: str
    user: str
    csrf: str  # the token state-changing requests must send back
    created_at: datetime
    last_seen: datetime
