"""Semantic checks of a flow document, beyond its JSON Schema.

Each check is tolerant of documents the schema already rejected (values of the wrong
type are skipped) so that every problem of a file is reported in one run.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adminfiles import Problem
from ivr.compiler import raw_edges
from ivr.expr import ExprError, parse_expr

__all__ = ["semantic_problems"]

_INPUT_KINDS = ("menu", "collect", "language", "speech", "survey")
_TERMINAL = ("route", "transfer", "voicemail", "hangup")


def _nodes(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = doc.get("nodes")
    if not isinstance(nodes, dict):
        return {}
    return {str(k): v for k, v in nodes.items() if isinstance(v, dict)}


def _prompt_refs(value: Any) -> Iterable[tuple[str, str]]:
    """``(kind, value)`` of prompt items: ("prompt", id) / ("say", variable)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            yield "prompt", item
        elif isinstance(item, dict):
            for k in ("say_number", "say_digits"):
                if isinstance(item.get(k), str):
                    yield "say", item[k]


_PROMPT_KEYS = ("prompts", "prompt", "no_input_prompt", "no_match_prompt", "comment_prompt",
                "thanks_prompt")


def _node_prompts(raw: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    """``(key, kind, value)`` for every prompt item a node may play."""
    for key in _PROMPT_KEYS:
        if key in raw:
            for kind, value in _prompt_refs(raw[key]):
                yield key, kind, value
    if raw.get("type") == "route" and raw.get("announce_position") is True:
        from ivr.engine import ANNOUNCE_PROMPTS

        for pid in ANNOUNCE_PROMPTS:
            yield "announce_position", "prompt", pid
    cb = raw.get("callback_offer")
    if isinstance(cb, dict):
        for key in ("prompt", "confirm_prompt"):
            if key in cb:
                for kind, value in _prompt_refs(cb[key]):
                    yield f"callback_offer.{key}", kind, value


def _sccs(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iterative, deterministic order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on.add(v)
            succ = graph.get(v, [])
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def semantic_problems(doc: Mapping[str, Any], file: str,
                      catalog: Mapping[str, Mapping[str, str]] | None,
                      queues: Iterable[str] | None = None) -> list[Problem]:
    """Every semantic problem of ``doc``. Prompts are checked against ``catalog`` and
    queue names against ``queues`` (the queues of the agent directory), each only when
    given: the composition root passes both (``homeline flow check``, the engine)."""
    P: list[Problem] = []

    def add(node: str, key: str, message: str, code: str) -> None:
        P.append(Problem(file, node, key, message, code))

    nodes = _nodes(doc)
    languages = [x for x in doc.get("languages", []) if isinstance(x, str)] \
        if isinstance(doc.get("languages"), list) else []
    calendars: dict[str, Any] = doc["calendars"] if isinstance(doc.get("calendars"), dict) else {}
    speech: dict[str, Any] = doc["speech"] if isinstance(doc.get("speech"), dict) else {}
    speech_intents: dict[str, Any] = (speech["intents"] if isinstance(speech.get("intents"), dict)
                                      else {})
    queue_set = None if queues is None else set(queues)

    # -- entry points
    entries: list[str] = []
    for key in ("start", "post_call"):
        target = doc.get(key)
        if isinstance(target, str):
            if target not in nodes:
                add("-", key, f"{key} names node {target!r}, which does not exist", "dangling-next")
            else:
                entries.append(target)
    post = doc.get("post_call")
    if isinstance(post, str) and post in nodes and nodes[post].get("type") != "survey":
        add("-", "post_call", f"post_call must name a survey node, {post!r} is a "
            f"{nodes[post].get('type')}", "bad-value")
    dl = doc.get("default_language")
    if isinstance(dl, str) and languages and dl not in languages:
        add("-", "default_language", f"{dl!r} is not in languages ({', '.join(languages)})",
            "unknown-language")

    # -- calendars
    for name, cal in calendars.items():
        if isinstance(cal, dict) and isinstance(cal.get("timezone"), str):
            try:
                ZoneInfo(cal["timezone"])
            except (ZoneInfoNotFoundError, ValueError):
                add("-", f"calendars.{name}.timezone", f"unknown time zone {cal['timezone']!r}",
                    "bad-value")

    # -- edges, dangling targets
    graph: dict[str, list[str]] = {n: [] for n in nodes}
    for nid, raw in nodes.items():
        for _outcome, target, key in raw_edges(nid, raw):
            if target not in nodes:
                add(nid, key, f"next node {target!r} does not exist", "dangling-next")
            else:
                graph[nid].append(target)

    # -- per-node rules
    secure_vars: set[str] = set()
    for nid, raw in nodes.items():
        kind = raw.get("type")
        if kind in _INPUT_KINDS:
            if "no_input_prompt" not in raw:
                add(nid, "no_input_prompt", "an input node needs a prompt for when the caller "
                    "says/keys nothing", "no-input-handling")
            if "no_match_prompt" not in raw:
                add(nid, "no_match_prompt", "an input node needs a prompt for invalid input",
                    "no-match-handling")
            if kind in ("menu", "collect", "language") and "exhausted" not in raw:
                add(nid, "exhausted", "an input node needs a node to go to when retries are "
                    "exhausted", "no-input-handling")
        if kind == "language" and isinstance(raw.get("options"), dict):
            for digit, lang in raw["options"].items():
                if isinstance(lang, str) and languages and lang not in languages:
                    add(nid, f"options.{digit}", f"language {lang!r} is not in the flow's "
                        f"languages ({', '.join(languages)})", "unknown-language")
        if kind == "hours":
            cal = raw.get("calendar")
            if isinstance(cal, str) and cal not in calendars:
                add(nid, "calendar", f"unknown calendar {cal!r} (defined: "
                    f"{', '.join(sorted(calendars)) or 'none'})", "unknown-calendar")
        if kind == "collect":
            lo, hi = raw.get("min_length", 1), raw.get("max_length", 16)
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                add(nid, "min_length", f"min_length {lo} is greater than max_length {hi}",
                    "bad-value")
            pat = raw.get("pattern")
            if isinstance(pat, str):
                try:
                    re.compile(pat)
                except re.error as exc:
                    add(nid, "pattern", f"invalid regular expression: {exc}", "bad-value")
            if raw.get("secure") is True and isinstance(raw.get("variable"), str):
                secure_vars.add(raw["variable"])
        if kind == "route" and isinstance(raw.get("priority_rules"), list):
            for i, rule in enumerate(raw["priority_rules"]):
                if isinstance(rule, dict) and isinstance(rule.get("when"), str):
                    try:
                        parse_expr(rule["when"])
                    except ExprError as exc:
                        add(nid, f"priority_rules.{i}.when", f"bad expression: {exc}",
                            "bad-expression")
        if kind == "branch" and isinstance(raw.get("cases"), list):
            for i, case in enumerate(raw["cases"]):
                if isinstance(case, dict) and isinstance(case.get("when"), str):
                    try:
                        parse_expr(case["when"])
                    except ExprError as exc:
                        add(nid, f"cases.{i}.when", f"bad expression: {exc}", "bad-expression")
        if kind == "set" and isinstance(raw.get("expressions"), dict):
            for var, src in raw["expressions"].items():
                if isinstance(src, str):
                    try:
                        parse_expr(src)
                    except ExprError as exc:
                        add(nid, f"expressions.{var}", f"bad expression: {exc}",
                            "bad-expression")
        if kind == "speech" and isinstance(raw.get("intents"), dict):
            if not speech_intents:
                add(nid, "intents", "a speech node needs the flow's top-level `speech` "
                    "section (keywords/grammar per intent)", "missing-key")
            for intent in raw["intents"]:
                if speech_intents and intent not in speech_intents:
                    add(nid, f"intents.{intent}", f"intent {intent!r} is not defined in "
                        f"speech.intents ({', '.join(sorted(speech_intents))})",
                        "unknown-intent")
        if kind == "route" and queue_set is not None:
            q = raw.get("queue")
            if isinstance(q, str) and q not in queue_set:
                add(nid, "queue", f"unknown queue {q!r}: the agent directory defines "
                    f"{', '.join(sorted(queue_set)) or 'no queues'}", "unknown-queue")

    # -- speech phrases must be words the recogniser can pronounce
    phrases = [p for ps in speech_intents.values() if isinstance(ps, list)
               for p in ps if isinstance(p, str)]
    if phrases:
        try:
            from ivr.speech import unknown_words
            missing_words = unknown_words(phrases)
        except (ImportError, OSError):
            missing_words = []
        for word in missing_words:
            add("-", "speech.intents", f"word {word!r} is not in the speech recogniser's "
                "en-us dictionary; use another word", "unknown-word")

    # -- reachability
    reached: set[str] = set()
    todo = list(entries)
    while todo:
        n = todo.pop()
        if n in reached:
            continue
        reached.add(n)
        todo.extend(graph.get(n, []))
    if entries:
        for nid in sorted(nodes):
            if nid not in reached:
                add(nid, "-", "unreachable: no path from start or post_call leads here",
                    "unreachable-node")

    # -- loops with no exit: a cycle whose nodes all lead only back into it
    for comp in _sccs(graph):
        members = set(comp)
        cyclic = len(comp) > 1 or comp[0] in graph.get(comp[0], [])
        if not cyclic:
            continue
        leaves = any(t not in members for n in comp for t in graph[n])
        terminal = any(nodes[n].get("type") in _TERMINAL for n in comp)
        if not leaves and not terminal:
            add(comp[0], "-", f"loop with no exit: {' -> '.join(comp + [comp[0]])} never "
                f"reaches a route, transfer, voicemail or hangup", "loop-no-exit")

    # -- prompts present in the catalog for every language the flow offers
    if catalog is not None:
        for nid, raw in nodes.items():
            for key, kind, value in _node_prompts(raw):
                if kind != "prompt":
                    continue
                entry = catalog.get(value)
                if not isinstance(entry, Mapping):
                    add(nid, key, f"prompt {value!r} is not in the prompt catalog",
                        "missing-prompt")
                    continue
                missing = [lang for lang in languages if not entry.get(lang)]
                if missing:
                    add(nid, key, f"prompt {value!r} has no text for language(s) "
                        f"{', '.join(missing)}", "missing-prompt")

    # -- secure digits must not reach logged or announced places
    tainted = set(secure_vars)
    changed = True
    while changed:
        changed = False
        for raw in nodes.values():
            exprs = raw.get("expressions") if raw.get("type") == "set" else None
            if not isinstance(exprs, dict):
                continue
            for var, src in exprs.items():
                if var in tainted or not isinstance(src, str):
                    continue
                try:
                    names = parse_expr(src).variables
                except ExprError:
                    continue
                if names & tainted:
                    tainted.add(var)
                    changed = True
    if tainted:
        for nid, raw in nodes.items():
            for key, kind, value in _node_prompts(raw):
                if kind == "say" and value in tainted:
                    add(nid, key, f"secure variable {value!r} would be announced to the caller",
                        "secure-leak")
            if raw.get("type") == "route" and isinstance(raw.get("data"), list):
                for var in raw["data"]:
                    if var in tainted:
                        add(nid, "data", f"secure variable {var!r} would be sent with the "
                            "route request and logged in call records", "secure-leak")
        rv = doc.get("record_variables")
        if isinstance(rv, list):
            for var in rv:
                if var in tainted:
                    add("-", "record_variables", f"secure variable {var!r} would be written "
                        "to the call record", "secure-leak")
    return P
