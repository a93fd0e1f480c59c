"""What an anonymous client may be told about a revision that cannot serve.

Status condition messages carry details for the owner (`wisp describe`): tracebacks, last log lines, paths.
They are written with a one-line summary first; clients of the ingress get that line only.
"""

from __future__ import annotations

MAX_LENGTH = 200


def public_reason(message: str) -> str:
    """The first line of a condition message, without a trailing colon, at most MAX_LENGTH characters."""
    line = message.strip().split("\n", 1)[0].strip().rstrip(":").strip()
    if len(line) > MAX_LENGTH:
        line = line[: MAX_LENGTH - 1] + "…"
    return line or "unknown reason"
