"""Metrics and traces as the daemon exposes them."""

from __future__ import annotations

from pathlib import Path

from tests.serving.harness import running_daemon, service, write_function

HELLO = """
def handle(request):
    return "hi"
"""


async def test_metrics_count_requests_per_revision(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", HELLO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("counted", code))
        await h.ready("counted")
        for _ in range(3):
            assert (await h.request("counted.default.localhost")).status_code == 200
        text = (await h.client.get(f"{h.api}/metrics")).text
        assert 'wisp_requests_total{namespace="default",response_code_class="2xx",revision="counted-00001"} 3.0' \
            in text, text
        assert 'wisp_revision_actual_instances{namespace="default",revision="counted-00001"} 1.0' in text


async def test_instances_are_told_where_to_send_spans(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", """
import os
def handle(request):
    return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] + " " + os.environ["OTEL_SERVICE_NAME"]
""")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("traced", code))
        await h.ready("traced")
        endpoint, name = (await h.request("traced.default.localhost")).text.split()
        assert endpoint == h.api
        assert name == "traced"
