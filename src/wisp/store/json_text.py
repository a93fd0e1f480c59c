"""Objects to JSON text and back, fast: orjson where it can, the json module where orjson refuses (an integer
beyond 64 bits, which a manifest may hold)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from wisp.types import Resource


def encode(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"))


def decode(text: str) -> Resource:
    try:
        return dict(orjson.loads(text))
    except orjson.JSONDecodeError:
        return dict(json.loads(text))
