"""The `wisp` command against a real HTTP server speaking the control API contract."""

from __future__ import annotations

import json
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from . import fixtures as fx
from .fake_daemon import FakeDaemon


def wisp(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon, *args: str, **kw: object) -> Result:
    return runner.invoke(app, ["--api", daemon.url, *args], **kw)  # type: ignore[arg-type]


def table_rows(out: str) -> list[list[str]]:
    """Split a kubectl-style table on runs of 2+ spaces (cells themselves hold single spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


HELLO_YAML = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
"""


# -- get ---------------------------------------------------------------------------------------------------


def test_get_ksvc_prints_kn_like_table(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    daemon.add(fx.service("hello"), fx.failing_service("broken"), fx.service("other", namespace="prod"))
    result = wisp(runner, app, daemon, "get", "ksvc")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0] == ["NAME", "URL", "LATEST", "AGE", "CONDITIONS", "READY", "REASON"]
    assert rows[1] == [
        "broken",
        "http://broken.default.localhost:8080",
        "5m",
        "1 OK / 3",
        "False",
        "RevisionFailed",
    ]
    assert rows[2] == [
        "hello",
        "http://hello.default.localhost:8080",
        "hello-00002",
        "5m",
        "3 OK / 3",
        "True",
    ]
    assert len(rows) == 3  # "other" lives in another namespace
    assert daemon.requests[-1].path == "/apis/serving.knative.dev/v1/namespaces/default/services"


def test_get_all_namespaces_adds_namespace_column(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon
) -> None:
    daemon.add(fx.service("hello"), fx.service("other", namespace="prod"))
    result = wisp(runner, app, daemon, "get", "services.serving.knative.dev"[:8], "-A")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [r[:2] for r in rows[1:]] == [["default", "hello"], ["prod", "other"]]
    assert daemon.requests[-1].path == "/apis/serving.knative.dev/v1/services"


def test_get_revisions_shows_traffic_and_tags(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon
) -> None:
    daemon.add(fx.service("hello"), fx.revision("hello", 1), fx.revision("hello", 2))
    result = wisp(runner, app, daemon, "get", "rev")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0] == [
        "NAME",
        "SERVICE",
        "TRAFFIC",
        "TAGS",
        "GENERATION",
        "AGE",
        "CONDITIONS",
        "READY",
        "REASON",
    ]
    assert rows[1] == ["hello-00002", "hello", "90%", "2", "2m", "4 OK / 4", "True"]
    assert rows[2] == ["hello-00001", "hello", "10%", "old", "1", "60s", "4 OK / 4", "True"]


def test_get_pods_and_kpa(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    daemon.add(
        fx.pod("hello-00002-deployment-abcde", restarts=2, in_flight=7),
        fx.pod("hello-00002-deployment-fghij", ready=False),
        fx.kpa(),
    )
    pods = wisp(runner, app, daemon, "get", "pods")
    assert pods.exit_code == 0, pods.output
    assert table_rows(pods.stdout) == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "INFLIGHT"],
        ["hello-00002-deployment-abcde", "1/1", "Running", "2", "42s", "7"],
        ["hello-00002-deployment-fghij", "0/1", "Pending", "0", "42s", "0"],
    ]
    wide = wisp(runner, app, daemon, "get", "po", "-o", "wide")
    assert table_rows(wide.stdout)[1][-2:] == ["hello", "hello-00002"]
    kpa = wisp(runner, app, daemon, "get", "kpa")
    assert table_rows(kpa.stdout) == [
        ["NAME", "DESIREDSCALE", "ACTUALSCALE", "READY", "REASON"],
        ["hello-00002", "3", "2", "True"],
    ]
    assert daemon.requests[-1].path == (
        "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/default/podautoscalers"
    )


def test_get_output_json_and_yaml(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    daemon.add(fx.service("hello"), fx.service("two"))
    one = wisp(runner, app, daemon, "get", "ksvc", "hello", "-o", "json")
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout) == fx.service("hello")
    listed = wisp(runner, app, daemon, "get", "ksvc", "-o", "json")
    doc = json.loads(listed.stdout)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "List"
    assert [i["metadata"]["name"] for i in doc["items"]] == ["hello", "two"]
    as_yaml = wisp(runner, app, daemon, "get", "ksvc", "hello", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == fx.service("hello")
    names = wisp(runner, app, daemon, "get", "ksvc", "-o", "name")
    assert names.stdout.splitlines() == [
        "service.serving.knative.dev/hello",
        "service.serving.knative.dev/two",
    ]


def test_get_empty_list_says_so_on_stderr(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    result = wisp(runner, app, daemon, "get", "brokers", "-n", "prod")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No resources found in prod namespace." in result.stderr


def test_get_not_found_is_kubectl_like(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    result = wisp(runner, app, daemon, "get", "ksvc", "nope")
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == 'Error from server (NotFound): services.serving.knative.dev "nope" not found'
    )


def test_get_unknown_kind_fails_without_calling_the_daemon(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon
) -> None:
    result = wisp(runner, app, daemon, "get", "gizmos")
    assert result.exit_code == 1
    assert "doesn't have a resource type 'gizmos'" in result.stderr
    assert daemon.requests == []


def test_get_rejects_unknown_output_format(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    result = wisp(runner, app, daemon, "get", "ksvc", "-o", "xml")
    assert result.exit_code == 1
    assert "allowed formats are: yaml,json,wide,name" in result.stderr


def test_unreachable_daemon(runner: CliRunner, app: typer.Typer) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = runner.invoke(app, ["get", "ksvc"], env={"WISP_API": url})
    assert result.exit_code == 1
    assert result.stderr.strip() == f"cannot reach the wisp daemon at {url}: is `wisp up` running?"


def test_token_is_sent_as_bearer(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    result = runner.invoke(app, ["get", "ksvc"], env={"WISP_API": daemon.url, "WISP_TOKEN": "s3cret"})
    assert result.exit_code == 0, result.output
    assert daemon.requests[-1].headers["authorization"] == "Bearer s3cret"
    wisp(runner, app, daemon, "get", "ksvc")
    assert "authorization" not in daemon.requests[-1].headers


# -- describe ----------------------------------------------------------------------------------------------


def test_describe_ksvc(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    daemon.add(fx.service("hello"), fx.revision("hello", 1), fx.revision("hello", 2), fx.revision("other", 1))
    result = wisp(runner, app, daemon, "describe", "ksvc", "hello")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for label, value in [
        ("Name", "hello"),
        ("Namespace", "default"),
        ("Kind", "Service (serving.knative.dev/v1)"),
        ("URL", "http://hello.default.localhost:8080"),
        ("Image", "./hello"),
        ("Concurrency", "10"),
        ("Annotations", "autoscaling.knative.dev/max-scale=5"),
    ]:
        assert re.search(rf"^\s*{label}:\s+{re.escape(value)}$", out, re.MULTILINE), label
    assert re.search(r"^\s+TOKEN=<secret creds/token>$", out, re.MULTILINE)
    traffic = out.split("Traffic:")[1].split("Revisions:")[0]
    assert table_rows(traffic)[1:] == [
        ["90%", "@latest hello-00002"],
        ["10%", "hello-00001", "#old", "http://old-hello.default.localhost:8080"],
    ]
    revisions = out.split("Revisions:")[1].split("Conditions:")[0]
    assert [r[0] for r in table_rows(revisions)[1:]] == ["hello-00002", "hello-00001"]
    conditions = table_rows(out.split("Conditions:")[1])
    assert conditions == [
        ["OK", "TYPE", "AGE", "REASON", "MESSAGE"],
        ["++", "ConfigurationsReady", "5m"],
        ["++", "Ready", "5m"],
        ["++", "RoutesReady", "5m"],
    ]


def test_describe_failing_service_shows_reason_and_message(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon
) -> None:
    daemon.add(fx.failing_service("broken"))
    result = wisp(runner, app, daemon, "describe", "ksvc", "broken")
    assert result.exit_code == 0, result.output
    conditions = table_rows(result.stdout.split("Conditions:")[1])
    assert ["!!", "Ready", "RevisionFailed", "image ./nope: no such directory"] in conditions


def test_describe_secret_never_prints_values(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    leaky = fx.secret()
    leaky["data"] = {"token": "dG9wLXNlY3JldA=="}  # even if a value slipped through, describe shows keys only
    daemon.add(leaky)
    result = wisp(runner, app, daemon, "describe", "secret", "creds")
    assert result.exit_code == 0, result.output
    assert "token" in result.stdout
    assert "dG9wLXNlY3JldA==" not in result.stdout


def test_describe_not_found(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    result = wisp(runner, app, daemon, "describe", "broker", "nope")
    assert result.exit_code == 1
    assert 'brokers.eventing.knative.dev "nope" not found' in result.stderr


# -- apply / delete ----------------------------------------------------------------------------------------


def test_apply_sends_all_documents_in_one_request(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon, tmp_path: Path
) -> None:
    manifest = tmp_path / "hello.yaml"
    manifest.write_text(HELLO_YAML)
    first = wisp(runner, app, daemon, "apply", "-f", str(manifest))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "service.serving.knative.dev/hello created",
        "broker.eventing.knative.dev/default created",
    ]
    applies = daemon.requests_to("/apply")
    assert len(applies) == 1
    assert [i["kind"] for i in json.loads(applies[0].body)["items"]] == ["Service", "Broker"]
    again = wisp(runner, app, daemon, "apply", "-f", str(tmp_path))  # a directory works too
    assert again.stdout.splitlines() == [
        "service.serving.knative.dev/hello unchanged",
        "broker.eventing.knative.dev/default unchanged",
    ]


def test_apply_from_stdin(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    result = wisp(runner, app, daemon, "apply", "-f", "-", input=HELLO_YAML)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "service.serving.knative.dev/hello created"


def test_apply_invalid_prints_every_cause(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon, tmp_path: Path
) -> None:
    daemon.invalid_causes = [
        ("spec.template.metadata.annotations[autoscaling.knative.dev/max-scale]", "must be >= min-scale"),
        ("spec.template.spec.containers[0].image", "is required"),
    ]
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(HELLO_YAML.replace("name: hello", "name: invalid"))
    result = wisp(runner, app, daemon, "apply", "-f", str(manifest))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error from server (Invalid): the manifest is invalid",
        "  spec.template.metadata.annotations[autoscaling.knative.dev/max-scale]: must be >= min-scale",
        "  spec.template.spec.containers[0].image: is required",
    ]


def test_apply_local_manifest_error_is_reported_before_sending(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon, tmp_path: Path
) -> None:
    manifest = tmp_path / "noname.yaml"
    manifest.write_text("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {}\n")
    result = wisp(runner, app, daemon, "apply", "-f", str(manifest))
    assert result.exit_code == 1
    assert "metadata.name: missing field(s)" in result.stderr
    assert str(manifest) in result.stderr
    assert daemon.requests == []
    missing = wisp(runner, app, daemon, "apply", "-f", str(tmp_path / "absent.yaml"))
    assert missing.exit_code == 1
    assert "no such file or directory" in missing.stderr


def test_delete_by_name_and_by_file(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon, tmp_path: Path
) -> None:
    daemon.add(fx.service("hello"), fx.kafka_source())
    result = wisp(runner, app, daemon, "delete", "ks", "barrage")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == 'kafkasource.sources.knative.dev "barrage" deleted'
    assert daemon.requests[-1].method == "DELETE"
    gone = wisp(runner, app, daemon, "delete", "ks", "barrage")
    assert gone.exit_code == 1
    assert "(NotFound)" in gone.stderr
    assert wisp(runner, app, daemon, "delete", "ks", "barrage", "--ignore-not-found").exit_code == 0

    manifest = tmp_path / "hello.yaml"
    manifest.write_text(HELLO_YAML)
    by_file = wisp(runner, app, daemon, "delete", "-f", str(manifest))
    assert by_file.stdout.splitlines() == ["service.serving.knative.dev/hello deleted"]
    assert "broker.eventing.knative.dev/default not found" in by_file.stderr
    assert by_file.exit_code == 1
    assert len(daemon.requests_to("/delete")) == 1


def test_delete_needs_a_name_or_a_file(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    assert wisp(runner, app, daemon, "delete").exit_code == 1
    assert wisp(runner, app, daemon, "delete", "ksvc").exit_code == 1
    assert daemon.requests == []


# -- logs / send -------------------------------------------------------------------------------------------


def test_logs_streams_text(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    daemon.log_text = "[hello-00001-deployment-abcde] started\n[hello-00001-deployment-abcde] GET / 200\n"
    result = wisp(runner, app, daemon, "logs", "hello", "-n", "prod", "--tail", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == daemon.log_text
    request = daemon.requests[-1]
    assert request.path == "/api/v1/namespaces/prod/services/hello/logs"
    assert request.query == {"follow": "false", "tailLines": "5"}
    wisp(runner, app, daemon, "logs", "hello", "-f")
    assert daemon.requests[-1].query == {"follow": "true"}


def test_send_posts_a_binary_cloudevent(runner: CliRunner, app: typer.Typer, daemon: FakeDaemon) -> None:
    result = wisp(
        runner,
        app,
        daemon,
        "send",
        "--broker",
        "default",
        "--type",
        "demo.barrage",
        "--source",
        "cli",
        "--data",
        '{"text": "hi"}',
        "--id",
        "e-1",
    )
    assert result.exit_code == 0, result.output
    assert "202 Accepted" in result.stdout and "e-1" in result.stdout
    event = daemon.requests[-1]
    assert event.method == "POST" and event.path == "/default/default"
    assert event.headers["host"] == "broker-ingress.knative-eventing.localhost"
    assert event.headers["ce-specversion"] == "1.0"
    assert (event.headers["ce-id"], event.headers["ce-type"], event.headers["ce-source"]) == (
        "e-1",
        "demo.barrage",
        "cli",
    )
    assert event.headers["content-type"] == "application/json"
    assert json.loads(event.body) == {"text": "hi"}


@pytest.mark.parametrize("args", [["up", "--help"], ["get", "--help"], ["send", "--help"]])
def test_help_works(runner: CliRunner, app: typer.Typer, args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 0


def test_get_revisions_across_namespaces_keeps_traffic_apart(
    runner: CliRunner, app: typer.Typer, daemon: FakeDaemon
) -> None:
    prod = fx.service("hello", namespace="prod")
    prod["status"]["traffic"] = [{"revisionName": "hello-00001", "percent": 100}]
    daemon.add(fx.service("hello"), prod, fx.revision("hello", 1), fx.revision("hello", 1, namespace="prod"))
    rows = table_rows(wisp(runner, app, daemon, "get", "revisions", "-A").stdout)
    assert [(r[0], r[1], r[3]) for r in rows[1:]] == [
        ("default", "hello-00001", "10%"),
        ("prod", "hello-00001", "100%"),
    ]


@dataclass
class _Options:
    paths: list[Path]
    port: int
    api_port: int
    state_dir: Path
    host: str
    kafka: str | None
    max_instances: int | None = None
    container_engine: str = "auto"


def test_up_builds_daemon_options(
    runner: CliRunner, app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The real daemon blocks until SIGTERM; a stand-in module records what `up` hands it.
    seen: list[_Options] = []

    def run(options: _Options) -> int:
        seen.append(options)
        return 3

    monkeypatch.setitem(sys.modules, "wisp.daemon", SimpleNamespace(DaemonOptions=_Options, run=run))
    args = [
        "up",
        str(tmp_path),
        "--port",
        "9080",
        "--api-port",
        "9001",
        "--state-dir",
        str(tmp_path / "s"),
        "--kafka",
        "127.0.0.1:9092",
        "--max-instances",
        "12",
        "--container-engine",
        "podman",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert seen == [_Options([tmp_path], 9080, 9001, tmp_path / "s", "127.0.0.1", "127.0.0.1:9092", 12, "podman")]
    assert runner.invoke(app, ["up"]).exit_code == 3
    assert seen[-1] == _Options([], 8080, 8001, Path(".wisp"), "127.0.0.1", None)
