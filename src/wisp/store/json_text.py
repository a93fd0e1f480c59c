"""Objects to JSON text and back, fast: orjson where it is exact, the json module where it is not (an integer
beyond 64 bits, which a manifest may hold: orjson refuses to write one and reads one back as a float)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from wisp.types import Resource

# 19 digits in a row may be an integer orjson reads as a float (past int64 / uint64); a string holding them
# only takes the exact path, which is slower but just as right. Found by mapping every byte to a digit or a
# space and searching the run: ~0.5 µs per KiB, where a regular expression cost several times orjson's parse.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_RUN = b"0" * 19


def _maybe_beyond_64_bits(data: bytes) -> bool:
    return _LONG_RUN in data.translate(_DIGITS_AS_ZERO)


def dumps(obj: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(obj, separators=(",", ":")).encode()


def encode(obj: Any) -> str:
    return dumps(obj).decode()


def loads(text: str | bytes) -> Any:
    """Any JSON value; raises ValueError (json.JSONDecodeError or orjson's, both subclasses) when not JSON."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if not _maybe_beyond_64_bits(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def decode(text: str) -> Resource:
    return dict(loads(text))
