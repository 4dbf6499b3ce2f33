"""Loading flow files: read safely, validate everything, compile, or load nothing at all."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ivr.checks import DEFAULT_QUEUES, semantic_problems
from ivr.compiler import compile_flow
from ivr.errors import FlowInvalid, Problem
from ivr.flow import Flow
from ivr.schema_check import schema_problems
from ivr.yamlsafe import parse_yaml, read_bytes

__all__ = ["check_flow", "load_flow", "load_prompt_catalog", "Catalog"]

Catalog = Mapping[str, Mapping[str, str]]


def load_prompt_catalog(path: str | Path | None = None) -> tuple[Catalog | None, list[Problem]]:
    """The prompt catalog as prompt id -> {lang: text} (``prompts.catalog.load_catalog``)."""
    from prompts.catalog import CatalogError, load_catalog

    try:
        loaded = load_catalog(path)
    except CatalogError as exc:
        found = getattr(exc, "problems", None) or []
        problems = [Problem(str(getattr(p, "file", path or "prompts/catalog.yaml")),
                            str(getattr(p, "node", "-")), str(getattr(p, "key", "-")),
                            str(getattr(p, "message", p)), str(getattr(p, "code", "catalog")))
                    for p in found]
        return None, problems or [Problem(str(path or "prompts/catalog.yaml"), "-", "-",
                                          f"prompt catalog unreadable: {exc}", "catalog")]
    return _as_mapping(loaded), []


def _as_mapping(loaded: Any) -> Catalog:
    """Accept a plain mapping or an object exposing one (``.prompts``/``.entries``)."""
    for attr in ("prompts", "entries"):
        inner = getattr(loaded, attr, None)
        if isinstance(inner, Mapping):
            loaded = inner
            break
    out: dict[str, dict[str, str]] = {}
    if isinstance(loaded, Mapping):
        for pid, entry in loaded.items():
            texts = getattr(entry, "texts", entry)
            if isinstance(texts, Mapping):
                out[str(pid)] = {str(k): str(v) for k, v in texts.items() if v}
    return out


def _validate(path: str | Path, catalog: Catalog | None,
              queues: Iterable[str]) -> tuple[dict[str, Any] | None, bytes, list[Problem]]:
    name = str(path)
    source, problems = read_bytes(path)
    if source is None:
        return None, b"", problems
    doc, problems = parse_yaml(source, name)
    if problems or doc is None:
        return None, source, problems
    problems = schema_problems(doc, name) + semantic_problems(doc, name, catalog, queues)
    return doc, source, problems


def check_flow(path: str | Path, *, catalog: Catalog | None = None,
               queues: Iterable[str] = DEFAULT_QUEUES) -> list[Problem]:
    """Every problem of the flow file at ``path`` (empty list: the flow is good)."""
    try:
        _doc, _src, problems = _validate(path, catalog, queues)
    except RecursionError:
        return [Problem(str(path), "-", "-", "document nested too deeply", "too-deep")]
    return problems


def load_flow(path: str | Path, *, catalog: Catalog | None = None,
              queues: Iterable[str] = DEFAULT_QUEUES) -> Flow:
    """Validate and compile; raises ``FlowInvalid`` (with every problem) and loads nothing."""
    try:
        doc, source, problems = _validate(path, catalog, queues)
    except RecursionError:
        raise FlowInvalid([Problem(str(path), "-", "-", "document nested too deeply",
                                   "too-deep")]) from None
    if problems or doc is None:
        raise FlowInvalid(problems)
    return compile_flow(doc, str(path), source)
