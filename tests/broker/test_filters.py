"""Trigger filters: every dialect, table-driven, and CESQL parse errors with positions."""

from __future__ import annotations

from typing import Any

import pytest

from wisp.eventing.cloudevents import make_event
from wisp.eventing.filters import CesqlSyntaxError, FilterError, compile_cesql, compile_filter

EVENT = make_event(
    {
        "id": "abc-1",
        "source": "/apis/v1/namespaces/demo/pingsources/tick",
        "specversion": "1.0",
        "type": "dev.knative.sources.ping",
        "subject": "Francesco",
        "sequence": "10",
        "flag": "TRUE",
        "hop": "3",
        "ttl": "7",
        "name": "under_score%",
    },
    {"hello": "world"},
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, True),
        ({"filter": {}}, True),
        ({"filter": {"attributes": {"type": "dev.knative.sources.ping"}}}, True),
        ({"filter": {"attributes": {"type": "other"}}}, False),
        ({"filter": {"attributes": {"subject": ""}}}, True),
        ({"filter": {"attributes": {"missing": ""}}}, False),
        ({"filter": {"attributes": {"type": "dev.knative.sources.ping", "subject": "x"}}}, False),
        ({"filters": [{"exact": {"type": "dev.knative.sources.ping"}}]}, True),
        ({"filters": [{"exact": {"type": "dev.knative"}}]}, False),
        ({"filters": [{"prefix": {"type": "dev.knative."}}]}, True),
        ({"filters": [{"prefix": {"type": "com."}}]}, False),
        ({"filters": [{"suffix": {"source": "/tick"}}]}, True),
        ({"filters": [{"suffix": {"source": "/tock"}}]}, False),
        ({"filters": [{"suffix": {"missing": ""}}]}, False),
        ({"filters": [{"all": [{"prefix": {"type": "dev."}}, {"exact": {"subject": "Francesco"}}]}]}, True),
        ({"filters": [{"all": [{"prefix": {"type": "dev."}}, {"exact": {"subject": "x"}}]}]}, False),
        ({"filters": [{"any": [{"prefix": {"type": "com."}}, {"exact": {"subject": "Francesco"}}]}]}, True),
        ({"filters": [{"any": [{"prefix": {"type": "com."}}, {"exact": {"subject": "x"}}]}]}, False),
        ({"filters": [{"not": {"exact": {"type": "x"}}}]}, True),
        ({"filters": [{"not": {"prefix": {"type": "dev"}}}]}, False),
        ({"filters": [{"cesql": "subject = 'Francesco'"}]}, True),
        # several entries are ANDed; `filters` wins over `filter`
        ({"filters": [{"prefix": {"type": "dev."}}, {"suffix": {"type": ".nope"}}]}, False),
        ({"filter": {"attributes": {"type": "nope"}}, "filters": [{"prefix": {"type": "dev."}}]}, True),
    ],
)
def test_dialects(spec: dict[str, Any], expected: bool) -> None:
    assert compile_filter(spec)(EVENT) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("EXISTS subject", True),
        ("EXISTS nothere", False),
        ("NOT EXISTS nothere", True),
        ("firstname = 'Francesco' OR subject = 'Francesco'", True),
        ("subject = \"Francesco\"", True),
        ("subject != 'Francesco'", False),
        ("subject <> 'x'", True),
        ("sequence = 10", True),  # right operand Integer → left cast to Integer
        ("sequence = '10'", True),
        ("sequence > 9 AND sequence <= 10", True),
        ("sequence < 10", False),
        ("hop < ttl", True),
        ("sequence + 5 = 15", True),
        ("sequence * 2 - 1 = 19", True),
        ("-7 / 2 = -3", True),  # truncated division
        ("-7 % 2 = -1", True),
        ("sequence / 0 = 0", False),  # math error → no match
        ("flag = true", True),
        ("subject = true", False),  # cast error → no match
        ("TRUE XOR FALSE", True),
        ("true xor true", False),
        ("true and (missing = '')", False),  # missing attribute → comparison FALSE
        ("missing = 'x' OR type LIKE 'dev.%'", True),
        ("NOT (missing = 'x')", True),
        ("type LIKE 'dev.knative.%.ping'", True),
        ("type LIKE 'dev_knative%'", True),
        ("type NOT LIKE '%kafka%'", True),
        ("name LIKE 'under\\_score\\%'", True),
        ("name LIKE 'under\\_scorx%'", False),
        ("subject IN ('a', 'Francesco', 'b')", True),
        ("subject NOT IN ('a', 'b')", True),
        ("sequence IN (1, 10)", True),  # the set is cast to the left operand's type (String): '10'
        ("UPPER(subject) = 'FRANCESCO'", True),
        ("lower(subject) = 'francesco'", True),
        ("LENGTH(subject) = 9", True),
        ("CONCAT(subject, '-', id) = 'Francesco-abc-1'", True),
        ("CONCAT_WS(',', 'a', 'b') = 'a,b'", True),
        ("TRIM('  x ') = 'x'", True),
        ("LEFT(subject, 3) = 'Fra' AND RIGHT(subject, 3) = 'sco'", True),
        ("SUBSTRING(subject, 2) = 'rancesco' AND SUBSTRING(subject, -3, 2) = 'sc'", True),
        ("ABS(-5) = 5 AND INT('42') = 42 AND BOOL('false') = false AND STRING(3) = '3'", True),
        ("IS_INT(sequence) AND NOT IS_INT(subject) AND IS_BOOL(flag)", True),
        ("(firstname = 'Francesco' AND lastname = 'G') OR subject = 'Francesco'", True),
        ("subject", False),  # a String result is not TRUE
        ("-2147483648 < 0", True),
    ],
)
def test_cesql(expression: str, expected: bool) -> None:
    assert compile_cesql(expression)(EVENT) is expected


@pytest.mark.parametrize(
    ("expression", "position"),
    [
        ("subject = ", 10),
        ("subject = 'abc", 10),
        ("(type = 'a'", 11),
        ("type = 'a' AND", 14),
        ("type ~ 'a'", 5),
        ("type LIKE subject", 10),
        ("NOPE(type)", 0),
        ("LENGTH(type, id)", 0),
        ("type IN 'a'", 8),
        ("EXISTS 'x'", 7),
        ("Type = 'a'", 0),
        ("2147483648 > 1", 0),
        ("a = 1 b", 6),
    ],
)
def test_cesql_syntax_errors_name_position(expression: str, position: int) -> None:
    with pytest.raises(CesqlSyntaxError) as info:
        compile_cesql(expression)
    assert info.value.position == position
    assert f"position {position}" in str(info.value)


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"filters": [{"cesql": "type ="}]}, "spec.filters[0].cesql"),
        ({"filters": [{"exact": {"type": "a"}}, {"bogus": {}}]}, "spec.filters[1]"),
        ({"filters": [{"exact": {"type": "a"}, "prefix": {"type": "a"}}]}, "spec.filters[0]"),
        ({"filters": [{"all": [{"exact": {"Type": "a"}}]}]}, "spec.filters[0].all[0].exact[Type]"),
        ({"filters": [{"not": {"cesql": ""}}]}, "spec.filters[0].not.cesql"),
        ({"filter": {"attributes": {"type": 3}}}, "spec.filter.attributes[type]"),
    ],
)
def test_invalid_filters_name_the_field(spec: dict[str, Any], path: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(spec)
    assert info.value.path == path
