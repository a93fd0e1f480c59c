"""Objects to JSON text and back, fast: orjson where it is exact, the json module where it is not (an integer
beyond 64 bits, which a manifest may hold: orjson refuses to write one and reads one back as a float)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from wisp.types import Resource

# 19 digits in a row may be an integer orjson reads as a float (past int64 / uint64); a string holding them
# only takes the exact path, which is slower but just as right.
_MAYBE_BEYOND_64_BITS = re.compile(r"\d{19}")
_MAYBE_BEYOND_64_BITS_BYTES = re.compile(rb"\d{19}")


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
    pattern = _MAYBE_BEYOND_64_BITS if isinstance(text, str) else _MAYBE_BEYOND_64_BITS_BYTES
    if pattern.search(text) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def decode(text: str) -> Resource:
    return dict(loads(text))
