from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.expr import ExprError, Secret, parse_expr


@pytest.mark.parametrize("source, env, expected", [
    ("intent == 'billing'", {"intent": "billing"}, True),
    ("intent == 'billing'", {"intent": "tech"}, False),
    ("tier in ['gold', 'platinum']", {"tier": "gold"}, True),
    ("tier not in ['gold']", {"tier": "silver"}, True),
    ("attempts >= 3", {"attempts": "3"}, True),  # numeric strings compare as numbers
    ("not vip and language != 'fr'", {"vip": False, "language": "en"}, True),
    ("(a or b) and c", {"a": False, "b": True, "c": True}, True),
    ("len(account) == 8", {"account": Secret("12345678")}, True),
    ("startswith(caller, '+44')", {"caller": "+441234"}, True),
    ("missing == null", {}, True),
    ("lower(name) + '!'", {"name": "ABC"}, "abc!"),
    ("count - 1", {"count": 3}, 2),
])
def test_expressions_evaluate(source, env, expected):
    assert parse_expr(source).evaluate(env) == expected


@pytest.mark.parametrize("source, fragment", [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__('os').system('id')", "unexpected character '.'"),
    ("a.b", "unexpected character '.'"),
    ("a ==", "expected a value"),
    ("len(a, b)", "takes 1 argument"),
    ("(" * 40 + "1" + ")" * 40, "nested deeper"),
    ("x" * 600, "longer than 500"),
    ("a; b", "unexpected character ';'"),
])
def test_bad_expressions_are_refused_with_a_position(source, fragment):
    with pytest.raises(ExprError, match=None) as info:
        parse_expr(source)
    assert fragment in str(info.value)


def test_variables_are_collected_for_taint_analysis():
    assert parse_expr("a == b or len(c) > 1").variables == {"a", "b", "c"}


def test_type_mismatch_is_false_not_an_exception():
    assert parse_expr("a < 3").truth({"a": "abc"}) is False
    assert parse_expr("a + 1").evaluate({"a": [1]}) is None


def test_secret_is_masked_everywhere_it_could_be_printed():
    s = Secret("4111111111111111")
    assert "4111" not in str(s) and "4111" not in repr(s) and "4111" not in f"{s}"
    assert "4111" not in str(parse_expr("upper(x)").evaluate({"x": s}))
    assert parse_expr("x + '0'").evaluate({"x": s}) is None


@given(st.text(max_size=80))
def test_parser_never_raises_anything_but_expr_error(text):
    try:
        expr = parse_expr(text)
    except ExprError:
        return
    expr.evaluate({"a": 1, "b": "x"})
