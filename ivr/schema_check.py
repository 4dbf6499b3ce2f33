"""Structural checks of a flow document against the shipped JSON Schema.

jsonschema errors are turned into ``file:node:key: message [code]`` problems whose
messages name what was wrong and, for unknown keys, the allowed list.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from adminfiles import (
    BAD_CHOICE,
    MISSING_KEY,
    OUT_OF_RANGE,
    WRONG_TYPE,
    Problem,
    describe,
    unknown_key,
)

__all__ = ["flow_schema", "schema_problems", "locate", "NODE_KINDS"]


@lru_cache(maxsize=1)
def flow_schema() -> dict[str, Any]:
    """The JSON Schema of flow files (``ivr/schema/flow.schema.json``)."""
    text = resources.files("ivr.schema").joinpath("flow.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


NODE_KINDS: tuple[str, ...] = tuple(flow_schema()["$defs"]["node"]["properties"]["type"]["enum"])

_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "object": "a mapping", "array": "a list",
               "null": "null"}


def locate(path: list[Any] | tuple[Any, ...]) -> tuple[str, str]:
    """``(node, key)`` of a key path in a flow document: ``nodes.<id>.<key...>``."""
    if len(path) >= 2 and path[0] == "nodes":
        key = ".".join(str(p) for p in path[2:]) or "-"
        return str(path[1]), key
    return "-", ".".join(str(p) for p in path) or "-"


def _expected_types(schema: Any) -> str:
    t = schema.get("type")
    if isinstance(t, list):
        return " or ".join(_TYPE_NAMES.get(str(x), str(x)) for x in t)
    return _TYPE_NAMES.get(str(t), str(t))


def _one(error: jsonschema.ValidationError, file: str) -> list[Problem]:
    path = list(error.absolute_path)
    node, key = locate(path)
    v, s, inst = error.validator, error.schema, error.instance
    if v == "additionalProperties" and isinstance(inst, dict) and isinstance(s, dict):
        allowed = sorted(s.get("properties", {}))
        extra = sorted(str(k) for k in inst if k not in s.get("properties", {}))
        out = []
        for k in extra:
            n, kk = locate(path + [k])
            out.append(unknown_key(file, n, kk, allowed))
        return out
    if v == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        n, kk = locate(path + [missing])
        return [Problem(file, n, kk, f"missing required key {missing!r}", MISSING_KEY)]
    if v == "type":
        return [Problem(file, node, key, f"expected {_expected_types(s)}, got {describe(inst)}",
                        WRONG_TYPE)]
    if v == "enum":
        if path[-1:] == ["type"] and len(path) == 3:
            return [Problem(file, node, key, f"unknown node type {inst!r} (allowed: "
                            f"{', '.join(map(str, error.validator_value))})", "unknown-type")]
        return [Problem(file, node, key, f"{describe(inst)} is not one of "
                        f"{', '.join(repr(x) for x in error.validator_value)}", BAD_CHOICE)]
    if v == "oneOf":
        return [Problem(file, node, key, f"expected a prompt id, a list of prompt ids, "
                        f"{{say_number: var}} or {{say_digits: var}}; got {describe(inst)}",
                        WRONG_TYPE)]
    if v == "pattern":
        return [Problem(file, node, key, f"{describe(inst)} does not match {s['pattern']}",
                        "bad-value")]
    if v == "propertyNames":
        return [Problem(file, node, key, f"key {describe(inst)} is not allowed here: "
                        f"{error.message}", "bad-value")]
    if v in ("minimum", "maximum", "minItems", "maxItems", "minProperties", "maxProperties",
             "minLength", "maxLength"):
        return [Problem(file, node, key, error.message[:200], OUT_OF_RANGE)]
    return [Problem(file, node, key, error.message[:200], "bad-value")]


def schema_problems(doc: Any, file: str) -> list[Problem]:
    """Every schema violation in ``doc``, sorted by place."""
    validator = jsonschema.Draft202012Validator(flow_schema())
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for error in validator.iter_errors(doc):
        # oneOf/if-then produce nested context errors; report the most specific ones.
        leaves = [error]
        if error.validator == "oneOf" and error.context:
            deepest = max(len(e.absolute_path) for e in error.context)
            if deepest > len(error.absolute_path):
                leaves = [e for e in error.context if len(e.absolute_path) == deepest]
        for leaf in leaves:
            for p in _one(leaf, file):
                k = (p.node, p.key, p.code)
                if k not in seen:
                    seen.add(k)
                    problems.append(p)
    return sorted(problems, key=lambda p: (p.node, p.key, p.code))
