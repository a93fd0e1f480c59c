"""What `wisp export` is asked for, checked once before anything is read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from wisp.api.validate_core import dns1123_subdomain

# host[:port][/path...], lowercase: what `podman push` and Kubernetes' image field take as a repository prefix.
_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
MAX_ENV_OVERRIDES = 100


class OptionError(ValueError):
    """An export option that cannot be used; the message names the option."""


@dataclass(frozen=True)
class ExportOptions:
    registry: str | None = None  # images of local code: REGISTRY/NAME:TAG
    kafka: tuple[str, ...] = ()  # the cluster's Kafka bootstrap servers, replacing this machine's
    domain: str | None = None  # `*.localhost` custom domains become `*.DOMAIN`
    tag: str | None = None  # default: a hash of each build context
    env: dict[str, str] = field(default_factory=dict)  # NAME=VALUE set wherever a container sets NAME

    @staticmethod
    def parse(
        registry: str | None, kafka: str | None, domain: str | None, tag: str | None, env: list[str]
    ) -> ExportOptions:
        if registry is not None and not _REGISTRY.match(registry.rstrip("/")):
            raise OptionError(f"--registry {registry!r}: expected HOST[:PORT][/PATH] in lowercase, e.g. ghcr.io/you")
        servers: tuple[str, ...] = ()
        if kafka is not None:
            servers = tuple(s.strip() for s in kafka.split(",") if s.strip())
            bad = [s for s in servers if not _HOST_PORT.match(s)]
            if not servers or bad:
                raise OptionError(f"--kafka {kafka!r}: expected HOST:PORT[,HOST:PORT...]")
            local = [s for s in servers if is_loopback_host(s.rsplit(":", 1)[0])]
            if local:
                raise OptionError(f"--kafka {kafka!r}: {local[0]} is this machine, not the cluster's Kafka")
        if domain is not None:
            problems = dns1123_subdomain(domain)
            if problems or domain.endswith("localhost"):
                raise OptionError(f"--domain {domain!r}: " + ("; ".join(problems) or "must be a real domain"))
        if tag is not None and not _TAG.match(tag):
            raise OptionError(f"--tag {tag!r}: a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -")
        overrides: dict[str, str] = {}
        if len(env) > MAX_ENV_OVERRIDES:
            raise OptionError(f"--env: at most {MAX_ENV_OVERRIDES}")
        for item in env:
            name, sep, value = item.partition("=")
            if not sep or not _ENV_NAME.match(name):
                raise OptionError(f"--env {item!r}: expected NAME=VALUE")
            overrides[name] = value
        return ExportOptions(registry.rstrip("/") if registry else None, servers, domain, tag, overrides)


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1, localhost and anything under .localhost: names that mean "this machine"
    (0.0.0.0, "all interfaces", is not one)."""
    host = host.strip("[]").lower().rstrip(".")
    return (host in ("localhost", "::1") or host.endswith(".localhost")
            or re.match(r"^127(\.[0-9]{1,3}){3}$", host) is not None)
