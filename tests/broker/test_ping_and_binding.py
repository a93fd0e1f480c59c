"""PingSource schedule and runner on a fake clock; SinkBinding env."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from wisp.api.errors import ManifestError
from wisp.eventing.cloudevents import CloudEvent
from wisp.eventing.ping_source import PingRunner, next_fire, ping_event, validate_ping_source
from wisp.eventing.sink_binding import binding_matches, env_for_subject, sink_binding_env

T0 = datetime(2024, 3, 9, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "tz", "after", "expected"),
    [
        ("*/1 * * * *", None, T0, datetime(2024, 3, 9, 12, 1, tzinfo=UTC)),
        ("*/15 * * * *", None, T0, datetime(2024, 3, 9, 12, 15, tzinfo=UTC)),
        ("0 9 * * *", "Asia/Shanghai", T0, datetime(2024, 3, 10, 1, 0, tzinfo=UTC)),
        ("CRON_TZ=Asia/Shanghai 0 9 * * *", None, T0, datetime(2024, 3, 10, 1, 0, tzinfo=UTC)),
        ("TZ=America/New_York 0 9 * * *", None, T0, datetime(2024, 3, 9, 14, 0, tzinfo=UTC)),
        # across the US spring-forward change: 9:00 New York is 13:00 UTC the next day
        ("TZ=America/New_York 0 9 * * *", None, datetime(2024, 3, 9, 15, tzinfo=UTC),
         datetime(2024, 3, 10, 13, 0, tzinfo=UTC)),
        ("0 0 1 * *", None, T0.replace(tzinfo=None), datetime(2024, 4, 1, tzinfo=UTC)),
    ],
)
def test_next_fire(schedule: str, tz: str | None, after: datetime, expected: datetime) -> None:
    assert next_fire(schedule, tz, after) == expected


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"schedule": "not a cron", "sink": {}}, "spec.schedule"),
        ({"schedule": "* * * * *", "timezone": "Mars/Olympus", "sink": {}}, "spec.timezone"),
        ({"schedule": "CRON_TZ=Asia/Tokyo * * * * *", "timezone": "UTC", "sink": {}}, "spec.timezone"),
        ({"schedule": "* * * * *", "data": "a", "dataBase64": "YQ==", "sink": {}}, "spec"),
        ({"schedule": "* * * * *", "dataBase64": "!!", "sink": {}}, "spec.dataBase64"),
        ({"schedule": "* * * * *"}, "spec.sink"),
    ],
)
def test_validate_ping_source(spec: dict[str, Any], field: str) -> None:
    assert [e.path for e in validate_ping_source(spec)] == [field]


def _source(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": {"name": "tick", "namespace": "demo"},
        "spec": {"sink": {"uri": "http://x"}, **spec},
    }


def test_ping_event_shape() -> None:
    fire = datetime(2024, 3, 9, 12, 1, tzinfo=UTC)
    event = ping_event(_source(schedule="* * * * *", data='{"m": 1}', contentType="application/json"), fire)
    assert event["type"] == "dev.knative.sources.ping"
    assert event["source"] == "/apis/v1/namespaces/demo/pingsources/tick"
    assert event["time"] == "2024-03-09T12:01:00Z"
    assert event["datacontenttype"] == "application/json"
    assert event.get_data() == b'{"m": 1}'
    binary = ping_event(_source(schedule="* * * * *", dataBase64="AAEC"), fire)
    assert binary.get_data() == b"\x00\x01\x02"
    assert ping_event(_source(schedule="* * * * *"), fire).get_data() is None


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_runner_fires_on_fake_clock_with_timezone() -> None:
    clock = FakeClock(datetime(2024, 3, 9, 23, 59, 30, tzinfo=UTC))
    fired: list[CloudEvent] = []
    three = asyncio.Event()

    async def emit(event: CloudEvent) -> None:
        fired.append(event)
        if len(fired) == 3:
            three.set()

    # 08:00 in Shanghai = 00:00 UTC; every 12 hours from there.
    source = _source(schedule="0 8,20 * * *", timezone="Asia/Shanghai", data="hi")
    runner = PingRunner(source, emit, clock=clock, sleep=clock.sleep)
    await runner.start()
    try:
        await asyncio.wait_for(three.wait(), 10)
    finally:
        await runner.stop()
    assert [e["time"] for e in fired[:3]] == [
        "2024-03-10T00:00:00Z", "2024-03-10T12:00:00Z", "2024-03-11T00:00:00Z",
    ]
    assert clock.sleeps[:3] == [30.0, 12 * 3600.0, 12 * 3600.0]
    assert all(e.get_data() == b"hi" for e in fired)


def test_runner_rejects_bad_schedule() -> None:
    async def emit(event: CloudEvent) -> None:
        raise AssertionError

    with pytest.raises(ManifestError):
        PingRunner(_source(schedule="61 * * * *"), emit)


SVC = {"apiVersion": "serving.knative.dev/v1", "kind": "Service"}


def _binding(subject: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "SinkBinding",
        "metadata": {"name": "bind", "namespace": "demo"},
        "spec": {"subject": subject, "sink": {"ref": {"kind": "Service", "name": "display"}}, **spec},
    }


def _service(name: str, labels: dict[str, str] | None = None, ns: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
    }


def _resolve(dest: Mapping[str, Any], namespace: str) -> str:
    return f"http://{dest['ref']['name']}.{namespace}.localhost:8080"


@pytest.mark.parametrize(
    ("subject", "service", "expected"),
    [
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "a"}, _service("a"), True),
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "a"}, _service("b"), False),
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "a"},
         _service("a", ns="other"), False),
        ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "a"}, _service("a"), False),
        ({**SVC, "selector": {"matchLabels": {"app": "x"}}},
         _service("a", {"app": "x"}), True),
        ({**SVC, "selector": {"matchLabels": {"app": "x"}}},
         _service("a", {"app": "y"}), False),
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
          "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                                            {"key": "canary", "operator": "DoesNotExist"}]}},
         _service("a", {"tier": "api"}), True),
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
          "selector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["api"]}]}},
         _service("a", {"tier": "api"}), False),
    ],
)
def test_binding_matches(subject: dict[str, Any], service: dict[str, Any], expected: bool) -> None:
    assert binding_matches(_binding(subject), service) is expected


def test_sink_binding_env() -> None:
    subject = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "producer"}
    binding = _binding(subject, ceOverrides={"extensions": {"extra": "this is an extra attribute"}})
    env = sink_binding_env(binding, _resolve)
    assert env["K_SINK"] == "http://display.demo.localhost:8080"
    assert json.loads(env["K_CE_OVERRIDES"]) == {"extensions": {"extra": "this is an extra attribute"}}
    assert "K_CE_OVERRIDES" not in sink_binding_env(_binding(subject), _resolve)
    assert env_for_subject([binding], _service("producer"), _resolve) == env
    assert env_for_subject([binding], _service("consumer"), _resolve) == {}
