"""The one report of a fault in an admin-edited file, and the shared codes.

Every admin-edited file (IVR flows, the agent directory, the prompt catalog)
reports its faults as `Problem` values printed ``file:node:key: message [code]``.
The codes below are the faults every file kind can have; a file kind adds its
own codes (``dangling-next``, ``overflow-cycle``, ``missing-translation`` ...)
for faults only it can have. A code, once published, never changes meaning:
scripts and tests match on it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "Problem",
    "Locate",
    "locate_dotted",
    "describe",
    "unknown_key",
    "wrong_type",
    "SHARED_CODES",
    "UNREADABLE",
    "FILE_TOO_LARGE",
    "ENCODING",
    "YAML_SYNTAX",
    "YAML_ALIAS",
    "TOO_DEEP",
    "DUPLICATE_KEY",
    "UNKNOWN_KEY",
    "WRONG_TYPE",
    "MISSING_KEY",
    "OUT_OF_RANGE",
    "BAD_CHOICE",
]

UNREADABLE: Final = "unreadable"          # the file cannot be opened or read
FILE_TOO_LARGE: Final = "file-too-large"  # larger than the kind's limit; not parsed at all
ENCODING: Final = "encoding"              # not UTF-8
YAML_SYNTAX: Final = "yaml-syntax"        # not valid YAML
YAML_ALIAS: Final = "yaml-alias"          # an alias (*name): cyclic/expanding documents
TOO_DEEP: Final = "too-deep"              # nested deeper than the limit
DUPLICATE_KEY: Final = "duplicate-key"    # a mapping key given twice
UNKNOWN_KEY: Final = "unknown-key"        # a key the kind does not know; names the allowed ones
WRONG_TYPE: Final = "wrong-type"          # a list where a mapping belongs, text for a number ...
MISSING_KEY: Final = "missing-key"        # a required key is absent
OUT_OF_RANGE: Final = "out-of-range"      # a number or length outside its bounds
BAD_CHOICE: Final = "bad-choice"          # not one of a fixed set of values

SHARED_CODES: Final = (UNREADABLE, FILE_TOO_LARGE, ENCODING, YAML_SYNTAX, YAML_ALIAS, TOO_DEEP,
                       DUPLICATE_KEY, UNKNOWN_KEY, WRONG_TYPE, MISSING_KEY, OUT_OF_RANGE,
                       BAD_CHOICE)


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault in an admin-edited file: ``file:node:key: message [code]``.

    ``node`` is the part of the file the fault is in (a flow node id, an agent
    id, ``queue/<id>``, a prompt id), ``key`` the key inside it; ``-`` when the
    fault belongs to the whole file or node.
    """

    file: str
    node: str
    key: str
    message: str
    code: str

    def __str__(self) -> str:
        return f"{self.file}:{self.node}:{self.key}: {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "node": self.node, "key": self.key,
                "message": self.message, "code": self.code}


Locate = Callable[[tuple[str | int, ...]], tuple[str, str]]
"""Maps a key path in the document (``("nodes", "menu", "timeout")``) to ``(node, key)``."""


def locate_dotted(path: tuple[str | int, ...]) -> tuple[str, str]:
    """The default place of a key path: no node, the path joined with dots."""
    return "-", ".".join(str(p) for p in path) or "-"


def describe(value: Any) -> str:
    """A short human description of a YAML value, for "expected X, got Y" messages."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {repr(value)[:40]}"


def unknown_key(file: str, node: str, key: str, allowed: Iterable[str]) -> Problem:
    """The one wording of an unknown key, naming the keys allowed there."""
    names = ", ".join(allowed) or "none"
    return Problem(file, node, key, f"unknown key {key!r} (allowed: {names})", UNKNOWN_KEY)


def wrong_type(file: str, node: str, key: str, expected: str, value: Any) -> Problem:
    """The one wording of a value of the wrong type: ``expected <what>, got <value>``."""
    return Problem(file, node, key, f"expected {expected}, got {describe(value)}", WRONG_TYPE)
