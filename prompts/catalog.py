"""The prompt catalog: prompt id -> text per language, optional recorded files.

``prompts/catalog.yaml`` is admin-edited, so it is untrusted input: every
problem is reported at once as ``file:prompt-id:language: message [code]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_CATALOG",
    "PromptsError",
    "CatalogError",
    "Problem",
    "PromptEntry",
    "Catalog",
    "load_catalog",
]

DEFAULT_CATALOG = Path(__file__).resolve().parent / "catalog.yaml"
REQUIRED_LANGUAGES = ("en", "es", "fr")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Asterisk language directories: "en", "es", "fr", "en_GB", "pt_BR" ...
_LANG = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_MAX_TEXT = 2000
_MAX_BYTES = 4 * 1024 * 1024


class PromptsError(Exception):
    """Root of the prompts package's exceptions."""


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    prompt_id: str
    lang: str
    message: str
    code: str

    def __str__(self) -> str:
        return f"{self.file}:{self.prompt_id}:{self.lang}: {self.message} [{self.code}]"


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate the catalog (default: ``prompts/catalog.yaml``)."""
    p = Path(path) if path is not None else DEFAULT_CATALOG
    name = str(p)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CatalogError(
            [Problem(name, "-", "-", f"cannot read: {exc.strerror}", "unreadable")]
        ) from exc
    if len(raw) > _MAX_BYTES:
        raise CatalogError(
            [Problem(name, "-", "-", f"file larger than {_MAX_BYTES} bytes", "too-large")]
        )
    try:
        doc = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    except UnicodeDecodeError as exc:
        raise CatalogError([Problem(name, "-", "-", f"not UTF-8: {exc}", "encoding")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CatalogError(
            [Problem(name, "-", "-", f"{where}{exc}".replace("\n", " "), "yaml")]
        ) from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise CatalogError(
            [Problem(name, "-", "-", "expected a mapping of prompt ids", "not-mapping")]
        )
    problems: list[Problem] = []
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

    if not isinstance(pid, str) or not _ID.match(pid):
        add("-", "prompt id must be lower-case letters, digits and '-' (max 63)", "bad-id")
        return None
    if not isinstance(body, dict) or not body:
        add("-", "expected a mapping of language -> text (and optional 'files')", "bad-entry")
        return None
    texts: dict[str, str] = {}
    files: dict[str, Path] = {}
    for key, value in body.items():
        if key == "files":
            if not isinstance(value, dict):
                add("files", "expected a mapping of language -> file path", "bad-files")
                continue
            for lang, rel in value.items():
                if not isinstance(lang, str) or not _LANG.match(lang):
                    add(str(lang), "bad language code (e.g. en, es, fr, pt_BR)", "bad-language")
                    continue
                if not isinstance(rel, str) or not rel:
                    add(lang, "file override must be a path string", "bad-file")
                    continue
                target = (base / rel).resolve()
                if not target.is_file():
                    add(lang, f"override file {rel!r} does not exist", "missing-file")
                    continue
                files[lang] = target
            continue
        if not isinstance(key, str) or not _LANG.match(key):
            add(
                str(key),
                "unknown key; allowed: language codes (en, es, fr ...) and 'files'",
                "unknown-key",
            )
            continue
        if not isinstance(value, str) or not value.strip():
            add(key, "text must be a non-empty string", "empty-text")
            continue
        if len(value) > _MAX_TEXT:
            add(key, f"text longer than {_MAX_TEXT} characters", "text-too-long")
            continue
        texts[key] = value.strip()
    return PromptEntry(pid, texts, files)
