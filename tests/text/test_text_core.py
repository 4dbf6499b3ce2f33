"""The text conversation core: pure, no doubles needed (DESIGN principle 10)."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from text import (
    MASK,
    HandToPerson,
    LookUp,
    LookupAnswered,
    LookupFailed,
    MessageReceived,
    SendReply,
    TextConfig,
    TextConfigError,
    check_text_config,
    handle,
    load_text_config,
    luhn_valid,
    mask_secure,
)
from text.conversation import Conversation

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "dialplans" / "text.yaml"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> TextConfig:
    return load_text_config(CONFIG)


def say(config: TextConfig, conv: Conversation | None, text: str, n: int = 1
        ) -> tuple[Conversation, tuple[object, ...]]:
    m = mask_secure(text)
    step = handle(conv, MessageReceived(f"m{n}", m.text, m.secure_found), config, NOW,
                  channel="sms", customer="+15550123")
    return step.conversation, step.decisions


def test_luhn_and_masking() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    for typed in ("4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111",
                  "5500 0000 0000 0004", "378282246310005"):
        m = mask_secure(f"my card is {typed} thanks")
        assert m.secure_found and m.text == f"my card is {MASK} thanks", typed
    for harmless in ("order 12345", "call +15550123", "4111 1111 1111 1112",
                     "ref 1234567890123"):
        assert mask_secure(harmless) == mask_secure(harmless)
        assert not mask_secure(harmless).secure_found, harmless


def test_now_must_be_aware(config: TextConfig) -> None:
    with pytest.raises(ValueError, match="aware"):
        handle(None, MessageReceived("m", "hi"), config, datetime(2026, 12, 1),
               channel="sms", customer="x")


@pytest.mark.parametrize(("text", "lang"), [
    ("I want an agent", "en"), ("quiero hablar con un agente", "es"),
    ("je veux un conseiller", "fr"), ("AGENT", "en"), ("persona por favor", "es"),
])
def test_agent_words_reach_a_person_at_once(config: TextConfig, text: str, lang: str) -> None:
    conv, ds = say(config, None, text)
    assert conv.state == "waiting-agent" and conv.language == lang
    assert len(ds) == 1 and isinstance(ds[0], HandToPerson)
    assert ds[0].reason == "asked for a person"
    assert ds[0].notice == config.message("handed_to_person", lang)


def test_opening_hours_answered_then_no_means_a_person(config: TextConfig) -> None:
    conv, ds = say(config, None, "what are your opening hours?")
    assert conv.state == "awaiting-feedback" and conv.intent == "opening-hours"
    assert isinstance(ds[0], SendReply) and "Monday to Friday" in ds[0].text
    conv, ds = say(config, conv, "no", 2)
    assert conv.state == "waiting-agent"
    assert isinstance(ds[0], HandToPerson) and ds[0].reason == "self-service did not help"
    assert ds[0].intent == "opening-hours"


def test_yes_closes_the_question_and_asking_twice_goes_to_a_person(config: TextConfig
                                                                   ) -> None:
    conv, _ = say(config, None, "horario por favor")
    assert conv.language == "es"
    conv, ds = say(config, conv, "sí, gracias", 2)
    assert conv.state == "self-service" and isinstance(ds[0], SendReply)
    conv, ds = say(config, conv, "¿cuál es el horario?", 3)
    assert isinstance(ds[0], HandToPerson) and ds[0].reason.startswith("asked twice")


def test_order_status_through_a_lookup(config: TextConfig) -> None:
    conv, ds = say(config, None, "where is my order 12345?")
    assert conv.state == "looking-up"
    assert isinstance(ds[0], LookUp) and ds[0].url.endswith("customer=%2B15550123&order=12345")
    step = handle(conv, LookupAnswered("order-status", {"order_id": "12345",
                                                        "status_en": "shipped"}), config, NOW)
    assert step.conversation.state == "awaiting-feedback"
    assert isinstance(step.decisions[0], SendReply)
    assert step.decisions[0].text.startswith("Order 12345: shipped.")


def test_a_failed_lookup_goes_to_a_person(config: TextConfig) -> None:
    conv, _ = say(config, None, "commande 99999 ?")
    step = handle(conv, LookupFailed("order-status", "HTTPError"), config, NOW)
    d = step.decisions[0]
    assert isinstance(d, HandToPerson) and d.language == "fr"
    assert d.notice.startswith("Je n'ai pas trouvé cette commande.")
    # an answer missing a field the template needs did not help either
    conv, _ = say(config, None, "where is my parcel 12345")
    step = handle(conv, LookupAnswered("order-status", {"order_id": "12345"}), config, NOW)
    assert isinstance(step.decisions[0], HandToPerson)


def test_an_intent_without_answer_goes_to_a_person_with_it(config: TextConfig) -> None:
    conv, ds = say(config, None, "my invoice is wrong")
    assert isinstance(ds[0], HandToPerson) and ds[0].intent == "billing"


def test_language_asked_then_not_understood_twice(config: TextConfig) -> None:
    conv, ds = say(config, None, "xyzzy")
    assert conv.state == "asking-language" and isinstance(ds[0], SendReply)
    conv, ds = say(config, conv, "3", 2)
    assert conv.language == "fr" and isinstance(ds[0], SendReply)
    conv, ds = say(config, conv, "blorp", 3)
    assert isinstance(ds[0], SendReply) and conv.not_understood == 1
    conv, ds = say(config, conv, "blarg", 4)
    assert isinstance(ds[0], HandToPerson) and ds[0].reason == "not understood twice"


def test_card_number_is_masked_and_the_secure_line_named(config: TextConfig) -> None:
    conv, ds = say(config, None, "my card is 4111 1111 1111 1111")
    assert len(ds) == 1 and isinstance(ds[0], SendReply)
    assert config.secure_line in ds[0].text and "4111" not in ds[0].text


def test_after_the_handoff_self_service_is_quiet(config: TextConfig) -> None:
    conv, _ = say(config, None, "agent")
    conv, ds = say(config, conv, "hello? opening hours?", 2)
    assert ds == () and conv.state == "waiting-agent"


def test_every_problem_of_the_file_at_once() -> None:
    doc = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    doc["surprise"] = 1
    del doc["messages"]["glad"]["fr"]
    doc["intents"]["order-status"]["lookup"]["url"] = "ftp://x/${secret}"
    doc["intents"]["opening-hours"]["answer"]["en"] = "open ${when}"
    doc["agent_words"]["de"] = ["agent"]
    doc["yes_words"]["en"] = [True]
    config, problems = check_text_config(doc, "text.yaml")
    assert config is None
    codes = sorted(p.code for p in problems)
    assert codes == sorted(["unknown-key", "missing-translation", "bad-choice",
                            "unknown-placeholder", "bad-choice", "wrong-type"]), problems
    assert any("allowed: languages" in p.message for p in problems)


def test_the_shipped_file_loads_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "text.yaml"
    bad.write_text("languages: [en]\nlanguages: [fr]\n", encoding="utf-8")
    with pytest.raises(TextConfigError) as err:
        load_text_config(bad)
    assert "[duplicate-key]" in str(err.value)


def test_a_card_number_followed_by_its_cvv_is_masked_too() -> None:
    m = mask_secure("4111 1111 1111 1111 123 exp 12/27")
    assert m.secure_found and m.text == f"{MASK} 123 exp 12/27"


def test_the_ivr_speech_intents_count_in_text_too(config: TextConfig) -> None:
    # "broadband" and "mailbox" are phrases of support-line.yaml's speech.intents only
    _, ds = say(config, None, "my broadband keeps dropping")
    assert isinstance(ds[0], HandToPerson) and ds[0].intent == "internet"
    _, ds = say(config, None, "my mailbox is full")
    assert isinstance(ds[0], HandToPerson) and ds[0].intent == "email"


def test_a_missing_ivr_flow_is_a_problem(tmp_path: Path) -> None:
    doc = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    doc["ivr_intents"] = "flows/nowhere.yaml"
    path = tmp_path / "text.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(TextConfigError) as err:
        load_text_config(path)
    assert [p.code for p in err.value.problems] == ["ivr-flow-invalid"]


def test_a_waiting_sms_customer_may_ask_to_be_called_back(config: TextConfig) -> None:
    from text import CallBackAsked

    conv, _ = say(config, None, "quiero hablar con un agente")
    assert conv.state == "waiting-agent"
    conv2, ds = say(config, conv, "mejor una llamada", 2)
    assert ds == (CallBackAsked("+15550123", config.message("callback_ok", "es")),)
    assert conv2.state == "waiting-agent"  # the adapter closes it once the route is set aside
    # other words while waiting: self-service stays quiet
    assert say(config, conv, "sigo esperando", 3)[1] == ()
    # Messenger: a page-scoped id is no number to call
    m = handle(None, MessageReceived("x1", "agent"), config, NOW, channel="messenger",
               customer="psid-1")
    assert handle(m.conversation, MessageReceived("x2", "call me"), config,
                  NOW).decisions == ()
