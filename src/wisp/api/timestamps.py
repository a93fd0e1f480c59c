"""Kubernetes' timestamp form (RFC 3339, UTC, whole seconds: `2026-11-30T09:49:18Z`), and ages as kubectl shows
them (the CLI and the API's Table output both)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: Any) -> float | None:
    """Seconds since the epoch for an RFC 3339 timestamp, or None when absent/unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's `duration.HumanDuration`: `45s`, `3m5s`, `15m`, `2h30m`, `20h`, `3d4h`, `30d`, `2y5d`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return _two_units(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        return _two_units(years, "y", days % 365, "d")
    return f"{years}y"


def _two_units(large: int, large_unit: str, rest: int, rest_unit: str) -> str:
    """`3m5s`, or `3m` when the rest is zero."""
    return f"{large}{large_unit}{rest}{rest_unit}" if rest else f"{large}{large_unit}"
