"""What the flow engine asks the adapter to do (imperative) and what it is told back (past tense).

The engine (``ivr.engine``) never touches a socket, file or clock: it returns these
commands and the adapter (``voice.agi_runner`` on real calls, ``ivr.simulate`` offline)
performs them and feeds the matching event back into ``CallSession.step``.

A batch of commands returned by ``start``/``step`` ends either with exactly one
*awaiting* command (``CollectDigits``, ``RecordAudio``, ``Lookup``, ``Route``) whose
answer is the next event, or with one *final* command (``ReturnToDialplan``,
``Transfer``, ``Voicemail``, ``Hangup``) after which the session is finished.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "PromptRef", "SayNumber", "SayDigits", "PromptItem",
    "Play", "SetLanguage", "SetVariable", "CollectDigits", "RecordAudio", "Lookup",
    "RouteRequest", "Route", "SurveyAnswered", "ReturnToDialplan", "Transfer", "Voicemail",
    "Hangup", "Command", "AWAITING_COMMANDS", "FINAL_COMMANDS",
    "DigitsEntered", "InputTimedOut", "SpeechRecognized", "RecordingFinished",
    "LookupCompleted", "LookupFailed", "RouteAccepted", "CallerHungUp", "Event",
]

# ----------------------------------------------------------------- prompt items


@dataclass(frozen=True, slots=True)
class PromptRef:
    """A recorded prompt from the catalog: ``<lang>/homeline/<prompt_id>`` in Asterisk."""

    prompt_id: str


@dataclass(frozen=True, slots=True)
class SayNumber:
    """A number spoken by Asterisk (SAY NUMBER); ``value`` is digits only."""

    value: str


@dataclass(frozen=True, slots=True)
class SayDigits:
    """Digits spoken one by one (SAY DIGITS); ``value`` is digits only."""

    value: str


PromptItem = PromptRef | SayNumber | SayDigits

# --------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Play:
    """Play prompts; with ``barge_in`` a DTMF digit stops playback (kept for the next input)."""

    items: tuple[PromptItem, ...]
    language: str
    barge_in: bool = False


@dataclass(frozen=True, slots=True)
class SetLanguage:
    """Switch the caller's language: later prompts and the route request use it."""

    language: str


@dataclass(frozen=True, slots=True)
class SetVariable:
    """A flow variable changed (``value`` is already masked when the variable is secure)."""

    name: str
    value: str
    secure: bool = False


@dataclass(frozen=True, slots=True)
class CollectDigits:
    """Play ``prompts`` (interruptible when ``barge_in``) then collect DTMF digits.

    Answered by ``DigitsEntered`` (possibly too short/invalid: the engine judges) or
    ``InputTimedOut`` when not a single digit came within ``first_digit_timeout_s``.
    ``secure`` digits must never be logged, echoed in VERBOSE or stored in a channel
    variable by the adapter.
    """

    node: str
    prompts: tuple[PromptItem, ...]
    language: str
    min_digits: int
    max_digits: int
    terminator: str
    first_digit_timeout_s: float
    inter_digit_timeout_s: float
    barge_in: bool = True
    secure: bool = False


@dataclass(frozen=True, slots=True)
class RecordAudio:
    """Play ``prompts`` then record what the caller says.

    ``purpose="speech"``: the adapter recognises the recording with the flow's speech
    model and answers ``SpeechRecognized``. ``purpose="comment"``: it answers
    ``RecordingFinished``.
    """

    node: str
    purpose: Literal["speech", "comment"]
    prompts: tuple[PromptItem, ...]
    language: str
    max_seconds: float
    silence_seconds: float
    beep: bool = True


@dataclass(frozen=True, slots=True)
class Lookup:
    """Caller-data dip over HTTP GET; answered by ``LookupCompleted``/``LookupFailed``.

    ``url`` may carry secure values (already URL-encoded); never log it.
    """

    node: str
    url: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What the router needs to queue the call. ``data`` never holds secure values."""

    call_id: str
    caller: str
    queue: str
    skills: tuple[str, ...]
    priority: int
    intent: str
    language: str
    data: Mapping[str, str] = field(default_factory=dict)
    callback: bool = False
    flow: str = ""
    flow_version: str = ""
    announce_every_s: int = 0  # on hold, say the position and expected wait this often


@dataclass(frozen=True, slots=True)
class Route:
    """Hand the call to the router; answered by ``RouteAccepted``.

    ``needs_position``: the flow says the caller's place in line next (the route
    node's ``announce_position``), so the answer must carry the router's position
    and expected wait. Otherwise any answer will do, and the voice adapter does
    not hold the caller while the router thinks (under load that wait was the
    longest part of leaving the IVR)."""

    request: RouteRequest
    needs_position: bool = True


@dataclass(frozen=True, slots=True)
class SurveyAnswered:
    """The post-call survey is complete (score 1-5, optional comment recording)."""

    score: int
    comment_path: str = ""


@dataclass(frozen=True, slots=True)
class ReturnToDialplan:
    """Final: leave the AGI; the dialplan continues (hold music while queued, etc.)."""

    outcome: Literal["routed", "callback", "survey"]


@dataclass(frozen=True, slots=True)
class Transfer:
    """Final: the dialplan transfers the caller to ``destination`` (an extension)."""

    destination: str


@dataclass(frozen=True, slots=True)
class Voicemail:
    """Final: the dialplan sends the caller to voicemail box ``box``."""

    box: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """Final: hang up the call."""

    reason: str = "flow"


Command = (Play | SetLanguage | SetVariable | CollectDigits | RecordAudio | Lookup | Route
           | SurveyAnswered | ReturnToDialplan | Transfer | Voicemail | Hangup)

AWAITING_COMMANDS = (CollectDigits, RecordAudio, Lookup, Route)
FINAL_COMMANDS = (ReturnToDialplan, Transfer, Voicemail, Hangup)

# ----------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class DigitsEntered:
    """The caller keyed ``digits`` (terminator stripped) in answer to ``CollectDigits``."""

    digits: str


@dataclass(frozen=True, slots=True)
class InputTimedOut:
    """No digit (or no speech) came before the timeout."""


@dataclass(frozen=True, slots=True)
class SpeechRecognized:
    """Result of recognising a ``RecordAudio(purpose="speech")`` recording.

    ``intent`` is None when nothing matched; ``transcript`` is empty when the caller
    said nothing.
    """

    intent: str | None
    confidence: float
    transcript: str = ""


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """A ``RecordAudio(purpose="comment")`` recording ended; ``path`` on the host."""

    path: str
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LookupCompleted:
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LookupFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class RouteAccepted:
    """The router queued the call: ``position`` in queue, ``expected_wait_s``."""

    position: int = 0
    expected_wait_s: int = 0


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller hung up; the session finishes without further commands."""


Event = (DigitsEntered | InputTimedOut | SpeechRecognized | RecordingFinished | LookupCompleted
         | LookupFailed | RouteAccepted | CallerHungUp)
