"""The store interface: state that must survive a restart, behind one Protocol.

`store.sqlite.SqliteStore` implements it today; a PostgreSQL store shared by
several engines is the next implementation (its SQL is already portable, see
`store.schema`). Every method is safe to call from several threads; ``now``
arguments are aware datetimes (naive -> ValueError).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from routing.directory import Directory
from routing.events import AgentEndedWrapUp, AgentHoursChanged, AgentMadeAvailable, AgentWentOnBreak
from routing.snapshot import RouterChanges, RouterSnapshot
from routing.windows import HoursChange, HourWindow
from store.records import CallEvent, CallRecord

__all__ = ["Store", "AgentRequest"]

AgentRequest = AgentMadeAvailable | AgentWentOnBreak | AgentEndedWrapUp


class Store(Protocol):
    """What the engine, the CLI and the portal keep: agents' hours and state requests,
    call records and their events, and the router's state."""

    # agents and their hours
    def sync_agents(self, directory: Directory) -> None: ...
    def hours(self, agent_id: str
              ) -> tuple[tuple[HourWindow, ...], tuple[HoursChange, ...]] | None: ...
    def save_hours(self, agent_id: str, windows: Sequence[HourWindow],
                   changes: Sequence[HoursChange], now: datetime) -> int: ...
    def apply_hours(self, directory: Directory) -> Directory: ...
    def hours_seq(self) -> int: ...
    def hours_events_since(self, seq: int) -> tuple[list[AgentHoursChanged], int]: ...

    # agent state asked for by the agent (CLI, portal)
    def request_agent_state(self, agent_id: str, action: str, why: str,
                            now: datetime) -> int: ...
    def agent_requests_seq(self) -> int: ...
    def agent_requests_since(self, seq: int) -> tuple[list[AgentRequest], int]: ...

    # call records
    def record_call(self, rec: CallRecord) -> None: ...
    def add_call_event(self, call_id: str, at: datetime, event: str,
                       agent_id: str | None = None,
                       data: Mapping[str, Any] | None = None) -> int: ...
    def calls(self, since: datetime | None = None,
              limit: int | None = None) -> list[CallRecord]: ...
    def call_events(self, call_ids: Sequence[str]) -> dict[str, list[CallEvent]]: ...

    # router state
    def save_router_changes(self, changes: RouterChanges) -> None: ...
    def load_router_snapshot(self) -> RouterSnapshot | None: ...

    def close(self) -> None: ...
