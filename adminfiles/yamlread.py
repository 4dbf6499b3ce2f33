"""Reading an admin's YAML file as untrusted input: one reader for every file kind.

Bounded before parsing: size (checked on the bytes, before any YAML is seen) and
nesting depth (counted on PyYAML's event stream, which is iterative, so a
100 000-deep ``[[[[`` cannot exhaust the stack). Refused: anchors' aliases (they
allow cyclic and exponentially expanding documents: "billion laughs") and
duplicate keys (PyYAML silently keeps the last one). Dates stay strings. Problems
are returned, never raised, and every alias and duplicate key is reported, not
only the first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adminfiles.problem import (
    DUPLICATE_KEY,
    ENCODING,
    FILE_TOO_LARGE,
    TOO_DEEP,
    UNREADABLE,
    WRONG_TYPE,
    YAML_ALIAS,
    YAML_SYNTAX,
    Locate,
    Problem,
    locate_dotted,
)

__all__ = ["read_yaml", "read_bytes", "parse_yaml", "MAX_FILE_BYTES", "MAX_NESTING"]

MAX_FILE_BYTES = 256 * 1024
MAX_NESTING = 16

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SKIP: Any = object()


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamp resolution (``2026-12-24`` stays a string)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _a(what: str) -> str:
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"


def read_bytes(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, what: str = "file"
               ) -> tuple[bytes | None, list[Problem]]:
    """The file's bytes, or a problem when it is unreadable or larger than ``max_bytes``."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        return None, [Problem(name, "-", "-", f"cannot read the {what}: {exc.strerror or exc}",
                              UNREADABLE)]
    if len(raw) > max_bytes:
        return None, [Problem(name, "-", "-", f"larger than {max_bytes} bytes, the limit for "
                              f"{_a(what)}; nothing of it was read", FILE_TOO_LARGE)]
    return raw, []


def read_yaml(path: str | Path, *, what: str = "file", max_bytes: int = MAX_FILE_BYTES,
              max_nesting: int = MAX_NESTING, locate: Locate = locate_dotted
              ) -> tuple[dict[Any, Any] | None, list[Problem]]:
    """``(document, problems)`` of the YAML file at ``path``; see `parse_yaml`."""
    raw, problems = read_bytes(path, max_bytes=max_bytes, what=what)
    if raw is None:
        return None, problems
    return parse_yaml(raw, str(path), what=what, max_nesting=max_nesting, locate=locate)


def parse_yaml(raw: bytes, name: str, *, what: str = "file", max_nesting: int = MAX_NESTING,
               locate: Locate = locate_dotted
               ) -> tuple[dict[Any, Any] | None, list[Problem]]:
    """Parse already-read bytes with the rules of this module.

    The document is None when it cannot be read safely (not UTF-8, broken YAML,
    too deep, an alias, not a mapping at the top). Duplicate keys are reported
    and the document is still returned, so that the file kind's own checks can
    report their problems in the same run; **any problem makes the file
    invalid**, whether or not a document came back. ``what`` names the file
    kind in messages ("flow file", "agent directory"); ``locate`` turns the key
    path of a duplicate key into the ``(node, key)`` of the file kind.
    """
    problems: list[Problem] = []

    def fatal(message: str, code: str) -> tuple[None, list[Problem]]:
        return None, [*problems, Problem(name, "-", "-", message, code)]

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return fatal(f"not UTF-8 text (byte {exc.start})", ENCODING)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                problems.append(Problem(
                    name, "-", "-", f"YAML aliases (*{event.anchor}) are not allowed in "
                    f"{_a(what)}: they allow cyclic and exponentially expanding documents; write "
                    f"the value out ({_where(event.start_mark)})", YAML_ALIAS))
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > max_nesting:
                    return fatal(f"nested deeper than {max_nesting} levels "
                                 f"({_where(event.start_mark)})", TOO_DEEP)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if not isinstance(root, yaml.MappingNode):
                return fatal(f"{_a(what)} must be a mapping at the top level, not "
                             f"{_node_kind(root)}", WRONG_TYPE)
            problems.extend(_duplicates(loader, root, name, locate))
            if any(p.code == YAML_ALIAS for p in problems):
                return None, problems
            doc = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return fatal(f"not valid YAML: {exc.problem or exc.context} ({_where(mark)})",
                     YAML_SYNTAX)
    except yaml.YAMLError as exc:
        return fatal(f"not valid YAML: {exc}", YAML_SYNTAX)
    except RecursionError:
        return fatal(f"nested too deeply to read (limit {max_nesting})", TOO_DEEP)
    if not isinstance(doc, dict):  # a mapping node always constructs a dict; belt and braces
        return fatal(f"{_a(what)} must be a mapping at the top level",
                     WRONG_TYPE)
    return doc, problems


def _lines(a: int, b: int) -> str:
    return f"line {a}" if a == b else f"lines {a} and {b}"


def _node_kind(node: yaml.Node | None) -> str:
    if node is None:
        return "an empty document"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the single value {str(node.value)[:40]!r}"


def _duplicates(loader: _Loader, root: yaml.Node, name: str, locate: Locate) -> list[Problem]:
    """Every key given twice in a mapping of the composed tree, with its key path.

    Walks nodes, not constructed values: an alias is the same node object as its
    anchor, so each node is visited once (no expansion), and the path of every
    duplicate is known.
    """
    out: list[Problem] = []
    visited: set[int] = set()
    todo: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while todo:
        node, path = todo.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            todo.extend((child, (*path, i)) for i, child in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key: Any = _SKIP
                if key_node.tag != _MERGE_TAG:
                    try:
                        key = loader.construct_object(key_node, deep=True)
                        hash(key)
                    except (yaml.YAMLError, TypeError):
                        key = _SKIP  # unhashable or unconstructible: construction reports it
                if key is not _SKIP:
                    line = key_node.start_mark.line + 1
                    if key in first:
                        where_node, where_key = locate((*path, str(key)))
                        lines = _lines(first[key], line)
                        out.append(Problem(name, where_node, where_key,
                                           f"key {str(key)!r} given twice ({lines}); only one "
                                           "is allowed", DUPLICATE_KEY))
                    else:
                        first[key] = line
                label = str(key) if key is not _SKIP else str(getattr(key_node, "value", "?"))
                todo.append((value_node, (*path, label)))
    return sorted(out, key=lambda p: (p.node, p.key))
