"""A small, safe expression language for ``branch``/``set`` nodes (no ``eval``).

Grammar (precedence low -> high)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not" "in") sum)?
    sum     := atom (("+"|"-") atom)*
    atom    := NUMBER | STRING | true | false | null | NAME | NAME "(" args ")"
             | "(" expr ")" | "[" [expr ("," expr)*] "]"

Names are flow variables (unknown ones are ``null``). Functions: len, lower, upper,
startswith, endswith, int, str. Evaluation never raises: a type mismatch yields
``null``/false so a live call never meets a traceback. Parsing is bounded in length
and depth and fails with ``ExprError`` naming the offending position.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ivr.errors import IvrError

__all__ = ["Expr", "ExprError", "Secret", "parse_expr", "MAX_EXPR_LENGTH", "FUNCTIONS"]

MAX_EXPR_LENGTH = 500
MAX_DEPTH = 32


class ExprError(IvrError):
    """An expression is not valid in the flow expression language."""


class Secret:
    """A value the caller keyed in a ``secure`` collect: masked whenever printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        return f"[secure: {len(self._value)} digits]"

    def __str__(self) -> str:
        return self.masked()

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", len(self._value)))


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\+|-)
""", re.VERBOSE)

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


def _plain(v: Any) -> Any:
    return v.reveal() if isinstance(v, Secret) else v


def _num(v: Any) -> Any:
    v = _plain(v)
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, str):
        try:
            return float(v) if "." in v else int(v)
        except ValueError:
            return v
    return v


def _fn_len(x: Any) -> Any:
    x = _plain(x)
    return len(x) if isinstance(x, (str, list)) else None


def _wrap_str(f: Callable[[str], Any]) -> Callable[[Any], Any]:
    def g(x: Any) -> Any:
        if isinstance(x, Secret):
            r = f(x.reveal())
            return Secret(r) if isinstance(r, str) else r
        return f(x) if isinstance(x, str) else None
    return g


def _fn_int(x: Any) -> Any:
    x = _plain(x)
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _fn_str(x: Any) -> Any:
    if isinstance(x, Secret):
        return x
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)


def _fn_starts(a: Any, b: Any) -> Any:
    a, b = _plain(a), _plain(b)
    return a.startswith(b) if isinstance(a, str) and isinstance(b, str) else False


def _fn_ends(a: Any, b: Any) -> Any:
    a, b = _plain(a), _plain(b)
    return a.endswith(b) if isinstance(a, str) and isinstance(b, str) else False


FUNCTIONS: Mapping[str, tuple[int, Callable[..., Any]]] = {
    "len": (1, _fn_len),
    "lower": (1, _wrap_str(str.lower)),
    "upper": (1, _wrap_str(str.upper)),
    "int": (1, _fn_int),
    "str": (1, _fn_str),
    "startswith": (2, _fn_starts),
    "endswith": (2, _fn_ends),
}

# AST nodes are tuples: ("lit", v) ("var", name) ("call", name, args) ("list", items)
# ("not", x) ("and", a, b) ("or", a, b) ("cmp", op, a, b) ("arith", op, a, b)
Node = tuple[Any, ...]


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "in":
        b = _plain(b)
        if isinstance(b, list):
            return any(_compare("==", a, x) for x in b)
        a = _plain(a)
        return isinstance(a, str) and isinstance(b, str) and a in b
    a, b = _num(a), _num(b)
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    try:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def _truthy(v: Any) -> bool:
    v = _plain(v)
    return bool(v) and v not in ("false", "0")


def _eval(node: Node, env: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        return env.get(node[1])
    if kind == "list":
        return [_eval(n, env) for n in node[1]]
    if kind == "not":
        return not _truthy(_eval(node[1], env))
    if kind == "and":
        return _truthy(_eval(node[1], env)) and _truthy(_eval(node[2], env))
    if kind == "or":
        return _truthy(_eval(node[1], env)) or _truthy(_eval(node[2], env))
    if kind == "cmp":
        a, b = _eval(node[2], env), _eval(node[3], env)
        if node[1] == "not in":
            return not _compare("in", a, b)
        return _compare(node[1], a, b)
    if kind == "arith":
        a, b = _eval(node[2], env), _eval(node[3], env)
        if isinstance(a, Secret) or isinstance(b, Secret):
            return None
        a, b = _num(a), _num(b)
        try:
            if node[1] == "+":
                if isinstance(a, str) or isinstance(b, str):
                    return f"{_fn_str(a)}{_fn_str(b)}"
                return a + b
            return a - b
        except TypeError:
            return None
    if kind == "call":
        _, fn = FUNCTIONS[node[1]]
        return fn(*[_eval(a, env) for a in node[2]])
    raise AssertionError(f"unknown expression node {kind!r}")


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed expression; ``variables`` names every variable it reads."""

    source: str
    tree: Node
    variables: frozenset[str]

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        """Value of the expression with ``env``; never raises on caller data."""
        try:
            return _eval(self.tree, env)
        except (ArithmeticError, ValueError, TypeError, OverflowError):
            return None

    def truth(self, env: Mapping[str, Any]) -> bool:
        return _truthy(self.evaluate(env))


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(source):
            m = _TOKEN.match(source, pos)
            if not m:
                raise ExprError(f"unexpected character {source[pos]!r} at position {pos + 1}")
            kind = m.lastgroup or ""
            if kind != "ws":
                text = m.group()
                if kind == "name" and text in _KEYWORDS:
                    kind = "kw"
                self.tokens.append((kind, text, pos))
            pos = m.end()
        self.i = 0
        self.depth = 0
        self.names: set[str] = set()

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "", len(self.source))

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if text is not None and tok[1] != text:
            found = "end of expression" if tok[0] == "end" else repr(tok[1])
            raise ExprError(f"expected {text!r} at position {tok[2] + 1}, found {found}")
        self.i += 1
        return tok

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels")

    def parse(self) -> Node:
        tree = self.p_or()
        tok = self.peek()
        if tok[0] != "end":
            raise ExprError(f"unexpected {tok[1]!r} at position {tok[2] + 1}")
        return tree

    def p_or(self) -> Node:
        self.nest()
        left = self.p_and()
        while self.peek()[1] == "or":
            self.take()
            left = ("or", left, self.p_and())
        self.depth -= 1
        return left

    def p_and(self) -> Node:
        left = self.p_not()
        while self.peek()[1] == "and":
            self.take()
            left = ("and", left, self.p_not())
        return left

    def p_not(self) -> Node:
        if self.peek()[1] == "not":
            self.take()
            self.nest()
            inner = self.p_not()
            self.depth -= 1
            return ("not", inner)
        return self.p_cmp()

    def p_cmp(self) -> Node:
        left = self.p_sum()
        tok = self.peek()
        if tok[1] in ("==", "!=", "<", "<=", ">", ">=", "in"):
            self.take()
            return ("cmp", tok[1], left, self.p_sum())
        if tok[1] == "not" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == "in":
            self.take()
            self.take()
            return ("cmp", "not in", left, self.p_sum())
        return left

    def p_sum(self) -> Node:
        left = self.p_atom()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            left = ("arith", op, left, self.p_atom())
        return left

    def p_atom(self) -> Node:
        kind, text, pos = self.take()
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "str":
            body = text[1:-1]
            return ("lit", re.sub(r"\\(.)", r"\1", body))
        if kind == "kw" and text in ("true", "false", "null"):
            return ("lit", {"true": True, "false": False, "null": None}[text])
        if kind == "name":
            if self.peek()[1] == "(":
                if text not in FUNCTIONS:
                    raise ExprError(f"unknown function {text!r} at position {pos + 1} "
                                    f"(allowed: {', '.join(sorted(FUNCTIONS))})")
                self.take("(")
                args: list[Node] = []
                if self.peek()[1] != ")":
                    args.append(self.p_or())
                    while self.peek()[1] == ",":
                        self.take()
                        args.append(self.p_or())
                self.take(")")
                arity = FUNCTIONS[text][0]
                if len(args) != arity:
                    raise ExprError(f"{text}() takes {arity} argument(s), got {len(args)}")
                return ("call", text, tuple(args))
            self.names.add(text)
            return ("var", text)
        if text == "(":
            inner = self.p_or()
            self.take(")")
            return inner
        if text == "[":
            items: list[Node] = []
            if self.peek()[1] != "]":
                items.append(self.p_or())
                while self.peek()[1] == ",":
                    self.take()
                    items.append(self.p_or())
            self.take("]")
            return ("list", tuple(items))
        found = "end of expression" if kind == "end" else repr(text)
        raise ExprError(f"expected a value at position {pos + 1}, found {found}")


def parse_expr(source: object) -> Expr:
    """Parse ``source``; raises ``ExprError`` with a message naming the position."""
    if isinstance(source, bool) or source is None:
        return Expr(str(source), ("lit", source), frozenset())
    if isinstance(source, (int, float)):
        return Expr(str(source), ("lit", source), frozenset())
    if not isinstance(source, str):
        raise ExprError(f"an expression must be a string, not {type(source).__name__}")
    if len(source) > MAX_EXPR_LENGTH:
        raise ExprError(f"expression longer than {MAX_EXPR_LENGTH} characters")
    if not source.strip():
        raise ExprError("empty expression")
    parser = _Parser(source)
    tree = parser.parse()
    return Expr(source, tree, frozenset(parser.names))
