"""Kubernetes resource quantities ("128Mi", "500m", "1.5G", "1e3"), parsed exactly (apimachinery's
resource.Quantity grammar: a decimal number, then a binary or decimal suffix or a decimal exponent)."""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
            "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
            "P": Fraction(10**15), "E": Fraction(10**18)}
_GRAMMAR = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d{1,3})?$")
MAX_LENGTH = 64


def parse_quantity(value: object) -> Fraction:
    """The quantity's exact value; ValueError naming what is wrong otherwise (an int or float is taken as is)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value)
    if not isinstance(value, str) or len(value) > MAX_LENGTH:
        raise ValueError(f"{str(value)[:MAX_LENGTH]!r} is not a quantity such as 500m or 128Mi")
    match = _GRAMMAR.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a quantity such as 500m or 128Mi")
    sign, number, suffix = match.group(1), Fraction(match.group(2)), match.group(3) or ""
    if suffix in _BINARY:
        amount = number * _BINARY[suffix]
    elif suffix[:1] in ("e", "E"):
        amount = number * Fraction(10) ** int(suffix[1:])
    else:
        amount = number * _DECIMAL[suffix]
    return -amount if sign == "-" else amount


def to_bytes(value: object) -> int:
    """A memory or storage quantity as whole bytes, rounded up as the kubelet does."""
    amount = parse_quantity(value)
    return -((-amount.numerator) // amount.denominator)


def to_millicores(value: object) -> int:
    """A CPU quantity in millicores, rounded up (1 → 1000, "250m" → 250, "0.1" → 100)."""
    amount = parse_quantity(value) * 1000
    return -((-amount.numerator) // amount.denominator)
