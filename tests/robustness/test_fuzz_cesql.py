"""CESQL under arbitrary input: an expression parses or gives CesqlSyntaxError; a parsed one, evaluated on any
event, answers True or False — never another exception, never a long wait.

A Trigger's CESQL runs on every event its broker sees, so an expression that recursed too deep or
backtracked exponentially would stall event delivery for everyone, not only its author.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wisp.api.cesql import CesqlSyntaxError, compile_cesql
from wisp.eventing.cloudevents import make_event

FUZZ = settings(
    max_examples=300,
    deadline=5000,  # generous under load: a blow-up (exponential backtracking, deep recursion) takes far longer
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

_TOKENS = (
    "AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE", "(", ")", ",", "=", "!=", "<>", "<",
    "<=", ">", ">=", "+", "-", "*", "/", "%", "0", "1", "-1", "2147483647", "2147483648", "99999999999999",
    "'a%'", "'%_b'", "'x'", "''", "'\\%'", "\"q\"", "type", "source", "subject", "id", "specversion",
    "datacontenttype", "ext1", "count", "LENGTH", "CONCAT", "CONCAT_WS", "LOWER", "UPPER", "TRIM", "LEFT",
    "RIGHT", "SUBSTRING", "ABS", "INT", "BOOL", "STRING", "IS_INT", "IS_BOOL", "UNKNOWN_FN",
)  # fmt: skip
expressions = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(_TOKENS), max_size=25).map(" ".join),
)

_ATTRIBUTE_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["true", "FALSE", "0", "-12", "2147483648", " 7 ", "", "%"]),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.booleans(),
)
events = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=10), "source": st.text(min_size=1, max_size=10), "type": st.text(min_size=1)},
    optional={
        "subject": _ATTRIBUTE_VALUES,
        "ext1": _ATTRIBUTE_VALUES,
        "count": _ATTRIBUTE_VALUES,
    },
).map(lambda attrs: make_event({"specversion": "1.0", **attrs}, None))


def _compile(expression: str) -> Any:
    try:
        return compile_cesql(expression)
    except CesqlSyntaxError as exc:
        assert exc.position >= 0
        return None


@FUZZ
@given(expressions)
def test_an_expression_parses_or_gives_a_syntax_error(expression: str) -> None:
    _compile(expression)


@FUZZ
@given(expressions, st.lists(events, min_size=1, max_size=3))
def test_evaluation_answers_true_or_false(expression: str, sample: list[Any]) -> None:
    predicate = _compile(expression)
    if predicate is not None:
        for event in sample:
            assert predicate(event) in (True, False)


EVENT = make_event({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": "a" * 60}, None)


def _quick(expression: str, budget: float = 0.5) -> bool | None:
    """Compile and evaluate once; assert both take less than `budget` seconds; None for a syntax error."""
    started = time.perf_counter()
    predicate = _compile(expression)
    result = None if predicate is None else predicate(EVENT)
    assert time.perf_counter() - started < budget, expression[:80]
    return result


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 20_000 + "TRUE" + ")" * 20_000,
        "NOT " * 20_000 + "TRUE",
        "- " * 20_000 + "1 = 1",
        "LENGTH(" * 5_000 + "'x'" + ")" * 5_000,
        "1" * 10_000,
    ],
    ids=["parentheses", "not", "unary-minus", "calls", "long-integer"],
)
def test_deep_nesting_is_a_syntax_error(expression: str) -> None:
    assert _quick(expression) is None


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (" AND ".join(["TRUE"] * 20_000), True),
        (" OR ".join(["FALSE"] * 20_000), False),
        (" XOR ".join(["TRUE"] * 20_000), False),
        (" + ".join(["1"] * 20_000) + " = 20000", True),
        (" * ".join(["1"] * 20_000) + " = 1", True),
        ("(" * 30 + "TRUE" + ")" * 30, True),
    ],
    ids=["and", "or", "xor", "plus", "times", "thirty-parentheses"],
)
def test_long_flat_expressions_evaluate(expression: str, expected: bool) -> None:
    assert _quick(expression, budget=2.0) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("%a%a%a%a%a%a%a%a%a%a%a%a%a%b", False),
        ("%a%a%a%a%a%a%a%a%a%a%a%a%a%a", True),
        ("a%a", True),
        ("_" * 59 + "%", True),
        ("_" * 61 + "%", False),
        ("%\\%", False),
    ],
)
def test_like_takes_linear_time(pattern: str, expected: bool) -> None:
    assert _quick(f"subject LIKE '{pattern}'", budget=0.2) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("a_c", "abc", True),
        ("a%", "a", True),
        ("%", "", True),
        ("%b%", "abc", True),
        ("%b", "abc", False),
        ("a%c%e", "abcde", True),
        ("a%c%e", "ace", True),
        ("a%c%e", "aec", False),
        ("%aa", "aaa", True),
        ("a\\%", "a%", True),
        ("a\\%", "ab", False),
        ("a\\_", "a_", True),
        ("a\\\\", "a\\", True),
        ("a\\b", "a\\b", True),
        ("_%_", "x", False),
        ("_%_", "xy", True),
        ("%.%", "a.b", True),
        ("[a]", "[a]", True),
        ("line%", "line1\nline2", True),
    ],
)
def test_like_semantics(pattern: str, value: str, expected: bool) -> None:
    event = make_event({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": value}, None)
    literal = pattern.replace("'", "\\'")
    assert compile_cesql(f"subject LIKE '{literal}'")(event) is expected
