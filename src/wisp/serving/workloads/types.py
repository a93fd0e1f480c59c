"""The contract between the serving stack and the workload runtimes (architecture.md: runtime contract)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from wisp.serving.workloads.cgroups import Limits
from wisp.serving.workloads.volumes import Mount, Volume

WorkloadClass = Literal["function", "container"]


class WorkloadError(Exception):
    """A revision's workload cannot start, or an instance did not become ready; the message says why, `reason`
    is the Revision condition's."""

    reason = "WorkloadFailed"


class ContainerMissing(WorkloadError):
    """The revision's image is not there and cannot be fetched (Knative's digest resolution failing)."""

    reason = "ContainerMissing"


@dataclass(frozen=True)
class Probe:
    """A Kubernetes probe of an instance (architecture.md: runtime contract): a TCP connect on its port unless an
    httpGet path (any 200-399 answer), an exec command (exit status 0) or a gRPC health service (SERVING) is
    given. The defaults are readiness's while an instance starts; liveness and startup probes carry the
    Kubernetes fields (period, timeout, failureThreshold, initialDelaySeconds)."""

    http_path: str | None = None
    period: float = 0.05  # Knative probes every 50 ms while an instance starts
    http_headers: tuple[tuple[str, str], ...] = ()
    exec_command: tuple[str, ...] = ()
    grpc_service: str | None = None  # "" is the server's overall health; None: not a gRPC probe
    timeout: float = 1.0  # timeoutSeconds of one attempt
    failure_threshold: int = 3
    initial_delay: float = 0.0
    # Whether the manifest declared the probe (then readiness is also watched after the instance is ready).
    declared: bool = False

    @property
    def kind(self) -> Literal["tcp", "http", "exec", "grpc"]:
        if self.exec_command:
            return "exec"
        if self.grpc_service is not None:
            return "grpc"
        return "tcp" if self.http_path is None else "http"


@runtime_checkable
class RunsCommands(Protocol):
    """An instance that can run a command beside its process, as an exec probe does (in its directory and
    environment, or inside its container). Those that cannot have exec readiness fall back to the TCP probe."""

    async def run_command(self, command: Sequence[str], timeout: float) -> int: ...


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
    # resources: limits as `--memory`/`--cpus`, the CPU request as `--cpu-shares` (the kubelet's weight)
    memory_limit: int | None = None  # bytes
    cpu_limit_millis: int | None = None
    cpu_request_millis: int | None = None
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
    liveness: Probe | None = None  # restarts the instance after failure_threshold failures in a row
    # Local processes only (an OCI image's are in `oci`): volumes and their mounts (run in a sandbox), the
    # workingDir (relative to the code directory, or absolute inside the sandbox) and the user to run as.
    volumes: tuple[Volume, ...] = ()
    mounts: tuple[Mount, ...] = ()
    working_dir: str | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    limits: Limits = field(default_factory=Limits)  # enforced through a cgroup
    # resources.requests: what the machine must have free for an instance to be placed (node_resources.py)
    requests_cpu_millis: int = 0
    requests_memory: int = 0
    startup: Probe | None = None  # must pass before readiness and liveness are probed
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
