"""Addresses that mean "this machine" in a manifest, turned into what they are on a cluster.

On one machine everything is reached through wisp's ingress: `http://{name}.{ns}.localhost:8080`, the broker
ingress `broker-ingress.knative-eventing.localhost`, and `K_SINK`'s path form
`http://127.0.0.1:8080/.wisp/route/{host}/{path}` (docs/eventing.md). In a cluster the same things are
`{name}.{ns}.svc.cluster.local` and `broker-ingress.knative-eventing.svc.cluster.local`, on port 80; this
machine's Kafka is the cluster's (`--kafka`), and `*.localhost` custom domains move under `--domain`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from wisp.api.errors import FieldError
from wisp.export.options import ExportOptions, is_loopback_host

LOCAL_KAFKA_DEFAULTS = ("127.0.0.1:9092", "localhost:9092")  # what `wisp up` starts when a source names it
ROUTE_PREFIX = "/.wisp/route/"  # the ingress's path form (serving/ingress.py), as instances see it in K_SINK
CLUSTER_SUFFIX = ".svc.cluster.local"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>,;]+")
_LOOPBACK_TEXT = re.compile(r"localhost|127\.[0-9]+\.[0-9]+\.[0-9]+|\[::1\]", re.IGNORECASE)


class Addresses:
    """Translates values; each problem is appended to `errors` with the value's field path."""

    def __init__(self, options: ExportOptions, local_kafka: Iterable[str], custom_domains: Iterable[str]) -> None:
        self.options = options
        self.local_kafka = {s.lower() for s in (*LOCAL_KAFKA_DEFAULTS, *local_kafka)}
        self.custom_domains = {d.lower() for d in custom_domains}

    def kafka(self, servers: list[str], path: str, errors: list[FieldError]) -> list[str]:
        """bootstrapServers: this machine's Kafka → `--kafka`; other servers are kept."""
        if not any(is_loopback_host(s.rsplit(":", 1)[0]) for s in servers):
            return servers
        if not self.options.kafka:
            errors.append(FieldError(path, f"names this machine's Kafka ({', '.join(servers)}); pass --kafka "
                                           "BOOTSTRAP with the cluster's Kafka (e.g. my-cluster-kafka-bootstrap"
                                           ".kafka:9092)"))
            return servers
        kept = [s for s in servers if not is_loopback_host(s.rsplit(":", 1)[0])]
        return [*self.options.kafka, *[s for s in kept if s not in self.options.kafka]]

    def domain(self, host: str, path: str, errors: list[FieldError]) -> str:
        """A `*.localhost` custom domain → the same name under `--domain`."""
        lowered = host.lower().rstrip(".")
        if not lowered.endswith(".localhost"):
            return host
        if not self.options.domain:
            errors.append(FieldError(path, f"{host} is a *.localhost domain, reachable only on this machine; pass "
                                           "--domain DOMAIN to map it to a name under DOMAIN"))
            return host
        return f"{lowered[: -len('.localhost')]}.{self.options.domain}"

    def value(self, text: str, path: str, errors: list[FieldError]) -> str:
        """An env or ConfigMap value: a local Kafka address list, URLs through the ingress, or left alone. What
        still names this machine afterwards is refused: it would not work on a cluster."""
        items = [s.strip() for s in text.split(",")]
        if text.strip() and all(s.lower() in self.local_kafka for s in items):
            return ",".join(self.kafka(items, path, errors))
        translated = _URL.sub(lambda m: self.url(m.group(0), path, errors), text)
        if _LOOPBACK_TEXT.search(translated) and not any(e.path == path for e in errors):
            errors.append(FieldError(path, f"{text[:120]!r} names this machine, which a cluster cannot reach; "
                                           "set the cluster's value with --env NAME=VALUE"))
        return translated

    def url(self, url: str, path: str, errors: list[FieldError]) -> str:
        """A URL reaching something through wisp's ingress → its address in the cluster."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return url
        if not is_loopback_host(host):
            return url
        rest = parts.path
        if rest.startswith(ROUTE_PREFIX):  # K_SINK's form: the real host is in the path
            routed, _, remainder = rest[len(ROUTE_PREFIX):].partition("/")
            host, rest = routed.lower(), "/" + remainder
        new_host = self._host(host, path, errors)
        if new_host is None:
            return url
        scheme = parts.scheme if new_host.endswith(CLUSTER_SUFFIX) else (parts.scheme or "http")
        return urlunsplit((scheme, new_host, rest, parts.query, parts.fragment))

    def _host(self, host: str, path: str, errors: list[FieldError]) -> str | None:
        if host in self.custom_domains:
            return self.domain(host, path, errors)
        if host.endswith(CLUSTER_SUFFIX):
            return host
        if host.endswith(".localhost"):
            labels = host[: -len(".localhost")].split(".")
            if len(labels) == 2:  # {name}.{namespace} (a Service, a tag route, or the broker ingress)
                return ".".join(labels) + CLUSTER_SUFFIX
        errors.append(FieldError(path, f"{host} is this machine, which a cluster cannot reach; set the cluster's "
                                       "value with --env NAME=VALUE"))
        return None
