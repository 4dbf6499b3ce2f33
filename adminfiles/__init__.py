"""Admin-edited files: the one `Problem` report and the one hardened YAML reader.

IVR flows (``ivr``), the agent directory (``routing``) and the prompt catalog
(``prompts``) are edited by telecom admins and read as untrusted input. They all
read through `read_yaml` and report every fault at once as `Problem` values,
``file:node:key: message [code]``, with the same code for the same fault in
every file kind (`SHARED_CODES`).

A leaf package: it imports no Homeline core, adapter or ``homeline`` itself,
so the pure cores may import it.
"""
from __future__ import annotations

from adminfiles.problem import (
    BAD_CHOICE,
    DUPLICATE_KEY,
    ENCODING,
    FILE_TOO_LARGE,
    MISSING_KEY,
    OUT_OF_RANGE,
    SHARED_CODES,
    TOO_DEEP,
    UNKNOWN_KEY,
    UNREADABLE,
    WRONG_TYPE,
    YAML_ALIAS,
    YAML_SYNTAX,
    Locate,
    Problem,
    describe,
    locate_dotted,
    unknown_key,
    wrong_type,
)
from adminfiles.yamlread import MAX_FILE_BYTES, MAX_NESTING, parse_yaml, read_bytes, read_yaml

__all__ = [
    "Problem", "Locate", "locate_dotted", "describe", "unknown_key", "wrong_type",
    "read_yaml", "read_bytes", "parse_yaml", "MAX_FILE_BYTES", "MAX_NESTING",
    "SHARED_CODES", "UNREADABLE", "FILE_TOO_LARGE", "ENCODING", "YAML_SYNTAX", "YAML_ALIAS",
    "TOO_DEEP", "DUPLICATE_KEY", "UNKNOWN_KEY", "WRONG_TYPE", "MISSING_KEY", "OUT_OF_RANGE",
    "BAD_CHOICE",
]
