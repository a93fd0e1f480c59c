"""knative/serving test/conformance/api/v1/revision_timeout_test.go: timeoutSeconds bounds the time to the
first byte (504 past it); a response that started in time may take longer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.conftest import Target, conformance_daemon, knative_service

TIMEOUT_SECONDS = 3  # upstream: 10, with sleeps of 2, 12 and 15 s; scaled down
CASES = {
    "does not exceed timeout seconds": (1000, 0, 200),
    "exceeds timeout seconds": (4000, 0, 504),
    "writes first byte before timeout": (0, 4500, 200),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_revision_timeout(tmp_path: Path, target: Target, case: str) -> None:
    initial, sleep, status = CASES[case]
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(knative_service("timeout", target.container(), spec={"timeoutSeconds": TIMEOUT_SECONDS}))
        await h.ready("timeout", timeout=120)
        url = f"{h.ingress}/timeout?initialTimeout={initial}&timeout={sleep}"
        async with h.client.stream("GET", url, headers={"Host": "timeout.default.localhost"}, timeout=30) as r:
            # Upstream checks the status only: a response that started in time is a 200, even when its body then
            # outlasts timeoutSeconds (wisp, like the queue-proxy, ends it there: the body is cut short).
            assert r.status_code == status
            first = await anext(r.aiter_raw())
            assert first.startswith(b".") if status == 200 else b"did not answer" in first
