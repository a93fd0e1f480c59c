"""Running state shown as Kubernetes-shaped objects: instances as Pods, autoscalers as PodAutoscalers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wisp.api import kinds as k
from wisp.api.names import IN_FLIGHT_ANNOTATION, REVISION_LABEL, SERVICE_LABEL
from wisp.api.timestamps import rfc3339
from wisp.serving.dataplane import DataPlane
from wisp.store import Store
from wisp.types import Resource


def pods(dataplane: DataPlane, namespace: str | None) -> list[Resource]:
    out: list[Resource] = []
    for runner in dataplane.runners():
        ns, revision = runner.key
        if namespace is not None and ns != namespace:
            continue
        service = runner.runtime.spec.env.get("K_SERVICE", "")
        for pod in runner.pods:
            out.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod.name, "namespace": ns, "creationTimestamp": rfc3339(pod.created),
                    "labels": {REVISION_LABEL: revision, SERVICE_LABEL: service},
                    "annotations": {IN_FLIGHT_ANNOTATION: str(pod.slot.in_flight)},
                },
                "status": {
                    "phase": pod.phase,
                    **({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                        "message": pod.unschedulable}]} if pod.unschedulable else {}),
                    "podIP": "127.0.0.1",
                    "containerStatuses": [{"name": "user-container", "ready": pod.ready,
                                           "restartCount": pod.restarts,
                                           "pid": pod.instance.pid if pod.instance else None,
                                           **_last_state(pod.last_termination)}],
                },
            })
    return out


def _last_state(reason: str | None) -> dict[str, Any]:
    if reason is None:
        return {}
    code = 137 if reason == "OOMKilled" else 1  # SIGKILL's 128 + 9, as the kubelet reports an OOM kill
    return {"lastState": {"terminated": {"reason": reason, "exitCode": code}}}


def autoscalers(dataplane: DataPlane, namespace: str | None) -> list[Resource]:
    out: list[Resource] = []
    for runner in dataplane.runners():
        ns, revision = runner.key
        if namespace is not None and ns != namespace:
            continue
        ready = runner.ready_count
        status: dict[str, Any] = {
            "desiredScale": runner.desired, "actualScale": ready,
            "conditions": [{"type": "Ready", "status": "True" if ready >= runner.desired else "Unknown"}],
        }
        decision = dataplane.last_decision(runner.key)
        if decision is not None:
            status["metricValue"] = {"stable": round(decision.stable_value, 3), "panic": round(decision.panic_value, 3)}
            status["panicking"] = decision.panicking
        status["inFlight"] = runner.throttler.in_flight
        status["queued"] = runner.throttler.queued
        out.append({
            "apiVersion": "autoscaling.internal.knative.dev/v1alpha1", "kind": "PodAutoscaler",
            "metadata": {"name": revision, "namespace": ns,
                         "annotations": {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"}},
            "spec": {"reachability": "Unreachable" if dataplane.reachable(runner.key) is False else "Reachable"},
            "status": status,
        })
    return out


def service_log_paths(log_root: Path, store: Store, namespace: str, service: str) -> list[Path]:
    """The log files of every instance, past and present, of a Service's revisions (oldest first)."""
    revisions = [r["metadata"]["name"] for r in store.list(k.REVISION, namespace)
                 if r["metadata"].get("labels", {}).get(SERVICE_LABEL) == service]
    paths: list[Path] = []
    for revision in revisions:
        paths.extend((log_root / namespace / revision).glob("*.log"))
    return sorted(paths, key=lambda p: p.stat().st_mtime if p.exists() else 0)

