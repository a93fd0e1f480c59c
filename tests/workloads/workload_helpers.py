"""Helpers for workload tests: free ports, code directories, specs."""

from __future__ import annotations

import textwrap
from pathlib import Path

from wisp.serving.workloads import WorkloadSpec

CONTRACT_ENV = {"K_SERVICE": "hello", "K_CONFIGURATION": "hello", "K_REVISION": "hello-00001"}


def write_code(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def function_spec(directory: Path, **overrides: object) -> WorkloadSpec:
    values: dict[str, object] = {
        "revision": "hello-00001", "namespace": "default", "workload_class": "function",
        "directory": directory, "image": "./fn", "env": dict(CONTRACT_ENV), "timeout_seconds": 10,
    }
    values.update(overrides)
    return WorkloadSpec(**values)  # type: ignore[arg-type]


