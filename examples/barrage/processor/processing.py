"""Pure message processing: validate, mask banned words, pick lane/colour/speed from the id."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from barrage_table import BarrageRow

MAX_TEXT = 200
MAX_ID = 200
PALETTE = ("#ff5252", "#ffb300", "#ffee58", "#66bb6a", "#26c6da", "#42a5f5", "#ab47bc", "#f5f5f5")
MIN_SPEED_S = 6.0  # seconds to cross the stage; slower is easier to read
SPEED_SPREAD_S = 6.0
REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")


class Rejected(Exception):
    """The event can never be processed: answer 4xx so the sender does not retry it."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Message:
    id: str
    text: str
    sent_at: float | None
    run: str


@dataclass(frozen=True)
class Event:
    """The parts of a CloudEvent this service reads."""

    attributes: dict[str, str]
    data: bytes


def banned_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """Whole words, case-insensitively; lookarounds instead of \\b so words like `c++` work too."""
    cleaned = sorted({w.strip() for w in words if w.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    alternatives = "|".join(re.escape(w) for w in cleaned)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def mask(text: str, pattern: re.Pattern[str] | None) -> str:
    return pattern.sub("***", text) if pattern is not None else text


def style(message_id: str, lanes: int) -> tuple[int, str, float]:
    """Lane, colour and speed from a stable hash of the id: every instance and every retry agree."""
    digest = hashlib.sha256(message_id.encode()).digest()
    lane = int.from_bytes(digest[0:4], "big") % lanes
    color = PALETTE[int.from_bytes(digest[4:8], "big") % len(PALETTE)]
    speed = MIN_SPEED_S + (int.from_bytes(digest[8:12], "big") % 1000) / 1000 * SPEED_SPREAD_S
    return lane, color, round(speed, 2)


def parse_http_event(headers: Mapping[str, str], body: bytes) -> Event:
    """Binary mode (`ce-*` headers) or structured mode (`application/cloudevents+json`)."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/cloudevents+json":
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            raise Rejected(f"structured CloudEvent is not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise Rejected("structured CloudEvent must be a JSON object")
        raw = _structured_data(envelope.get("data"))
        attributes = {k: str(v) for k, v in envelope.items() if k not in ("data", "data_base64")}
    else:
        attributes = {k[3:].lower(): v for k, v in headers.items() if k.lower().startswith("ce-")}
        raw = body
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise Rejected(f"not a CloudEvent: missing {', '.join(missing)}")
    return Event(attributes, raw)


def _structured_data(data: object) -> bytes:
    if data is None:
        return b""
    return data.encode() if isinstance(data, str) else json.dumps(data).encode()


def parse_message(event: Event) -> Message:
    try:
        data = json.loads(event.data)
    except ValueError:
        raise Rejected("data is not JSON") from None
    if not isinstance(data, dict):
        raise Rejected("data must be a JSON object")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Rejected("empty message")
    if len(text) > MAX_TEXT:
        raise Rejected(f"message longer than {MAX_TEXT} characters")
    # The HomePage's id is the idempotency key; the CloudEvent id is stable across redeliveries too.
    message_id = data.get("id") or event.attributes["id"]
    if not isinstance(message_id, str) or len(message_id) > MAX_ID:
        raise Rejected(f"id must be a string of at most {MAX_ID} characters")
    sent_at = data.get("sent_at")
    run = data.get("run")
    return Message(
        id=message_id,
        text=text,
        sent_at=float(sent_at) if isinstance(sent_at, int | float) else None,
        run=run if isinstance(run, str) else "",
    )


def to_row(message: Message, pattern: re.Pattern[str] | None, lanes: int, now: float) -> BarrageRow:
    lane, color, speed = style(message.id, lanes)
    return BarrageRow(
        id=message.id,
        text=mask(message.text, pattern),
        lane=lane,
        color=color,
        speed=speed,
        sent_at=message.sent_at if message.sent_at is not None else now,
        processed_at=now,
        run=message.run,
    )
