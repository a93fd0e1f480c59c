from __future__ import annotations

import pytest

from wisp.observability.traceparent import (
    TraceContext,
    child_of,
    format_traceparent,
    new_root,
    parse_traceparent,
    start_or_continue,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(("header", "expected"), [
    (f"00-{TRACE}-{SPAN}-01", TraceContext(TRACE, SPAN, 1)),
    (f"00-{TRACE}-{SPAN}-00", TraceContext(TRACE, SPAN, 0)),
    (f"  00-{TRACE}-{SPAN}-01\t", TraceContext(TRACE, SPAN, 1)),  # optional whitespace around the value
    (f"00-{TRACE}-{SPAN}-01".encode(), TraceContext(TRACE, SPAN, 1)),  # raw ASGI header bytes
    (f"01-{TRACE}-{SPAN}-01", TraceContext(TRACE, SPAN, 1)),  # a future version, same length
    (f"cc-{TRACE}-{SPAN}-01-what-the-future-adds", TraceContext(TRACE, SPAN, 1)),
    (f"00-{TRACE}-{SPAN}-09", TraceContext(TRACE, SPAN, 9)),  # unknown flag bits are still parsed
])
def test_parse_valid(header: str | bytes, expected: TraceContext) -> None:
    assert parse_traceparent(header) == expected


@pytest.mark.parametrize("header", [
    None, "", "garbage",
    f"ff-{TRACE}-{SPAN}-01",  # version ff is forbidden
    f"0x-{TRACE}-{SPAN}-01",  # version not hex
    f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
    f"01-{TRACE}-{SPAN}-01extra",  # a future version's extra fields start with "-"
    f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
    f"00-{TRACE.upper()}-{SPAN}-01",  # uppercase hex is invalid
    f"00-{TRACE[:-1]}g-{SPAN}-01",
    f"00-{TRACE}-{SPAN[:-1]}z-01",
    f"00-{TRACE}-{SPAN}-0g",
    f"00-{TRACE[:-1]}-{SPAN}-01",  # short trace id
    f"00_{TRACE}_{SPAN}_01",
])
def test_parse_invalid(header: str | None) -> None:
    assert parse_traceparent(header) is None


def test_format_round_trips_and_keeps_only_defined_width() -> None:
    ctx = TraceContext(TRACE, SPAN, 1)
    assert format_traceparent(ctx) == f"00-{TRACE}-{SPAN}-01"
    assert ctx.header() == format_traceparent(ctx)
    assert parse_traceparent(ctx.header()) == ctx
    assert format_traceparent(TraceContext(TRACE, SPAN, 0)).endswith("-00")


def test_new_root_is_valid_and_sampled() -> None:
    ctx = new_root()
    assert parse_traceparent(ctx.header()) == ctx
    assert ctx.sampled
    assert new_root().trace_id != ctx.trace_id


def test_ids_never_all_zero() -> None:
    draws = iter([0, 0, 5, 0, 7])
    ctx = new_root(lambda bits: next(draws))
    assert ctx.trace_id == f"{5:032x}"
    assert ctx.span_id == f"{7:016x}"


def test_child_keeps_trace_and_sampled_flag_with_a_new_span() -> None:
    parent = TraceContext(TRACE, SPAN, 0x03)
    child = child_of(parent, lambda bits: 0xABC)
    assert child == TraceContext(TRACE, f"{0xABC:016x}", 0x01)
    assert child_of(TraceContext(TRACE, SPAN, 0)).sampled is False


def test_start_or_continue() -> None:
    ctx, parent_id = start_or_continue(f"00-{TRACE}-{SPAN}-01".encode())
    assert (ctx.trace_id, parent_id) == (TRACE, SPAN)
    assert ctx.span_id != SPAN
    ctx, parent_id = start_or_continue(b"00-bogus")
    assert parent_id is None
    assert ctx.trace_id != TRACE and parse_traceparent(ctx.header()) == ctx
