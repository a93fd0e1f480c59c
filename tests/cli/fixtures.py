"""Canned Kubernetes-shaped objects as the daemon would answer them."""

from __future__ import annotations

from datetime import UTC, datetime

from wisp.types import Resource

NOW = 1_700_000_000.0


def ts(seconds_ago: float) -> str:
    """An RFC 3339 timestamp `seconds_ago` before the tests' fake now."""
    return datetime.fromtimestamp(NOW - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_conditions(*types: str, when: float = 300) -> list[dict[str, str]]:
    return [{"type": t, "status": "True", "lastTransitionTime": ts(when)} for t in types]


def service(name: str = "hello", namespace: str = "default") -> Resource:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": ts(300),
            "annotations": {"wisp.dev/workload-class": "function"},
        },
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/max-scale": "5"}},
                "spec": {
                    "containerConcurrency": 10,
                    "containers": [
                        {
                            "image": "./hello",
                            "env": [
                                {"name": "GREETING", "value": "hi"},
                                {
                                    "name": "TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}},
                                },
                            ],
                        }
                    ],
                },
            }
        },
        "status": {
            "url": f"http://{name}.{namespace}.localhost:8080",
            "latestReadyRevisionName": f"{name}-00002",
            "latestCreatedRevisionName": f"{name}-00002",
            "conditions": ready_conditions("ConfigurationsReady", "Ready", "RoutesReady"),
            "traffic": [
                {"revisionName": f"{name}-00002", "percent": 90, "latestRevision": True},
                {
                    "revisionName": f"{name}-00001",
                    "percent": 10,
                    "latestRevision": False,
                    "tag": "old",
                    "url": f"http://old-{name}.{namespace}.localhost:8080",
                },
            ],
        },
    }


def failing_service(name: str = "broken") -> Resource:
    svc = service(name)
    svc["status"]["conditions"] = [
        {
            "type": "ConfigurationsReady",
            "status": "False",
            "reason": "RevisionFailed",
            "message": "image ./nope: no such directory",
        },
        {
            "type": "Ready",
            "status": "False",
            "reason": "RevisionFailed",
            "message": "image ./nope: no such directory",
        },
        {"type": "RoutesReady", "status": "True"},
    ]
    svc["status"].pop("latestReadyRevisionName")
    return svc


def revision(service_name: str, generation: int, namespace: str = "default") -> Resource:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {
            "name": f"{service_name}-{generation:05d}",
            "namespace": namespace,
            "creationTimestamp": ts(60 * generation),
            "labels": {
                "serving.knative.dev/service": service_name,
                "serving.knative.dev/configurationGeneration": str(generation),
            },
        },
        "spec": {"containers": [{"image": "./hello"}]},
        "status": {
            "conditions": ready_conditions("Active", "ContainerHealthy", "Ready", "ResourcesAvailable")
        },
    }


def pod(name: str, ready: bool = True, restarts: int = 0, in_flight: int = 0) -> Resource:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": ts(42),
            "labels": {"serving.knative.dev/service": "hello", "serving.knative.dev/revision": "hello-00002"},
            "annotations": {"wisp.dev/in-flight": str(in_flight)},
        },
        "status": {
            "phase": "Running" if ready else "Pending",
            "containerStatuses": [{"name": "user-container", "ready": ready, "restartCount": restarts}],
        },
    }


def kpa(name: str = "hello-00002") -> Resource:
    return {
        "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": ts(100)},
        "status": {
            "desiredScale": 3,
            "actualScale": 2,
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "ScaleTargetInitialized", "status": "True"},
            ],
        },
    }


def secret() -> Resource:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "default", "creationTimestamp": ts(7200)},
        "type": "Opaque",
        "data": {"token": "<redacted>", "user": "<redacted>"},
    }


def kafka_source() -> Resource:
    return {
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": {"name": "barrage", "namespace": "default", "creationTimestamp": ts(86400 * 3)},
        "spec": {
            "topics": ["barrage", "chat"],
            "bootstrapServers": ["127.0.0.1:9092"],
            "sink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "processor"}},
        },
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "NotConnected", "message": "kafka: no brokers"}
            ]
        },
    }
