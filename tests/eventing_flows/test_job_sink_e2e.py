"""JobSink through a real daemon: one job run per event, the event at /etc/jobsink-event/event as Knative
mounts it, a redelivered event not run twice, the job's state at its Location, and a failing job retried up to
its backoffLimit."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_ci
from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.names import MANIFEST_DIR_ANNOTATION
from wisp.control.eventing.job_runner import sandbox_available
from wisp.eventing.job_sink import JOB_SINK_HOST

from .helpers import ce_headers

pytestmark = pytest.mark.timeout(60)

# Copies the event it was given (and whether it is where Knative mounts it) to runs/; fails on type "fail".
JOB = """
import json, os, sys

event = json.load(open(os.path.join(os.environ["K_EVENT_PATH"], "event")))
with open(os.path.join("runs", event["id"] + "-" + str(os.getpid()) + ".json"), "w") as out:
    json.dump({"event": event, "mounted": os.path.exists("/etc/jobsink-event/event"),
               "mode": os.environ.get("K_EXECUTION_MODE")}, out)
sys.exit(3 if event["type"] == "fail" else 0)
"""


def job_sink(name: str, directory: Path, backoff_limit: int = 1) -> dict[str, Any]:
    return {"apiVersion": "sinks.knative.dev/v1alpha1", "kind": "JobSink",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {MANIFEST_DIR_ANNOTATION: str(directory)}},
            "spec": {"job": {"spec": {"backoffLimit": backoff_limit, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "./job", "command": ["python", "job.py"]}]}}}}}}


def runs(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((directory / "job" / "runs").glob("*.json"))]


async def test_one_job_per_event(tmp_path: Path) -> None:
    (tmp_path / "job" / "runs").mkdir(parents=True)
    (tmp_path / "job" / "job.py").write_text(textwrap.dedent(JOB))
    async with running_daemon(tmp_path / "state") as h:
        h.apply(job_sink("logger", tmp_path))
        sink = await h.ready("logger", kind=k.JOB_SINK)
        assert sink["status"]["address"]["url"] == f"http://{JOB_SINK_HOST}/default/logger"
        reconciler = h.daemon.eventing.job_sink if h.daemon.eventing else None
        assert reconciler is not None

        async def post(event_id: str, type_: str = "job.test") -> Any:
            return await h.request(JOB_SINK_HOST, "/default/logger", "POST", headers=ce_headers(event_id, type_),
                                   content=b'{"n": 1}')

        first = await post("a")
        assert first.status_code == 202
        where = first.headers["location"]
        assert where == "/namespaces/default/name/logger/sources/%2Fe2e%2Fflows/ids/a"
        assert (await post("a")).status_code == 202  # the same event again: the same job, not a second run
        assert (await post("b")).status_code == 202
        assert (await post("bad", "fail")).status_code == 202

        runner = reconciler.pieces.get(("default", "logger"))
        assert runner is not None
        await runner.idle()
        done = await h.request(JOB_SINK_HOST, where)
        assert done.status_code == 200 and done.headers["reason"] == "Complete"
        failed = await h.request(JOB_SINK_HOST, "/namespaces/default/name/logger/sources/%2Fe2e%2Fflows/ids/bad")
        assert failed.status_code == 400 and failed.headers["reason"] == "Failed"
        seen = runs(tmp_path)
        assert sorted(r["event"]["id"] for r in seen) == ["a", "b", "bad", "bad"]  # backoffLimit 1: two tries
        sandbox = await sandbox_available()
        assert sandbox or not in_ci(), "CI installs bubblewrap (make test-install): it must work there"
        # With bubblewrap the event is where Knative mounts it; without, K_EVENT_PATH alone leads to it.
        assert all(r["mounted"] == sandbox and r["mode"] == "batch" for r in seen)
        assert seen[0]["event"]["data"] == {"n": 1}


async def test_a_job_without_restart_policy_is_refused(tmp_path: Path) -> None:
    bad = job_sink("x", tmp_path)
    del bad["spec"]["job"]["spec"]["template"]["spec"]["restartPolicy"]
    async with running_daemon(tmp_path / "state") as h:
        with pytest.raises(ManifestError) as caught:
            h.apply(bad)
        assert "spec.job.spec.template.spec.restartPolicy" in [e.path for e in caught.value.errors]
