"""The real kubectl writing to a real `wisp up` daemon: apply (client-side, --dry-run=server, --server-side with
its conflicts and --force-conflicts), patch --type=merge making a new revision, wait --for=condition=Ready
(which also waits for status.observedGeneration), get --watch seeing the delete, delete."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s_api.read_side import Daemon, kubectl_path, running_daemon

pytestmark = pytest.mark.timeout(300)

BOOT = """apiVersion: v1
kind: ConfigMap
metadata:
  name: boot
"""

SERVICE = """apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  labels:
    app: hello
spec:
  template:
    metadata:
      annotations:
        wisp.dev/workload-class: function
    spec:
      containers:
        - image: {image}
          env:
            - name: GREETING
              value: {greeting}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    kubectl_path()
    work = tmp_path_factory.mktemp("kubectl-write")
    (work / "boot.yaml").write_text(BOOT)
    with running_daemon(work / "boot.yaml", work / "daemon") as running:
        yield running


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("manifests")
    (where / "fn").mkdir()
    (where / "fn" / "main.py").write_text("def handle(request):\n    return 'hi'\n")
    for greeting in ("Hi", "Yo"):
        (where / f"{greeting}.yaml").write_text(SERVICE.format(image=where / "fn", greeting=greeting))
    return where


def jsonpath(daemon: Daemon, what: str, path: str) -> str:
    return daemon.kubectl("get", what, "-o", f"jsonpath={path}").stdout


def test_apply_dry_run_patch_wait_server_side_apply(daemon: Daemon, manifests: Path) -> None:
    out = daemon.kubectl("apply", "-f", str(manifests / "Hi.yaml")).stdout
    assert out.strip() == "service.serving.knative.dev/hello created"
    waited = daemon.kubectl("wait", "--for=condition=Ready", "ksvc/hello", "--timeout=90s", timeout=120).stdout
    assert "condition met" in waited

    dry = daemon.kubectl("apply", "--dry-run=server", "-f", str(manifests / "Yo.yaml")).stdout
    assert dry.strip() == "service.serving.knative.dev/hello configured (server dry run)"
    assert jsonpath(daemon, "ksvc/hello", "{.metadata.generation}") == "1"
    assert jsonpath(daemon, "ksvc/hello", "{.spec.template.spec.containers[0].env[0].value}") == "Hi"

    patch = {"spec": {"template": {"spec": {"containers": [
        {"image": str(manifests / "fn"), "env": [{"name": "GREETING", "value": "Yo"}]}]}}}}
    patched = daemon.kubectl("patch", "ksvc", "hello", "--type=merge", "-p", json.dumps(patch)).stdout
    assert patched.strip() == "service.serving.knative.dev/hello patched"
    assert jsonpath(daemon, "ksvc/hello", "{.metadata.generation}") == "2"
    daemon.kubectl("wait", "--for=condition=Ready", "ksvc/hello", "--timeout=90s", timeout=120)
    # kubectl's wait also waited for the status to observe generation 2: the new revision is the ready one.
    assert jsonpath(daemon, "ksvc/hello", "{.status.observedGeneration}") == "2"
    assert jsonpath(daemon, "ksvc/hello", "{.status.latestReadyRevisionName}") == "hello-00002"
    revisions = jsonpath(daemon, "revisions", "{range .items[*]}{.metadata.name}{' '}{end}").split()
    assert revisions == ["hello-00001", "hello-00002"]

    # Server-side apply of the first manifest: the env that kubectl patch set is another manager's field.
    conflict = daemon.kubectl("apply", "--server-side", "-f", str(manifests / "Hi.yaml"), check=False)
    assert conflict.returncode == 1
    assert 'conflict with "kubectl-patch"' in conflict.stderr and ".spec.template.spec.containers" in conflict.stderr
    forced = daemon.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifests / "Hi.yaml")).stdout
    assert forced.strip() == "service.serving.knative.dev/hello serverside-applied"
    managed = json.loads(daemon.kubectl("get", "ksvc", "hello", "--show-managed-fields", "-o", "json").stdout)
    owners = {(m["manager"], m["operation"]) for m in managed["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in owners
    assert managed["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "Hi"


def test_get_watch_sees_the_delete(daemon: Daemon, manifests: Path) -> None:
    daemon.kubectl("apply", "-f", str(manifests / "Hi.yaml"))
    lines: queue.Queue[str | None] = queue.Queue()
    watch = subprocess.Popen([kubectl_path(), "get", "ksvc", "hello", "--watch", "--output-watch-events",
                              "--no-headers"], env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=30)
        assert first is not None and first.split()[:2] == ["ADDED", "hello"]
        deleted = daemon.kubectl("delete", "ksvc", "hello").stdout
        assert deleted.strip() == 'service.serving.knative.dev "hello" deleted'
        while True:
            line = lines.get(timeout=30)
            assert line is not None, "the watch ended before the delete arrived"
            if line.split()[0] == "DELETED":
                assert line.split()[1] == "hello"
                break
    finally:
        watch.terminate()
        watch.wait(10)
        reader.join(10)
    gone = daemon.kubectl("get", "ksvc", "hello", check=False)
    assert gone.returncode == 1 and 'services.serving.knative.dev "hello" not found' in gone.stderr


def test_typed_creates_labels_selectors_and_pages(daemon: Daemon) -> None:
    """kubectl's typed clients send protobuf for core kinds; then label, list by selector, page, delete by label."""
    daemon.kubectl("create", "namespace", "team")
    for name, group in (("a", "one"), ("b", "one"), ("c", "two")):
        assert daemon.kubectl("create", "configmap", name, "-n", "team", f"--from-literal=k={name}").stdout.strip() \
            == f"configmap/{name} created"
        daemon.kubectl("label", "configmap", name, "-n", "team", f"grp={group}")
    made = daemon.kubectl("create", "secret", "generic", "creds", "-n", "team", "--from-literal=token=s3cr3t")
    assert made.stdout.strip() == "secret/creds created"
    shown = daemon.kubectl("get", "secret", "creds", "-n", "team", "-o", "json").stdout
    assert "s3cr3t" not in shown and "czNjcjN0" not in shown  # values never leave the daemon

    def names(*args: str) -> list[str]:
        return daemon.kubectl("get", "configmaps", "-n", "team", "-o", "name", *args).stdout.split()

    assert names("-l", "grp=one") == ["configmap/a", "configmap/b"]
    assert names("--field-selector", "metadata.name=c") == ["configmap/c"]
    assert names("--chunk-size=1") == ["configmap/a", "configmap/b", "configmap/c"]
    deleted = daemon.kubectl("delete", "configmaps", "-n", "team", "-l", "grp=one").stdout
    assert deleted.splitlines() == ['configmap "a" deleted', 'configmap "b" deleted']
    assert names() == ["configmap/c"]
    dry = daemon.kubectl("create", "configmap", "ghost", "-n", "team", "--dry-run=server").stdout
    assert dry.strip() == "configmap/ghost created (server dry run)" and names() == ["configmap/c"]
