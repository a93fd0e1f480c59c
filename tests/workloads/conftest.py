"""Runtimes made through the `runtimes` fixture are always stopped, pass or fail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from wisp.serving.workloads import Runtime, WorkloadSpec, make_runtime


@pytest.fixture
async def runtimes() -> AsyncIterator[Callable[[WorkloadSpec], Runtime]]:
    """Make runtimes that are stopped (with their instances) when the test ends, pass or fail."""
    made: list[Runtime] = []

    def make(spec: WorkloadSpec) -> Runtime:
        runtime = make_runtime(spec)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.stop()
