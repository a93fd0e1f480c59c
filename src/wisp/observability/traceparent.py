"""W3C Trace Context `traceparent`: parse, format, start a trace or continue one.

Pure functions on strings; the ingress calls `start_or_continue` once per request, so it avoids regexes
and allocates one small object.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# (bits) -> random int with that many bits; random.getrandbits is fast and ids need not be secret.
RandBits = Callable[[int], int]

_HEX = frozenset("0123456789abcdef")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_LENGTH = 55  # "00-" + 32 + "-" + 16 + "-" + 2
SAMPLED = 0x01


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One hop's position in a trace: lowercase hex ids and the trace flags."""

    trace_id: str
    span_id: str
    flags: int = SAMPLED

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    def header(self) -> str:
        return format_traceparent(self)


def _is_hex(text: str) -> bool:
    return _HEX.issuperset(text)  # several times faster than a generator over the characters


def parse_traceparent(value: str | bytes | None) -> TraceContext | None:
    """The context a `traceparent` header carries, or None when absent or invalid (then start a new trace).

    Follows the spec's rules: lowercase hex only, version `ff` is invalid, all-zero ids are invalid,
    version 00 is exactly 55 characters, and a higher version may append `-`-separated fields that a
    version-00 parser ignores.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip(" \t")
    if len(text) < _LENGTH or text[2] != "-" or text[35] != "-" or text[52] != "-":
        return None
    version = text[:2]
    if not _is_hex(version) or version == "ff":
        return None
    if version == "00":
        if len(text) != _LENGTH:
            return None
    elif len(text) > _LENGTH and text[_LENGTH] != "-":
        return None
    trace_id, span_id, flags = text[3:35], text[36:52], text[53:55]
    if not (_is_hex(trace_id) and _is_hex(span_id) and _is_hex(flags)):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, int(flags, 16))


def format_traceparent(ctx: TraceContext) -> str:
    # Only the sampled bit is defined for version 00; others are not propagated.
    return f"00-{ctx.trace_id}-{ctx.span_id}-{ctx.flags & 0xFF:02x}"


def new_span_id(rand: RandBits = random.getrandbits) -> str:
    value = 0
    while value == 0:  # all-zero is invalid; vanishingly rare, but a loop costs nothing
        value = rand(64)
    return f"{value:016x}"


def new_trace_id(rand: RandBits = random.getrandbits) -> str:
    value = 0
    while value == 0:
        value = rand(128)
    return f"{value:032x}"


def new_root(rand: RandBits = random.getrandbits, flags: int = SAMPLED) -> TraceContext:
    """The first hop of a new trace."""
    return TraceContext(new_trace_id(rand), new_span_id(rand), flags)


def child_of(parent: TraceContext, rand: RandBits = random.getrandbits) -> TraceContext:
    """A new span in the parent's trace, keeping its flags; the parent's span id is the new span's parent."""
    return TraceContext(parent.trace_id, new_span_id(rand), parent.flags & SAMPLED)


def start_or_continue(
    header: str | bytes | None, rand: RandBits = random.getrandbits
) -> tuple[TraceContext, str | None]:
    """This hop's context and its parent span id (None for a new trace) from an incoming `traceparent`."""
    parent = parse_traceparent(header)
    if parent is None:
        return new_root(rand), None
    return child_of(parent, rand), parent.span_id


HEADER = b"traceparent"  # ASGI header names are lowercase bytes


def traceparent_of(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]) -> bytes | None:
    """The `traceparent` value among ASGI headers; with several (invalid per spec) the first wins."""
    for name, value in headers:
        if name == HEADER:
            return value
    return None
