"""Skills-based routing for home agents with self-chosen hours.

Integration contract (the live adapter, `homeline engine`):

- ``load_directory(path, now=None) -> Directory`` reads ``dialplans/agents.yaml``;
  every problem is raised at once in one `DirectoryError` (``.problems``, each
  ``file:node:field: message [code]``). ``Directory.from_dict(data, source=...)``
  does the same for a dict; `Agent`, `Queue`, `HourWindow` ... are constructible
  directly.
- ``Router.from_directory(directory, store=None, now=None)`` builds the router;
  with a `Store` the agents' stored hours override the file's windows.
- ``Router.handle(event, now) -> list[Decision]``: ``now`` is an aware datetime
  (naive -> ValueError). The router never does I/O, reads no clock and never
  sleeps; a `WakeAt` decision asks for ``handle(TimerFired(), at)``.
  **One thread**: call ``handle`` from a single thread (or under your own lock);
  the router has no internal locking.
- Hours changed by ``homeline agent hours ...`` or the portal functions in
  `routing.hours` are stored and returned as an `AgentHoursChanged` event; a
  running engine picks them up with ``Store.hours_events_since(seq)`` and feeds
  them to ``handle`` -> they apply at once.
- ``routing.journal``: events as JSON lines; ``homeline route replay`` replays them.
"""
from __future__ import annotations

from routing.directory import Directory, load_directory
from routing.errors import (
    DirectoryError,
    HoursError,
    Problem,
    RoutingError,
    StoreError,
    TransitionError,
)
from routing.events import (
    AgentHoursChanged,
    AgentMadeAvailable,
    AgentPutOnBreak,
    AgentRegistered,
    AgentStateChanged,
    AgentUnregistered,
    AgentWentOnBreak,
    CallArrived,
    CallbackAccepted,
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
    OfferNotAnswered,
    Reason,
    TimerFired,
    WakeAt,
)
from routing.model import Agent, ExpansionStep, Queue, Requirement, RoutingPolicy
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
    "AgentHoursChanged", "CallArrived", "CallbackAccepted", "OfferAnswered",
    "OfferNotAnswered", "CallEnded", "CallerAbandoned", "TimerFired",
    # decisions
    "Decision", "Reason", "OfferCall", "CancelOffer", "CallQueued", "OfferCallback",
    "AgentPutOnBreak", "AgentStateChanged", "WakeAt", "CallOverflowed", "CallRejected",
    "EventIgnored",
    # store
    "Store",
    # errors
    "RoutingError", "DirectoryError", "HoursError", "TransitionError", "StoreError", "Problem",
]


def __getattr__(name: str) -> object:
    # The router and the store are imported lazily so loading the model stays light.
    if name == "Router":
        from routing.router import Router
        return Router
    if name == "Store":
        from routing.store import Store
        return Store
    raise AttributeError(name)
