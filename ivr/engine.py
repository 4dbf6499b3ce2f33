"""The per-call flow state machine: ``step(event, now) -> commands``, no I/O.

A ``CallSession`` holds the ``Flow`` object it was created with, so a reloaded flow
applies to new calls only. Which event is acceptable in which waiting state is the
table ``_ACCEPTS`` (data); an event outside it raises ``EngineError`` naming both.
Where the flow goes next is ``Flow.transitions`` (data, compiled at load).
"""
from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
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
    RouteRequest,
    SayDigits,
    SayNumber,
    SetLanguage,
    SetVariable,
    SpeechRecognized,
    SurveyAnswered,
    Transfer,
    Voicemail,
)
from ivr.errors import EngineError
from ivr.expr import Secret
from ivr.flow import (
    BranchNode,
    CollectNode,
    Flow,
    HangupNode,
    HoursNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    RouteNode,
    SetNode,
    SpeechNode,
    SurveyNode,
    TransferNode,
    VoicemailNode,
)

__all__ = ["CallSession", "MAX_HOPS", "ANNOUNCE_PROMPTS", "announcement"]

MAX_HOPS = 200
# Recorded per language in the prompt catalog (no number synthesis needed).
ANNOUNCE_PROMPTS = ("queue-position-1", "queue-position-2", "queue-position-3",
                    "queue-position-4", "queue-position-5", "queue-position-many",
                    "wait-under-two-minutes", "wait-about-five-minutes",
                    "wait-over-ten-minutes")


def announcement(position: int, expected_wait_s: int) -> tuple[PromptItem, ...]:
    """Queue position and expected-wait prompts for a caller just queued."""
    pos = f"queue-position-{position}" if 1 <= position <= 5 else "queue-position-many"
    if expected_wait_s < 120:
        wait = "wait-under-two-minutes"
    elif expected_wait_s < 600:
        wait = "wait-about-five-minutes"
    else:
        wait = "wait-over-ten-minutes"
    return (PromptRef(pos), PromptRef(wait))
_DIGITS = re.compile(r"[0-9]{1,18}")
_KEYED = re.compile(r"[0-9*#]{0,64}")
_LOOKUP_KEY = re.compile(r"[a-z_][a-z0-9_]{0,31}")
_URL_VAR = re.compile(r"\$\{([a-z_][a-z0-9_]{0,31})\}")

# (waiting for, event type) pairs the machine accepts; anything else is an EngineError.
_ACCEPTS: frozenset[tuple[str, type]] = frozenset({
    ("digits", DigitsEntered), ("digits", InputTimedOut),
    ("speech", SpeechRecognized), ("speech", InputTimedOut),
    ("comment", RecordingFinished), ("comment", InputTimedOut),
    ("lookup", LookupCompleted), ("lookup", LookupFailed),
    ("callback", DigitsEntered), ("callback", InputTimedOut),
    ("route", RouteAccepted),
})


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (got a naive one)")
    return now


class CallSession:
    """One call's walk through one flow version."""

    def __init__(self, flow: Flow, *, call_id: str, caller: str,
                 variables: Mapping[str, Any] | None = None) -> None:
        self.flow = flow
        self.call_id = call_id
        self.caller = caller
        self.language = flow.default_language
        self.node: str | None = None
        self.waiting: str | None = None
        self.retries = 0
        self.finished = False
        self.outcome: str | None = None
        self.path: list[str] = []
        self.route_request: RouteRequest | None = None
        self.survey_score: int | None = None
        self._callback = False
        self._vars: dict[str, Any] = dict(flow.variables)
        self._vars.update(variables or {})
        self._vars.update(caller=caller, call_id=call_id, language=self.language,
                          flow=flow.name)
        self._vars.setdefault("intent", None)

    # ------------------------------------------------------------------ public

    @property
    def flow_version(self) -> str:
        return self.flow.version

    @property
    def intent(self) -> str | None:
        v = self._vars.get("intent")
        return v if isinstance(v, str) else None

    def variables(self) -> dict[str, Any]:
        """Flow variables with secure values masked (safe to log or print)."""
        return {k: (v.masked() if isinstance(v, Secret) else v)
                for k, v in sorted(self._vars.items())}

    def start(self, now: datetime, *, entry: str | None = None) -> list[Command]:
        """Enter the flow at ``entry`` (default: the flow's start node)."""
        _aware(now)
        if self.node is not None:
            raise EngineError("session already started")
        target = entry or self.flow.start
        if target not in self.flow.nodes:
            raise EngineError(f"entry node {target!r} is not in flow {self.flow.name!r}")
        out: list[Command] = []
        self._enter(target, now, out)
        return out

    def step(self, event: Event, now: datetime) -> list[Command]:
        """Feed one event; returns the commands it leads to."""
        _aware(now)
        if isinstance(event, CallerHungUp):
            if not self.finished:
                self._finish("caller-hangup")
            return []
        if self.finished:
            raise EngineError(f"event {type(event).__name__} after the call finished "
                              f"({self.outcome})")
        if self.waiting is None or (self.waiting, type(event)) not in _ACCEPTS:
            raise EngineError(f"no transition for state {self.waiting!r} at node "
                              f"{self.node!r} on event {type(event).__name__}")
        node = self.flow.nodes[str(self.node)]
        out: list[Command] = []
        handler: Callable[[Any, Any, datetime, list[Command]], None] = getattr(
            self, f"_on_{node.kind}")
        handler(node, event, now, out)
        return out

    # ----------------------------------------------------------------- helpers

    def _finish(self, outcome: str) -> None:
        self.finished = True
        self.waiting = None
        self.outcome = outcome

    def _items(self, items: tuple[PromptItem, ...]) -> tuple[PromptItem, ...]:
        """Resolve say_* variables to digits; secure or non-numeric values are never spoken."""
        out: list[PromptItem] = []
        for item in items:
            if isinstance(item, PromptRef):
                out.append(item)
                continue
            value = self._vars.get(item.value)
            if isinstance(value, Secret) or value is None or isinstance(value, bool):
                continue
            text = str(value)
            if _DIGITS.fullmatch(text):
                out.append(SayNumber(text) if isinstance(item, SayNumber) else SayDigits(text))
        return tuple(out)

    def _set(self, name: str, value: Any, out: list[Command]) -> None:
        self._vars[name] = value
        if isinstance(value, Secret):
            out.append(SetVariable(name, value.masked(), secure=True))
        else:
            out.append(SetVariable(name, "" if value is None else str(value)))

    def _go(self, node_id: str, outcome: str, now: datetime, out: list[Command]) -> None:
        target = self.flow.next_of(node_id, outcome)
        if target is None:
            raise EngineError(f"no transition for node {node_id!r} on outcome {outcome!r}")
        self._enter(target, now, out)

    def _enter(self, node_id: str, now: datetime, out: list[Command]) -> None:
        hops = 0
        current: str | None = node_id
        while current is not None:
            hops += 1
            if hops > MAX_HOPS:
                raise EngineError(f"flow {self.flow.name!r} passed {MAX_HOPS} nodes without "
                                  f"waiting for the caller (loop at {current!r})")
            node = self.flow.nodes[current]
            self.node, self.retries, self.waiting = current, 0, None
            self.path.append(current)
            outcome = self._run(node, now, out)
            if outcome is None:
                return
            target = self.flow.next_of(current, outcome)
            if target is None:
                raise EngineError(f"no transition for node {current!r} on outcome {outcome!r}")
            current = target

    def _run(self, node: Node, now: datetime, out: list[Command]) -> str | None:
        """Execute a node; an outcome to follow, or None when waiting/finished."""
        if isinstance(node, PlayNode):
            out.append(Play(self._items(node.prompts), self.language, node.barge_in))
            return "next"
        if isinstance(node, SetNode):
            for name, value in node.values:
                self._set(name, value, out)
            for name, expr in node.expressions:
                self._set(name, expr.evaluate(self._vars), out)
            return "next"
        if isinstance(node, BranchNode):
            for i, case in enumerate(node.cases):
                if case.truth(self._vars):
                    return f"case:{i}"
            return "default"
        if isinstance(node, HoursNode):
            state = node.calendar.state(now)
            if state == "holiday" and self.flow.next_of(node.id, "holiday") is None:
                state = "closed"
            self._set("hours", state, out)
            return state
        if isinstance(node, LookupNode):
            def sub(m: re.Match[str]) -> str:
                v = self._vars.get(m.group(1))
                raw = v.reveal() if isinstance(v, Secret) else ("" if v is None else str(v))
                return urllib.parse.quote(raw, safe="")
            self.waiting = "lookup"
            out.append(Lookup(node.id, _URL_VAR.sub(sub, node.url), node.timeout_s))
            return None
        if isinstance(node, (MenuNode, CollectNode, LanguageNode, SurveyNode)):
            self._ask_digits(node, None, out)
            return None
        if isinstance(node, SpeechNode):
            self._ask_speech(node, None, out)
            return None
        if isinstance(node, RouteNode):
            if node.callback is not None:
                self.waiting = "callback"
                out.append(CollectDigits(node.id, self._items(node.callback.prompts),
                                         self.language, 1, 1, "", node.callback.timeout_s, 0.0))
                return None
            self._route(node, out)
            return None
        if isinstance(node, TransferNode):
            self._final_prompts(node.prompts, out)
            out.append(Transfer(node.destination))
            self._finish("transfer")
            return None
        if isinstance(node, VoicemailNode):
            self._final_prompts(node.prompts, out)
            out.append(Voicemail(node.box))
            self._finish("voicemail")
            return None
        if isinstance(node, HangupNode):
            self._final_prompts(node.prompts, out)
            out.append(Hangup("flow"))
            self._finish("hangup")
            return None
        raise EngineError(f"node kind {node.kind!r} has no behaviour")

    def _final_prompts(self, prompts: tuple[PromptItem, ...], out: list[Command]) -> None:
        if prompts:
            out.append(Play(self._items(prompts), self.language, False))

    def _ask_digits(self, node: MenuNode | CollectNode | LanguageNode | SurveyNode,
                    reprompt: str | None, out: list[Command]) -> None:
        prompts = node.prompts if reprompt is None else (PromptRef(reprompt),) + node.prompts
        self.waiting = "digits"
        if isinstance(node, CollectNode):
            out.append(CollectDigits(node.id, self._items(prompts), self.language,
                                     node.min_length, node.max_length, node.terminator,
                                     node.retry.timeout_s, node.inter_digit_timeout_s,
                                     node.barge_in, node.secure))
        else:
            barge = node.barge_in if not isinstance(node, SurveyNode) else True
            out.append(CollectDigits(node.id, self._items(prompts), self.language, 1, 1, "",
                                     node.retry.timeout_s, 0.0, barge))

    def _ask_speech(self, node: SpeechNode, reprompt: str | None, out: list[Command]) -> None:
        prompts = node.prompts if reprompt is None else (PromptRef(reprompt),) + node.prompts
        self.waiting = "speech"
        out.append(RecordAudio(node.id, "speech", self._items(prompts), self.language,
                               node.max_seconds, node.silence_seconds))

    def _retry(self, node: MenuNode | CollectNode | LanguageNode | SurveyNode | SpeechNode,
               no_input: bool, now: datetime, out: list[Command]) -> None:
        self.retries += 1
        limit = node.max_retries if isinstance(node, SpeechNode) else node.retry.max_retries
        if self.retries > limit:
            self._go(node.id, "fallback" if isinstance(node, SpeechNode) else "exhausted",
                     now, out)
            return
        if isinstance(node, SpeechNode):
            self._ask_speech(node, node.no_input_prompt if no_input else node.no_match_prompt,
                             out)
        else:
            r = node.retry
            self._ask_digits(node, r.no_input_prompt if no_input else r.no_match_prompt, out)

    @staticmethod
    def _keyed(event: DigitsEntered) -> str | None:
        return event.digits if _KEYED.fullmatch(event.digits) else None

    # ----------------------------------------------------------- event handlers

    def _on_menu(self, node: MenuNode, event: Event, now: datetime, out: list[Command]) -> None:
        if isinstance(event, DigitsEntered):
            digits = self._keyed(event)
            if digits and digits[0] in node.options:
                self._go(node.id, f"option:{digits[0]}", now, out)
                return
            self._retry(node, not digits, now, out)
            return
        self._retry(node, True, now, out)

    def _on_language(self, node: LanguageNode, event: Event, now: datetime,
                     out: list[Command]) -> None:
        if isinstance(event, DigitsEntered):
            digits = self._keyed(event)
            if digits and digits[0] in node.options:
                self.language = node.options[digits[0]]
                out.append(SetLanguage(self.language))
                self._set("language", self.language, out)
                self._go(node.id, "next", now, out)
                return
            self._retry(node, not digits, now, out)
            return
        self._retry(node, True, now, out)

    def _on_collect(self, node: CollectNode, event: Event, now: datetime,
                    out: list[Command]) -> None:
        if isinstance(event, DigitsEntered):
            digits = self._keyed(event)
            if digits is not None and node.terminator:
                digits = digits.split(node.terminator, 1)[0]
            ok = (digits is not None and digits != ""
                  and node.min_length <= len(digits) <= node.max_length
                  and (node.pattern is None or re.fullmatch(node.pattern, digits) is not None))
            if ok and digits is not None:
                self._set(node.variable, Secret(digits) if node.secure else digits, out)
                self._go(node.id, "next", now, out)
                return
            self._retry(node, not digits, now, out)
            return
        self._retry(node, True, now, out)

    def _on_survey(self, node: SurveyNode, event: Event, now: datetime,
                   out: list[Command]) -> None:
        if self.waiting == "comment":
            path = event.path if isinstance(event, RecordingFinished) else ""
            self._survey_done(node, path, now, out)
            return
        if isinstance(event, DigitsEntered):
            digits = self._keyed(event)
            if digits and digits[0] in "12345":
                self.survey_score = int(digits[0])
                self._set("survey_score", self.survey_score, out)
                if node.comment_prompts:
                    self.waiting = "comment"
                    out.append(RecordAudio(node.id, "comment", self._items(node.comment_prompts),
                                           self.language, node.comment_max_seconds, 3.0))
                    return
                self._survey_done(node, "", now, out)
                return
            self._retry(node, not digits, now, out)
            return
        self._retry(node, True, now, out)

    def _survey_done(self, node: SurveyNode, path: str, now: datetime,
                     out: list[Command]) -> None:
        out.append(SurveyAnswered(int(self.survey_score or 0), path))
        if node.thanks_prompt:
            out.append(Play((PromptRef(node.thanks_prompt),), self.language, False))
        self._go(node.id, "next", now, out)

    def _on_speech(self, node: SpeechNode, event: Event, now: datetime,
                   out: list[Command]) -> None:
        if isinstance(event, SpeechRecognized):
            if (event.intent in node.intents and event.confidence >= node.threshold):
                self._set(node.variable, event.intent, out)
                if node.variable != "intent":
                    self._set("intent", event.intent, out)
                self._go(node.id, f"intent:{event.intent}", now, out)
                return
            # Low confidence or an intent this node does not offer: ask again, then DTMF.
            self._retry(node, event.intent is None and not event.transcript, now, out)
            return
        self._retry(node, True, now, out)

    def _on_lookup(self, node: LookupNode, event: Event, now: datetime,
                   out: list[Command]) -> None:
        if isinstance(event, LookupCompleted):
            for key in sorted(event.values):
                if _LOOKUP_KEY.fullmatch(key):
                    self._set(f"{node.prefix}{key}"[:32], str(event.values[key])[:200], out)
            self._go(node.id, "next", now, out)
            return
        self._set(f"{node.prefix}error", "failed", out)
        self._go(node.id, "error", now, out)

    def _on_route(self, node: RouteNode, event: Event, now: datetime,
                  out: list[Command]) -> None:
        if self.waiting == "callback":
            offer = node.callback
            accepted = (isinstance(event, DigitsEntered) and offer is not None
                        and event.digits[:1] == offer.accept_digit)
            self._callback = accepted
            self._route(node, out)
            return
        assert isinstance(event, RouteAccepted)
        if self._callback:
            offer = node.callback
            if offer is not None and offer.confirm_prompt:
                out.append(Play((PromptRef(offer.confirm_prompt),), self.language, False))
            out.append(ReturnToDialplan("callback"))
            self._finish("callback")
            return
        if node.announce_position and int(event.position) > 0:
            out.append(Play(announcement(int(event.position), int(event.expected_wait_s)),
                            self.language, False))
        out.append(ReturnToDialplan("routed"))
        self._finish("routed")

    def _route(self, node: RouteNode, out: list[Command]) -> None:
        intent = node.intent or self.intent or node.queue
        self._vars["intent"] = intent
        data: dict[str, str] = {}
        for name in node.data:
            v = self._vars.get(name)
            if v is not None:
                data[name] = v.masked() if isinstance(v, Secret) else str(v)
        priority = node.priority
        for when, rule_priority in node.priority_rules:
            if when.truth(self._vars):
                priority = rule_priority
                break
        self.route_request = RouteRequest(
            call_id=self.call_id, caller=self.caller, queue=node.queue, skills=node.skills,
            priority=priority, intent=intent, language=self.language, data=data,
            callback=self._callback, flow=self.flow.name, flow_version=self.flow.version,
            announce_every_s=node.announce_every_s)
        self.waiting = "route"
        out.append(Route(self.route_request,
                         needs_position=node.announce_position and not self._callback))

    def _on_play(self, node: Node, event: Event, now: datetime, out: list[Command]) -> None:
        raise EngineError(f"node {node.id!r} ({node.kind}) waits for nothing; got "
                          f"{type(event).__name__}")

    _on_set = _on_branch = _on_hours = _on_transfer = _on_voicemail = _on_hangup = _on_play
