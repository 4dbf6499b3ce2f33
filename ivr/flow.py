"""The compiled, immutable form of a flow: nodes plus a transition table as data.

``Flow.transitions`` maps ``(node_id, outcome)`` to the next node id. Outcomes are
``next``, ``option:<digit>``, ``exhausted``, ``open``/``closed``/``holiday``,
``error``, ``case:<i>``/``default``, ``intent:<name>``, ``fallback``. The engine and
the graph command read the same table; a missing pair is an ``EngineError``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from ivr.commands import PromptItem, PromptRef
from ivr.expr import Expr

__all__ = [
    "Flow", "Calendar", "SpeechModel", "CallbackOffer", "Node", "PlayNode", "MenuNode",
    "CollectNode", "LanguageNode", "HoursNode", "LookupNode", "SetNode", "BranchNode",
    "SpeechNode", "RouteNode", "SurveyNode", "TransferNode", "VoicemailNode", "HangupNode",
    "INPUT_KINDS", "TERMINAL_KINDS", "prompt_ids",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Calendar:
    """Weekly opening windows and holidays, evaluated in ``timezone`` (DST included)."""

    name: str
    timezone: str
    weekly: Mapping[str, tuple[tuple[time, time], ...]]
    holidays: frozenset[date]

    def state(self, now: datetime) -> str:
        """``open``, ``closed`` or ``holiday`` at ``now`` (an aware datetime)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be an aware datetime (got a naive one)")
        local = now.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return "holiday"
        t = local.time().replace(tzinfo=None)
        for start, end in self.weekly.get(WEEKDAYS[local.weekday()], ()):
            if start <= t < end:
                return "open"
        return "closed"


@dataclass(frozen=True, slots=True)
class SpeechModel:
    """How a flow recognises intents: keyword spotting or a JSGF grammar built from phrases."""

    mode: str
    threshold: float
    intents: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class CallbackOffer:
    prompts: tuple[PromptItem, ...]
    accept_digit: str
    timeout_s: float
    confirm_prompt: str | None


@dataclass(frozen=True, slots=True)
class PlayNode:
    id: str
    prompts: tuple[PromptItem, ...]
    barge_in: bool
    kind: str = "play"


@dataclass(frozen=True, slots=True)
class _Retry:
    timeout_s: float
    max_retries: int
    no_input_prompt: str | None
    no_match_prompt: str | None


@dataclass(frozen=True, slots=True)
class MenuNode:
    id: str
    prompts: tuple[PromptItem, ...]
    options: tuple[str, ...]
    barge_in: bool
    retry: _Retry
    kind: str = "menu"


@dataclass(frozen=True, slots=True)
class CollectNode:
    id: str
    prompts: tuple[PromptItem, ...]
    variable: str
    min_length: int
    max_length: int
    terminator: str
    inter_digit_timeout_s: float
    pattern: str | None
    secure: bool
    barge_in: bool
    retry: _Retry
    kind: str = "collect"


@dataclass(frozen=True, slots=True)
class LanguageNode:
    id: str
    prompts: tuple[PromptItem, ...]
    options: Mapping[str, str]
    barge_in: bool
    retry: _Retry
    kind: str = "language"


@dataclass(frozen=True, slots=True)
class HoursNode:
    id: str
    calendar: Calendar
    kind: str = "hours"


@dataclass(frozen=True, slots=True)
class LookupNode:
    id: str
    url: str
    timeout_s: float
    prefix: str
    kind: str = "lookup"


@dataclass(frozen=True, slots=True)
class SetNode:
    id: str
    values: tuple[tuple[str, object], ...]
    expressions: tuple[tuple[str, Expr], ...]
    kind: str = "set"


@dataclass(frozen=True, slots=True)
class BranchNode:
    id: str
    cases: tuple[Expr, ...]
    kind: str = "branch"


@dataclass(frozen=True, slots=True)
class SpeechNode:
    id: str
    prompts: tuple[PromptItem, ...]
    intents: tuple[str, ...]
    variable: str
    threshold: float
    max_seconds: float
    silence_seconds: float
    max_retries: int
    no_input_prompt: str | None
    no_match_prompt: str | None
    kind: str = "speech"


@dataclass(frozen=True, slots=True)
class RouteNode:
    id: str
    queue: str
    skills: tuple[str, ...]
    priority: int
    intent: str | None
    data: tuple[str, ...]
    announce_position: bool
    callback: CallbackOffer | None
    kind: str = "route"
    # (when, priority): the first rule true for the call's variables sets the priority
    priority_rules: tuple[tuple[Expr, int], ...] = ()
    announce_every_s: int = 0  # on hold: position and expected wait this often (0: never)


@dataclass(frozen=True, slots=True)
class SurveyNode:
    id: str
    prompts: tuple[PromptItem, ...]
    comment_prompts: tuple[PromptItem, ...]
    comment_max_seconds: float
    thanks_prompt: str | None
    retry: _Retry
    kind: str = "survey"


@dataclass(frozen=True, slots=True)
class TransferNode:
    id: str
    destination: str
    prompts: tuple[PromptItem, ...]
    kind: str = "transfer"


@dataclass(frozen=True, slots=True)
class VoicemailNode:
    id: str
    box: str
    prompts: tuple[PromptItem, ...]
    kind: str = "voicemail"


@dataclass(frozen=True, slots=True)
class HangupNode:
    id: str
    prompts: tuple[PromptItem, ...]
    kind: str = "hangup"


Node = (PlayNode | MenuNode | CollectNode | LanguageNode | HoursNode | LookupNode | SetNode
        | BranchNode | SpeechNode | RouteNode | SurveyNode | TransferNode | VoicemailNode
        | HangupNode)

INPUT_KINDS = frozenset({"menu", "collect", "language", "speech", "survey"})
TERMINAL_KINDS = frozenset({"route", "transfer", "voicemail", "hangup"})


@dataclass(frozen=True, slots=True)
class Flow:
    """A validated flow. ``version`` is the content hash; sessions keep the object they got."""

    name: str
    version: str
    path: str
    languages: tuple[str, ...]
    default_language: str
    start: str
    post_call: str | None
    nodes: Mapping[str, Node]
    transitions: Mapping[tuple[str, str], str]
    variables: Mapping[str, object] = field(default_factory=dict)
    record_variables: tuple[str, ...] = ()
    speech: SpeechModel | None = None

    def next_of(self, node_id: str, outcome: str) -> str | None:
        return self.transitions.get((node_id, outcome))

    def edges(self) -> list[tuple[str, str, str]]:
        """``(from, outcome, to)`` sorted, for graphs and reachability."""
        return sorted((a, o, b) for (a, o), b in self.transitions.items())


def prompt_ids(items: tuple[PromptItem, ...]) -> list[str]:
    return [i.prompt_id for i in items if isinstance(i, PromptRef)]
