"""The ivr package's exception root and its children.

Expected outcomes (a caller hang-up, a timeout, an invalid digit) are events,
never exceptions; these are for invalid admin files, protocol violations and bugs.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IvrError", "Problem", "FlowInvalid", "EngineError", "AgiProtocolError"]


class IvrError(Exception):
    """Root of every exception raised by the ivr package."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a flow file, printed as ``file:node:key: message [code]``."""

    file: str
    node: str
    key: str
    message: str
    code: str

    def __str__(self) -> str:
        return f"{self.file}:{self.node}:{self.key}: {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "node": self.node, "key": self.key,
                "message": self.message, "code": self.code}


class FlowInvalid(IvrError):
    """A flow file failed validation; nothing of it was loaded."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        head = "; ".join(str(p) for p in self.problems[:3])
        more = f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"{len(self.problems)} problem(s): {head}{more}")


class EngineError(IvrError):
    """The state machine met an event its transition table has no entry for."""


class AgiProtocolError(IvrError):
    """Asterisk answered an AGI command in a way the AGI protocol does not allow."""
