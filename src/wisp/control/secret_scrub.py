"""Secret values never leave the daemon in an error: validators quote bad values, and a Secret's are secret."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json

from wisp.api.errors import FieldError, ManifestError

REDACTED = "<redacted>"
_SECRET_FIELDS = ("data", "stringData")
_SHORT = 4  # values shorter than this are only recognised where a validator quotes them, not anywhere in text
_WINDOW = 8  # this many characters of a value in a message count as quoting it, however it was cut


def scrub(exc: ManifestError, items: list[object]) -> ManifestError:
    """`exc` with every value of every Secret among `items` replaced by <redacted> in its messages."""
    values = _secret_values(items)
    if not values:
        return exc
    errors = [FieldError(e.path, _scrub_message(e.message, values)) for e in exc.errors]
    return ManifestError(errors, exc.where)


def _secret_values(items: list[object]) -> list[str]:
    values: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or item.get("kind") != "Secret":
            continue
        for field in _SECRET_FIELDS:
            mapping = item.get(field)
            for value in mapping.values() if isinstance(mapping, dict) else [mapping]:
                if value is not None:
                    values.update(_forms(value))
    # Longest first, so a value that contains another is replaced whole.
    return sorted((v for v in values if v), key=len, reverse=True)


def _forms(value: object) -> set[str]:
    """Every way a validator might show `value`: as given, as Python or JSON text, and decoded from base64."""
    if not isinstance(value, str):
        return {str(value), json.dumps(value)}
    forms = {value}
    with contextlib.suppress(binascii.Error, ValueError):
        forms.add(base64.b64decode("".join(value.split()), validate=True).decode())
    return forms


def _scrub_message(message: str, values: list[str]) -> str:
    for value in values:
        for shown in (value, _shortened(value)):
            if len(shown) >= _SHORT and shown in message:
                message = message.replace(shown, REDACTED)
            elif message.startswith(f"invalid value: {shown}:") or message == f"invalid value: {shown}":
                message = f"invalid value: {REDACTED}" + message[len(f"invalid value: {shown}"):]
        if _quotes_part_of(message, value):
            # Quoted in a form not known here (cut or escaped differently): say nothing of the value at all.
            return f"invalid value: {REDACTED}"
    return message


def _shortened(value: str) -> str:
    # How the validators quote a long value (wisp.api.validate_core._shorten).
    return value if len(value) <= 40 else value[:37] + "..."


def _quotes_part_of(message: str, value: str) -> bool:
    return any(value[i:i + _WINDOW] in message for i in range(len(value) - _WINDOW + 1))
