"""Rendering functions, table-driven: durations, condition summaries, columns per kind, result lines."""

from __future__ import annotations

from typing import Any

import pytest

from wisp.api import kinds
from wisp.api.kinds import Kind
from wisp.cli import render
from wisp.cli.render import Context, Table

from . import fixtures as fx

MIN, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (185, "3m5s"),
        (10 * MIN, "10m"),
        (179 * MIN, "179m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 30 * MIN, "3h30m"),
        (8 * HOUR, "8h"),
        (47 * HOUR, "47h"),
        (2 * DAY, "2d"),
        (3 * DAY + 4 * HOUR, "3d4h"),
        (8 * DAY, "8d"),
        (400 * DAY, "400d"),
        (2 * 365 * DAY, "2y"),
        (2 * 365 * DAY + 5 * DAY, "2y5d"),
        (9 * 365 * DAY, "9y"),
    ],
)
def test_human_duration_matches_kubectl(seconds: float, expected: str) -> None:
    assert render.human_duration(seconds) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"creationTimestamp": fx.ts(42)}}, "42s"),
        ({"metadata": {"creationTimestamp": fx.ts(2 * DAY)}}, "2d"),
        ({"metadata": {}}, "<unknown>"),
        ({"metadata": {"creationTimestamp": "yesterday"}}, "<unknown>"),
    ],
)
def test_age(obj: dict[str, Any], expected: str) -> None:
    assert render.age(obj, fx.NOW) == expected


def _conds(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": t, "status": s, "reason": f"R{t}"} for t, s in pairs]}}


@pytest.mark.parametrize(
    ("obj", "summary", "ready", "reason"),
    [
        (
            _conds(("Ready", "True"), ("RoutesReady", "True"), ("ConfigurationsReady", "True")),
            "3 OK / 3",
            "True",
            "RReady",
        ),
        (_conds(("Ready", "False"), ("RoutesReady", "True")), "1 OK / 2", "False", "RReady"),
        (_conds(("Ready", "Unknown")), "0 OK / 1", "Unknown", "RReady"),
        (_conds(("Succeeded", "True")), "1 OK / 1", "True", "RSucceeded"),
        ({}, "0 OK / 0", "<unknown>", ""),
    ],
)
def test_condition_columns(obj: dict[str, Any], summary: str, ready: str, reason: str) -> None:
    assert render.conditions_summary(obj) == summary
    assert render.ready_status(obj) == ready
    assert render.ready_reason(obj) == reason


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        ({"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"}}, "ksvc:hello"),
        (
            {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}},
            "broker:default",
        ),
        ({"ref": {"apiVersion": "v1", "kind": "Service", "name": "plain"}}, "service:plain"),
        (
            {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "h"}, "uri": "/path"},
            "ksvc:h/path",
        ),
        ({"uri": "http://example.com/x"}, "http://example.com/x"),
        (None, ""),
    ],
)
def test_sink_text(sink: Any, expected: str) -> None:
    assert render.sink_text(sink) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "deployment:apps/v1:web"),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "selector": {"matchLabels": {"app": "a"}}},
            "deployment:apps/v1:app=a",
        ),
    ],
)
def test_subject_text(subject: dict[str, Any], expected: str) -> None:
    assert render.subject_text(subject) == expected


def test_revision_traffic_sums_percent_and_collects_tags() -> None:
    svc = {
        "metadata": {"name": "a", "namespace": "ns"},
        "status": {
            "traffic": [
                {"revisionName": "a-00001", "percent": 50},
                {"revisionName": "a-00001", "percent": 0, "tag": "blue"},
                {"revisionName": "a-00002", "percent": 50, "tag": "green"},
                {"latestRevision": True, "percent": 0, "tag": "latest"},  # no revisionName yet: skipped
            ]
        },
    }
    assert render.revision_traffic([svc]) == {
        ("ns", "a-00001"): (50, ["blue"]),
        ("ns", "a-00002"): (50, ["green"]),
    }


CTX = Context(fx.NOW)


@pytest.mark.parametrize(
    ("kind", "obj", "headers", "row"),
    [
        (kinds.SECRET, fx.secret(), ["NAME", "TYPE", "DATA", "AGE"], ["creds", "Opaque", "2", "120m"]),
        (
            kinds.CONFIG_MAP,
            {"metadata": {"name": "cfg", "creationTimestamp": fx.ts(5)}, "data": {"a": "1"}},
            ["NAME", "DATA", "AGE"],
            ["cfg", "1", "5s"],
        ),
        (
            kinds.KAFKA_SOURCE,
            fx.kafka_source(),
            ["NAME", "TOPICS", "BOOTSTRAPSERVERS", "READY", "REASON", "AGE"],
            ["barrage", "barrage,chat", "127.0.0.1:9092", "False", "NotConnected", "3d"],
        ),
        (
            kinds.KAFKA_SOURCE,
            {"metadata": {"name": "old"}, "spec": {"topics": "a,b", "bootstrapServers": "h:1"}},
            ["NAME", "TOPICS", "BOOTSTRAPSERVERS", "READY", "REASON", "AGE"],
            ["old", "a,b", "h:1", "<unknown>", "", "<unknown>"],
        ),
        (
            kinds.BROKER,
            {
                "metadata": {"name": "default", "creationTimestamp": fx.ts(3)},
                "status": {
                    "address": {
                        "url": "http://broker-ingress.knative-eventing.localhost:8080/default/default"
                    },
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
            ["NAME", "URL", "AGE", "READY", "REASON"],
            [
                "default",
                "http://broker-ingress.knative-eventing.localhost:8080/default/default",
                "3s",
                "True",
                "",
            ],
        ),
        (
            kinds.TRIGGER,
            {
                "metadata": {"name": "t", "creationTimestamp": fx.ts(3)},
                "spec": {"broker": "default"},
                "status": {"subscriberUri": "http://hello.default.localhost:8080"},
            },
            ["NAME", "BROKER", "SUBSCRIBER_URI", "AGE", "READY", "REASON"],
            ["t", "default", "http://hello.default.localhost:8080", "3s", "<unknown>", ""],
        ),
        (
            kinds.PING_SOURCE,
            {
                "metadata": {"name": "p"},
                "spec": {
                    "schedule": "*/1 * * * *",
                    "sink": {
                        "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"}
                    },
                },
            },
            ["NAME", "SCHEDULE", "SINK", "AGE", "CONDITIONS", "READY", "REASON"],
            ["p", "*/1 * * * *", "ksvc:hello", "<unknown>", "0 OK / 0", "<unknown>", ""],
        ),
        (
            kinds.CONFIGURATION,
            {
                "metadata": {"name": "hello"},
                "status": {
                    "latestCreatedRevisionName": "hello-00002",
                    "latestReadyRevisionName": "hello-00001",
                },
            },
            ["NAME", "LATESTCREATED", "LATESTREADY", "AGE", "READY", "REASON"],
            ["hello", "hello-00002", "hello-00001", "<unknown>", "<unknown>", ""],
        ),
        (
            kinds.DOMAIN_MAPPING,
            {
                "metadata": {"name": "barrage.demo.knative.top"},
                "spec": {"ref": {"name": "web"}},
                "status": {"url": "http://barrage.demo.knative.top"},
            },
            ["NAME", "URL", "READY", "KSVC", "REASON"],
            ["barrage.demo.knative.top", "http://barrage.demo.knative.top", "<unknown>", "web", ""],
        ),
        (
            kinds.NAMESPACE,
            {"metadata": {"name": "default"}},
            ["NAME", "STATUS", "AGE"],
            ["default", "Active", "<unknown>"],
        ),
    ],
)
def test_table_columns_per_kind(kind: Kind, obj: dict[str, Any], headers: list[str], row: list[str]) -> None:
    assert render.table(kind, [obj], CTX) == Table(headers, [row])


def test_pod_status_prefers_a_waiting_reason() -> None:
    crashing = fx.pod("p", ready=False, restarts=4)
    crashing["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    row = render.table(kinds.POD, [crashing], CTX).rows[0]
    assert row[1:4] == ["0/1", "CrashLoopBackOff", "4"]


def test_all_namespaces_column_only_for_namespaced_kinds() -> None:
    svc = fx.service("hello", namespace="prod")
    assert render.table(kinds.SERVICE, [svc], CTX, all_namespaces=True).rows[0][:2] == ["prod", "hello"]
    ns = {"metadata": {"name": "prod"}}
    assert render.table(kinds.NAMESPACE, [ns], CTX, all_namespaces=True).headers[0] == "NAME"


def test_revisions_sorted_by_service_then_newest_first() -> None:
    revs = [fx.revision("b", 1), fx.revision("a", 1), fx.revision("a", 3), fx.revision("a", 2)]
    rows = render.table(kinds.REVISION, revs, CTX).rows
    assert [r[0] for r in rows] == ["a-00003", "a-00002", "a-00001", "b-00001"]


def test_format_table_pads_like_tabwriter() -> None:
    out = render.format_table(Table(["NAME", "READY"], [["a-long-name", "True"], ["b", ""]]))
    assert out == "NAME          READY\na-long-name   True\nb\n"


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            {"kind": "Service", "name": "hello", "action": "created"},
            "service.serving.knative.dev/hello created",
        ),
        (
            {"kind": "KafkaSource", "name": "k", "action": "configured"},
            "kafkasource.sources.knative.dev/k configured",
        ),
        ({"kind": "Secret", "name": "s", "action": "unchanged"}, "secret/s unchanged"),
        ({"kind": "Widget", "name": "w", "action": "created"}, "widget/w created"),
    ],
)
def test_result_line(result: dict[str, str], line: str) -> None:
    assert render.result_line(result) == line


def test_status_error_lines_list_each_cause() -> None:
    lines = render.status_error_lines("Invalid", "bad", [("spec.a", "is required"), ("", "general")])
    assert lines == ["Error from server (Invalid): bad", "  spec.a: is required", "  general"]


def test_describe_secret_shows_keys_only() -> None:
    page = render.describe(
        kinds.SECRET, {**fx.secret(), "data": {"k": "c2VjcmV0"}, "stringData": {"p": "pw"}}, CTX
    )
    assert "c2VjcmV0" not in page and "pw\n" not in page
    assert "  k\n" in page and "  p\n" in page
    assert "Conditions:" not in page


def test_describe_generic_kind_dumps_spec_and_conditions() -> None:
    page = render.describe(kinds.KAFKA_SOURCE, fx.kafka_source(), CTX)
    assert "Spec:\n  topics:\n  - barrage\n" in page
    assert "kafka: no brokers" in page
