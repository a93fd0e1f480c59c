"""Kubernetes' timestamp form (RFC 3339, UTC, whole seconds: `2026-11-30T09:49:18Z`)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
