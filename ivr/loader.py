"""Loading flow files: read safely, validate everything, compile, or load nothing at all."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from adminfiles import TOO_DEEP, Problem, parse_yaml, read_bytes
from ivr.checks import semantic_problems
from ivr.compiler import compile_flow
from ivr.errors import FlowInvalid
from ivr.flow import Flow
from ivr.schema_check import locate, schema_problems

__all__ = ["check_flow", "load_flow", "load_prompt_catalog", "Catalog", "MAX_FLOW_BYTES"]

Catalog = Mapping[str, Mapping[str, str]]

MAX_FLOW_BYTES = 256 * 1024
_WHAT = "flow file"


def load_prompt_catalog(path: str | Path | None = None) -> tuple[Catalog | None, list[Problem]]:
    """The prompt catalog as prompt id -> {lang: text} (``prompts.catalog.load_catalog``)."""
    from prompts.catalog import CatalogError, load_catalog

    try:
        loaded = load_catalog(path)
    except CatalogError as exc:
        return None, list(exc.problems)
    return {pid: dict(entry.texts) for pid, entry in loaded.prompts.items()}, []


def _validate(path: str | Path, catalog: Catalog | None, queues: Iterable[str] | None
              ) -> tuple[dict[str, Any] | None, bytes, list[Problem]]:
    name = str(path)
    source, problems = read_bytes(path, max_bytes=MAX_FLOW_BYTES, what=_WHAT)
    if source is None:
        return None, b"", problems
    doc, problems = parse_yaml(source, name, what=_WHAT, locate=locate)
    if doc is None:
        return None, source, problems
    # Duplicate keys do not stop the checks: every problem of the file in one run.
    problems += schema_problems(doc, name) + semantic_problems(doc, name, catalog, queues)
    return doc, source, problems


def check_flow(path: str | Path, *, catalog: Catalog | None = None,
               queues: Iterable[str] | None = None) -> list[Problem]:
    """Every problem of the flow file at ``path`` (empty list: the flow is good).

    Prompts are checked against ``catalog`` and route queues against ``queues`` (the
    agent directory's), each only when given.
    """
    try:
        _doc, _src, problems = _validate(path, catalog, queues)
    except RecursionError:
        return [Problem(str(path), "-", "-", "document nested too deeply", TOO_DEEP)]
    return problems


def load_flow(path: str | Path, *, catalog: Catalog | None = None,
              queues: Iterable[str] | None = None) -> Flow:
    """Validate and compile; raises ``FlowInvalid`` (with every problem) and loads nothing."""
    try:
        doc, source, problems = _validate(path, catalog, queues)
    except RecursionError:
        raise FlowInvalid([Problem(str(path), "-", "-", "document nested too deeply",
                                   TOO_DEEP)]) from None
    if problems or doc is None:
        raise FlowInvalid(problems)
    return compile_flow(doc, str(path), source)
