"""The text channels' configuration: ``dialplans/text.yaml``, edited by admins.

Untrusted input (DESIGN principle 5): read with `adminfiles.read_yaml`, unknown
keys refused naming the allowed ones, every problem reported at once as
`adminfiles.Problem`; a file with problems is never used. What it says:

- ``languages`` / ``default_language``: the languages customers are answered in;
- ``language_words``: words that tell a customer's language from their text;
- ``agent_words``: a customer typing one of these reaches a person at once;
  ``yes_words`` / ``no_words``: the answer to "did that help?";
- ``messages``: what customers are told, per language;
- ``intents``: keywords per language, and for an intent with a known answer
  the ``answer`` per language (``${name}`` filled from its ``lookup``, an HTTP
  GET returning a flat JSON object, as the IVR's lookup node); an intent without
  an answer goes to a person with that intent;
- ``ivr_intents``: an IVR flow (path relative to this file) whose speech
  intents (``speech.intents``: the same phrases the IVR listens for, English)
  count here too: added to the English keywords of an intent of the same
  name, or an intent of their own without an answer (to a person with it);
- ``providers``: where replies are sent (``base_url``) and the SMS webhook's
  public URL (what Twilio signs);
- ``routing``: the queue (of ``agents.yaml``) a conversation handed to a person
  waits in (``queue``), and per intent another (``intents``); checked against
  the directory when the web app starts (`text.config.check_routing`);
- ``survey``: after an agent closes a chat, one question by text (its answer a
  score from ``min`` to ``max``), stored like the call survey (off when absent);
- ``suggestions``: canned lines per language the agent portal's chat panel
  offers to prefill a reply with (the agent edits them before sending; none
  is ever sent on its own), beside the intent's self-service answer.

``messages`` has required keys (`MESSAGE_KEYS`) and optional ones
(`OPTIONAL_MESSAGE_KEYS`: what the router's waiting replies and the survey say;
built-in English texts when absent, with their ``${...}`` placeholders).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adminfiles import (
    BAD_CHOICE,
    MISSING_KEY,
    OUT_OF_RANGE,
    Problem,
    read_yaml,
    unknown_key,
    wrong_type,
)

__all__ = ["TextConfig", "IntentRule", "Routing", "Survey", "check_routing",
           "OPTIONAL_MESSAGES", "OPTIONAL_MESSAGE_KEYS", "Lookup", "Providers", "load_text_config",
           "check_text_config", "MESSAGE_KEYS", "MAX_SUGGESTIONS", "URL_NAMES", "TextConfigError",
           "UNKNOWN_PLACEHOLDER", "MISSING_TRANSLATION", "IVR_FLOW_INVALID"]

MESSAGE_KEYS = ("ask_language", "handed_to_person", "secure", "not_understood", "did_it_help",
                "glad", "lookup_failed")
# optional messages and their English default (placeholders: what the executor fills)
OPTIONAL_MESSAGES = {
    "wait": "You are number ${position} in line; a person will answer in about "
            "${minutes} min.",
    "callback_offer": "Rather be called back at this number? Reply CALL.",
    "callback_ok": "We will call you back at this number. You can close this chat.",
    "no_one": "Sorry, nobody can answer messages right now. Please call ${secure_line}.",
    "survey": "How did we do? Reply with a number from ${min} (poor) to ${max} (great).",
    "survey_thanks": "Thank you for your answer.",
    "closed": "This conversation is closed. Write again any time.",
}
OPTIONAL_MESSAGE_KEYS = tuple(OPTIONAL_MESSAGES)
URL_NAMES = ("customer", "order")  # what a lookup URL may contain: ${customer}, ${order}
MISSING_TRANSLATION = "missing-translation"
UNKNOWN_PLACEHOLDER = "unknown-placeholder"
_TOP = ("languages", "default_language", "secure_line", "language_words", "agent_words",
        "yes_words", "no_words", "messages", "intents", "ivr_intents", "providers",
        "routing", "survey", "callback_words", "suggestions")
IVR_FLOW_INVALID = "ivr-flow-invalid"
_INTENT_KEYS = ("keywords", "answer", "lookup")
_PROVIDER_KEYS = {"sms": ("base_url", "account_sid", "from", "webhook_url"),
                  "messenger": ("base_url",)}
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_TEXT = 640  # one reply: 4 SMS segments
MAX_SUGGESTIONS = 20  # per language


class TextConfigError(Exception):
    """The text channels' file has problems (all of them in ``problems``)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Lookup:
    url: str  # with ${customer} / ${order}
    timeout_s: float


@dataclass(frozen=True, slots=True)
class IntentRule:
    name: str
    keywords: dict[str, tuple[str, ...]]  # language -> lowercase words/phrases
    answer: dict[str, str] | None  # language -> reply; None: hand to a person
    lookup: Lookup | None


@dataclass(frozen=True, slots=True)
class Providers:
    sms_base_url: str | None
    sms_account_sid: str
    sms_from: str
    sms_webhook_url: str | None  # the public URL Twilio calls (behind a proxy), else rebuilt
    messenger_base_url: str | None


@dataclass(frozen=True, slots=True)
class Routing:
    queue: str | None  # None: conversations handed to a person are not routed
    intents: dict[str, str]  # intent -> queue


@dataclass(frozen=True, slots=True)
class Survey:
    min_score: int
    max_score: int


@dataclass(frozen=True, slots=True)
class TextConfig:
    languages: tuple[str, ...]
    default_language: str
    secure_line: str
    language_words: dict[str, frozenset[str]]
    agent_words: dict[str, tuple[str, ...]]
    yes_words: dict[str, tuple[str, ...]]
    no_words: dict[str, tuple[str, ...]]
    messages: dict[str, dict[str, str]]  # key -> language -> text
    intents: tuple[IntentRule, ...]
    providers: Providers
    routing: Routing = Routing(None, {})
    survey: Survey | None = None
    callback_words: dict[str, tuple[str, ...]] | None = None  # "call me back", per language
    suggestions: dict[str, tuple[str, ...]] | None = None  # the chat panel's canned lines

    def suggested(self, intent: str | None, language: str | None) -> tuple[str, ...]:
        """What the chat panel offers to prefill a reply with, in ``language``: the
        intent's self-service answer (when it needs no lookup to fill), then the
        file's ``suggestions``."""
        lang = language if language in self.languages else self.default_language
        out: list[str] = []
        rule = next((r for r in self.intents if r.name == intent), None)
        if rule is not None and rule.answer and rule.lookup is None:
            out.append(rule.answer.get(lang, rule.answer[self.default_language]))
        out.extend((self.suggestions or {}).get(lang, ()))
        return tuple(dict.fromkeys(out))

    def message(self, key: str, language: str | None) -> str:
        texts = self.messages.get(key)
        if texts is None:  # an optional message the file does not give
            return OPTIONAL_MESSAGES[key]
        return texts.get(language or self.default_language, texts[self.default_language])

    def queue_for(self, intent: str | None) -> str | None:
        """The queue a conversation handed to a person waits in."""
        return self.routing.intents.get(intent or "", self.routing.queue)


class _Check:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, node: str, key: str, message: str, code: str) -> None:
        self.problems.append(Problem(self.file, node, key, message, code))

    def mapping(self, v: Any, node: str, key: str) -> dict[Any, Any] | None:
        if not isinstance(v, dict):
            self.problems.append(wrong_type(self.file, node, key, "a mapping", v))
            return None
        return v

    def keys(self, v: dict[Any, Any], node: str, allowed: tuple[str, ...]) -> None:
        for k in v:
            if k not in allowed:
                self.problems.append(unknown_key(self.file, node, str(k), allowed))

    def text(self, v: Any, node: str, key: str, limit: int = _MAX_TEXT) -> str | None:
        if not isinstance(v, str) or not v.strip():
            self.problems.append(wrong_type(self.file, node, key, "a non-empty text", v))
            return None
        if len(v) > limit:
            self.add(node, key, f"at most {limit} characters ({len(v)} given)", OUT_OF_RANGE)
            return None
        return v.strip()

    def per_language(self, v: Any, node: str, key: str, languages: tuple[str, ...]
                     ) -> dict[str, str] | None:
        m = self.mapping(v, node, key)
        if m is None:
            return None
        out: dict[str, str] = {}
        for lang in m:
            if lang not in languages:
                self.add(node, f"{key}.{lang}", f"language {lang!r} is not one of "
                         f"languages ({', '.join(languages)})", BAD_CHOICE)
        for lang in languages:
            if lang not in m:
                self.add(node, f"{key}.{lang}", f"no text in {lang!r}", MISSING_TRANSLATION)
                continue
            t = self.text(m[lang], node, f"{key}.{lang}")
            if t is not None:
                out[lang] = t
        return out

    def words(self, v: Any, node: str, key: str, languages: tuple[str, ...],
              required: bool = True) -> dict[str, tuple[str, ...]]:
        m = self.mapping(v, node, key)
        out: dict[str, tuple[str, ...]] = {}
        if m is None:
            return out
        for lang, ws in m.items():
            if lang not in languages:
                self.add(node, f"{key}.{lang}", f"language {lang!r} is not one of "
                         f"languages ({', '.join(languages)})", BAD_CHOICE)
                continue
            if not isinstance(ws, list) or not all(isinstance(w, str) and w.strip()
                                                    for w in ws):
                self.problems.append(wrong_type(self.file, node, f"{key}.{lang}",
                                                "a list of words (quote yes, no, on, off: "
                                                "YAML reads them as true/false)", ws))
                continue
            out[lang] = tuple(" ".join(w.lower().split()) for w in ws)
        if required:
            for lang in languages:
                if lang not in m:
                    self.add(node, f"{key}.{lang}", f"no words in {lang!r}",
                             MISSING_TRANSLATION)
        return out

    def url(self, v: Any, node: str, key: str) -> str | None:
        t = self.text(v, node, key, 2000)
        if t is None:
            return None
        if urlsplit(t.replace("${", "").replace("}", "")).scheme not in ("http", "https"):
            self.add(node, key, f"not an http(s) URL: {t[:60]!r}", BAD_CHOICE)
            return None
        return t


def check_text_config(doc: dict[Any, Any], file: str,
                      ivr_intents: Mapping[str, tuple[str, ...]] | None = None
                      ) -> tuple[TextConfig | None, list[Problem]]:
    """Validate a parsed ``text.yaml``; every problem at once. ``ivr_intents``: the
    speech intents of the flow its ``ivr_intents`` names (`load_text_config` reads it)."""
    c = _Check(file)
    c.keys(doc, "-", _TOP)
    for k in ("languages", "messages", "agent_words", "intents"):
        if k not in doc:
            c.add("-", k, f"missing key {k!r}", MISSING_KEY)
    langs_v = doc.get("languages", [])
    if not (isinstance(langs_v, list) and langs_v
            and all(isinstance(x, str) and _NAME.match(x) for x in langs_v)):
        c.problems.append(wrong_type(file, "-", "languages", "a list of language codes",
                                     langs_v))
        langs_v = ["en"]
    languages = tuple(langs_v)
    default = doc.get("default_language", languages[0])
    if default not in languages:
        c.add("-", "default_language", f"{default!r} is not one of languages "
              f"({', '.join(languages)})", BAD_CHOICE)
        default = languages[0]
    secure_line = c.text(doc.get("secure_line", "our phone line"), "-", "secure_line", 80)
    lang_words = c.words(doc.get("language_words", {}), "-", "language_words", languages,
                         required=False)
    agent = c.words(doc.get("agent_words", {}), "-", "agent_words", languages)
    yes = c.words(doc.get("yes_words", {}), "-", "yes_words", languages)
    no = c.words(doc.get("no_words", {}), "-", "no_words", languages)
    messages: dict[str, dict[str, str]] = {}
    mv = c.mapping(doc.get("messages", {}), "messages", "-")
    if mv is not None:
        c.keys(mv, "messages", MESSAGE_KEYS + OPTIONAL_MESSAGE_KEYS)
        for key in MESSAGE_KEYS + OPTIONAL_MESSAGE_KEYS:
            if key not in mv:
                if key in MESSAGE_KEYS:
                    c.add("messages", key, f"missing key {key!r}", MISSING_KEY)
                continue
            t = c.per_language(mv[key], "messages", key, languages)
            if t is not None:
                messages[key] = t
    intents: list[IntentRule] = []
    iv = c.mapping(doc.get("intents", {}), "intents", "-")
    for name, raw in (iv or {}).items():
        node = f"intent/{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            c.add(node, "-", "an intent name is lowercase letters, digits and '-'", BAD_CHOICE)
            continue
        r = c.mapping(raw, node, "-")
        if r is None:
            continue
        c.keys(r, node, _INTENT_KEYS)
        kw = c.words(r.get("keywords", {}), node, "keywords", languages, required=False)
        if "keywords" not in r:
            c.add(node, "keywords", "missing key 'keywords'", MISSING_KEY)
        answer = (c.per_language(r["answer"], node, "answer", languages)
                  if "answer" in r else None)
        lookup = None
        if "lookup" in r:
            lv = c.mapping(r["lookup"], node, "lookup")
            if lv is not None:
                c.keys(lv, f"{node}", ("url", "timeout"))
                url = c.url(lv.get("url"), node, "lookup.url")
                for used in _PLACEHOLDER.findall(url or ""):
                    if used not in URL_NAMES:
                        c.add(node, "lookup.url", f"${{{used}}} is not one of "
                              f"{', '.join(URL_NAMES)}", UNKNOWN_PLACEHOLDER)
                timeout = lv.get("timeout", 2.0)
                if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                        or not 0.1 <= timeout <= 10:
                    c.add(node, "lookup.timeout", "a number of seconds from 0.1 to 10",
                          OUT_OF_RANGE)
                    timeout = 2.0
                if url is not None:
                    lookup = Lookup(url, float(timeout))
            if "answer" not in r:
                c.add(node, "answer", "a lookup needs an answer to fill", MISSING_KEY)
        elif answer is not None:
            for lang, txt in answer.items():
                if _PLACEHOLDER.search(txt):
                    c.add(node, f"answer.{lang}", "${...} needs a lookup to fill it",
                          UNKNOWN_PLACEHOLDER)
        intents.append(IntentRule(name, kw, answer, lookup))
    if "ivr_intents" in doc:
        c.text(doc["ivr_intents"], "-", "ivr_intents", 300)
    if ivr_intents:
        intents = _merge_ivr(intents, ivr_intents)
    providers = _providers(c, doc.get("providers", {}))
    routing = _routing(c, doc.get("routing", {}), {r.name for r in intents})
    survey = _survey(c, doc["survey"]) if "survey" in doc else None
    callback = (c.words(doc["callback_words"], "-", "callback_words", languages,
                        required=False) if "callback_words" in doc else None)
    suggestions = (_suggestions(c, doc["suggestions"], languages)
                   if "suggestions" in doc else None)
    if c.problems or secure_line is None:
        return None, c.problems
    lw = {lang: frozenset(ws) for lang, ws in lang_words.items()}
    return TextConfig(languages, default, secure_line, lw, agent, yes, no, messages,
                      tuple(intents), providers, routing, survey, callback, suggestions), []


def _suggestions(c: _Check, v: Any, languages: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``suggestions``: per language (every one of ``languages``), a list of at most
    `MAX_SUGGESTIONS` texts; no ``${...}`` (nothing fills them: the agent edits)."""
    m = c.mapping(v, "suggestions", "-")
    out: dict[str, tuple[str, ...]] = {}
    if m is None:
        return out
    for lang in m:
        if lang not in languages:
            c.add("suggestions", str(lang), f"language {lang!r} is not one of languages "
                  f"({', '.join(languages)})", BAD_CHOICE)
    for lang in languages:
        if lang not in m:
            c.add("suggestions", lang, f"no suggestions in {lang!r}", MISSING_TRANSLATION)
            continue
        items = m[lang]
        if not isinstance(items, list) or not items:
            c.problems.append(wrong_type(c.file, "suggestions", lang, "a list of texts", items))
            continue
        if len(items) > MAX_SUGGESTIONS:
            c.add("suggestions", lang, f"at most {MAX_SUGGESTIONS} suggestions "
                  f"({len(items)} given)", OUT_OF_RANGE)
            continue
        texts = []
        for i, item in enumerate(items):
            t = c.text(item, "suggestions", f"{lang}[{i}]")
            if t is None:
                continue
            if _PLACEHOLDER.search(t):
                c.add("suggestions", f"{lang}[{i}]", "${...} is not filled in a suggestion "
                      "(the agent edits it before sending)", UNKNOWN_PLACEHOLDER)
                continue
            texts.append(t)
        out[lang] = tuple(texts)
    return out


def _routing(c: _Check, v: Any, intents: set[str]) -> Routing:
    m = c.mapping(v, "routing", "-") or {}
    c.keys(m, "routing", ("queue", "intents"))
    queue = c.text(m["queue"], "routing", "queue", 40) if "queue" in m else None
    per: dict[str, str] = {}
    iv = c.mapping(m.get("intents", {}), "routing", "intents") or {}
    for name, q in iv.items():
        if name not in intents:
            c.add("routing", f"intents.{name}", f"no intent {name!r} in intents "
                  f"({', '.join(sorted(intents))})", BAD_CHOICE)
            continue
        t = c.text(q, "routing", f"intents.{name}", 40)
        if t is not None:
            per[str(name)] = t
    return Routing(queue, per)


def _survey(c: _Check, v: Any) -> Survey | None:
    m = c.mapping(v, "survey", "-")
    if m is None:
        return None
    c.keys(m, "survey", ("min", "max"))
    lo, hi = m.get("min", 1), m.get("max", 5)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (lo, hi)) \
            or not 0 <= lo < hi <= 10:
        c.add("survey", "min", "min and max are whole numbers, 0 <= min < max <= 10",
              OUT_OF_RANGE)
        return None
    return Survey(lo, hi)


def check_routing(config: TextConfig, directory: Any, file: str) -> list[Problem]:
    """The queues ``routing`` names exist in the directory and serve a text channel."""
    queues = {q.id: q for q in directory.queues}
    out = []
    named = [("queue", config.routing.queue)] + [
        (f"intents.{k}", q) for k, q in sorted(config.routing.intents.items())]
    for key, qid in named:
        if qid is None:
            continue
        q = queues.get(qid)
        if q is None:
            out.append(Problem(file, "routing", key, f"no queue {qid!r} in the directory "
                               f"({', '.join(sorted(queues))})", BAD_CHOICE))
        elif not {"sms", "messenger"} & set(q.channels):
            out.append(Problem(file, "routing", key, f"queue {qid!r} serves no text channel "
                               f"(its channels: {', '.join(q.channels)}); add sms or "
                               "messenger to them in the directory", BAD_CHOICE))
    return out


def _merge_ivr(intents: list[IntentRule], ivr: Mapping[str, tuple[str, ...]]
               ) -> list[IntentRule]:
    """The IVR's phrases (English) join the English keywords of the intent of the same
    name, or make an intent of their own (no answer: to a person), after the file's."""
    out = []
    for rule in intents:
        extra = tuple(" ".join(p.lower().split()) for p in ivr.get(rule.name, ()))
        if extra:
            en = rule.keywords.get("en", ())
            kw = {**rule.keywords, "en": en + tuple(p for p in extra if p not in en)}
            rule = IntentRule(rule.name, kw, rule.answer, rule.lookup)
        out.append(rule)
    known = {r.name for r in intents}
    for name in sorted(ivr):
        if name not in known:
            out.append(IntentRule(name, {"en": tuple(" ".join(p.lower().split())
                                                     for p in ivr[name])}, None, None))
    return out


def _providers(c: _Check, v: Any) -> Providers:
    m = c.mapping(v, "providers", "-") or {}
    c.keys(m, "providers", tuple(_PROVIDER_KEYS))
    got: dict[str, dict[str, str | None]] = {}
    for name, allowed in _PROVIDER_KEYS.items():
        p = c.mapping(m.get(name, {}), f"providers/{name}", "-") or {}
        c.keys(p, f"providers/{name}", allowed)
        vals: dict[str, str | None] = {}
        for key in allowed:
            if key not in p:
                vals[key] = None
            elif key in ("base_url", "webhook_url"):
                vals[key] = c.url(p[key], f"providers/{name}", key)
            else:
                vals[key] = c.text(p[key], f"providers/{name}", key, 80)
        got[name] = vals
    sms, msg = got["sms"], got["messenger"]
    return Providers(sms["base_url"], sms["account_sid"] or "", sms["from"] or "",
                     sms["webhook_url"], msg["base_url"])


def _ivr_intents(path: Path, doc: dict[Any, Any]
                 ) -> tuple[Mapping[str, tuple[str, ...]] | None, list[Problem]]:
    ref = doc.get("ivr_intents")
    if not isinstance(ref, str) or not ref.strip():
        return None, []  # absent, or a wrong type check_text_config reports
    from ivr import FlowInvalid, load_flow

    flow_path = path.parent / ref.strip()
    try:
        flow = load_flow(flow_path)
    except FlowInvalid as exc:
        first = exc.problems[0] if exc.problems else None
        return None, [Problem(str(path), "-", "ivr_intents",
                              f"the flow {ref!r} has problems ({len(exc.problems)}; first: "
                              f"{first})", IVR_FLOW_INVALID)]
    if flow.speech is None:
        return None, [Problem(str(path), "-", "ivr_intents", f"the flow {ref!r} has no "
                              "speech intents", IVR_FLOW_INVALID)]
    return flow.speech.intents, []


def load_text_config(path: str | Path) -> TextConfig:
    """Read and check ``text.yaml`` (and the flow its ``ivr_intents`` names);
    `TextConfigError` lists every problem."""
    doc, problems = read_yaml(path, what="text channels file")
    if doc is None:
        raise TextConfigError(problems)
    ivr, ivr_problems = _ivr_intents(Path(path), doc)
    problems += ivr_problems
    config, more = check_text_config(doc, str(path), ivr)
    if problems or more or config is None:
        raise TextConfigError([*problems, *more])
    return config
