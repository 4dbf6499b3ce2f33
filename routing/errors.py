"""Exceptions of the routing package (one root: `RoutingError`).

Expected outcomes (no eligible agent, a caller hanging up, an offer not
answered) are events and decisions, never exceptions. These are for invalid
input and for bugs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "RoutingError",
    "Problem",
    "DirectoryError",
    "HoursError",
    "TransitionError",
    "StoreError",
]


class RoutingError(Exception):
    """Root of every exception raised by `routing`."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation finding: ``file:node:field: message [code]``."""

    source: str
    node: str
    field: str
    message: str
    code: str

    def __str__(self) -> str:
        return f"{self.source}:{self.node}:{self.field}: {self.message} [{self.code}]"


class _ProblemsError(RoutingError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.problems)


class DirectoryError(_ProblemsError):
    """The agent directory (agents, queues, policy) is invalid; carries every problem."""


class HoursError(_ProblemsError):
    """A change of an agent's hours breaks the hours policy; carries every problem."""


class TransitionError(RoutingError):
    """An agent state machine got a trigger its transition table does not allow."""

    def __init__(self, state: str, trigger: str, allowed: Sequence[str]) -> None:
        self.state = state
        self.trigger = trigger
        super().__init__(
            f"no transition from state {state!r} on {trigger!r}; "
            f"allowed there: {', '.join(sorted(allowed)) or '(none)'}"
        )


class StoreError(RoutingError):
    """The SQLite store cannot be opened or holds something unexpected."""
