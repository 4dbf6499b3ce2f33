"""Skills-based routing for home agents with self-chosen hours.

Integration contract (the live adapter, `homeline engine`):

- ``load_directory(path, now=None) -> Directory`` reads ``dialplans/agents.yaml``;
  every problem is raised at once in one `DirectoryError` (``.problems``, each an
  ``adminfiles.Problem``: ``file:node:key: message [code]``).
  ``Directory.from_dict(data, source=...)`` does the same for a dict; `Agent`,
  `Queue`, `HourWindow` ... are constructible directly.
- ``Router(directory, now=...)`` (or ``Router.from_directory``) builds the router;
  the caller applies stored hours first (``store.apply_hours(directory)``): the
  core never imports the store (`store` is an adapter around it).
- Restart: ``Router.snapshot(now)`` / ``Router.snapshot_changes(now)`` give the
  router's state as plain values (`routing.snapshot`), which the store keeps;
  ``Router.restore(directory, snapshot, now=..., bridged=...)`` rebuilds it.
- ``Router.handle(event, now) -> list[Decision]``: ``now`` is an aware datetime
  (naive -> ValueError). The router never does I/O, reads no clock and never
  sleeps; a `WakeAt` decision asks for ``handle(TimerFired(), at)``.
  **One thread**: call ``handle`` from a single thread (or under your own lock);
  the router has no internal locking.
- Hours changed by ``homeline agent hours ...`` or the portal functions in
  `routing.hours` are stored and returned as an `AgentHoursChanged` event; a
  running engine picks them up with ``Store.hours_events_since(seq)`` and feeds
  them to ``handle`` -> they apply at once. Agents' own state requests
  (available, break, end of wrap-up) come the same way
  (``Store.agent_requests_since``).
- ``routing.journal``: ``Recorder(router, fp, start=now)`` wraps a router and writes
  every event and its decisions as JSON lines; ``homeline route replay`` replays them.
- Decisions the adapter acts on: `OfferCall` (ring ``endpoint`` for
  ``ring_timeout_s``; ``reason.text`` is the human-readable why), `CancelOffer`
  (stop ringing: the router's own ring timer ran out, or the caller/agent left),
  `CallQueued` (hold music; announce ``position``/``expected_wait_s``),
  `OfferCallback`, `AgentPutOnBreak` (tell the agent ``why``), `CallOverflowed`
  (``target`` is another queue, handled inside the router, or ``ext:<name>``),
  `CallRejected`, `WakeAt`; `AgentStateChanged` and `EventIgnored` are informative.
- Staffing: ``routing.erlang`` (Erlang C) and ``routing.staffing`` (weekly plan).
"""
from __future__ import annotations

from routing.directory import Directory, load_directory
from routing.errors import (
    DirectoryError,
    HoursError,
    RoutingError,
    StoreError,
    TransitionError,
)
from routing.events import (
    AgentEndedWrapUp,
    AgentHoursChanged,
    AgentMadeAvailable,
    AgentPutOnBreak,
    AgentRegistered,
    AgentStateChanged,
    AgentUnregistered,
    AgentWentOnBreak,
    CallArrived,
    CallbackAccepted,
    CallbackNotAnswered,
    CallEnded,
    CallerAbandoned,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CancelOffer,
    Decision,
    Event,
    EventIgnored,
    OfferAnswered,
    OfferCall,
    OfferCallback,
    OfferChat,
    OfferChatCallback,
    OfferNotAnswered,
    Reason,
    ReplyWithWait,
    TextDecision,
    TimerFired,
    VoiceDecision,
    WakeAt,
    split_by_channel,
)
from routing.model import (
    CHANNELS,
    MIX_RULES,
    TEXT_CHANNELS,
    Agent,
    ExpansionStep,
    Queue,
    Requirement,
    RoutingPolicy,
)
from routing.states import TRANSITIONS, AgentState
from routing.windows import HoursChange, HoursPolicy, HourWindow, Schedule

__all__ = [
    # model and loader
    "Agent", "Queue", "ExpansionStep", "Requirement", "RoutingPolicy",
    "HourWindow", "HoursChange", "HoursPolicy", "Schedule",
    "Directory", "load_directory",
    "AgentState", "TRANSITIONS",
    # router core
    "Router",
    # events
    "Event", "AgentRegistered", "AgentUnregistered", "AgentMadeAvailable", "AgentWentOnBreak",
    "AgentEndedWrapUp", "AgentHoursChanged", "CallArrived", "CallbackAccepted",
    "CallbackNotAnswered", "OfferAnswered",
    "OfferNotAnswered", "CallEnded", "CallerAbandoned", "TimerFired",
    # decisions
    "Decision", "Reason", "OfferCall", "CancelOffer", "CallQueued", "OfferCallback",
    "AgentPutOnBreak", "AgentStateChanged", "WakeAt", "CallOverflowed", "CallRejected",
    "EventIgnored", "OfferChat", "ReplyWithWait", "OfferChatCallback",
    "VoiceDecision", "TextDecision", "split_by_channel",
    "CHANNELS", "TEXT_CHANNELS", "MIX_RULES",
    # restart state, hours management (CLI and portal), journal
    "RouterSnapshot", "RouterChanges",
    "set_hours", "add_hours", "cancel_hours", "show_hours", "HoursView",
    "Recorder", "replay",
    # errors
    "RoutingError", "DirectoryError", "HoursError", "TransitionError", "StoreError",
]


_LAZY = {
    "Router": "routing.router",
    "RouterSnapshot": "routing.snapshot",
    "RouterChanges": "routing.snapshot",
    "set_hours": "routing.hours",
    "add_hours": "routing.hours",
    "cancel_hours": "routing.hours",
    "show_hours": "routing.hours",
    "HoursView": "routing.hours",
    "Recorder": "routing.journal",
    "replay": "routing.journal",
}


def __getattr__(name: str) -> object:
    # The router, snapshot and journal load lazily so importing the model stays light.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'routing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
