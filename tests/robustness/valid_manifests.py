"""One valid manifest of every kind wisp serves, each using most of its kind's fields (for sweeps and fuzzing)."""

from __future__ import annotations

import copy
from typing import Any

from wisp.types import Resource

_SINK: dict[str, Any] = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "sink"}}
_DELIVERY: dict[str, Any] = {
    "deadLetterSink": {"uri": "http://dead.example.com/"},
    "retry": 3,
    "backoffPolicy": "exponential",
    "backoffDelay": "PT0.5S",
    "timeout": "PT10S",
}


def _container() -> dict[str, Any]:
    return {
        "name": "app",
        "image": "./app",
        "command": ["python", "-m", "app"],
        "args": ["--verbose"],
        "workingDir": "/srv",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "name": "http1", "protocol": "TCP"}],
        "env": [
            {"name": "TARGET", "value": "World"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token", "optional": True}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        ],
        "envFrom": [
            {"prefix": "CFG_", "configMapRef": {"name": "settings", "optional": False}},
            {"secretRef": {"name": "creds"}},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": 8080, "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
            "periodSeconds": 5,
            "successThreshold": 1,
        },
        "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3},
        "resources": {"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "100m"}},
        "securityContext": {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
    }


def _pod_spec() -> dict[str, Any]:
    return {
        "containerConcurrency": 10,
        "timeoutSeconds": 60,
        "serviceAccountName": "runner",
        "containers": [_container()],
        "volumes": [{"name": "config", "configMap": {"name": "settings"}}],
    }


def _template() -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app": "hello"},
            "annotations": {
                "autoscaling.knative.dev/min-scale": "1",
                "autoscaling.knative.dev/max-scale": "5",
                "autoscaling.knative.dev/target": "50",
            },
        },
        "spec": _pod_spec(),
    }


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "labels": {"team": "a"}, "annotations": {"note": "x"}, **extra}


_BASES: dict[str, Resource] = {
    "Service": {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": _meta("hello"),
        "spec": {
            "template": _template(),
            "traffic": [{"latestRevision": True, "percent": 100, "tag": "current"}],
        },
    },
    "Configuration": {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Configuration",
        "metadata": _meta("hello"),
        "spec": {"template": _template()},
    },
    "Revision": {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": _meta("hello-00001"),
        "spec": _pod_spec(),
    },
    "Route": {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Route",
        "metadata": _meta("hello"),
        "spec": {"traffic": [{"configurationName": "hello", "latestRevision": True, "percent": 100, "tag": "a"}]},
    },
    "DomainMapping": {
        "apiVersion": "serving.knative.dev/v1beta1",
        "kind": "DomainMapping",
        "metadata": _meta("hello.example.com"),
        "spec": {
            "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"},
            "tls": {"secretName": "hello-tls"},
        },
    },
    "KafkaSource": {
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": _meta("orders"),
        "spec": {
            "bootstrapServers": ["127.0.0.1:9092"],
            "topics": ["orders"],
            "consumerGroup": "orders-group",
            "consumers": 2,
            "initialOffset": "earliest",
            "ordering": "unordered",
            "net": {
                "sasl": {
                    "enable": True,
                    "user": {"secretKeyRef": {"name": "kafka", "key": "user"}},
                    "password": {"secretKeyRef": {"name": "kafka", "key": "password"}},
                },
                "tls": {"enable": False},
            },
            "sink": _SINK,
            "ceOverrides": {"extensions": {"team": "a"}},
            "delivery": _DELIVERY,
        },
    },
    "PingSource": {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": _meta("tick"),
        "spec": {
            "schedule": "*/2 * * * *",
            "timezone": "Europe/Paris",
            "contentType": "application/json",
            "data": '{"ping": true}',
            "sink": _SINK,
            "ceOverrides": {"extensions": {"team": "a"}},
        },
    },
    "SinkBinding": {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "SinkBinding",
        "metadata": _meta("bind"),
        "spec": {
            "subject": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"},
            "sink": {"uri": "http://events.example.com/"},
            "ceOverrides": {"extensions": {"team": "a"}},
        },
    },
    "Broker": {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": _meta("default"),
        "spec": {"delivery": _DELIVERY},
    },
    "Trigger": {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": _meta("on-order"),
        "spec": {
            "broker": "default",
            "filter": {"attributes": {"type": "order.created"}},
            "filters": [
                {"exact": {"type": "order.created"}},
                {"any": [{"prefix": {"source": "/shop"}}, {"suffix": {"subject": ".json"}}]},
                {"not": {"cesql": "subject LIKE 'test%'"}},
                {"all": [{"exact": {"specversion": "1.0"}}]},
            ],
            "subscriber": _SINK,
            "delivery": _DELIVERY,
        },
    },
    "InMemoryChannel": {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "InMemoryChannel",
        "metadata": _meta("orders"),
        "spec": {"delivery": _DELIVERY},
    },
    "Channel": {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "Channel",
        "metadata": _meta("orders"),
        "spec": {"channelTemplate": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                                     "spec": {}},
                 "delivery": _DELIVERY},
    },
    "Subscription": {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "Subscription",
        "metadata": _meta("orders-to-app"),
        "spec": {
            "channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel", "name": "orders"},
            "subscriber": _SINK,
            "reply": {"uri": "http://events.example.com/"},
            "delivery": _DELIVERY,
        },
    },
    "Sequence": {
        "apiVersion": "flows.knative.dev/v1",
        "kind": "Sequence",
        "metadata": _meta("steps"),
        "spec": {
            "channelTemplate": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"},
            "steps": [{**_SINK, "delivery": _DELIVERY}, {"uri": "http://events.example.com/"}],
            "reply": _SINK,
        },
    },
    "Parallel": {
        "apiVersion": "flows.knative.dev/v1",
        "kind": "Parallel",
        "metadata": _meta("branches"),
        "spec": {
            "channelTemplate": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"},
            "branches": [{"filter": {"uri": "http://filter.example.com/"}, "subscriber": _SINK,
                          "reply": {"uri": "http://events.example.com/"}, "delivery": _DELIVERY}],
            "reply": _SINK,
        },
    },
    "ContainerSource": {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "ContainerSource",
        "metadata": _meta("heartbeat"),
        "spec": {
            "template": {"metadata": {"labels": {"app": "beat"}}, "spec": _pod_spec()},
            "sink": _SINK,
            "ceOverrides": {"extensions": {"team": "a"}},
        },
    },
    "EventType": {
        "apiVersion": "eventing.knative.dev/v1beta3",
        "kind": "EventType",
        "metadata": _meta("order-created"),
        "spec": {
            "reference": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"},
            "description": "an order was placed",
            "attributes": [{"name": "type", "value": "shop.order", "required": True}, {"name": "source"},
                           {"name": "specversion", "value": "1.0"}, {"name": "id", "required": False}],
        },
    },
    "ApiServerSource": {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "ApiServerSource",
        "metadata": _meta("watcher"),
        "spec": {
            "mode": "Resource",
            "serviceAccountName": "events-sa",
            "resources": [{"apiVersion": "v1", "kind": "ConfigMap",
                           "selector": {"matchLabels": {"app": "a"},
                                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}}],
            "owner": {"apiVersion": "serving.knative.dev/v1", "kind": "Service"},
            "namespaceSelector": {"matchLabels": {"team": "a"}},
            "sink": _SINK,
            "ceOverrides": {"extensions": {"team": "a"}},
        },
    },
    "KafkaChannel": {
        "apiVersion": "messaging.knative.dev/v1beta1",
        "kind": "KafkaChannel",
        "metadata": _meta("orders"),
        "spec": {"numPartitions": 3, "replicationFactor": 1, "retentionDuration": "PT24H", "delivery": _DELIVERY},
    },
    "JobSink": {
        "apiVersion": "sinks.knative.dev/v1alpha1",
        "kind": "JobSink",
        "metadata": _meta("logger"),
        "spec": {"job": {"spec": {"backoffLimit": 2, "ttlSecondsAfterFinished": 60, "completions": 1,
                                  "template": {"spec": {**_pod_spec(), "restartPolicy": "Never"}}}}},
    },
    "Secret": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta("creds"),
        "type": "Opaque",
        "data": {"token": "c2VjcmV0"},
        "immutable": False,
    },
    "ConfigMap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("settings"),
        "data": {"mode": "fast"},
        "binaryData": {"blob": "AAEC"},
    },
    "Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"team": "a"}}},
}


def valid_manifest(kind: str) -> Resource:
    """A fresh copy of the valid manifest of `kind` (a Kind's `kind` name)."""
    return copy.deepcopy(_BASES[kind])


def kinds_with_manifests() -> tuple[str, ...]:
    return tuple(_BASES)
