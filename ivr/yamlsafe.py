"""Reading an admin's YAML file as untrusted input.

Bounded before parsing: size, nesting depth (counted on PyYAML's event stream, which
is iterative, so a 100 000-deep ``[[[[`` cannot exhaust the stack), no anchors/aliases
(they allow cyclic and exponentially expanding documents), no duplicate keys (PyYAML
silently keeps the last one), dates left as strings. Problems are returned, never raised.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ivr.errors import Problem

__all__ = ["read_yaml", "read_bytes", "parse_yaml", "MAX_FILE_BYTES", "MAX_NESTING"]

MAX_FILE_BYTES = 256 * 1024
MAX_NESTING = 16


class _FlowLoader(yaml.SafeLoader):
    """SafeLoader without timestamp resolution that records duplicate keys."""

    duplicates: list[tuple[str, int]]

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    self.duplicates.append((str(key), key_node.start_mark.line + 1))
                seen.add(key)
            except TypeError:
                pass
        return super().construct_mapping(node, deep=deep)


_FlowLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"


def read_bytes(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES
               ) -> tuple[bytes | None, list[Problem]]:
    """The file's bytes, or a problem when it is unreadable or larger than ``max_bytes``."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        return None, [Problem(name, "-", "-", f"cannot read the file: {exc.strerror or exc}",
                              "unreadable")]
    if len(raw) > max_bytes:
        return None, [Problem(name, "-", "-", f"file larger than {max_bytes} bytes; flows are "
                              "small text files", "file-too-large")]
    return raw, []


def read_yaml(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES,
              max_nesting: int = MAX_NESTING) -> tuple[Any, list[Problem]]:
    """Return ``(document, problems)``; the document is None when any problem was found."""
    raw, problems = read_bytes(path, max_bytes=max_bytes)
    if raw is None:
        return None, problems
    return parse_yaml(raw, str(path), max_nesting=max_nesting)


def parse_yaml(raw: bytes, name: str, *, max_nesting: int = MAX_NESTING
               ) -> tuple[Any, list[Problem]]:
    """Parse already-read bytes with the same rules as ``read_yaml``."""

    def problem(message: str, code: str) -> tuple[Any, list[Problem]]:
        return None, [Problem(name, "-", "-", message, code)]

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return problem(f"not UTF-8 text (byte {exc.start})", "encoding")
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                return problem(f"YAML aliases (*{event.anchor}) are not allowed in flows: they "
                               f"allow cyclic references; write the value out "
                               f"({_where(event.start_mark)})", "yaml-alias")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > max_nesting:
                    return problem(f"nested deeper than {max_nesting} levels "
                                   f"({_where(event.start_mark)})", "too-deep")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        loader = _FlowLoader(text)
        loader.duplicates = []
        try:
            doc = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return problem(f"broken YAML: {exc.problem or exc.context} ({_where(mark)})",
                       "yaml-syntax")
    except yaml.YAMLError as exc:
        return problem(f"broken YAML: {exc}", "yaml-syntax")
    except RecursionError:
        return problem(f"nested too deeply to read (limit {max_nesting})", "too-deep")
    if loader.duplicates:
        return None, [Problem(name, "-", key, f"key given twice (line {line}); only one is allowed",
                              "duplicate-key") for key, line in loader.duplicates]
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else type(doc).__name__
        return problem(f"a flow file must be a mapping at the top level, not {kind}",
                       "wrong-type")
    return doc, []
