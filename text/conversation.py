"""One text conversation (SMS or Messenger) with a customer: self-service first,
a person always reachable.

Pure (DESIGN principles 1-2): `handle` takes the conversation as it stands (or
None for a customer's first message), one event and ``now``, and returns the
conversation as it now stands with the decisions to carry out. The adapter
stores, sends and looks up; a lookup's answer comes back as an event.

A customer reaches a person (`HandToPerson`) when they type one of the
configuration's ``agent_words`` (in any of its languages) at any time, ask the
same question twice, are not understood twice, answer "no" to "did that help?",
or when a self-service answer could not be given (its lookup failed). An intent
without a known answer goes to a person at once, with that intent.

Text reaches `handle` already masked (`text.mask`): a card number never enters
the conversation; ``secure_found`` makes it tell the customer to use the secure
phone line instead.

When the agent closes the chat (`ChatClosed`), the conversation ends: with the
configuration's ``survey`` (and an agent who had the chat) the customer is asked
one question (state ``survey``, the route it is about in ``survey_route``),
otherwise told it is closed (state ``closed``). In ``survey``, a whole number from
``min`` to ``max`` (``4``, ``4/5``, `` 5 thanks``: `survey_answer`) is the answer:
`SurveyAnswered`, thanks, closed. Anything else, or an answer later than
`SURVEY_ANSWER_WINDOW` after the question, closes it unanswered, and that
message is the first message of a new conversation (the customer wrote about
something else): the `Step` then carries the conversation that ended in
``closed`` and the new one in ``conversation``, the message and the decisions
being the new one's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

from text.config import IntentRule, TextConfig

__all__ = ["Conversation", "MessageReceived", "LookupAnswered", "LookupFailed", "ChatClosed",
           "Event", "SendReply", "LookUp", "HandToPerson", "SurveyAnswered", "Decision", "Step",
           "handle", "detect_language", "find_intent", "survey_answer", "CHANNELS", "STATES",
           "SURVEY_ANSWER_WINDOW"]

CHANNELS = ("sms", "messenger")
Channel = Literal["sms", "messenger"]
# self-service: answering; asking-language: the customer's language was asked;
# awaiting-feedback: an answer was given, "did that help?" asked; looking-up: an
# answer's lookup is out; waiting-agent: handed to a person (the router's part);
# survey: an agent closed it and the survey question is out (the next message is
# the answer, or else the first of a new conversation); closed: it is over (the
# customer's next message starts a new conversation)
STATES = ("self-service", "asking-language", "awaiting-feedback", "looking-up",
          "waiting-agent", "survey", "closed")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ORDER = re.compile(r"(?<![0-9])[0-9]{4,12}(?![0-9])")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# a message this long after the survey's question is not its answer any more (a "2"
# days later is about something else): it starts a new conversation
SURVEY_ANSWER_WINDOW = timedelta(hours=24)
# a survey answer: a whole number first, "/max" optionally, then anything (the comment);
# not a decimal ("4.5"), not part of a longer number
_SCORE = re.compile(r"^\s*([0-9]{1,2})(?![0-9])(?![.,][0-9])(?:\s*/\s*([0-9]{1,2})(?![0-9]))?"
                    r"(.*)$", re.DOTALL)
_LANGUAGE_CHOICES = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4}
_LANGUAGE_NAMES = {"english": "en", "inglés": "en", "anglais": "en", "español": "es",
                   "espanol": "es", "spanish": "es", "espagnol": "es", "français": "fr",
                   "francais": "fr", "french": "fr", "francés": "fr"}


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    channel: Channel
    customer: str  # the customer id on that channel: a phone number, a page-scoped id
    started_at: datetime
    updated_at: datetime
    state: str = "self-service"
    language: str | None = None
    intent: str | None = None
    answered: tuple[str, ...] = ()  # intents answered by self-service, in order
    not_understood: int = 0
    pending: str | None = None  # the intent being looked up / asked about
    handed_reason: str | None = None
    via: str = ""  # where the customer wrote to: our SMS number, our page id
    survey_route: str | None = None  # the chat route the survey asked about
    survey_asked_at: datetime | None = None  # when its question was sent


@dataclass(frozen=True, slots=True)
class MessageReceived:
    message_id: str
    text: str  # masked
    secure_found: bool = False


@dataclass(frozen=True, slots=True)
class LookupAnswered:
    intent: str
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class LookupFailed:
    intent: str
    why: str


@dataclass(frozen=True, slots=True)
class ChatClosed:
    """The agent closed the chat of route ``route_id``. ``served``: an agent had it
    (accepted it); only then is the survey (about that agent) asked."""

    route_id: str
    served: bool = True


Event = MessageReceived | LookupAnswered | LookupFailed | ChatClosed


@dataclass(frozen=True, slots=True)
class SendReply:
    """Send ``text`` to the customer on their channel."""

    text: str


@dataclass(frozen=True, slots=True)
class LookUp:
    """GET ``url`` (a flat JSON object back); answer with LookupAnswered / LookupFailed."""

    intent: str
    url: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class HandToPerson:
    """The conversation goes to a person: the router's part (issue 11, "The router
    learns channels") consumes this. ``notice`` is what the customer is told now."""

    channel: Channel
    customer: str
    language: str
    intent: str | None
    reason: str
    notice: str


@dataclass(frozen=True, slots=True)
class SurveyAnswered:
    """The customer answered the survey about route ``route_id``: keep ``score``
    (``min``..``max``) and ``comment`` (what followed the number; masked text) with
    that route, as the call survey is kept with its call."""

    route_id: str
    score: int
    comment: str | None


Decision = SendReply | LookUp | HandToPerson | SurveyAnswered


@dataclass(frozen=True, slots=True)
class Step:
    """``conversation`` as it now stands and its decisions. ``closed``: a conversation
    this event ended (in state ``closed``) when the message was not the survey's
    answer; the message then started ``conversation``, a new one, and is its first."""

    conversation: Conversation
    decisions: tuple[Decision, ...]
    closed: Conversation | None = None


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime (got naive {now.isoformat()})")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _has(phrase: str, words: list[str], joined: str) -> bool:
    if " " in phrase:
        return f" {phrase} " in joined
    return phrase in words


def detect_language(text: str, config: TextConfig) -> str | None:
    """The language whose words the text has most of (language, intent and agent
    words); None when no language has more than the others."""
    words = _words(text)
    joined = f" {' '.join(words)} "
    scores: dict[str, int] = {}
    for lang in config.languages:
        pool = set(config.language_words.get(lang, ()))
        for rule in config.intents:
            pool.update(rule.keywords.get(lang, ()))
        scores[lang] = sum(1 for p in pool if _has(p, words, joined))
    best = max(scores.values(), default=0)
    top = [lang for lang, s in scores.items() if s == best]
    return top[0] if best > 0 and len(top) == 1 else None


def find_intent(text: str, config: TextConfig, language: str | None) -> IntentRule | None:
    """The intent with the most keyword hits (the conversation's language first, then
    any); ties go to the first in the file."""
    words = _words(text)
    joined = f" {' '.join(words)} "
    langs = [language] if language else []
    langs += [lang for lang in config.languages if lang != language]
    for lang in langs:
        best: tuple[int, IntentRule] | None = None
        for rule in config.intents:
            hits = sum(1 for p in rule.keywords.get(lang, ()) if _has(p, words, joined))
            if hits and (best is None or hits > best[0]):
                best = (hits, rule)
        if best is not None:
            return best[1]
    return None


def _matches(table: dict[str, tuple[str, ...]], text: str,
             prefer: str | None) -> str | None:
    """The language of the first word of ``table`` found in ``text`` (``prefer`` first)."""
    words = _words(text)
    joined = f" {' '.join(words)} "
    order = ([prefer] if prefer in table else []) + [lang for lang in table if lang != prefer]
    for lang in order:
        if any(_has(p, words, joined) for p in table[lang]):
            return lang
    return None


def handle(conv: Conversation | None, event: Event, config: TextConfig, now: datetime, *,
           channel: Channel | None = None, customer: str | None = None, via: str = ""
           ) -> Step:
    """The next step of a conversation. ``conv`` None: a first message, of ``customer``
    on ``channel`` (both required then) to ``via`` (replies go out from there)."""
    _check_aware(now)
    if conv is None:
        if channel is None or customer is None or not isinstance(event, MessageReceived):
            raise ValueError("a new conversation starts with a message, its channel and "
                             "customer")
        conv = Conversation(f"{channel}:{customer}:{now.strftime('%Y%m%dT%H%M%S%f')}",
                            channel, customer, now, now, via=via)
    conv = replace(conv, updated_at=now)
    match event:
        case MessageReceived():
            if conv.state == "survey":
                return _on_survey_reply(conv, event, config, now)
            return _on_message(conv, event, config)
        case LookupAnswered():
            return _on_lookup(conv, event, config)
        case LookupFailed():
            return _on_lookup_failed(conv, event, config)
        case ChatClosed():
            return _on_chat_closed(conv, event, config)
        case _:
            raise TypeError(f"not a conversation event: {event!r}")


def survey_answer(text: str, low: int, high: int) -> tuple[int, str | None] | None:
    """``(score, comment)`` when ``text`` starts with a whole number from ``low`` to
    ``high`` (``"4"``, ``"4/5"`` with ``high`` 5, ``" 5 thanks"``); the comment is what
    follows (None when nothing does). None: not an answer (``"4.5"``, ``"12345"``,
    ``"4/10"`` on a scale to 5, ``"agent"``)."""
    m = _SCORE.match(text)
    if m is None:
        return None
    score = int(m.group(1))
    if not low <= score <= high or (m.group(2) is not None and int(m.group(2)) != high):
        return None
    comment = m.group(3).strip().lstrip(",.;:!-\u2013\u2014 \t\n").strip()
    return score, comment or None


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _on_chat_closed(conv: Conversation, ev: ChatClosed, config: TextConfig) -> Step:
    if conv.state in ("survey", "closed"):  # already closed (a repeated close): nothing
        return Step(conv, ())
    lang = _lang(conv, config)
    survey = config.survey
    if survey is not None and ev.served:
        text = _fill(config.message("survey", lang), {"min": str(survey.min_score),
                                                      "max": str(survey.max_score)})
        return Step(replace(conv, state="survey", survey_route=ev.route_id, pending=None,
                            survey_asked_at=conv.updated_at), (SendReply(text),))
    return Step(replace(conv, state="closed", pending=None),
                (SendReply(config.message("closed", lang)),))


def _on_survey_reply(conv: Conversation, ev: MessageReceived, config: TextConfig,
                     now: datetime) -> Step:
    survey = config.survey
    in_time = conv.survey_asked_at is None or now - conv.survey_asked_at <= SURVEY_ANSWER_WINDOW
    got = (survey_answer(ev.text, survey.min_score, survey.max_score)
           if survey is not None and conv.survey_route is not None and in_time else None)
    ended = replace(conv, state="closed")
    if got is not None:
        assert conv.survey_route is not None
        score, comment = got
        return Step(ended, (SurveyAnswered(conv.survey_route, score, comment),
                            SendReply(config.message("survey_thanks", _lang(conv, config)))))
    # not an answer: the customer writes about something else, a new conversation
    new = handle(None, ev, config, now, channel=conv.channel, customer=conv.customer,
                 via=conv.via)
    fresh = replace(new.conversation, id=_next_id(new.conversation.id, conv.id))
    return Step(fresh, new.decisions, closed=ended)


def _next_id(new: str, old: str) -> str:
    """``new``, or, when the ended conversation has that id (both began at the same
    instant), the next ``new-N`` after it."""
    if old != new and not old.startswith(new + "-"):
        return new
    tail = old[len(new) + 1:] if old != new else "0"
    return f"{new}-{int(tail) + 1 if tail.isdigit() else 1}"


def _lang(conv: Conversation, config: TextConfig) -> str:
    return conv.language or config.default_language


def _to_person(conv: Conversation, config: TextConfig, reason: str,
               before: tuple[Decision, ...] = (), lead: str = "") -> Step:
    lang = _lang(conv, config)
    notice = config.message("handed_to_person", lang)
    conv = replace(conv, state="waiting-agent", handed_reason=reason, pending=None,
                   language=lang)
    return Step(conv, (*before, HandToPerson(conv.channel, conv.customer, lang, conv.intent,
                                             reason, f"{lead} {notice}".strip())))


def _on_message(conv: Conversation, ev: MessageReceived, config: TextConfig) -> Step:
    pre: list[Decision] = []
    if conv.language is None:
        conv = replace(conv, language=detect_language(ev.text, config))
    if ev.secure_found:
        pre.append(SendReply(config.message("secure", _lang(conv, config))
                             .replace("${secure_line}", config.secure_line)))
    if conv.state == "waiting-agent":
        # the person (the router's part) answers from here; self-service stays quiet
        return Step(conv, tuple(pre))
    if conv.state == "looking-up":
        return Step(conv, tuple(pre))
    asked = _matches(config.agent_words, ev.text, conv.language)
    if asked is not None:
        if conv.language is None:
            conv = replace(conv, language=asked)
        return _to_person(conv, config, "asked for a person", tuple(pre))
    if conv.state == "asking-language":
        choice = _language_choice(ev.text, config)
        if choice is not None:
            conv = replace(conv, language=choice, state="self-service")
            return Step(conv, (*pre, SendReply(config.message("not_understood", choice))))
    if conv.state == "awaiting-feedback":
        if _matches(config.no_words, ev.text, conv.language) is not None \
                and find_intent(ev.text, config, conv.language) is None:
            return _to_person(conv, config, "self-service did not help", tuple(pre))
        if _matches(config.yes_words, ev.text, conv.language) is not None \
                and find_intent(ev.text, config, conv.language) is None:
            conv = replace(conv, state="self-service", pending=None)
            return Step(conv, (*pre, SendReply(config.message("glad", _lang(conv, config)))))
    rule = find_intent(ev.text, config, conv.language)
    if rule is None:
        if ev.secure_found:  # the secure-line notice is the answer
            return Step(conv, tuple(pre))
        if conv.language is None and conv.state != "asking-language" and len(config.languages) > 1:
            conv = replace(conv, state="asking-language")
            return Step(conv, (*pre, SendReply(config.message("ask_language",
                                                              config.default_language))))
        conv = replace(conv, not_understood=conv.not_understood + 1,
                       state="self-service" if conv.state != "asking-language"
                       else conv.state)
        if conv.not_understood >= 2:
            return _to_person(conv, config, "not understood twice", tuple(pre))
        return Step(conv, (*pre, SendReply(config.message("not_understood",
                                                          _lang(conv, config)))))
    conv = replace(conv, intent=rule.name)
    if conv.language is None:
        conv = replace(conv, language=config.default_language)
    if rule.name in conv.answered:
        return _to_person(conv, config, f"asked twice ({rule.name})", tuple(pre))
    if rule.answer is None:
        return _to_person(conv, config, f"{rule.name}: no self-service answer", tuple(pre))
    if rule.lookup is not None:
        order = _ORDER.search(ev.text)
        names = {"customer": conv.customer, "order": order.group(0) if order else ""}
        url = _PLACEHOLDER.sub(lambda m: quote(names.get(m.group(1), ""), safe=""),
                               rule.lookup.url)
        conv = replace(conv, state="looking-up", pending=rule.name)
        return Step(conv, (*pre, LookUp(rule.name, url, rule.lookup.timeout_s)))
    return _answered(conv, rule.name, rule.answer[_lang(conv, config)], config, tuple(pre))


def _answered(conv: Conversation, intent: str, text: str, config: TextConfig,
              pre: tuple[Decision, ...]) -> Step:
    conv = replace(conv, state="awaiting-feedback", pending=intent,
                   answered=(*conv.answered, intent))
    help_q = config.message("did_it_help", _lang(conv, config))
    return Step(conv, (*pre, SendReply(f"{text} {help_q}")))


def _language_choice(text: str, config: TextConfig) -> str | None:
    for w in _words(text):
        if w in _LANGUAGE_CHOICES and _LANGUAGE_CHOICES[w] < len(config.languages):
            return config.languages[_LANGUAGE_CHOICES[w]]
        lang = _LANGUAGE_NAMES.get(w)
        if lang in config.languages:
            return lang
    return None


def _rule(config: TextConfig, name: str) -> IntentRule | None:
    return next((r for r in config.intents if r.name == name), None)


def _on_lookup(conv: Conversation, ev: LookupAnswered, config: TextConfig) -> Step:
    rule = _rule(config, ev.intent)
    if conv.state != "looking-up" or conv.pending != ev.intent or rule is None \
            or rule.answer is None:
        return Step(conv, ())
    template = rule.answer[_lang(conv, config)]
    missing = [n for n in _PLACEHOLDER.findall(template) if n not in ev.values]
    if missing:
        return _on_lookup_failed(conv, LookupFailed(ev.intent, "the answer has no "
                                                    + ", ".join(missing)), config)
    text = _PLACEHOLDER.sub(lambda m: ev.values[m.group(1)], template)
    return _answered(conv, ev.intent, text, config, ())


def _on_lookup_failed(conv: Conversation, ev: LookupFailed, config: TextConfig) -> Step:
    if conv.state != "looking-up" or conv.pending != ev.intent:
        return Step(conv, ())
    lead = config.message("lookup_failed", _lang(conv, config))
    return _to_person(conv, config, f"self-service could not answer ({ev.why})", (), lead)
