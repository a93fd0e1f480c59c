"""Shared type names: the shape of a stored resource and of time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# A Kubernetes-shaped object as YAML/JSON gives it: apiVersion, kind, metadata, spec, status.
Resource = dict[str, Any]

# Wall-clock seconds (time.time()); passed in so time-based logic runs on a fake clock in tests.
Clock = Callable[[], float]
