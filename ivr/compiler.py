"""Turning a schema-valid flow document into an immutable ``Flow``.

``raw_edges`` is tolerant (used by the checks on documents that may still be broken);
``compile_flow`` assumes every check passed.
"""
from __future__ import annotations

import hashlib
from datetime import date, time
from typing import Any

from ivr.commands import PromptItem, PromptRef, SayDigits, SayNumber
from ivr.expr import parse_expr
from ivr.flow import (
    BranchNode,
    Calendar,
    CallbackOffer,
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
    SpeechModel,
    SpeechNode,
    SurveyNode,
    TransferNode,
    VoicemailNode,
    _Retry,
)

__all__ = ["raw_edges", "compile_flow", "prompt_items", "DEFAULTS"]

DEFAULTS: dict[str, Any] = {
    "timeout": 5.0, "max_retries": 2, "inter_digit_timeout": 3.0, "terminator": "#",
    "speech_threshold": 0.5, "speech_max_seconds": 6.0, "speech_silence_seconds": 1.5,
    "comment_max_seconds": 30.0, "priority": 0,
}


def raw_edges(node_id: str, raw: Any) -> list[tuple[str, str, str]]:
    """``(outcome, target, key)`` of one raw node; ignores values of the wrong type."""
    if not isinstance(raw, dict):
        return []
    out: list[tuple[str, str, str]] = []
    kind = raw.get("type")

    def add(outcome: str, key: str) -> None:
        target = raw.get(key)
        if isinstance(target, str):
            out.append((outcome, target, key))

    if kind in ("play", "collect", "language", "lookup", "set", "survey"):
        add("next", "next")
    if kind in ("menu", "collect", "language", "survey"):
        add("exhausted", "exhausted")
    if kind == "menu" and isinstance(raw.get("options"), dict):
        for digit, target in raw["options"].items():
            if isinstance(target, str):
                out.append((f"option:{digit}", target, f"options.{digit}"))
    if kind == "hours":
        for k in ("open", "closed", "holiday"):
            add(k, k)
    if kind == "lookup":
        add("error", "on_error")
    if kind == "branch":
        cases = raw.get("cases")
        if isinstance(cases, list):
            for i, case in enumerate(cases):
                if isinstance(case, dict) and isinstance(case.get("next"), str):
                    out.append((f"case:{i}", case["next"], f"cases.{i}.next"))
        add("default", "default")
    if kind == "speech":
        if isinstance(raw.get("intents"), dict):
            for intent, target in raw["intents"].items():
                if isinstance(target, str):
                    out.append((f"intent:{intent}", target, f"intents.{intent}"))
        add("fallback", "fallback")
    return out


def prompt_items(value: Any) -> tuple[PromptItem, ...]:
    items = value if isinstance(value, list) else [value] if value is not None else []
    out: list[PromptItem] = []
    for item in items:
        if isinstance(item, str):
            out.append(PromptRef(item))
        elif isinstance(item, dict) and "say_number" in item:
            out.append(SayNumber(str(item["say_number"])))
        elif isinstance(item, dict) and "say_digits" in item:
            out.append(SayDigits(str(item["say_digits"])))
    return tuple(out)


def _retry(raw: dict[str, Any]) -> _Retry:
    return _Retry(float(raw.get("timeout", DEFAULTS["timeout"])),
                  int(raw.get("max_retries", DEFAULTS["max_retries"])),
                  raw.get("no_input_prompt"), raw.get("no_match_prompt"))


def _hhmm(text: str) -> time:
    h, m = (int(x) for x in text.split(":"))
    return time.max if h == 24 else time(h, m)


def _calendar(name: str, raw: dict[str, Any]) -> Calendar:
    weekly = {day: tuple((_hhmm(w.split("-")[0]), _hhmm(w.split("-")[1])) for w in windows)
              for day, windows in raw.get("weekly", {}).items()}
    holidays = frozenset(date.fromisoformat(d) for d in raw.get("holidays", []))
    return Calendar(name, raw["timezone"], weekly, holidays)


def _node(node_id: str, raw: dict[str, Any], calendars: dict[str, Calendar]) -> Node:
    kind = raw["type"]
    barge = bool(raw.get("barge_in", kind != "play"))
    if kind == "play":
        return PlayNode(node_id, prompt_items(raw["prompts"]), barge)
    if kind == "menu":
        return MenuNode(node_id, prompt_items(raw["prompt"]), tuple(sorted(raw["options"])),
                        barge, _retry(raw))
    if kind == "collect":
        max_len = int(raw.get("max_length", 16))
        return CollectNode(node_id, prompt_items(raw["prompt"]), raw["variable"],
                           int(raw.get("min_length", 1)), max_len,
                           raw.get("terminator", DEFAULTS["terminator"]),
                           float(raw.get("inter_digit_timeout", DEFAULTS["inter_digit_timeout"])),
                           raw.get("pattern"), bool(raw.get("secure", False)), barge, _retry(raw))
    if kind == "language":
        return LanguageNode(node_id, prompt_items(raw["prompt"]), dict(raw["options"]), barge,
                            _retry(raw))
    if kind == "hours":
        return HoursNode(node_id, calendars[raw["calendar"]])
    if kind == "lookup":
        return LookupNode(node_id, raw["url"], float(raw.get("timeout", 2.0)),
                          raw.get("prefix", "lookup_"))
    if kind == "set":
        return SetNode(node_id, tuple(sorted(raw.get("values", {}).items())),
                       tuple((k, parse_expr(v)) for k, v in sorted(raw.get("expressions", {})
                                                                   .items())))
    if kind == "branch":
        return BranchNode(node_id, tuple(parse_expr(c["when"]) for c in raw["cases"]))
    if kind == "speech":
        return SpeechNode(node_id, prompt_items(raw["prompt"]), tuple(sorted(raw["intents"])),
                          raw.get("variable", "intent"),
                          float(raw.get("threshold", DEFAULTS["speech_threshold"])),
                          float(raw.get("max_seconds", DEFAULTS["speech_max_seconds"])),
                          float(raw.get("silence_seconds", DEFAULTS["speech_silence_seconds"])),
                          int(raw.get("max_retries", DEFAULTS["max_retries"])),
                          raw.get("no_input_prompt"), raw.get("no_match_prompt"))
    if kind == "route":
        cb = raw.get("callback_offer")
        offer = (CallbackOffer(prompt_items(cb["prompt"]), cb["accept_digit"],
                               float(cb.get("timeout", DEFAULTS["timeout"])),
                               cb.get("confirm_prompt")) if cb else None)
        return RouteNode(node_id, raw["queue"], tuple(raw.get("skills", [])),
                         int(raw.get("priority", DEFAULTS["priority"])), raw.get("intent"),
                         tuple(raw.get("data", [])), bool(raw.get("announce_position", False)),
                         offer, priority_rules=tuple(
                             (parse_expr(r["when"]), int(r["priority"]))
                             for r in raw.get("priority_rules", ())),
                         announce_every_s=int(raw.get("announce_every_s", 0)))
    if kind == "survey":
        return SurveyNode(node_id, prompt_items(raw["prompt"]),
                          prompt_items(raw.get("comment_prompt")),
                          float(raw.get("comment_max_seconds", DEFAULTS["comment_max_seconds"])),
                          raw.get("thanks_prompt"), _retry(raw))
    if kind == "transfer":
        return TransferNode(node_id, raw["destination"], prompt_items(raw.get("prompt")))
    if kind == "voicemail":
        return VoicemailNode(node_id, raw["box"], prompt_items(raw.get("prompt")))
    return HangupNode(node_id, prompt_items(raw.get("prompt")))


def compile_flow(doc: dict[str, Any], path: str, source: bytes) -> Flow:
    calendars = {name: _calendar(name, c) for name, c in doc.get("calendars", {}).items()}
    nodes = {nid: _node(nid, raw, calendars) for nid, raw in doc["nodes"].items()}
    transitions: dict[tuple[str, str], str] = {}
    for nid, raw in doc["nodes"].items():
        for outcome, target, _key in raw_edges(nid, raw):
            transitions[(nid, outcome)] = target
        if raw["type"] == "survey" and (nid, "exhausted") not in transitions:
            transitions[(nid, "exhausted")] = raw["next"]
    sp = doc.get("speech")
    speech = (SpeechModel(sp.get("mode", "keywords"),
                          float(sp.get("threshold", DEFAULTS["speech_threshold"])),
                          {k: tuple(v) for k, v in sorted(sp["intents"].items())})
              if sp else None)
    languages = tuple(doc["languages"])
    return Flow(
        name=doc["flow"], version=hashlib.sha256(source).hexdigest()[:12], path=path,
        languages=languages, default_language=doc.get("default_language", languages[0]),
        start=doc["start"], post_call=doc.get("post_call"), nodes=nodes,
        transitions=transitions, variables=dict(doc.get("variables", {})),
        record_variables=tuple(doc.get("record_variables", [])), speech=speech)
