"""The ivr package's exception root and its children.

Expected outcomes (a caller hang-up, a timeout, an invalid digit) are events,
never exceptions; these are for invalid admin files, protocol violations and bugs.
"""
from __future__ import annotations

from collections.abc import Iterable

from adminfiles import Problem

__all__ = ["IvrError", "FlowInvalid", "EngineError", "AgiProtocolError"]


class IvrError(Exception):
    """Root of every exception raised by the ivr package."""


class FlowInvalid(IvrError):
    """A flow file failed validation; nothing of it was loaded. ``problems``: every one."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        head = "; ".join(str(p) for p in self.problems[:3])
        more = f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"{len(self.problems)} problem(s): {head}{more}")


class EngineError(IvrError):
    """The state machine met an event its transition table has no entry for."""


class AgiProtocolError(IvrError):
    """Asterisk answered an AGI command in a way the AGI protocol does not allow."""
