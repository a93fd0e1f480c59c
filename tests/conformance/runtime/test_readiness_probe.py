"""knative/serving test/conformance/runtime/readiness_probe_test.go: a Service is Ready, and answers, only once
its readiness probe passes (httpGet, tcpSocket), with the default period and periodSeconds 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import Target, conformance_daemon, knative_service

DELAY = "2"  # seconds; upstream waits 10 s
HANDLERS: dict[str, tuple[dict[str, Any], str]] = {
    "httpGet": ({"httpGet": {"path": "/healthz/readiness"}}, "READY_DELAY"),
    "tcpSocket": ({"tcpSocket": {}}, "LISTEN_DELAY"),
}


@pytest.mark.parametrize("period", [0, 1])
@pytest.mark.parametrize("handler", list(HANDLERS))
async def test_probe_runtime(tmp_path: Path, target: Target, handler: str, period: int) -> None:
    action, delay_var = HANDLERS[handler]
    probe = {**action, **({"periodSeconds": period} if period else {})}
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(knative_service("probe", target.container(env=[{"name": delay_var, "value": DELAY}],
                                                          readinessProbe=probe)))
        await h.ready("probe", timeout=120)
        r = await h.request("probe.default.localhost", "/healthz/readiness")
        assert (r.status_code, r.text) == (200, "ready")
