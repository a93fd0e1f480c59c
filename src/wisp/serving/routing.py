"""The ingress's routing table: which hosts exist and how each splits its traffic across revisions."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

RevisionKey = tuple[str, str]  # (namespace, revision name)


@dataclass(frozen=True)
class Target:
    revision: RevisionKey
    percent: int


@dataclass(frozen=True)
class RouteEntry:
    """Where one host's requests go; percents of the targets sum to 100."""

    targets: tuple[Target, ...]

    def pick(self, draw: float) -> RevisionKey:
        """The revision for a request, given a uniform draw in [0, 1)."""
        point = draw * 100
        total = 0
        for target in self.targets:
            total += target.percent
            if point < total:
                return target.revision
        return self.targets[-1].revision


class RoutingTable:
    """Hosts per route, plus aliases (custom domains) that follow another host's entry."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._by_owner: dict[tuple[str, str, str], dict[str, RouteEntry]] = {}
        self._hosts: dict[str, RouteEntry] = {}
        self._aliases: dict[str, str] = {}
        self._alias_owner: dict[str, tuple[str, str, str]] = {}
        self._unavailable: dict[tuple[str, str, str], tuple[frozenset[str], str]] = {}
        self._rng = rng or random.Random()

    def set_unavailable(self, owner: tuple[str, str, str], hosts: Iterable[str], reason: str) -> None:
        """Hosts that exist but cannot be served yet (their route has no ready revision), and why."""
        self._unavailable[owner] = (frozenset(hosts), reason)

    def clear_unavailable(self, owner: tuple[str, str, str]) -> None:
        self._unavailable.pop(owner, None)

    def unavailable_reason(self, host: str) -> str | None:
        target = self._aliases.get(host, host)
        for hosts, reason in self._unavailable.values():
            if host in hosts or target in hosts:
                return reason
        return None

    def set_hosts(self, owner: tuple[str, str, str], hosts: dict[str, RouteEntry]) -> None:
        """Replace every host one owner (kind, namespace, name) publishes."""
        for host in self._by_owner.pop(owner, {}):
            self._hosts.pop(host, None)
        if hosts:
            self._by_owner[owner] = dict(hosts)
            self._hosts.update(hosts)

    def set_aliases(self, owner: tuple[str, str, str], aliases: dict[str, str]) -> None:
        """Replace the custom hosts one owner publishes; each follows the entry of an existing host."""
        for host, alias_owner in list(self._alias_owner.items()):
            if alias_owner == owner:
                del self._alias_owner[host]
                self._aliases.pop(host, None)
        for host, target in aliases.items():
            self._aliases[host] = target
            self._alias_owner[host] = owner

    def alias_owner(self, host: str) -> tuple[str, str, str] | None:
        return self._alias_owner.get(host)

    def lookup(self, host: str) -> RouteEntry | None:
        entry = self._hosts.get(host)
        if entry is None and host in self._aliases:
            entry = self._hosts.get(self._aliases[host])
        return entry

    def route(self, host: str) -> RevisionKey | None:
        entry = self.lookup(host)
        return None if entry is None else entry.pick(self._rng.random())

    def hosts(self) -> list[str]:
        return sorted({*self._hosts, *self._aliases})

    def public_hosts(self, internal_suffixes: Iterable[str] = (".svc.cluster.local", ".svc")) -> list[str]:
        suffixes = tuple(internal_suffixes)
        return [h for h in self.hosts() if not h.endswith(suffixes)]
