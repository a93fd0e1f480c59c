"""knative/serving test/conformance/api/v1/single_threaded_test.go: with containerConcurrency 1 an instance never
sees two requests at once (the app answers 500 when it does), however many clients send together."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conformance.conftest import Target, conformance_daemon, knative_service

CLIENTS = 5
SECONDS = 4.0  # upstream: 20 s


async def test_single_concurrency(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(knative_service("single", target.container(), spec={"containerConcurrency": 1}))
        await h.ready("single", timeout=120)
        loop = asyncio.get_running_loop()
        end = loop.time() + SECONDS
        statuses: list[int] = []

        async def client() -> None:
            while loop.time() < end:
                r = await h.request("single.default.localhost", "/single")
                statuses.append(r.status_code)

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        assert len(statuses) > CLIENTS and set(statuses) == {200}, sorted(set(statuses))
