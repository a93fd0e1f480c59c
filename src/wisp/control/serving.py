"""Reconcilers for Service, Configuration, Revision, Route and DomainMapping."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from wisp.api import kinds as k
from wisp.api.autoscaling import AutoscalerConfig, parse_config_autoscaler, resolve_scaling
from wisp.api.kinds import Kind
from wisp.api.names import CONFIGURATION_LABEL, QUEUE_DEPTH_ANNOTATION, SERVICE_LABEL, VISIBILITY_LABEL
from wisp.control import routing_state as rs
from wisp.control import serving_builders as b
from wisp.control.admission import CONFIG_AUTOSCALER, SYSTEM_NAMESPACE
from wisp.control.conditions import Condition, is_ready
from wisp.control.controller import Key, keys_of, owner_keys
from wisp.control.status import write_status
from wisp.control.volume_builder import VolumeError, referenced, volume_specs
from wisp.control.workload_builder import SpecError, instance_env, workload_class, workload_spec
from wisp.serving.dataplane import DataPlane, RevisionSettings, speaks_h2c
from wisp.serving.ingress import Timeouts
from wisp.serving.reasons import public_reason
from wisp.serving.revision_runner import RevisionHealth, RevisionRunner
from wisp.serving.routing import RouteEntry, RoutingTable, Target
from wisp.serving.workloads.oci import OciRuntime
from wisp.store import Store, StoreEvent
from wisp.types import Clock, Resource

log = logging.getLogger("wisp.control")

ALIYUN_DOMAIN = "fc.revision.serving.knative.aliyun.com/domain"
DEFAULT_QUEUE_DEPTH = 10_000
_BY_NAME = {kind.kind: kind for kind in (k.SERVICE, k.CONFIGURATION, k.REVISION, k.ROUTE)}


def autoscaler_config(store: Store) -> AutoscalerConfig:
    """The cluster-wide KPA settings: ConfigMap knative-serving/config-autoscaler, validated at apply."""
    config_map = store.get(k.CONFIG_MAP, SYSTEM_NAMESPACE, CONFIG_AUTOSCALER)
    return parse_config_autoscaler((config_map or {}).get("data", {}) or {})


def revision_settings(revision: Resource, config: AutoscalerConfig, reachable: bool = True) -> RevisionSettings:
    spec = revision["spec"]
    annotations = revision["metadata"].get("annotations", {})
    timeout = float(spec.get("timeoutSeconds", 300) or 300)
    start = spec.get("responseStartTimeoutSeconds")
    idle = spec.get("idleTimeoutSeconds")
    concurrency = int(spec.get("containerConcurrency", 0) or 0)
    return RevisionSettings(
        container_concurrency=concurrency,
        queue_depth=int(annotations.get(QUEUE_DEPTH_ANNOTATION, DEFAULT_QUEUE_DEPTH)),
        timeouts=Timeouts(total=timeout, response_start=float(start) if start else None,
                          idle=float(idle) if idle else None),
        scaling=resolve_scaling(annotations, concurrency, config),
        reachable=reachable,
        h2c=speaks_h2c(spec["containers"][0]) and workload_class(revision) == "container",
    )


def _aliyun_domain(service: Resource) -> str | None:
    """The custom host in the seed's platform annotation, on the Service or its template."""
    for meta in (service["metadata"], service["spec"].get("template", {}).get("metadata", {})):
        raw = meta.get("annotations", {}).get(ALIYUN_DOMAIN)
        if raw:
            try:
                domain = json.loads(raw).get("domain")
            except (ValueError, AttributeError):
                domain = None
            if isinstance(domain, str) and domain:
                return domain.lower()
    return None


def _revision_conditions(health: RevisionHealth | None, runner: RevisionRunner | None,
                         min_scale: int) -> list[Condition]:
    """ResourcesAvailable and ContainerHealthy from the runner. The machine's instance limit makes
    ResourcesAvailable False (and so Ready) when the revision gets less than min-scale, or nothing at all;
    when it only caps the autoscaler's demand above that, ResourcesAvailable stays True and says so."""
    shortfall = runner.shortfall if runner is not None else None
    if health is not None and health.failed and not health.ready:
        return [Condition.false("ContainerHealthy", health.reason, health.message),
                Condition.false("ResourcesAvailable", health.reason, health.message)]
    if shortfall is not None and (shortfall.got < min_scale or shortfall.got == 0):
        return [Condition.false("ResourcesAvailable", "InstanceLimit", shortfall.message),
                Condition.true("ContainerHealthy") if health is not None and health.ready
                else Condition.unknown("ContainerHealthy", "Deploying")]
    if health is None or (not health.ready and not health.failed):
        return [Condition.unknown("ResourcesAvailable", "Deploying"),
                Condition.unknown("ContainerHealthy", "Deploying")]
    if shortfall is not None:
        return [Condition("ResourcesAvailable", "True", "InstanceLimit", shortfall.message),
                Condition.true("ContainerHealthy")]
    return [Condition.true("ResourcesAvailable"), Condition.true("ContainerHealthy")]


class ServingReconciler:
    kinds = (k.SERVICE, k.CONFIGURATION, k.REVISION, k.ROUTE, k.DOMAIN_MAPPING)

    def __init__(
        self, store: Store, dataplane: DataPlane, routing: RoutingTable, network: b.Network, clock: Clock,
        extra_env: Callable[[Resource], dict[str, str]] = lambda revision: {},
    ) -> None:
        self.store = store
        self.dataplane = dataplane
        self.routing = routing
        self.network = network
        self.clock = clock
        self.extra_env = extra_env
        # Kept from the store events this reconciler sees and the Routes it reconciles, so that a change costs
        # work for what it concerns only, not for every Service of its namespace.
        self.index = rs.RouteIndex()
        # DomainMapping names by the (namespace, Service) their spec.ref names; None until read from the store.
        self._mappings: dict[tuple[str, str], set[tuple[str, str]]] | None = None
        self._mapping_refs: dict[tuple[str, str], tuple[str, str]] = {}

    # -- dispatch --------------------------------------------------------------------------------
    async def reconcile(self, kind: Kind, namespace: str, name: str) -> None:
        resource = self.store.get(kind, namespace, name)
        if resource is None:
            return
        handler = {
            k.SERVICE: self._service, k.CONFIGURATION: self._configuration, k.REVISION: self._revision,
            k.ROUTE: self._route, k.DOMAIN_MAPPING: self._domain_mapping,
        }[kind]
        await handler(resource)

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        meta = resource["metadata"]
        namespace, name = meta.get("namespace", "default"), meta["name"]
        if kind is k.REVISION:
            await self.dataplane.remove((namespace, name))
        elif kind is k.ROUTE:
            self.routing.set_hosts(("Route", namespace, name), {})
            self.routing.clear_unavailable(("Route", namespace, name))
            self._sync_routing_states(namespace, name)  # what only it targeted is reserve now
        elif kind is k.DOMAIN_MAPPING:
            self.routing.set_aliases(("DomainMapping", namespace, name), {})

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        kind, namespace, _ = event.key
        resource = event.resource
        if kind in (k.REVISION, k.CONFIGURATION, k.ROUTE):
            yield from owner_keys(resource, _BY_NAME.get)
        if kind is k.ROUTE:
            self._load_refs(namespace)
            if event.type == "DELETED":
                self.index.drop_refs(namespace, event.key[2])
            else:
                self.index.set_refs(namespace, event.key[2], *rs.referenced(resource))
        if kind in (k.REVISION, k.CONFIGURATION):
            # Only the Routes whose traffic names it: by name, or through the Revision's Configuration.
            self._load_refs(namespace)
            configurations = {event.key[2]} if kind is k.CONFIGURATION else set()
            revisions = {event.key[2]} if kind is k.REVISION else set()
            if kind is k.REVISION:
                owner = (resource["metadata"].get("labels") or {}).get(CONFIGURATION_LABEL)
                if isinstance(owner, str):
                    configurations.add(owner)
            for route in sorted(self.index.routes_naming(namespace, configurations, revisions)):
                yield (k.ROUTE, namespace, route)
        if kind in (k.ROUTE, k.SERVICE):
            # The DomainMappings whose spec.ref names this Service (its Route has the same name).
            for mapping_namespace, mapping in sorted(self._mappings_of().get((namespace, event.key[2]), set())):
                yield (k.DOMAIN_MAPPING, mapping_namespace, mapping)
        if kind is k.DOMAIN_MAPPING:
            self._mappings_of()
            self._index_mapping(event.key[1], event.key[2], None if event.type == "DELETED" else resource)
            if event.type == "DELETED":
                # Its host is free: a mapping of the same host that found it claimed may take it now.
                yield from ((k.DOMAIN_MAPPING, m["metadata"]["namespace"], m["metadata"]["name"])
                            for m in self.store.list(k.DOMAIN_MAPPING) if m["metadata"]["name"] == event.key[2])
        if kind is k.CONFIG_MAP and namespace == SYSTEM_NAMESPACE:
            # Cluster-wide settings changed: every revision picks them up without a restart.
            yield from keys_of(k.REVISION, self.store.list(k.REVISION))
        elif kind in (k.SECRET, k.CONFIG_MAP):
            # A revision waiting for a missing secret or config map may start now; one whose volumes show it gets
            # the new files.
            name = event.key[2]
            which = 0 if kind is k.SECRET else 1
            waiting = [r for r in self.store.list(k.REVISION, namespace)
                       if not is_ready(r) or name in referenced(r)[which]]
            yield from keys_of(k.REVISION, waiting)

    # -- Service ---------------------------------------------------------------------------------
    async def _service(self, service: Resource) -> None:
        meta = service["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        children: list[tuple[Kind, Resource]] = [
            (k.CONFIGURATION, b.configuration_for(service)), (k.ROUTE, b.route_for(service)),
        ]
        domain = _aliyun_domain(service)
        if domain:
            mapping: Resource = {
                "apiVersion": "serving.knative.dev/v1beta1", "kind": "DomainMapping",
                "metadata": {"name": domain, "namespace": namespace, "ownerReferences": [b.owner_reference(service)],
                             "labels": {SERVICE_LABEL: name}},
                "spec": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name,
                                 "namespace": namespace}},
            }
            children.append((k.DOMAIN_MAPPING, mapping))
        self.store.apply(children)
        config = self.store.get(k.CONFIGURATION, namespace, name)
        route = self.store.get(k.ROUTE, namespace, name)
        status, conditions = b.service_status(service, config, route)
        self._put_status(k.SERVICE, service, status, conditions)

    # -- Configuration ---------------------------------------------------------------------------
    async def _configuration(self, configuration: Resource) -> None:
        meta = configuration["metadata"]
        namespace = meta["namespace"]
        wanted = b.revision_for(configuration)
        name = wanted["metadata"]["name"]
        existing = self.store.get(k.REVISION, namespace, name)
        if existing is None:
            self.store.apply([(k.REVISION, rs.as_created(wanted, self.clock()))])
        elif not b.same_template(existing, configuration):
            message = (f'spec.template.metadata.name: Revision "{name}" already exists with a different spec; '
                       "a changed template needs a new name")
            self._put_status(k.CONFIGURATION, configuration,
                             {"observedGeneration": meta["generation"]},
                             [Condition.false("Ready", "RevisionNameTaken", message)])
            return
        # The status reads the readiness of two revisions only: the latest created and the previous latest ready.
        previous_ready = configuration.get("status", {}).get("latestReadyRevisionName")
        revisions = [r for r in self._get_all(k.REVISION, namespace, {name, previous_ready} - {None, ""})
                     if r["metadata"].get("labels", {}).get(CONFIGURATION_LABEL) == meta["name"]]
        latest = self.store.get(k.REVISION, namespace, name)
        status, conditions = b.configuration_status(configuration, latest, revisions)
        self._put_status(k.CONFIGURATION, configuration, status, conditions)

    # -- Revision --------------------------------------------------------------------------------
    async def _revision(self, revision: Resource) -> None:
        meta = revision["metadata"]
        key = (meta["namespace"], meta["name"])
        status: dict[str, Any] = {"observedGeneration": meta.get("generation", 1)}
        try:
            def secrets(ns: str, n: str) -> Resource | None:
                return self.store.get(k.SECRET, ns, n)

            def config_maps(ns: str, n: str) -> Resource | None:
                return self.store.get(k.CONFIG_MAP, ns, n)

            added = self.extra_env(revision)
            env = instance_env(revision, secrets, config_maps, added)
            # What the daemon's own environment put there (PATH, HOME, ...): a local process needs it, an OCI
            # container must not get it (the image has its own PATH and HOME).
            bare = instance_env(revision, secrets, config_maps, added, inherited={})
            host_env = frozenset(name for name, value in env.items() if bare.get(name) != value)
            spec = replace(workload_spec(revision, env), host_env=host_env)
            if spec.workload_class == "container":
                volumes, mounts = volume_specs(revision, secrets, config_maps)
                spec = replace(spec, volumes=volumes, mounts=mounts)
        except (SpecError, VolumeError) as exc:
            await self.dataplane.remove(key)
            reason = exc.reason if isinstance(exc, SpecError) else "CreateContainerConfigError"
            failed = Condition.false("ContainerHealthy", reason, str(exc))
            resources = Condition.false("ResourcesAvailable", reason, str(exc))
            self._put_status(k.REVISION, revision, status, [failed, resources])
            return
        reachable = rs.reachable(self._routing_state(revision))
        settings = revision_settings(revision, autoscaler_config(self.store), reachable)
        if not settings.scaling.supported:
            await self.dataplane.remove(key)
            reason = settings.scaling.unsupported_reason or "unsupported autoscaler class"
            unsupported = Condition.false("ResourcesAvailable", "AutoscalerClassNotSupported", reason)
            self._put_status(k.REVISION, revision, status, [unsupported])
            return
        await self.dataplane.ensure(key, spec, settings)
        runner = self.dataplane.runner(key)
        health = self.dataplane.health(key)
        if runner is not None:
            status["actualReplicas"] = runner.ready_count
            status["desiredReplicas"] = runner.desired
        container_status: dict[str, Any] = {"name": revision["spec"]["containers"][0].get("name", "user-container")}
        if spec.directory is not None:
            container_status["imageDigest"] = spec.image
        elif runner is not None and isinstance(runner.runtime, OciRuntime) and runner.runtime.image_digest:
            # Knative's tag-to-digest resolution: recorded once, then the revision keeps running that image.
            container_status["imageDigest"] = runner.runtime.image_digest
        status["containerStatuses"] = [container_status]
        conditions = _revision_conditions(health, runner, settings.scaling.min_scale)
        active = runner is not None and runner.ready_count > 0
        extra = [Condition.true("Active") if active else Condition.false("Active", "NoTraffic",
                                                                           "The target is not receiving traffic.")]
        self._put_status(k.REVISION, revision, status, conditions, extra)

    # -- Route -----------------------------------------------------------------------------------
    async def _route(self, route: Resource) -> None:
        meta = route["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        config_names, revision_names = rs.referenced(route)
        configurations = {c["metadata"]["name"]: c for c in self._get_all(k.CONFIGURATION, namespace, config_names)}
        revisions = {r["metadata"]["name"]: r for r in self._get_all(k.REVISION, namespace, revision_names)}
        targets, assigned = b.resolve_traffic(route, configurations, revisions)
        status: dict[str, Any] = {"observedGeneration": meta["generation"]}
        local = meta.get("labels", {}).get(VISIBILITY_LABEL) == "cluster-local"
        owner = ("Route", namespace, name)
        if assigned.status == "True":
            self.routing.set_hosts(owner, self._hosts(route, targets, local))
            self.routing.clear_unavailable(owner)
            status["traffic"] = b.route_status_traffic(route, targets, self.network)
        else:
            previous = route.get("status", {}).get("traffic")
            if previous:  # keep serving what was assigned before, as Knative does
                status["traffic"] = previous
            else:  # its hosts answer 503 with the reason rather than "no such host"
                hosts = [b.cluster_local_host(name, namespace), f"{name}.{namespace}.svc"]
                if not local:
                    hosts.append(self.network.host(name, namespace))
                # Clients get the summary line; the details (a traceback, log lines) are for `wisp describe`.
                reason = public_reason(assigned.message or assigned.reason)
                self.routing.set_unavailable(owner, hosts, f"{reason} (details: `wisp describe ksvc {name}`)")
        status["url"] = b.route_url(route, self.network)
        status["address"] = {"url": f"http://{b.cluster_local_host(name, namespace)}"}
        conditions = [assigned, Condition.true("IngressReady"),
                      Condition("CertificateProvisioned", "True", "TLSNotEnabled",
                                "autoTLS is not enabled")]
        self._put_status(k.ROUTE, route, status, conditions)
        self._sync_routing_states(namespace, name)

    def _hosts(self, route: Resource, targets: list[b.ResolvedTarget], local: bool) -> dict[str, RouteEntry]:
        meta = route["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        weighted = tuple(Target((namespace, t.revision), t.percent) for t in targets if t.percent > 0)
        hosts: dict[str, RouteEntry] = {}
        if weighted:
            entry = RouteEntry(weighted)
            hosts[b.cluster_local_host(name, namespace)] = entry
            hosts[f"{name}.{namespace}.svc"] = entry
            if not local:
                hosts[self.network.host(name, namespace)] = entry
        for target in targets:
            if target.tag:
                single = RouteEntry((Target((namespace, target.revision), 100),))
                hosts[b.tag_host(target.tag, name, namespace, self.network, True)] = single
                if not local:
                    hosts[b.tag_host(target.tag, name, namespace, self.network, False)] = single
        return hosts

    # -- routing state (Knative's labeler) ----------------------------------------------------------
    def _get_all(self, kind: Kind, namespace: str, names: Iterable[object]) -> list[Resource]:
        found = (self.store.get(kind, namespace, name) for name in sorted(str(n) for n in names))
        return [resource for resource in found if resource is not None]

    def _load_refs(self, namespace: str) -> None:
        """What each Route of the namespace names, read once; store events keep it from then on."""
        if namespace in self.index.refs_loaded:
            return
        self.index.refs_loaded.add(namespace)
        for route in self.store.list(k.ROUTE, namespace):
            self.index.set_refs(namespace, route["metadata"]["name"], *rs.referenced(route))

    def _load_targets(self, namespace: str) -> None:
        """What each Route of the namespace targets, once, and every Revision labelled to match (a state dir
        from before, or Routes deleted while the daemon was down); from then on a Route's reconcile relabels
        what it targeted before and what it targets now."""
        if namespace in self.index.targets_loaded:
            return
        self.index.targets_loaded.add(namespace)
        configurations = {c["metadata"]["name"]: c for c in self.store.list(k.CONFIGURATION, namespace)}
        for route in self.store.list(k.ROUTE, namespace):
            self.index.set_targets(namespace, route["metadata"]["name"], rs.targets_of(route, configurations))
        self._relabel(namespace, self.store.list(k.REVISION, namespace))

    def _sync_routing_states(self, namespace: str, route_name: str) -> None:
        """Label the Revisions the stored Route targeted before or targets now with the routing state the Routes
        give them; a Revision whose state changes is reconciled again (the data plane hears whether it is
        reachable)."""
        self._load_targets(namespace)
        route = self.store.get(k.ROUTE, namespace, route_name)
        now_targeted: set[str] = set()
        if route is not None:
            configurations = {c["metadata"]["name"]: c
                              for c in self._get_all(k.CONFIGURATION, namespace, rs.referenced(route)[0])}
            now_targeted = rs.targets_of(route, configurations)
        before = self.index.set_targets(namespace, route_name, now_targeted)
        self._relabel(namespace, self._get_all(k.REVISION, namespace, before | now_targeted))

    def _relabel(self, namespace: str, revisions: Iterable[Resource]) -> None:
        now = self.clock()
        changed = []
        for revision in revisions:
            routes = self.index.targeting(namespace, revision["metadata"]["name"])
            updated = rs.relabelled(revision, routes, now)
            if updated is not None:
                changed.append((k.REVISION, updated))
        if changed:
            self.store.apply(changed)

    def _routing_state(self, revision: Resource) -> str | None:
        """The Revision's routing state; one without the label (made before wisp kept it, or applied on its own)
        is labelled now, so that an unrouted one does not start its workload first."""
        state = rs.state_of(revision)
        if state is None:
            meta = revision["metadata"]
            self._load_targets(meta["namespace"])
            current = self.store.get(k.REVISION, meta["namespace"], meta["name"]) or revision
            updated = rs.relabelled(current, self.index.targeting(meta["namespace"], meta["name"]), self.clock())
            if updated is not None:
                self.store.apply([(k.REVISION, updated)])
            state = rs.state_of(updated or current)
        return state

    # -- DomainMapping ---------------------------------------------------------------------------
    def _mappings_of(self) -> dict[tuple[str, str], set[tuple[str, str]]]:
        if self._mappings is None:
            self._mappings = {}
            for mapping in self.store.list(k.DOMAIN_MAPPING):
                meta = mapping["metadata"]
                self._index_mapping(meta["namespace"], meta["name"], mapping)
        return self._mappings

    def _index_mapping(self, namespace: str, name: str, mapping: Resource | None) -> None:
        assert self._mappings is not None
        key = (namespace, name)
        before = self._mapping_refs.pop(key, None)
        if before is not None:
            waiting = self._mappings.get(before, set())
            waiting.discard(key)
            if not waiting:
                self._mappings.pop(before, None)
        if mapping is not None:
            ref = mapping.get("spec", {}).get("ref") or {}
            target = (str(ref.get("namespace") or namespace), str(ref.get("name", "")))
            self._mapping_refs[key] = target
            self._mappings.setdefault(target, set()).add(key)

    async def _domain_mapping(self, mapping: Resource) -> None:
        meta = mapping["metadata"]
        host = meta["name"].lower()
        ref = mapping["spec"].get("ref", {})
        namespace = ref.get("namespace") or meta["namespace"]
        status: dict[str, Any] = {"observedGeneration": meta["generation"], "url": self.network.url(host)}
        target_route = self.store.get(k.ROUTE, namespace, ref.get("name", ""))
        claimed_by = self.routing.alias_owner(host)
        owner = ("DomainMapping", meta["namespace"], meta["name"])
        if claimed_by is not None and claimed_by != owner:
            conditions = [Condition.false("DomainClaimed", "DomainAlreadyClaimed",
                                          f"host {host} is already mapped by {claimed_by[1]}/{claimed_by[2]}")]
        elif ref.get("kind", "Service") != "Service" or target_route is None:
            self.routing.set_aliases(owner, {})
            conditions = [Condition.true("DomainClaimed"),
                          Condition.false("ReferenceResolved", "ResolveFailed",
                                          f'spec.ref: Service "{ref.get("name", "")}" not found in {namespace}')]
        else:
            self.routing.set_aliases(owner, {host: b.cluster_local_host(ref["name"], namespace)})
            route_ready = is_ready(target_route)
            conditions = [Condition.true("DomainClaimed"), Condition.true("ReferenceResolved"),
                          Condition.true("IngressReady") if route_ready else
                          Condition.unknown("IngressReady", "RouteNotReady", "the service is not ready yet")]
            status["address"] = {"url": self.network.url(host)}
        self._put_status(k.DOMAIN_MAPPING, mapping, status, conditions)

    # -- status ----------------------------------------------------------------------------------
    def _put_status(self, kind: Kind, resource: Resource, status: dict[str, Any], conditions: list[Condition],
                    extra: list[Condition] | None = None) -> None:
        write_status(self.store, kind, resource, status, conditions, self.clock(), extra)

