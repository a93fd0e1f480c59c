"""ISO-8601 durations as Knative's DeliverySpec writes them (`PT0.3S`, `PT10M`, `P1DT2H`)."""

from __future__ import annotations

import re

# Calendar units use the same average lengths Go's rickb777/period uses, so a year
# here lasts as long as it does in Knative's dispatcher.
_SECONDS = {
    "Y": 365.2425 * 86400,
    "M": 30.436875 * 86400,
    "W": 7 * 86400,
    "D": 86400,
    "H": 3600,
    "TM": 60,
    "S": 1,
}

_NUMBER = r"(\d+(?:[.,]\d+)?)"
_PATTERN = re.compile(
    rf"^(?P<sign>[-+])?P"
    rf"(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
_UNITS = ("Y", "M", "W", "D", "H", "TM", "S")


def parse_iso8601_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration; ValueError when `text` is not one."""
    match = _PATTERN.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid ISO-8601 duration {text!r}")
    values = match.groups()[1:]
    if all(v is None for v in values) or text.strip().upper().endswith("T"):
        raise ValueError(f"invalid ISO-8601 duration {text!r}: no components")
    total = 0.0
    for unit, value in zip(_UNITS, values, strict=True):
        if value is not None:
            total += float(value.replace(",", ".")) * _SECONDS[unit]
    return -total if match.group("sign") == "-" else total
