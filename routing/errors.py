"""Exceptions of the routing package (one root: `RoutingError`).

Expected outcomes (no eligible agent, a caller hanging up, an offer not
answered) are events and decisions, never exceptions. These are for invalid
input and for bugs.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from adminfiles import Problem

__all__ = [
    "RoutingError",
    "DirectoryError",
    "HoursError",
    "TransitionError",
    "StoreError",
]


class RoutingError(Exception):
    """Root of every exception raised by `routing`."""


class _ProblemsError(RoutingError):
    """Carries every `adminfiles.Problem` found, one per line in the message."""

    def __init__(self, problems: Iterable[Problem]) -> None:
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
