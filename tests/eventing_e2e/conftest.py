"""Markers of the eventing end-to-end tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "crash: kill -9 of a real `wisp up` subprocess, then a restart (required)")
