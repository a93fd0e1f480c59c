"""The resource kinds wisp stores, with the names kubectl and kn know them by."""

from __future__ import annotations

from dataclasses import dataclass

from wisp.api.errors import UnknownKindError


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str  # "" for the core API group
    versions: tuple[str, ...]  # the first is the version wisp stores and serves
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    virtual: bool = False  # computed from running state (pods, kpa), never applied
    # Discovery's categories (`kubectl get all`) for kinds without a vendored CRD; a CRD's own names win.
    categories: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return self.versions[0]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def accepts(self, api_version: str) -> bool:
        group, _, version = api_version.rpartition("/")
        return group == self.group and version in self.versions

    def collection_path(self, namespace: str | None) -> str:
        """The Kubernetes-shaped REST path of this kind's collection."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.kind.lower(), self.plural, *self.short_names)


SERVING = "serving.knative.dev"
SOURCES = "sources.knative.dev"
EVENTING = "eventing.knative.dev"
MESSAGING = "messaging.knative.dev"
FLOWS = "flows.knative.dev"

SERVICE = Kind("Service", SERVING, ("v1",), "services", ("ksvc", "kservice", "ksvcs"))
CONFIGURATION = Kind("Configuration", SERVING, ("v1",), "configurations", ("config", "cfg", "configs"))
REVISION = Kind("Revision", SERVING, ("v1",), "revisions", ("rev", "revs"))
ROUTE = Kind("Route", SERVING, ("v1",), "routes", ("rt",))
DOMAIN_MAPPING = Kind("DomainMapping", SERVING, ("v1beta1", "v1alpha1"), "domainmappings", ("dm",))
KAFKA_SOURCE = Kind("KafkaSource", SOURCES, ("v1beta1", "v1", "v1alpha1"), "kafkasources", ("kafkasource", "ks"))
PING_SOURCE = Kind("PingSource", SOURCES, ("v1", "v1beta2"), "pingsources", ("ping",))
SINK_BINDING = Kind("SinkBinding", SOURCES, ("v1", "v1beta1"), "sinkbindings", ("sbinding",))
BROKER = Kind("Broker", EVENTING, ("v1",), "brokers", ("brk",))
TRIGGER = Kind("Trigger", EVENTING, ("v1",), "triggers", ("trig", "tr"))
IN_MEMORY_CHANNEL = Kind("InMemoryChannel", MESSAGING, ("v1",), "inmemorychannels", ("imc",))
KAFKA_CHANNEL = Kind("KafkaChannel", MESSAGING, ("v1beta1", "v1"), "kafkachannels", ("kc",))
JOB_SINK = Kind("JobSink", "sinks.knative.dev", ("v1alpha1",), "jobsinks")
CHANNEL = Kind("Channel", MESSAGING, ("v1",), "channels", ("ch",))
SUBSCRIPTION = Kind("Subscription", MESSAGING, ("v1",), "subscriptions", ("sub",))
SEQUENCE = Kind("Sequence", FLOWS, ("v1",), "sequences")
PARALLEL = Kind("Parallel", FLOWS, ("v1",), "parallels")
CONTAINER_SOURCE = Kind("ContainerSource", SOURCES, ("v1",), "containersources")
EVENT_TYPE = Kind("EventType", EVENTING, ("v1beta3",), "eventtypes")
API_SERVER_SOURCE = Kind("ApiServerSource", SOURCES, ("v1",), "apiserversources")
SECRET = Kind("Secret", "", ("v1",), "secrets")
CONFIG_MAP = Kind("ConfigMap", "", ("v1",), "configmaps", ("cm",))
NAMESPACE = Kind("Namespace", "", ("v1",), "namespaces", ("ns",), namespaced=False)
POD = Kind("Pod", "", ("v1",), "pods", ("po",), virtual=True, categories=("all",))
# What the reconcilers and the autoscaler did, kept in memory (bounded) by control/k8s_events.py.
EVENT = Kind("Event", "", ("v1",), "events", ("ev",), virtual=True)
POD_AUTOSCALER = Kind(
    "PodAutoscaler", "autoscaling.internal.knative.dev", ("v1alpha1",), "podautoscalers", ("kpa", "pa"),
    virtual=True, categories=("knative-internal", "autoscaling"),
)

ALL_KINDS: tuple[Kind, ...] = (
    SERVICE, CONFIGURATION, REVISION, ROUTE, DOMAIN_MAPPING,
    KAFKA_SOURCE, PING_SOURCE, SINK_BINDING, BROKER, TRIGGER,
    IN_MEMORY_CHANNEL, CHANNEL, SUBSCRIPTION, SEQUENCE, PARALLEL, CONTAINER_SOURCE, EVENT_TYPE,
    API_SERVER_SOURCE, KAFKA_CHANNEL, JOB_SINK,
    SECRET, CONFIG_MAP, NAMESPACE, POD, POD_AUTOSCALER, EVENT,
)


def lookup(name: str) -> Kind:
    """Find a kind by its kind name, plural, singular or short name, case-insensitively."""
    wanted = name.lower()
    for kind in ALL_KINDS:
        if wanted in kind.names:
            return kind
    raise UnknownKindError(
        f"the server doesn't have a resource type {name!r}; known: "
        + ", ".join(k.plural for k in ALL_KINDS)
    )


def for_manifest(api_version: str, kind_name: str) -> Kind:
    """The kind a manifest's `apiVersion` and `kind` name, or an error saying what is served instead."""
    matches = [k for k in ALL_KINDS if k.kind == kind_name and not k.virtual]
    for kind in matches:
        if kind.accepts(api_version):
            return kind
    if matches:
        served = ", ".join(f"{k.group + '/' if k.group else ''}{v}" for k in matches for v in k.versions)
        raise UnknownKindError(f"kind {kind_name!r} is not served at apiVersion {api_version!r} (served: {served})")
    raise UnknownKindError(
        f"unknown kind {kind_name!r}; wisp serves "
        + ", ".join(sorted({k.kind for k in ALL_KINDS if not k.virtual}))
    )


def for_path(group: str, version: str, plural: str) -> Kind:
    """The kind a REST path names (`/apis/{group}/{version}/.../{plural}`)."""
    for kind in ALL_KINDS:
        if kind.group == group and kind.plural == plural and version in kind.versions:
            return kind
    raise UnknownKindError(f"no resource {plural!r} in {group or 'core'}/{version}")
