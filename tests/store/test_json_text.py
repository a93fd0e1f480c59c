"""The store's JSON text: orjson's speed, and what orjson refuses (integers beyond 64 bits) still round-trips."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wisp.store.json_text import decode, encode, loads

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_round_trip(obj: dict[str, object]) -> None:
    assert decode(encode(obj)) == obj


def test_an_integer_beyond_64_bits_round_trips() -> None:
    # Not powers of two: a float equals those exactly and would hide a lossy read.
    obj = {"spec": {"n": 2**70 + 1, "m": -(2**63) - 1, "u": 2**64 + 3}}
    decoded = decode(encode(obj))
    assert decoded == obj
    assert all(type(v) is int for v in decoded["spec"].values())


def test_a_string_of_digits_stays_a_string() -> None:
    obj = {"data": {"id": "1234567890123456789012", "n": 12}}
    assert decode(encode(obj)) == obj


def test_loads_reads_bytes_and_any_value() -> None:
    assert loads(b'[18446744073709551617, "x"]') == [2**64 + 1, "x"]
    assert loads("3") == 3
