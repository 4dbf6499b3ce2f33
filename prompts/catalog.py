"""The prompt catalog: prompt id -> text per language, optional recorded files.

``prompts/catalog.yaml`` is admin-edited, so it is untrusted input: it is read
by ``adminfiles.read_yaml`` (bounded, no aliases, no duplicate keys) and every
problem is reported at once as an ``adminfiles.Problem``,
``file:prompt-id:language: message [code]``, with the codes every admin file shares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adminfiles import Problem, read_yaml, unknown_key, wrong_type

__all__ = [
    "DEFAULT_CATALOG",
    "MAX_CATALOG_BYTES",
    "PromptsError",
    "CatalogError",
    "PromptEntry",
    "Catalog",
    "load_catalog",
]

DEFAULT_CATALOG = Path(__file__).resolve().parent / "catalog.yaml"
REQUIRED_LANGUAGES = ("en", "es", "fr")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Asterisk language directories: "en", "es", "fr", "en_GB", "pt_BR" ...
_LANG = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_ENTRY_KEYS = ("language codes like en, es, fr, pt_BR", "files")
_MAX_TEXT = 2000
MAX_CATALOG_BYTES = 4 * 1024 * 1024


class PromptsError(Exception):
    """Root of the prompts package's exceptions."""


class CatalogError(PromptsError):
    """The catalog cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class PromptEntry:
    prompt_id: str
    texts: Mapping[str, str]
    files: Mapping[str, Path]  # recorded overrides, resolved against the catalog's folder


@dataclass(frozen=True, slots=True)
class Catalog:
    path: Path
    prompts: Mapping[str, PromptEntry]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.prompts)

    @property
    def languages(self) -> tuple[str, ...]:
        langs = {lang for e in self.prompts.values() for lang in (*e.texts, *e.files)}
        return tuple(sorted(langs))

    def has(self, prompt_id: str, lang: str) -> bool:
        entry = self.prompts.get(prompt_id)
        return entry is not None and (lang in entry.texts or lang in entry.files)

    def text(self, prompt_id: str, lang: str) -> str:
        entry = self.prompts.get(prompt_id)
        if entry is None:
            raise KeyError(f"{self.path}:{prompt_id}:-: no such prompt [unknown-prompt]")
        if lang not in entry.texts:
            have = ", ".join(sorted(entry.texts)) or "none"
            raise KeyError(
                f"{self.path}:{prompt_id}:{lang}: no text in this language (have: {have}) "
                "[missing-translation]"
            )
        return entry.texts[lang]

    def file(self, prompt_id: str, lang: str) -> Path | None:
        """The recorded override for this prompt and language, if any."""
        entry = self.prompts.get(prompt_id)
        return None if entry is None else entry.files.get(lang)

    def missing_translations(self, languages: Iterable[str] = REQUIRED_LANGUAGES) -> list[Problem]:
        wanted = tuple(languages)
        return [
            Problem(str(self.path), pid, lang, "missing translation", "missing-translation")
            for pid in self.prompts
            for lang in wanted
            if not self.has(pid, lang)
        ]


def _locate(path: tuple[str | int, ...]) -> tuple[str, str]:
    """``(prompt id, language)`` of a key path: ``<id>.<lang>`` or ``<id>.files.<lang>``."""
    if not path:
        return "-", "-"
    rest = [str(p) for p in path[1:]]
    if len(rest) == 2 and rest[0] == "files":
        return str(path[0]), rest[1]  # a recorded file is reported under its language
    return str(path[0]), ".".join(rest) or "-"


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate the catalog (default: ``prompts/catalog.yaml``).

    `CatalogError` lists every problem of the file.
    """
    p = Path(path) if path is not None else DEFAULT_CATALOG
    name = str(p)
    doc, problems = read_yaml(p, what="prompt catalog", max_bytes=MAX_CATALOG_BYTES,
                              locate=_locate)
    if doc is None:
        raise CatalogError(problems)
    # Duplicate keys do not stop the checks: every problem of the file in one run.
    entries: dict[str, PromptEntry] = {}
    for pid, body in doc.items():
        entry = _entry(name, p.parent, pid, body, problems)
        if entry is not None:
            entries[entry.prompt_id] = entry
    if problems:
        raise CatalogError(problems)
    return Catalog(p, entries)


def _entry(
    name: str, base: Path, pid: Any, body: Any, problems: list[Problem]
) -> PromptEntry | None:
    def add(lang: str, message: str, code: str) -> None:
        problems.append(Problem(name, str(pid), lang, message, code))

    def wrong(lang: str, expected: str, value: Any) -> None:
        problems.append(wrong_type(name, str(pid), lang, expected, value))

    if not isinstance(pid, str) or not _ID.match(pid):
        add("-", "prompt id must be lower-case letters, digits and '-' (max 63)", "bad-id")
        return None
    if not isinstance(body, dict):
        wrong("-", "a mapping of language -> text (and optional 'files')", body)
        return None
    if not body:
        add("-", "no text: give language -> text (and optional 'files')", "bad-entry")
        return None
    texts: dict[str, str] = {}
    files: dict[str, Path] = {}
    for key, value in body.items():
        if key == "files":
            if not isinstance(value, dict):
                wrong("files", "a mapping of language -> file path", value)
                continue
            for lang, rel in value.items():
                if not isinstance(lang, str) or not _LANG.match(lang):
                    add(str(lang), "bad language code (e.g. en, es, fr, pt_BR)", "bad-language")
                    continue
                if not isinstance(rel, str):
                    wrong(lang, "a file path", rel)
                    continue
                if not rel:
                    add(lang, "file override must not be empty", "bad-file")
                    continue
                target = (base / rel).resolve()
                if not target.is_file():
                    add(lang, f"override file {rel!r} does not exist", "missing-file")
                    continue
                files[lang] = target
            continue
        if not isinstance(key, str) or not _LANG.match(key):
            problems.append(unknown_key(name, str(pid), str(key), _ENTRY_KEYS))
            continue
        if not isinstance(value, str):
            wrong(key, "a text", value)
            continue
        if not value.strip():
            add(key, "text must be a non-empty string", "empty-text")
            continue
        if len(value) > _MAX_TEXT:
            add(key, f"text longer than {_MAX_TEXT} characters", "text-too-long")
            continue
        texts[key] = value.strip()
    return PromptEntry(pid, texts, files)
