"""The one-question text survey after a chat, in the pure conversation core."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from text import (
    MASK,
    ChatClosed,
    HandToPerson,
    MessageReceived,
    SendReply,
    SurveyAnswered,
    TextConfig,
    handle,
    load_text_config,
    mask_secure,
    survey_answer,
)
from text.conversation import Conversation

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=12)


@pytest.fixture(scope="module")
def config() -> TextConfig:
    return load_text_config(REPO / "dialplans" / "text.yaml")


def _with_agent(config: TextConfig, lang_text: str = "AGENT") -> Conversation:
    step = handle(None, MessageReceived("m1", lang_text), config, NOW, channel="sms",
                  customer="+15550123", via="+15550100")
    assert step.conversation.state == "waiting-agent"
    return step.conversation


def _surveyed(config: TextConfig, lang_text: str = "AGENT") -> Conversation:
    step = handle(_with_agent(config, lang_text), ChatClosed("r#1"), config, LATER)
    return step.conversation


def test_chat_closed_asks_the_survey_question(config: TextConfig) -> None:
    conv = _with_agent(config)
    step = handle(conv, ChatClosed("sms:+15550123:x#1"), config, LATER)
    assert step.conversation.state == "survey"
    assert step.conversation.survey_route == "sms:+15550123:x#1"
    assert step.decisions == (SendReply(
        "How did we do? Reply with a number from 1 (poor) to 5 (great)."),)
    assert step.closed is None


def test_the_question_is_in_the_customer_s_language(config: TextConfig) -> None:
    conv = _surveyed(config, "quiero hablar con un agente")
    assert conv.language == "es" and conv.state == "survey"
    step = handle(conv, MessageReceived("m2", "5"), config, LATER)
    assert step.decisions[-1] == SendReply("Gracias por su respuesta.")
    step = handle(_with_agent(config, "je veux un conseiller"), ChatClosed("r"), config, LATER)
    [reply] = step.decisions
    assert isinstance(reply, SendReply) and reply.text.startswith("Comment s'est passé")
    assert "de 1 (mauvais) à 5 (excellent)" in reply.text


def test_without_a_survey_the_chat_just_closes(config: TextConfig) -> None:
    off = replace(config, survey=None)
    step = handle(_with_agent(off), ChatClosed("r#1"), off, LATER)
    assert step.conversation.state == "closed"
    assert step.decisions == (SendReply("This conversation is closed. Write again any time."),)


def test_a_chat_no_agent_had_gets_no_survey(config: TextConfig) -> None:
    step = handle(_with_agent(config), ChatClosed("r#1", served=False), config, LATER)
    assert step.conversation.state == "closed"
    assert step.decisions == (SendReply(config.message("closed", "en")),)


def test_closing_twice_does_nothing_more(config: TextConfig) -> None:
    conv = _surveyed(config)
    again = handle(conv, ChatClosed("r#1"), config, LATER)
    assert again.conversation.state == "survey" and again.decisions == ()
    closed = handle(replace(conv, state="closed"), ChatClosed("r#1"), config, LATER)
    assert closed.decisions == ()


@pytest.mark.parametrize(("text", "score", "comment"), [
    ("4", 4, None), ("4/5", 4, None), (" 5 thanks", 5, "thanks"), ("1", 1, None),
    ("3 / 5 - slow to answer", 3, "slow to answer"), ("5!", 5, None),
    ("2, the agent was rude", 2, "the agent was rude"), ("5\n", 5, None),
])
def test_a_number_in_range_is_the_answer(config: TextConfig, text: str, score: int,
                                         comment: str | None) -> None:
    step = handle(_surveyed(config), MessageReceived("m9", text), config, LATER)
    assert step.conversation.state == "closed" and step.closed is None
    assert step.decisions == (SurveyAnswered("r#1", score, comment),
                              SendReply("Thank you for your answer."))


@pytest.mark.parametrize("text", ["0", "6", "4.5", "12345 where is my order", "4/10",
                                  "agent", "what are your opening hours?", "", "five"])
def test_anything_else_starts_a_new_conversation(config: TextConfig, text: str) -> None:
    old = _surveyed(config)
    step = handle(old, MessageReceived("m9", text), config, LATER)
    assert step.closed is not None
    assert step.closed.id == old.id and step.closed.state == "closed"
    assert step.closed.survey_route == "r#1"  # which survey went unanswered
    new = step.conversation
    assert new.id != old.id and new.started_at == LATER and new.state != "survey"
    assert (new.channel, new.customer, new.via) == ("sms", "+15550123", "+15550100")
    assert not any(isinstance(d, SurveyAnswered) for d in step.decisions)
    # the message is handled as a first message: the same decisions as a fresh start
    fresh = handle(None, MessageReceived("m9", text), config, LATER, channel="sms",
                   customer="+15550123", via="+15550100")
    assert step.decisions == fresh.decisions
    assert replace(new, id=fresh.conversation.id) == fresh.conversation


def test_the_new_conversation_reaches_a_person_when_asked(config: TextConfig) -> None:
    step = handle(_surveyed(config), MessageReceived("m9", "agent please"), config, LATER)
    assert step.conversation.state == "waiting-agent"
    assert isinstance(step.decisions[-1], HandToPerson)


def test_same_instant_gets_a_distinct_id(config: TextConfig) -> None:
    """A conversation begun at the same instant as the one it follows still gets its own
    id (a frozen clock; the store keys conversations by id)."""
    first = _surveyed(config)
    same = replace(first, started_at=LATER, id=f"sms:+15550123:{LATER:%Y%m%dT%H%M%S%f}")
    a = handle(same, MessageReceived("m2", "hello"), config, LATER).conversation
    assert a.id == same.id + "-1"
    b = handle(replace(a, state="survey", survey_route="r#2"), MessageReceived("m3", "hi"),
               config, LATER).conversation
    assert b.id == same.id + "-2"


def test_a_card_number_in_the_comment_stays_masked(config: TextConfig) -> None:
    m = mask_secure("4 but I typed 4111 1111 1111 1111 earlier")
    step = handle(_surveyed(config), MessageReceived("m9", m.text, m.secure_found), config,
                  LATER)
    [answered, _] = step.decisions
    assert isinstance(answered, SurveyAnswered) and answered.score == 4
    assert answered.comment == f"but I typed {MASK} earlier"


def test_survey_answer_scale() -> None:
    assert survey_answer("10", 0, 10) == (10, None)
    assert survey_answer("0 meh", 0, 10) == (0, "meh")
    assert survey_answer("10", 1, 5) is None
    assert survey_answer("5/5 great", 1, 5) == (5, "great")
    assert survey_answer("4,5", 1, 5) is None


def test_an_answer_after_the_window_is_a_new_conversation(config: TextConfig) -> None:
    from text import SURVEY_ANSWER_WINDOW

    conv = _surveyed(config)
    assert conv.survey_asked_at == LATER
    on_time = handle(conv, MessageReceived("m9", "4"), config, LATER + SURVEY_ANSWER_WINDOW)
    assert isinstance(on_time.decisions[0], SurveyAnswered)
    late = handle(conv, MessageReceived("m9", "4"), config,
                  LATER + SURVEY_ANSWER_WINDOW + timedelta(seconds=1))
    assert late.closed is not None and late.closed.state == "closed"
    assert not any(isinstance(d, SurveyAnswered) for d in late.decisions)
