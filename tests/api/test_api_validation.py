"""Validation after defaulting: each bad input names Knative's field path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from wisp.api.autoscaling.config import AutoscalerConfig
from wisp.api.defaults import apply_defaults
from wisp.api.loader import load_text
from wisp.api.validation import validate, validate_update
from wisp.types import Resource

Mutation = Callable[[Resource], object]
CONTAINER = "spec.template.spec.containers[0]"


def _service() -> Resource:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "image": "ghcr.io/knative/helloworld-go",
                            "env": [
                                {"name": "TARGET", "value": "World"},
                                {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                            ],
                        }
                    ]
                }
            }
        },
    }


def _kafka() -> Resource:
    return {
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": {"name": "ks"},
        "spec": {
            "bootstrapServers": ["127.0.0.1:9092"],
            "topics": ["t"],
            "sink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"}},
        },
    }


def _ping() -> Resource:
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": {"name": "p"},
        "spec": {"schedule": "*/1 * * * *", "sink": {"uri": "http://example.com/"}},
    }


def _trigger() -> Resource:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": "t"},
        "spec": {
            "broker": "default",
            "filter": {"attributes": {"type": "dev.example"}},
            "subscriber": {
                "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"}
            },
        },
    }


def _broker() -> Resource:
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "default"}}


def _sink_binding() -> Resource:
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "SinkBinding",
        "metadata": {"name": "sb"},
        "spec": {
            "subject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
            "sink": {"uri": "http://example.com"},
        },
    }


def _domain_mapping() -> Resource:
    return {
        "apiVersion": "serving.knative.dev/v1beta1",
        "kind": "DomainMapping",
        "metadata": {"name": "barrage.demo.knative.top"},
        "spec": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello"}},
    }


def _secret() -> Resource:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dmFsdWU="}}


BASES: dict[str, Callable[[], Resource]] = {
    "service": _service,
    "kafka": _kafka,
    "ping": _ping,
    "trigger": _trigger,
    "broker": _broker,
    "sinkbinding": _sink_binding,
    "domainmapping": _domain_mapping,
    "secret": _secret,
}


def paths(resource: Resource, **kwargs: Any) -> list[str]:
    return [e.path for e in validate(apply_defaults(resource), **kwargs)]


@pytest.mark.parametrize("base", sorted(BASES))
def test_bases_are_valid(base: str) -> None:
    assert validate(apply_defaults(BASES[base]())) == []


def tpl(res: Resource) -> dict[str, Any]:
    template: dict[str, Any] = res["spec"]["template"]
    return template


def container(res: Resource) -> dict[str, Any]:
    c: dict[str, Any] = tpl(res)["spec"]["containers"][0]
    return c


def set_in(obj: dict[str, Any], dotted: str, value: Any) -> Any:
    """Set a dotted path, creating mappings on the way; returns the value (usable in lambdas)."""
    *parents, last = dotted.split(".")
    for key in parents:
        obj = obj.setdefault(key, {})
    obj[last] = value
    return value


def annotate(res: Resource, key: str, value: str) -> str:
    tpl(res).setdefault("metadata", {}).setdefault("annotations", {})[key] = value
    return value


# (id, base, mutation, expected error path)
CASES: list[tuple[str, str, Mutation, str]] = [
    # names and metadata
    ("name-uppercase", "service", lambda r: set_in(r, "metadata.name", "Hello"), "metadata.name"),
    ("name-starts-with-digit", "service", lambda r: set_in(r, "metadata.name", "1hello"), "metadata.name"),
    (
        "name-too-long-for-revisions",
        "service",
        lambda r: set_in(r, "metadata.name", "a" * 60),
        "metadata.name",
    ),
    (
        "generate-name",
        "service",
        lambda r: r["metadata"].update(name="", generateName="hello-"),
        "metadata.generateName",
    ),
    (
        "template-name-prefix",
        "service",
        lambda r: set_in(tpl(r), "metadata.name", "other-v1"),
        "spec.template.metadata.name",
    ),
    (
        "annotation-not-string",
        "broker",
        lambda r: set_in(r, "metadata.annotations", {"a": 1}),
        "metadata.annotations[a]",
    ),
    (
        "namespace-invalid",
        "service",
        lambda r: set_in(r, "metadata.namespace", "Bad_NS"),
        "metadata.namespace",
    ),
    # containers
    (
        "no-containers",
        "service",
        lambda r: set_in(tpl(r), "spec.containers", []),
        "spec.template.spec.containers",
    ),
    (
        "two-containers-no-port",
        "service",
        lambda r: tpl(r)["spec"]["containers"].append({"image": "sidecar"}),
        "spec.template.spec.containers",
    ),
    ("image-required", "service", lambda r: container(r).pop("image"), f"{CONTAINER}.image"),
    (
        "two-ports",
        "service",
        lambda r: container(r).update(ports=[{"containerPort": 8080}, {"containerPort": 8081}]),
        f"{CONTAINER}.ports",
    ),
    (
        "reserved-port",
        "service",
        lambda r: container(r).update(ports=[{"containerPort": 8012}]),
        f"{CONTAINER}.ports.containerPort",
    ),
    (
        "reserved-port-9091",
        "service",
        lambda r: container(r).update(ports=[{"containerPort": 9091}]),
        f"{CONTAINER}.ports.containerPort",
    ),
    (
        "port-name",
        "service",
        lambda r: container(r).update(ports=[{"name": "grpc", "containerPort": 8080}]),
        f"{CONTAINER}.ports.name",
    ),
    (
        "reserved-env",
        "service",
        lambda r: container(r)["env"].append({"name": "K_REVISION", "value": "x"}),
        f"{CONTAINER}.env[2].name",
    ),
    (
        "env-port",
        "service",
        lambda r: set_in(container(r)["env"][1], "name", "PORT"),
        f"{CONTAINER}.env[1].name",
    ),
    ("env-name-missing", "service", lambda r: container(r)["env"][0].pop("name"), f"{CONTAINER}.env[0].name"),
    (
        "env-field-ref",
        "service",
        lambda r: container(r)["env"][1].update(valueFrom={"fieldRef": {"fieldPath": "metadata.name"}}),
        f"{CONTAINER}.env[1].valueFrom.fieldRef",
    ),
    (
        "env-secret-key-missing",
        "service",
        lambda r: container(r)["env"][1]["valueFrom"]["secretKeyRef"].pop("key"),
        f"{CONTAINER}.env[1].valueFrom.secretKeyRef.key",
    ),
    (
        "lifecycle",
        "service",
        lambda r: container(r).update(lifecycle={"preStop": {}}),
        f"{CONTAINER}.lifecycle",
    ),
    ("stdin", "service", lambda r: container(r).update(stdin=True), f"{CONTAINER}.stdin"),
    (
        "pod-node-name",
        "service",
        lambda r: set_in(tpl(r), "spec.nodeName", "n1"),
        "spec.template.spec.nodeName",
    ),
    (
        "pod-affinity-flag",
        "service",
        lambda r: set_in(tpl(r), "spec.affinity", {}),
        "spec.template.spec.affinity",
    ),
    (
        "concurrency-high",
        "service",
        lambda r: set_in(tpl(r), "spec.containerConcurrency", 1001),
        "spec.template.spec.containerConcurrency",
    ),
    (
        "concurrency-negative",
        "service",
        lambda r: set_in(tpl(r), "spec.containerConcurrency", -1),
        "spec.template.spec.containerConcurrency",
    ),
    (
        "timeout-high",
        "service",
        lambda r: set_in(tpl(r), "spec.timeoutSeconds", 601),
        "spec.template.spec.timeoutSeconds",
    ),
    (
        "response-start-over-timeout",
        "service",
        lambda r: tpl(r)["spec"].update(timeoutSeconds=30, responseStartTimeoutSeconds=31),
        "spec.template.spec.responseStartTimeoutSeconds",
    ),
    (
        "idle-timeout-negative",
        "service",
        lambda r: set_in(tpl(r), "spec.idleTimeoutSeconds", -1),
        "spec.template.spec.idleTimeoutSeconds",
    ),
    (
        "probe-two-handlers",
        "service",
        lambda r: container(r).update(readinessProbe={"httpGet": {"path": "/"}, "tcpSocket": {}}),
        f"{CONTAINER}.readinessProbe",
    ),
    (
        "probe-negative-period",
        "service",
        lambda r: container(r).update(livenessProbe={"httpGet": {"path": "/"}, "periodSeconds": -1}),
        f"{CONTAINER}.livenessProbe.periodSeconds",
    ),
    (
        "liveness-success-threshold",
        "service",
        lambda r: container(r).update(livenessProbe={"tcpSocket": {}, "successThreshold": 2}),
        f"{CONTAINER}.livenessProbe.successThreshold",
    ),
    (
        "volume-mount-unknown",
        "service",
        lambda r: container(r).update(volumeMounts=[{"name": "v", "mountPath": "/v"}]),
        f"{CONTAINER}.volumeMounts[0].name",
    ),
    (
        "workload-class-unknown",
        "service",
        lambda r: annotate(r, "wisp.dev/workload-class", "vm"),
        "spec.template.metadata.annotations[wisp.dev/workload-class]",
    ),
    # autoscaling annotations (rules from wisp.api.autoscaling.annotations)
    (
        "max-below-min",
        "service",
        lambda r: [
            annotate(r, "autoscaling.knative.dev/min-scale", "5"),
            annotate(r, "autoscaling.knative.dev/max-scale", "2"),
        ],
        "spec.template.metadata.annotations[autoscaling.knative.dev/max-scale]",
    ),
    (
        "bad-autoscaling-key",
        "service",
        lambda r: annotate(r, "autoscaling.knative.dev/bogus", "1"),
        "spec.template.metadata.annotations[autoscaling.knative.dev/bogus]",
    ),
    # traffic
    (
        "traffic-sum",
        "service",
        lambda r: set_in(r, "spec.traffic", [{"latestRevision": True, "percent": 90}]),
        "spec.traffic",
    ),
    (
        "traffic-percent-range",
        "service",
        lambda r: set_in(r, "spec.traffic", [{"latestRevision": True, "percent": 101}]),
        "spec.traffic[0].percent",
    ),
    (
        "traffic-latest-and-name",
        "service",
        lambda r: set_in(
            r, "spec.traffic", [{"latestRevision": True, "revisionName": "hello-00001", "percent": 100}]
        ),
        "spec.traffic[0].latestRevision",
    ),
    (
        "traffic-neither",
        "service",
        lambda r: set_in(r, "spec.traffic", [{"latestRevision": False, "percent": 100}]),
        "spec.traffic[0]",
    ),
    (
        "traffic-duplicate-tag",
        "service",
        lambda r: set_in(
            r,
            "spec.traffic",
            [
                {"latestRevision": True, "percent": 50, "tag": "a"},
                {"revisionName": "hello-00001", "percent": 50, "tag": "a"},
            ],
        ),
        "spec.traffic[1].tag",
    ),
    (
        "traffic-bad-tag",
        "service",
        lambda r: set_in(r, "spec.traffic", [{"latestRevision": True, "percent": 100, "tag": "Not_A_Label"}]),
        "spec.traffic[0].tag",
    ),
    (
        "traffic-configuration-name-on-service",
        "service",
        lambda r: set_in(
            r, "spec.traffic", [{"configurationName": "c", "latestRevision": True, "percent": 100}]
        ),
        "spec.traffic[0].configurationName",
    ),
    # DomainMapping, Secret
    ("domain-mapping-ref", "domainmapping", lambda r: r["spec"].pop("ref"), "spec.ref"),
    ("domain-mapping-ref-name", "domainmapping", lambda r: r["spec"]["ref"].pop("name"), "spec.ref.name"),
    ("secret-not-base64", "secret", lambda r: set_in(r, "data", {"k": "not base64!"}), "data[k]"),
    ("secret-bad-key", "secret", lambda r: set_in(r, "data", {"a/b": "dmFsdWU="}), "data[a/b]"),
    # KafkaSource
    ("kafka-topics-empty", "kafka", lambda r: set_in(r, "spec.topics", []), "spec.topics"),
    ("kafka-topics-missing", "kafka", lambda r: r["spec"].pop("topics"), "spec.topics"),
    (
        "kafka-servers-empty",
        "kafka",
        lambda r: set_in(r, "spec.bootstrapServers", []),
        "spec.bootstrapServers",
    ),
    ("kafka-sink-missing", "kafka", lambda r: r["spec"].pop("sink"), "spec.sink"),
    ("kafka-sink-empty", "kafka", lambda r: set_in(r, "spec.sink", {}), "spec.sink"),
    ("kafka-sink-relative-uri", "kafka", lambda r: set_in(r, "spec.sink", {"uri": "/path"}), "spec.sink.uri"),
    ("kafka-sink-ref-kind", "kafka", lambda r: r["spec"]["sink"]["ref"].pop("kind"), "spec.sink.ref.kind"),
    ("kafka-ordering", "kafka", lambda r: set_in(r, "spec.ordering", "random"), "spec.ordering"),
    ("kafka-consumers", "kafka", lambda r: set_in(r, "spec.consumers", 0), "spec.consumers"),
    (
        "kafka-initial-offset",
        "kafka",
        lambda r: set_in(r, "spec.initialOffset", "middle"),
        "spec.initialOffset",
    ),
    (
        "kafka-sasl-shape",
        "kafka",
        lambda r: set_in(r, "spec.net", {"sasl": {"enable": True, "user": {"secretKeyRef": {"name": "s"}}}}),
        "spec.net.sasl.user.secretKeyRef.key",
    ),
    (
        "kafka-tls-shape",
        "kafka",
        lambda r: set_in(r, "spec.net", {"tls": {"enable": True, "cert": {"name": "s"}}}),
        "spec.net.tls.cert.name",
    ),
    (
        "kafka-tls-enable-type",
        "kafka",
        lambda r: set_in(r, "spec.net", {"tls": {"enable": "yes"}}),
        "spec.net.tls.enable",
    ),
    (
        "aliyun-req-timeout",
        "kafka",
        lambda r: set_in(r, "metadata.annotations", {"k8s.aliyun.com/req-timeout": "-1"}),
        "metadata.annotations[k8s.aliyun.com/req-timeout]",
    ),
    (
        "aliyun-retry-count",
        "kafka",
        lambda r: set_in(r, "metadata.annotations", {"k8s.aliyun.com/retry-count": "many"}),
        "metadata.annotations[k8s.aliyun.com/retry-count]",
    ),
    (
        "aliyun-retry-interval",
        "kafka",
        lambda r: set_in(r, "metadata.annotations", {"k8s.aliyun.com/retry-interval": "-0.5"}),
        "metadata.annotations[k8s.aliyun.com/retry-interval]",
    ),
    # delivery
    ("delivery-retry", "kafka", lambda r: set_in(r, "spec.delivery", {"retry": -1}), "spec.delivery.retry"),
    (
        "delivery-policy",
        "trigger",
        lambda r: set_in(r, "spec.delivery", {"backoffPolicy": "random"}),
        "spec.delivery.backoffPolicy",
    ),
    (
        "delivery-delay",
        "broker",
        lambda r: set_in(r, "spec.delivery", {"backoffDelay": "10s"}),
        "spec.delivery.backoffDelay",
    ),
    (
        "delivery-timeout",
        "kafka",
        lambda r: set_in(r, "spec.delivery", {"timeout": "PT"}),
        "spec.delivery.timeout",
    ),
    (
        "delivery-retry-after",
        "trigger",
        lambda r: set_in(r, "spec.delivery", {"retryAfterMax": "1m"}),
        "spec.delivery.retryAfterMax",
    ),
    (
        "delivery-dls",
        "trigger",
        lambda r: set_in(r, "spec.delivery", {"deadLetterSink": {}}),
        "spec.delivery.deadLetterSink",
    ),
    # PingSource
    ("ping-schedule", "ping", lambda r: set_in(r, "spec.schedule", "every minute"), "spec.schedule"),
    (
        "ping-schedule-six-fields",
        "ping",
        lambda r: set_in(r, "spec.schedule", "0 * * * * *"),
        "spec.schedule",
    ),
    (
        "ping-cron-tz",
        "ping",
        lambda r: set_in(r, "spec.schedule", "CRON_TZ=Mars/Base * * * * *"),
        "spec.schedule",
    ),
    ("ping-timezone", "ping", lambda r: set_in(r, "spec.timezone", "Nowhere/City"), "spec.timezone"),
    ("ping-data-both", "ping", lambda r: r["spec"].update(data="x", dataBase64="eA=="), "spec"),
    ("ping-data-base64", "ping", lambda r: set_in(r, "spec.dataBase64", "%%%"), "spec.dataBase64"),
    ("ping-sink", "ping", lambda r: r["spec"].pop("sink"), "spec.sink"),
    # SinkBinding
    ("sinkbinding-subject", "sinkbinding", lambda r: r["spec"].pop("subject"), "spec.subject"),
    (
        "sinkbinding-subject-both",
        "sinkbinding",
        lambda r: set_in(r, "spec.subject.selector", {"matchLabels": {}}),
        "spec.subject",
    ),
    ("sinkbinding-sink", "sinkbinding", lambda r: r["spec"].pop("sink"), "spec.sink"),
    # Trigger
    ("trigger-subscriber", "trigger", lambda r: r["spec"].pop("subscriber"), "spec.subscriber"),
    (
        "trigger-attribute-name",
        "trigger",
        lambda r: set_in(r, "spec.filter.attributes", {"Type": "x"}),
        "spec.filter.attributes[Type]",
    ),
    (
        "trigger-filters-two-dialects",
        "trigger",
        lambda r: set_in(r, "spec.filters", [{"exact": {"type": "a"}, "prefix": {"source": "b"}}]),
        "spec.filters[0]",
    ),
    (
        "trigger-filters-nested",
        "trigger",
        lambda r: set_in(
            r, "spec.filters", [{"all": [{"exact": {"type": "a"}}, {"not": {"suffix": {"BAD": "x"}}}]}]
        ),
        "spec.filters[0].all[1].not.suffix[BAD]",
    ),
    (
        "trigger-filters-two-keys",
        "trigger",
        lambda r: set_in(r, "spec.filters", [{"exact": {"type": "a", "source": "b"}}]),
        "spec.filters[0].exact",
    ),
    (
        "trigger-filters-unknown-dialect",
        "trigger",
        lambda r: set_in(r, "spec.filters", [{"regex": {"type": "a"}}]),
        "spec.filters[0].regex",
    ),
    (
        "trigger-cesql",
        "trigger",
        lambda r: set_in(r, "spec.filters", [{"cesql": "(type = 'a'"}]),
        "spec.filters[0].cesql",
    ),
    # kinds
    ("unknown-kind", "broker", lambda r: set_in(r, "kind", "Widget"), "kind"),
    (
        "unserved-version",
        "broker",
        lambda r: set_in(r, "apiVersion", "eventing.knative.dev/v1beta1"),
        "apiVersion",
    ),
    ("unknown-top-level", "broker", lambda r: set_in(r, "data", {}), "data"),
]


@pytest.mark.parametrize(("base", "mutate", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_the_field(base: str, mutate: Mutation, path: str) -> None:
    resource = BASES[base]()
    mutate(resource)
    assert path in paths(resource)


@pytest.mark.parametrize(
    ("base", "mutate"),
    [
        ("service", lambda r: set_in(tpl(r), "metadata.name", "hello-v1")),
        (
            "service",
            lambda r: (
                tpl(r)["spec"]["containers"].append({"image": "side", "ports": []})
                or container(r).update(ports=[{"containerPort": 8080}])
            ),
        ),
        ("service", lambda r: container(r).update(ports=[{"containerPort": 8080, "name": "h2c"}])),
        (
            "service",
            lambda r: set_in(
                r,
                "spec.traffic",
                [
                    {"latestRevision": True, "percent": 0, "tag": "next"},
                    {"revisionName": "hello-00001", "percent": 100},
                ],
            ),
        ),
        ("service", lambda r: annotate(r, "autoscaling.knative.dev/minScale", "1")),
        ("service", lambda r: annotate(r, "workload.serving.knative.aliyun.com/class", "fc")),
        (
            "kafka",
            lambda r: set_in(
                r,
                "metadata.annotations",
                {
                    "k8s.aliyun.com/req-timeout": "60",
                    "k8s.aliyun.com/retry-count": "5",
                    "k8s.aliyun.com/retry-interval": "2",
                },
            ),
        ),
        (
            "kafka",
            lambda r: set_in(
                r,
                "spec.delivery",
                {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.2S", "timeout": "PT10S"},
            ),
        ),
        ("ping", lambda r: set_in(r, "spec.schedule", "CRON_TZ=Asia/Shanghai 0 9 * * 1-5")),
        ("ping", lambda r: set_in(r, "spec.schedule", "@every 1m30s")),
        ("ping", lambda r: r["spec"].update(schedule="@hourly", timezone="Europe/Paris")),
        (
            "trigger",
            lambda r: set_in(r, "spec.filters", [{"any": [{"exact": {"type": "a"}}, {"cesql": "id = '1'"}]}]),
        ),
        ("trigger", lambda r: set_in(r, "spec.filter.attributes", {"type": ""})),
    ],
)
def test_valid_variants_pass(base: str, mutate: Mutation) -> None:
    resource = BASES[base]()
    mutate(resource)
    assert validate(apply_defaults(resource)) == []


def test_error_message_reads_like_knative() -> None:
    res = _service()
    set_in(tpl(res), "spec.containerConcurrency", 1001)
    (error,) = validate(apply_defaults(res))
    assert str(error) == "spec.template.spec.containerConcurrency: expected 0 <= 1001 <= 1000"


def test_autoscaler_config_reaches_annotation_rules() -> None:
    res = _service()
    annotate(res, "autoscaling.knative.dev/initial-scale", "0")
    path = "spec.template.metadata.annotations[autoscaling.knative.dev/initial-scale]"
    assert path in paths(res)
    assert paths(res, autoscaler=AutoscalerConfig(allow_zero_initial_scale=True)) == []


def test_revision_and_route_kinds() -> None:
    revision = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": "hello-00001"},
        "spec": {"containers": [{"image": "x", "stdin": True}]},
    }
    assert paths(revision) == ["spec.containers[0].stdin"]
    route: Resource = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Route",
        "metadata": {"name": "r"},
        "spec": {"traffic": [{"percent": 100}]},
    }
    assert paths(route) == ["spec.traffic[0].configurationName"]
    route["spec"]["traffic"][0]["configurationName"] = "hello"
    assert paths(route) == []


# -- updates -------------------------------------------------------------------------------------------


def _updated(base: Resource, mutate: Mutation) -> tuple[Resource, Resource]:
    old = apply_defaults(base)
    new = copy.deepcopy(base)
    mutate(new)
    return old, apply_defaults(new)


def test_kafka_source_consumer_group_is_immutable() -> None:
    old, new = _updated(_kafka(), lambda r: set_in(r, "spec.consumerGroup", "other"))
    assert [e.path for e in validate_update(old, new)] == ["spec.consumerGroup"]
    old, new = _updated(_kafka(), lambda r: set_in(r, "spec.topics", ["t", "u"]))
    assert validate_update(old, new) == []


def test_revision_spec_is_immutable() -> None:
    revision = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": "hello-00001"},
        "spec": {"containers": [{"image": "x"}]},
    }
    old, new = _updated(revision, lambda r: set_in(r["spec"]["containers"][0], "image", "y"))
    assert [e.path for e in validate_update(old, new)] == ["spec"]
    old, new = _updated(revision, lambda r: set_in(r, "metadata.labels", {"a": "b"}))
    assert validate_update(old, new) == []


def test_trigger_broker_and_broker_class_are_immutable() -> None:
    old, new = _updated(_trigger(), lambda r: set_in(r, "spec.broker", "other"))
    assert [e.path for e in validate_update(old, new)] == ["spec.broker"]
    old, new = _updated(
        _broker(), lambda r: set_in(r, "metadata.annotations", {"eventing.knative.dev/broker.class": "Kafka"})
    )
    assert [e.path for e in validate_update(old, new)] == [
        "metadata.annotations[eventing.knative.dev/broker.class]"
    ]


def test_named_template_must_be_renamed_when_changed() -> None:
    base = _service()
    set_in(tpl(base), "metadata.name", "hello-v1")
    old, new = _updated(base, lambda r: set_in(container(r), "image", "other"))
    assert [e.path for e in validate_update(old, new)] == ["spec.template.metadata.name"]
    old, new = _updated(
        base, lambda r: [set_in(container(r), "image", "other"), set_in(tpl(r), "metadata.name", "hello-v2")]
    )
    assert validate_update(old, new) == []


SEED = """\
apiVersion: sources.knative.dev/v1alpha1
kind: KafkaSource
metadata:
  annotations:
    k8s.aliyun.com/req-timeout: "60"
    k8s.aliyun.com/retry-count: "5"
    k8s.aliyun.com/retry-interval: "2"
  name: barrage
  namespace: default
spec:
  bootstrapServers: 127.0.0.1:9092,127.0.0.1:9093
  consumerGroup: barrage-info-consumer
  sink:
    apiVersion: serving.knative.dev/v1
    kind: Service
    name: test-barrage-process
    namespace: default
  topics: barrage-info
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: demo-barrage
  annotations:
    workload.serving.knative.aliyun.com/class: "fc"
spec:
  template:
    metadata:
      annotations:
        fc.revision.serving.knative.aliyun.com/code-space: "image"
        fc.revision.serving.knative.aliyun.com/role-arm: "acs:ram::xxxx:role/knative-fc"
        fc.revision.serving.knative.aliyun.com/domain: '{"domain":"barrage.demo.knative.top","path":"/*"}'
    spec:
      containers:
        - image: ./homepage
          env:
            - name: KAFKA_SERVER
              value: ",,"
            - name: TABLE_NAME
              value: barrage
"""


def test_seed_manifests_are_accepted() -> None:
    kafka, svc = (apply_defaults(d.resource) for d in load_text(SEED, "seed.yaml"))
    assert validate(kafka) == [] and validate(svc) == []
    assert kafka["apiVersion"] == "sources.knative.dev/v1beta1"
    assert kafka["spec"]["topics"] == ["barrage-info"]
    assert svc["spec"]["template"]["metadata"]["annotations"]["wisp.dev/workload-class"] == "function"
    assert "wisp.dev/manifest-dir" in svc["metadata"]["annotations"]
