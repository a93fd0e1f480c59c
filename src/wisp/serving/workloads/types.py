"""The contract between the serving stack and the workload runtimes (architecture.md: runtime contract)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

WorkloadClass = Literal["function", "container"]


class WorkloadError(Exception):
    """A revision's workload cannot start, or an instance did not become ready; the message says why."""


@dataclass(frozen=True)
class Probe:
    """Readiness: a TCP connect on the port unless an httpGet path is given (then any 200-399 answer)."""

    http_path: str | None = None
    period: float = 0.05  # Knative probes every 50 ms while an instance starts


@dataclass(frozen=True)
class OciOptions:
    """How an OCI image's container runs, from the Revision's container spec (Kubernetes' meaning)."""

    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    working_dir: str | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    read_only_root: bool = False
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp_unconfined: bool = False
    # The digest recorded in the Revision's status earlier: it runs that image even if the tag moved since.
    # Not part of equality: recording it must not restart the revision's instances.
    pinned: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WorkloadSpec:
    """Everything needed to run instances of one revision."""

    revision: str
    namespace: str
    workload_class: WorkloadClass
    directory: Path | None  # local code dir (function code, container working dir); None for an OCI image
    image: str  # as written in the manifest
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # complete env for instances except PORT
    # Names in `env` taken from the daemon's environment (PATH, HOME, ...), not asked for by the Revision:
    # local processes need them; an OCI container gets only what the Revision declares and the contract.
    host_env: frozenset[str] = frozenset()
    function_target: str = "main:handle"
    probe: Probe = Probe()
    timeout_seconds: float = 300  # drain budget on SIGTERM
    oci: OciOptions = OciOptions()  # used only when the image is an OCI reference (directory is None)


class Instance(Protocol):
    """One running instance (a forked function worker or a container process) serving on 127.0.0.1:port."""

    name: str
    port: int
    pid: int
    # Resolves with the exit status (negative signal number when killed) the moment the process dies.
    exited: asyncio.Future[int]

    async def wait_ready(self, timeout: float) -> None: ...

    async def terminate(self, grace: float) -> None: ...

    def kill(self) -> None: ...


class Runtime(Protocol):
    """Runs the instances of one revision; `start` before the first `spawn`, `stop` after the last."""

    spec: WorkloadSpec

    async def start(self) -> None: ...

    async def spawn(self, name: str, port: int, log_path: Path) -> Instance: ...

    async def stop(self) -> None: ...
