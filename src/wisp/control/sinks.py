"""Knative destinations (`ref` / `uri`) → where wisp sends events and what URL it reports.

Everything wisp serves is reached through its ingress on 127.0.0.1 with a Host header, because
`*.localhost` and `*.svc.cluster.local` names do not resolve for Python clients. Instances get the
same reachability in `K_SINK` through the ingress's path form `/.wisp/route/{host}/...`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from wisp.api import kinds as k
from wisp.control.serving_builders import Network, cluster_local_host
from wisp.eventing.delivery import Destination
from wisp.serving.ingress import ROUTE_PREFIX
from wisp.store import Store

BROKER_INGRESS_HOST = "broker-ingress.knative-eventing.localhost"
# Addressables resolved as Knative resolves any: by the `status.address.url` their reconciler wrote.
ADDRESSABLE_KINDS = (k.IN_MEMORY_CHANNEL, k.KAFKA_CHANNEL, k.CHANNEL, k.SEQUENCE, k.PARALLEL, k.JOB_SINK)
_LOCAL_SUFFIXES = (".localhost", ".svc.cluster.local", ".svc")


class SinkResolver:
    """Resolves destinations; results are cached (dispatchers ask once per event) until `invalidate`."""

    def __init__(self, store: Store, network: Network) -> None:
        self._store = store
        self._network = network
        self._cache: dict[tuple[str, str], tuple[str | None, str] | None] = {}

    def invalidate(self) -> None:
        """Forget every resolution: a Service or Broker was added, changed or removed."""
        self._cache.clear()

    @property
    def _base(self) -> str:
        return f"http://127.0.0.1:{self._network.port}"

    def host_and_path(self, sink: Mapping[str, Any], namespace: str) -> tuple[str | None, str] | None:
        """(virtual host or None for an outside URL, path or full URL); None while the ref does not exist."""
        key = (namespace, json.dumps(sink, sort_keys=True, default=str))
        if key not in self._cache:
            self._cache[key] = self._resolve(sink, namespace)
        return self._cache[key]

    def _resolve(self, sink: Mapping[str, Any], namespace: str) -> tuple[str | None, str] | None:
        ref = sink.get("ref")
        extra = str(sink.get("uri") or "")
        if isinstance(ref, Mapping):
            name = str(ref.get("name", ""))
            ns = str(ref.get("namespace") or namespace)
            kind = ref.get("kind")
            if kind == "Broker":
                if self._store.get(k.BROKER, ns, name) is None:
                    return None
                return BROKER_INGRESS_HOST, f"/{ns}/{name}"
            if kind == "Service":  # a Knative Service, or a core one standing for it in Knative's docs
                if self._store.get(k.SERVICE, ns, name) is None:
                    return None
                return cluster_local_host(name, ns), extra if extra.startswith("/") else "/" + extra
            addressable = next((a for a in ADDRESSABLE_KINDS if a.kind == kind), None)
            if addressable is not None:
                found = self._store.get(addressable, ns, name)
                url = ((found or {}).get("status", {}).get("address") or {}).get("url")
                if not isinstance(url, str) or not url:
                    return None  # not there, or not addressable yet
                return self._resolve({"uri": url}, namespace)
            return None
        if not extra:
            return None
        parts = urlsplit(extra)
        host = (parts.hostname or "").lower()
        if host.endswith(_LOCAL_SUFFIXES):
            path = parts.path or "/"
            return host, path + (f"?{parts.query}" if parts.query else "")
        return None, extra

    def destination(self, sink: Mapping[str, Any], namespace: str) -> Destination | None:
        """Where a dispatcher in the daemon sends: the ingress with a Host header, or an outside URL."""
        found = self.host_and_path(sink, namespace)
        if found is None:
            return None
        host, path = found
        return Destination(path) if host is None else Destination(self._base + path, host=host)

    def instance_url(self, sink: Mapping[str, Any], namespace: str) -> str | None:
        """A URL an instance can POST to as is (K_SINK): no Host header needed."""
        found = self.host_and_path(sink, namespace)
        if found is None:
            return None
        host, path = found
        return path if host is None else f"{self._base}{ROUTE_PREFIX}{host}{path}"

    def reported_uri(self, sink: Mapping[str, Any], namespace: str) -> str | None:
        """The URI shown in status.sinkUri, as a user would address it."""
        found = self.host_and_path(sink, namespace)
        if found is None:
            return None
        host, path = found
        if host is None:
            return path
        # Cluster-local names are addressed without the ingress port, as Knative reports them.
        base = f"http://{host}" if host.endswith((".svc.cluster.local", ".svc")) else self._network.url(host)
        return base + (path if path != "/" else "")
