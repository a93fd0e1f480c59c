"""The real kubectl (and the Python `kubernetes` client) reading a real `wisp up` daemon, configured by
`wisp kubeconfig --merge`: discovery, printer columns, jsonpath, categories, explain, pods, logs, describe with
events, get events."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client as kube

from tests.k8s_api.read_side import Daemon, kubectl_path, running_daemon

APPS = Path(__file__).parent / "apps"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    kubectl_path()
    with running_daemon(APPS / "read_side.yaml", tmp_path_factory.mktemp("kubectl-read")) as running:
        yield running


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def request(daemon: Daemon, marker: str) -> None:
    response = httpx.get(f"http://127.0.0.1:{daemon.ingress_port}/", params={"marker": marker},
                         headers={"Host": "echo.default.localhost"}, timeout=30)
    assert response.json() == {"marker": marker}


def test_api_resources_lists_knatives_names(daemon: Daemon) -> None:
    out = daemon.kubectl("api-resources").stdout
    rows = {columns(line)[0]: columns(line) for line in out.splitlines()[1:]}
    assert rows["services"] == ["services", "kservice,ksvc", "serving.knative.dev/v1", "true", "Service"]
    assert rows["revisions"][1:] == ["rev", "serving.knative.dev/v1", "true", "Revision"]
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]
    assert rows["events"][1:] == ["ev", "v1", "true", "Event"]
    knative = daemon.kubectl("api-resources", "--categories=knative", "-o", "name").stdout.split()
    assert "services.serving.knative.dev" in knative and "brokers.eventing.knative.dev" in knative
    assert "pods" not in knative


def test_get_ksvc_prints_the_crds_columns(daemon: Daemon) -> None:
    lines = daemon.kubectl("get", "ksvc").stdout.splitlines()
    assert columns(lines[0]) == ["NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"]
    assert columns(lines[1]) == ["echo", f"http://echo.default.localhost:{daemon.ingress_port}", "echo-00001",
                                 "echo-00001", "True"]
    url = daemon.kubectl("get", "kservice", "echo", "-o", "jsonpath={.status.url}").stdout
    assert url == f"http://echo.default.localhost:{daemon.ingress_port}"
    ready = daemon.kubectl("get", "ksvc", "-o",
                           "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=='Ready')]"
                           ".status}{'\\n'}{end}").stdout
    assert ready.splitlines() == ["echo=True"]


def test_wide_adds_the_priority_columns(daemon: Daemon) -> None:
    narrow = columns(daemon.kubectl("get", "brokers").stdout.splitlines()[0])
    wide = columns(daemon.kubectl("get", "brokers", "-o", "wide").stdout.splitlines()[0])
    assert "CLASS" not in narrow and wide == [*narrow, "CLASS"]


def test_get_by_category(daemon: Daemon) -> None:
    out = daemon.kubectl("get", "knative").stdout
    for name in ("service.serving.knative.dev/echo", "configuration.serving.knative.dev/echo",
                 "revision.serving.knative.dev/echo-00001", "route.serving.knative.dev/echo",
                 "broker.eventing.knative.dev/default"):
        assert name in out
    assert "pod/" not in out


def test_explain_reads_knatives_schema(daemon: Daemon) -> None:
    out = daemon.kubectl("explain", "ksvc.spec.template.spec").stdout
    assert "GROUP:      serving.knative.dev" in out and "KIND:       Service" in out
    assert "containerConcurrency\t<integer>" in out
    field = daemon.kubectl("explain", "ksvc.spec.template.spec.containerConcurrency").stdout
    assert "ContainerConcurrency specifies the maximum allowed in-flight" in field


def test_secrets_list_without_values(daemon: Daemon) -> None:
    lines = daemon.kubectl("get", "secrets").stdout.splitlines()
    assert columns(lines[0]) == ["NAME", "TYPE", "DATA", "AGE"]
    assert columns(lines[1])[:3] == ["api-keys", "Opaque", "1"]
    assert "s3cr3t-value" not in daemon.kubectl("get", "secret", "api-keys", "-o", "yaml").stdout


def test_pods_logs_and_follow(daemon: Daemon) -> None:
    lines = daemon.kubectl("get", "pods").stdout.splitlines()
    assert columns(lines[0]) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    [row] = [columns(line) for line in lines[1:] if line.startswith("echo-")]
    pod = row[0]
    assert re.fullmatch(r"echo-00001-deployment-[a-z0-9]{5}", pod) and row[1:4] == ["1/1", "Running", "0"]
    wide = columns(daemon.kubectl("get", "pods", pod, "-o", "wide").stdout.splitlines()[1])
    assert wide[5:7] == ["127.0.0.1", "localhost"]
    marker = uuid.uuid4().hex
    request(daemon, marker)
    assert f"echo-request {marker}" in daemon.kubectl("logs", pod).stdout
    assert daemon.kubectl("logs", pod, "--tail=1").stdout.strip() == f"echo-request {marker}"
    assert daemon.kubectl("logs", f"pod/{pod}", "-c", "user-container").returncode == 0
    wrong = daemon.kubectl("logs", pod, "-c", "sidecar", check=False)
    assert wrong.returncode != 0 and "container sidecar is not valid" in wrong.stderr

    follower = subprocess.Popen([kubectl_path(), "logs", "-f", "--tail=0", pod], env=daemon.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen: list[str] = []
        arrived = threading.Event()
        later = uuid.uuid4().hex

        def read() -> None:
            assert follower.stdout is not None
            for line in follower.stdout:
                seen.append(line)
                if later in line:
                    arrived.set()
                    return

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 30
        while not arrived.is_set() and time.monotonic() < deadline:
            request(daemon, later)  # until the follow is attached (no event tells when it is)
            arrived.wait(0.5)
        assert arrived.is_set(), seen
        assert marker not in "".join(seen)  # --tail=0: only what came after
    finally:
        follower.terminate()
        follower.wait(10)


def test_describe_shows_events_and_get_events_lists_them(daemon: Daemon) -> None:
    described = daemon.kubectl("describe", "ksvc", "echo").stdout
    events = described[described.index("Events:"):]
    assert re.search(r"Normal\s+Created\s+\S+\s+wisp-serving\s+Created Configuration \"echo\"", events), events
    assert re.search(r"Normal\s+Ready\s+\S+\s+wisp-serving\s+Service \"echo\" is Ready", events), events
    revision = daemon.kubectl("describe", "revision", "echo-00001").stdout
    assert re.search(r"Normal\s+ScaledUp\s+\S+\s+wisp-autoscaler\s+desired scale 0 → 1", revision), revision
    lines = daemon.kubectl("get", "events").stdout.splitlines()
    assert columns(lines[0]) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any(columns(line)[1:4] == ["Normal", "Created", "configuration/echo"] for line in lines[1:])
    only = daemon.kubectl("get", "events", "--field-selector", "involvedObject.kind=Revision").stdout
    assert all("revision/" in line for line in only.splitlines()[1:]) and len(only.splitlines()) > 1
    pod = next(p for p in daemon.kubectl("get", "pods", "-o", "name").stdout.split() if p.startswith("pod/echo-"))
    assert re.search(r"Image:\s+\./echo", daemon.kubectl("describe", pod).stdout)


def test_apply_creates_through_the_api(daemon: Daemon, tmp_path: Path) -> None:
    manifest = tmp_path / "second.yaml"
    manifest.write_text(f"""apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: second
spec:
  template:
    metadata:
      annotations:
        wisp.dev/workload-class: function
    spec:
      containers:
        - image: {APPS / "echo"}
""")
    assert daemon.kubectl("apply", "-f", str(manifest)).stdout.strip() == "service.serving.knative.dev/second created"
    assert "second" in daemon.kubectl("get", "ksvc", "second", "-o", "name").stdout


def test_get_events_watch_sees_what_happens_next(daemon: Daemon, tmp_path: Path) -> None:
    watcher = subprocess.Popen([kubectl_path(), "get", "events", "-w", "--field-selector",
                                "involvedObject.name=watched"], env=daemon.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        # Whenever the apply lands, before kubectl's list or after it, the events show: the list has them, or the
        # watch goes on from the list's resourceVersion.
        manifest = tmp_path / "watched.yaml"
        manifest.write_text(f"""apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: watched
spec:
  template:
    metadata:
      annotations:
        wisp.dev/workload-class: function
    spec:
      containers:
        - image: {APPS / "echo"}
""")
        daemon.kubectl("apply", "-f", str(manifest))
        seen: list[str] = []
        arrived = threading.Event()

        def read() -> None:
            assert watcher.stdout is not None
            for line in watcher.stdout:
                seen.append(line)
                if 'Created Configuration "watched"' in line:
                    arrived.set()
                    return

        threading.Thread(target=read, daemon=True).start()
        assert arrived.wait(30), seen
        assert all("watched" in line for line in seen if line.strip() and "LAST SEEN" not in line)
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_the_python_client_reads_discovery_and_objects(daemon: Daemon) -> None:
    config = kube.Configuration()
    config.host = daemon.api
    with kube.ApiClient(config) as api:
        assert "serving.knative.dev" in [g.name for g in kube.ApisApi(api).get_api_versions().groups]
        assert kube.VersionApi(api).get_code().major == "1"
        custom = kube.CustomObjectsApi(api)
        resources = {r.name: r for r in custom.get_api_resources("serving.knative.dev", "v1").resources}
        assert resources["services"].short_names == ["kservice", "ksvc"]
        listed = custom.list_namespaced_custom_object("serving.knative.dev", "v1", "default", "services")
        assert "echo" in [item["metadata"]["name"] for item in listed["items"]]
        echo = custom.get_namespaced_custom_object("serving.knative.dev", "v1", "default", "services", "echo")
        assert echo["status"]["latestReadyRevisionName"] == "echo-00001"
        core = kube.CoreV1Api(api)
        [pod] = [p for p in core.list_namespaced_pod("default").items if p.metadata.name.startswith("echo-")]
        assert pod.status.phase == "Running" and pod.spec.containers[0].name == "user-container"
        marker = uuid.uuid4().hex
        request(daemon, marker)
        assert marker in core.read_namespaced_pod_log(pod.metadata.name, "default")
        reasons = {e.reason for e in core.list_namespaced_event("default").items}
        assert {"Created", "Ready", "ScaledUp"} <= reasons
        with pytest.raises(kube.ApiException) as missing:
            custom.get_namespaced_custom_object("serving.knative.dev", "v1", "default", "services", "nothing")
        assert missing.value.status == 404
