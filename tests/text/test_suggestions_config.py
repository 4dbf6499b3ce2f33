"""``suggestions`` in text.yaml: the chat panel's canned reply lines, checked like the
rest of the file (every problem at once, as `adminfiles.Problem`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from text import check_text_config, load_text_config
from text.config import MAX_SUGGESTIONS

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "dialplans" / "text.yaml"


def shipped() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return doc


def test_the_shipped_suggestions_and_the_intents_answer() -> None:
    config = load_text_config(CONFIG)
    assert config.suggestions is not None and set(config.suggestions) == {"en", "es", "fr"}
    # an intent with a plain answer comes first, in the chat's language
    fr = config.suggested("opening-hours", "fr")
    assert fr[0].startswith("Nous sommes ouverts") and fr[1:] == config.suggestions["fr"]
    # an answer that needs a lookup to fill is not offered; no language: the default
    assert config.suggested("order-status", None) == config.suggestions["en"]
    assert config.suggested(None, "de") == config.suggestions["en"]


def test_without_suggestions_only_the_answer() -> None:
    doc = shipped()
    del doc["suggestions"]
    config, problems = check_text_config(doc, "text.yaml")
    assert problems == [] and config is not None and config.suggestions is None
    assert config.suggested("billing", "en") == ()
    assert config.suggested("opening-hours", "es")[0].startswith("Abrimos")


def test_every_problem_of_the_suggestions_at_once() -> None:
    doc = shipped()
    doc["suggestions"] = {
        "en": ["Hello ${name}", "", "fine"],  # a placeholder, an empty text
        "es": "hola",  # not a list
        "de": ["Hallo"],  # not one of languages
        # fr missing
    }
    config, problems = check_text_config(doc, "text.yaml")
    assert config is None
    got = sorted((p.key, p.code) for p in problems)
    assert got == sorted([("en[0]", "unknown-placeholder"), ("en[1]", "wrong-type"),
                          ("es", "wrong-type"), ("de", "bad-choice"),
                          ("fr", "missing-translation")]), problems
    assert all(p.node == "suggestions" for p in problems)


def test_too_many_or_too_long_suggestions() -> None:
    doc = shipped()
    doc["suggestions"]["en"] = [f"line {i}" for i in range(MAX_SUGGESTIONS + 1)]
    doc["suggestions"]["fr"] = ["x" * 641]
    config, problems = check_text_config(doc, "text.yaml")
    assert config is None
    assert sorted((p.key, p.code) for p in problems) == [("en", "out-of-range"),
                                                          ("fr[0]", "out-of-range")]
