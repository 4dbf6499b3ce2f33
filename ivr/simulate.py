"""Offline simulation: run a flow with the engine and scripted caller input.

Input tokens (comma-separated on the command line):

- ``1``, ``12345678#``, ``#``  keys pressed for the current menu/collect;
- ``timeout``                  no key / nothing said before the timeout;
- ``say:<intent>[@<confidence>]`` the recogniser's result for a speech node
  (``say:?`` = speech nothing matched, confidence defaults to 1.0);
- ``lookup:key=value;key=value`` / ``lookup:fail`` the answer of a lookup node
  (without one, the lookup fails, as if the CRM were unreachable);
- ``hangup``                   the caller hangs up.

Route requests are accepted at ``position``/``wait_s``. Nothing touches the network.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.commands import (
    CallerHungUp,
    CollectDigits,
    Command,
    DigitsEntered,
    Event,
    Hangup,
    InputTimedOut,
    Lookup,
    LookupCompleted,
    LookupFailed,
    Play,
    PromptItem,
    PromptRef,
    RecordAudio,
    RecordingFinished,
    ReturnToDialplan,
    Route,
    RouteAccepted,
    SayDigits,
    SetLanguage,
    SetVariable,
    SpeechRecognized,
    SurveyAnswered,
    Transfer,
    Voicemail,
)
from ivr.engine import CallSession
from ivr.errors import IvrError
from ivr.flow import Flow

__all__ = ["simulate", "Transcript", "SimulationInputError", "parse_inputs", "render"]

_DIGITS = re.compile(r"[0-9*#]{1,64}")
_SAY = re.compile(r"say:([a-z?][a-z0-9_]*)(?:@([0-9.]+))?")


class SimulationInputError(IvrError):
    """An input token is not in the simulation's input language."""


@dataclass
class Transcript:
    flow: str
    version: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None
    route: dict[str, Any] | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    waiting_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "version": self.version, "steps": self.steps,
                "outcome": self.outcome, "route": self.route, "variables": self.variables,
                "waiting_at": self.waiting_at}


def parse_inputs(text: str) -> list[str]:
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    for t in tokens:
        if not (_DIGITS.fullmatch(t) or t in ("timeout", "hangup") or _SAY.fullmatch(t)
                or t.startswith("lookup:")):
            raise SimulationInputError(
                f"input {t!r} not understood (use digits, timeout, say:<intent>[@conf], "
                "lookup:k=v;k=v, lookup:fail, hangup)")
    return tokens


def _items(items: tuple[PromptItem, ...]) -> list[str]:
    out = []
    for i in items:
        if isinstance(i, PromptRef):
            out.append(i.prompt_id)
        elif isinstance(i, SayDigits):
            out.append(f"<digits {i.value}>")
        else:
            out.append(f"<number {i.value}>")
    return out


def _event_for(cmd: Command, token: str | None, secure: bool,
               step: Callable[[dict[str, Any]], None]) -> Event | None:
    if token is None:
        return None
    if token == "hangup":
        step({"kind": "input", "value": "hangup"})
        return CallerHungUp()
    if isinstance(cmd, CollectDigits):
        if token == "timeout":
            step({"kind": "input", "value": "timeout"})
            return InputTimedOut()
        if not _DIGITS.fullmatch(token):
            raise SimulationInputError(f"node {cmd.node!r} waits for keys, got {token!r}")
        digits = token
        if cmd.terminator and cmd.terminator in digits:
            digits = digits.split(cmd.terminator, 1)[0]
        digits = digits[: max(cmd.max_digits, 1)]
        shown = f"[secure: {len(digits)} digits]" if secure else token
        step({"kind": "input", "value": shown})
        return DigitsEntered(digits)
    if isinstance(cmd, RecordAudio):
        if token == "timeout":
            step({"kind": "input", "value": "silence"})
            return InputTimedOut()
        if cmd.purpose == "comment":
            step({"kind": "input", "value": f"comment ({token})"})
            return RecordingFinished("simulated-comment.wav", 3.0)
        m = _SAY.fullmatch(token)
        if not m:
            raise SimulationInputError(f"node {cmd.node!r} waits for speech "
                                       f"(say:<intent>), got {token!r}")
        intent = None if m.group(1) == "?" else m.group(1)
        conf = float(m.group(2)) if m.group(2) else (1.0 if intent else 0.0)
        step({"kind": "input", "value": f"said {intent or 'something unrecognised'} "
              f"(confidence {conf:.2f})"})
        return SpeechRecognized(intent, conf, intent or "mumble")
    return None


def simulate(flow: Flow, inputs: Iterator[str] | list[str], *, now: datetime,
             caller: str = "+15550100", call_id: str = "sim-1", position: int = 1,
             wait_s: int = 60, entry: str | None = None,
             on_step: Callable[[dict[str, Any]], None] | None = None) -> Transcript:
    """Run ``flow`` with scripted input; stops when the flow ends or input runs out."""
    source = iter(inputs)
    t = Transcript(flow.name, flow.version)
    session = CallSession(flow, call_id=call_id, caller=caller)

    def step(entry_: dict[str, Any]) -> None:
        entry_ = {"n": len(t.steps) + 1, **entry_}
        t.steps.append(entry_)
        if on_step is not None:
            on_step(entry_)

    commands = session.start(now, entry=entry)
    while True:
        awaiting: Command | None = None
        for cmd in commands:
            if isinstance(cmd, Play):
                step({"kind": "play", "language": cmd.language, "prompts": _items(cmd.items),
                      "barge_in": cmd.barge_in})
            elif isinstance(cmd, SetLanguage):
                step({"kind": "language", "language": cmd.language})
            elif isinstance(cmd, SetVariable):
                step({"kind": "variable", "name": cmd.name, "value": cmd.value})
            elif isinstance(cmd, CollectDigits):
                step({"kind": "collect", "node": cmd.node, "language": cmd.language,
                      "prompts": _items(cmd.prompts), "min": cmd.min_digits,
                      "max": cmd.max_digits, "timeout_s": cmd.first_digit_timeout_s,
                      "secure": cmd.secure})
                awaiting = cmd
            elif isinstance(cmd, RecordAudio):
                step({"kind": "record", "node": cmd.node, "purpose": cmd.purpose,
                      "language": cmd.language, "prompts": _items(cmd.prompts),
                      "max_seconds": cmd.max_seconds})
                awaiting = cmd
            elif isinstance(cmd, Lookup):
                step({"kind": "lookup", "node": cmd.node, "timeout_s": cmd.timeout_s})
                awaiting = cmd
            elif isinstance(cmd, Route):
                r = cmd.request
                t.route = {"queue": r.queue, "skills": list(r.skills), "priority": r.priority,
                           "intent": r.intent, "language": r.language, "caller": r.caller,
                           "data": dict(r.data), "callback": r.callback}
                step({"kind": "route", **t.route})
                awaiting = cmd
            elif isinstance(cmd, SurveyAnswered):
                step({"kind": "survey", "score": cmd.score, "comment": bool(cmd.comment_path)})
            elif isinstance(cmd, ReturnToDialplan):
                step({"kind": "end", "outcome": cmd.outcome})
            elif isinstance(cmd, Transfer):
                step({"kind": "end", "outcome": "transfer", "destination": cmd.destination})
            elif isinstance(cmd, Voicemail):
                step({"kind": "end", "outcome": "voicemail", "box": cmd.box})
            elif isinstance(cmd, Hangup):
                step({"kind": "end", "outcome": "hangup"})
        if session.finished or awaiting is None:
            break
        event: Event | None
        if isinstance(awaiting, Route):
            step({"kind": "queued", "position": position, "expected_wait_s": wait_s})
            event = RouteAccepted(position, wait_s)
        elif isinstance(awaiting, Lookup):
            token = next(source, None)
            if token is not None and token.startswith("lookup:"):
                body = token[len("lookup:"):]
                if body == "fail":
                    step({"kind": "input", "value": "lookup failed"})
                    event = LookupFailed("simulated")
                else:
                    values = dict(kv.split("=", 1) for kv in body.split(";") if "=" in kv)
                    step({"kind": "input", "value": f"lookup answered {values}"})
                    event = LookupCompleted(values)
            else:
                step({"kind": "input", "value": "lookup failed (not simulated)"})
                event = LookupFailed("not simulated")
                source = _prepend(token, source)
        else:
            secure = isinstance(awaiting, CollectDigits) and awaiting.secure
            event = _event_for(awaiting, next(source, None), secure, step)
        if event is None:
            t.waiting_at = session.node
            step({"kind": "waiting", "node": session.node})
            break
        commands = session.step(event, now)
        if isinstance(event, CallerHungUp):
            step({"kind": "end", "outcome": "caller-hangup"})
            break
    t.outcome = session.outcome
    t.variables = session.variables()
    return t


def _prepend(token: str | None, rest: Iterator[str]) -> Iterator[str]:
    if token is not None:
        yield token
    yield from rest


def render(entry: dict[str, Any]) -> str:
    """One transcript step as a line for people."""
    k = entry["kind"]
    if k == "play":
        return f"play      [{entry['language']}] {', '.join(entry['prompts'])}"
    if k == "collect":
        prompts = ", ".join(entry["prompts"])
        what = "1 key" if entry["max"] == 1 else f"{entry['min']}-{entry['max']} keys"
        sec = " (secure)" if entry["secure"] else ""
        return f"ask       [{entry['language']}] {prompts} -> {what}{sec} at {entry['node']}"
    if k == "record":
        return (f"listen    [{entry['language']}] {', '.join(entry['prompts'])} -> "
                f"{entry['purpose']} at {entry['node']}")
    if k == "input":
        return f"caller    {entry['value']}"
    if k == "language":
        return f"language  {entry['language']}"
    if k == "variable":
        return f"set       {entry['name']} = {entry['value']}"
    if k == "lookup":
        return f"lookup    at {entry['node']}"
    if k == "route":
        return (f"route     queue={entry['queue']} intent={entry['intent']} "
                f"language={entry['language']} caller={entry['caller']} "
                f"priority={entry['priority']} callback={entry['callback']} data={entry['data']}")
    if k == "queued":
        return f"queued    position {entry['position']}, expected wait {entry['expected_wait_s']} s"
    if k == "survey":
        return f"survey    score {entry['score']}, comment {'yes' if entry['comment'] else 'no'}"
    if k == "end":
        extra = entry.get("destination") or entry.get("box") or ""
        return f"end       {entry['outcome']} {extra}".rstrip()
    if k == "waiting":
        return f"waiting   at {entry['node']} (no more input)"
    return str(entry)
