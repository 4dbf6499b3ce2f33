"""The prompt catalog loader: admin-edited, so every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompts.catalog import DEFAULT_CATALOG, CatalogError, load_catalog


def test_shipped_catalog_has_every_prompt_in_en_es_fr() -> None:
    cat = load_catalog()
    assert cat.path == DEFAULT_CATALOG
    assert {"en", "es", "fr"} <= set(cat.languages)
    assert cat.missing_translations() == []
    for pid in (
        "welcome",
        "main-menu",
        "no-input",
        "invalid-option",
        "goodbye",
        "please-wait",
        "connecting-to-agent",
        "all-agents-busy",
        "queue-position-1",
        "closed",
        "callback-offer",
        "survey-score",
        "survey-thanks",
        "enter-card-number",
        "choose-language",
    ):
        assert pid in cat.ids
    assert "press 1" in cat.text("main-menu", "en")
    assert cat.has("welcome", "fr") and not cat.has("welcome", "de")


def test_text_errors_name_file_prompt_and_language() -> None:
    cat = load_catalog()
    with pytest.raises(KeyError, match=r"catalog.yaml:welcome:de: .*\[missing-translation\]"):
        cat.text("welcome", "de")
    with pytest.raises(KeyError, match=r"nope:-: no such prompt"):
        cat.text("nope", "en")


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "good:\n  en: Hello\n"
        "Bad_Id:\n  en: x\n"
        "empty:\n  en: ''\n"
        "weird:\n  en: ok\n  klingon-language: x\n"
        "override:\n  en: ok\n  files: {fr: nothere.wav}\n"
        "notmap: just text\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    lines = str(err.value).splitlines()
    codes = sorted(p.code for p in err.value.problems)
    assert codes == ["bad-id", "empty-text", "missing-file", "unknown-key", "wrong-type"]
    assert all(line.startswith(f"{path}:") for line in lines)
    assert any(
        ":override:fr: override file 'nothere.wav' does not exist [missing-file]" in line
        for line in lines
    )
    assert any(":weird:klingon-language: unknown key 'klingon-language' (allowed: language "
               "codes like en, es, fr, pt_BR, files) [unknown-key]" in line for line in lines)
    assert f"{path}:notmap:-: expected a mapping of language -> text (and optional 'files'), " \
           "got str 'just text' [wrong-type]" in lines


def test_duplicate_prompt_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("welcome:\n  en: a\nwelcome:\n  en: b\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:welcome:-: key 'welcome' given twice (lines 1 and 3); only one is allowed "
        "[duplicate-key]"
    ]


def test_yaml_syntax_and_missing_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"bad.yaml:-:-: not valid YAML: .*\[yaml-syntax\]"):
        load_catalog(bad)
    with pytest.raises(CatalogError, match=r"\[unreadable\]"):
        load_catalog(tmp_path / "none.yaml")


def test_override_file_resolves_next_to_catalog(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "hi.wav").write_bytes(b"RIFF")
    path = tmp_path / "c.yaml"
    path.write_text("hi:\n  en: Hi\n  files: {es: rec/hi.wav}\n", encoding="utf-8")
    cat = load_catalog(path)
    assert cat.file("hi", "es") == (tmp_path / "rec" / "hi.wav").resolve()
    assert cat.has("hi", "es") and cat.languages == ("en", "es")
    assert [str(p) for p in cat.missing_translations(("en", "es", "fr"))] == [
        f"{path}:hi:fr: missing translation [missing-translation]"
    ]
