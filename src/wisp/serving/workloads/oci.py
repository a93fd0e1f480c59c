"""Container-class runtime for an OCI image: each instance is one `<engine> run` (architecture.md: runtime
contract; docs/serving.md, "Containers from OCI images").

What wisp adds to the user's own `podman run`, and why:
- `--network host`: the instance listens on the `PORT` wisp chose, on the host's loopback, as a local process
  does; readiness probes then see the app itself, not a port forwarder that accepts before the app listens.
- `--rm`, `--name`, labels: the instance is the container's lifetime; a daemon killed with SIGKILL leaves
  labelled containers its successor removes (`oci_engine.ContainerEngines.remove_leftovers`).
- `--env-file`: the Revision's env and the runtime contract, and nothing of the daemon's; through a 0600 file,
  so that Secret values never appear on a command line (`ps` shows those to every user).
- what the container spec says: command/args, workingDir, securityContext.

SIGTERM reaches the container through the engine client's signal proxy (the drain); a kill removes the
container with `rm -f`, since killing the client alone would leave the container running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from wisp.serving.workloads import volumes
from wisp.serving.workloads.container import start_logged
from wisp.serving.workloads.oci_engine import (
    DAEMON_LABEL,
    IMAGE_LABEL,
    INSTANCE_LABEL,
    REVISION_LABEL,
    ContainerEngines,
    Engine,
    ImageInfo,
    resolve_image,
)
from wisp.serving.workloads.probe import wait_ready
from wisp.serving.workloads.stopping import terminate_then_kill
from wisp.serving.workloads.types import WorkloadError, WorkloadSpec

log = logging.getLogger("wisp.workloads.oci")

# A value the engines' env-file reader cannot carry (a line break, or longer than their line buffer, 64 KiB)
# is passed by name instead (`-e NAME`), its value in the engine client's environment.
ENV_FILE_MAX_VALUE = 32 * 1024
# The app cannot listen before the engine has created and started its container (100 ms and more), and probing
# meanwhile only takes CPU from the engine on a small machine: an instance is first probed once this share of its
# revision's fastest start so far has passed (the first instance is probed from its spawn on).
QUIET_FRACTION = 0.8


def container_name(namespace: str, instance: str) -> str:
    return f"wisp-{namespace}-{instance}"


def instance_env(spec: WorkloadSpec, port: int) -> dict[str, str]:
    """What the container's process gets: the Revision's env and the contract, not the daemon's PATH/HOME."""
    env = {key: value for key, value in spec.env.items() if key not in spec.host_env}
    env["PORT"] = str(port)
    return env


def split_env(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The variables the env file can hold, and the others (passed by name, their values in the environment of
    the engine client, which only its user can read)."""
    by_file: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for key, value in env.items():
        fits = "\n" not in value and "\r" not in value and len(value) <= ENV_FILE_MAX_VALUE
        (by_file if fits else by_name)[key] = value
    return by_file, by_name


def write_env_file(path: Path, env: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{key}={value}\n" for key, value in env.items())
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        f.write(text)


def run_argv(engine: Engine, image: ImageInfo, spec: WorkloadSpec, name: str, labels: dict[str, str],
             env_file: Path, by_name: list[str], volume_root: Path | None = None) -> list[str]:
    """`<engine> run` for one instance. Kubernetes' rules for command and args: `command` replaces the image's
    entrypoint (and with it the image's cmd), `args` replace the cmd."""
    oci = spec.oci
    # Every value in `--flag=value` form: a value starting with "-" is never read as a flag.
    argv = [engine.path, "run", "--rm", f"--name={name}", "--network=host", f"--env-file={env_file}"]
    argv += [f"--env={key}" for key in by_name]
    argv += [f"--label={key}={value}" for key, value in labels.items()]
    if oci.working_dir:
        argv.append(f"--workdir={oci.working_dir}")
    if oci.run_as_user is not None or oci.run_as_group is not None:
        # runAsGroup alone keeps the image's user (root when it names none) with that primary group.
        user = str(oci.run_as_user) if oci.run_as_user is not None else image.user.split(":", 1)[0] or "0"
        argv.append(f"--user={user}" if oci.run_as_group is None else f"--user={user}:{oci.run_as_group}")
    if oci.read_only_root:
        argv += ["--read-only", "--tmpfs=/tmp"]  # the runtime contract keeps /tmp writable
    if oci.no_new_privileges:
        argv.append("--security-opt=no-new-privileges")
    if oci.seccomp_unconfined:
        argv.append("--security-opt=seccomp=unconfined")
    if oci.memory_limit is not None:
        argv.append(f"--memory={oci.memory_limit}")
    if oci.cpu_limit_millis is not None:
        argv.append(f"--cpus={oci.cpu_limit_millis / 1000:g}")
    if oci.cpu_request_millis is not None:
        argv.append(f"--cpu-shares={max(2, oci.cpu_request_millis * 1024 // 1000)}")  # the kubelet's conversion
    if spec.mounts and volume_root is not None:
        argv += volumes.engine_args(volume_root, spec.volumes, spec.mounts)
    argv += [f"--cap-drop={cap}" for cap in oci.cap_drop]
    argv += [f"--cap-add={cap}" for cap in oci.cap_add]
    if spec.command:
        # podman reads a value starting with "[" as a JSON list: always give it one; docker takes the string.
        entrypoint = json.dumps([spec.command[0]]) if engine.kind == "podman" else spec.command[0]
        argv.append(f"--entrypoint={entrypoint}")
    return [*argv, image.id, *spec.command[1:], *spec.args]


def check_non_root(spec: WorkloadSpec, image: ImageInfo) -> None:
    """securityContext.runAsNonRoot, checked as the kubelet does before it starts the container."""
    if not spec.oci.run_as_non_root:
        return
    if spec.oci.run_as_user is not None:
        if spec.oci.run_as_user == 0:
            raise WorkloadError("container's runAsUser breaks non-root policy (runAsNonRoot is set)")
        return
    user = image.user.split(":", 1)[0]
    if user in ("", "0", "root"):
        raise WorkloadError(f"container has runAsNonRoot and image {spec.image} will run as root")
    if not user.isdigit():
        raise WorkloadError(f"container has runAsNonRoot and image {spec.image} has non-numeric user ({user}), "
                            "cannot verify user is non-root")


class OciInstance:
    """One container; `pid` is its engine client's (`<engine> run`, attached), which exits with the container."""

    def __init__(self, engine: Engine, container: str, name: str, port: int, proc: asyncio.subprocess.Process,
                 log_path: Path, env_file: Path, spec: WorkloadSpec, spawned_at: float = 0.0, quiet: float = 0.0,
                 on_ready: Callable[[float], None] | None = None) -> None:
        self.name = name
        self.port = port
        self.pid = proc.pid
        self.container = container
        self.log_path = log_path
        self.spec = spec
        self._engine = engine
        self._proc = proc
        self._env_file = env_file
        self._signalled = False
        self._spawned_at = spawned_at  # loop time
        self._quiet = quiet
        self._on_ready = on_ready
        self.exited: asyncio.Future[int] = asyncio.ensure_future(self._watch())

    def __repr__(self) -> str:
        return f"OciInstance({self.name!r}, container={self.container!r}, port={self.port}, pid={self.pid})"

    async def _watch(self) -> int:
        """The client's exit status, once the container is gone too."""
        status = await self._proc.wait()
        try:
            if status < 0 or self._signalled:
                # The client was killed (by `kill()`, or with the daemon), or a signal reached it before it
                # proxied signals: the container may outlive it. (After a drain `run --rm` has removed it.)
                removed = await self._engine.remove(self.container)
                if removed.status != 0 and "no such container" not in removed.err.lower():
                    log.warning("instance %s: removing container %s failed: %s", self.name, self.container,
                                removed.message())
        except Exception:  # the exit must be reported whatever the clean-up does
            log.exception("instance %s: removing container %s failed", self.name, self.container)
        finally:
            with contextlib.suppress(OSError):
                self._env_file.unlink()
        return status

    async def wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        quiet = min(self._quiet, timeout) - (loop.time() - self._spawned_at)
        if quiet > 0:
            await asyncio.wait([self.exited], timeout=quiet)
        await wait_ready(f"instance {self.name}", self.port, self.spec.probe, self.exited, self.log_path,
                         timeout - (loop.time() - self._spawned_at), instance=self)
        if self._on_ready is not None:
            self._on_ready(loop.time() - self._spawned_at)

    async def run_command(self, command: Sequence[str], timeout: float) -> int:
        """An exec probe's command, run in the container (`<engine> exec`); its exit status, -9 when it has not
        finished within `timeout` seconds."""
        return (await self._engine.call("exec", self.container, *command, timeout=timeout)).status

    async def terminate(self, grace: float) -> None:
        """SIGTERM to the container (the client proxies it: the app drains), a kill after `grace` seconds."""
        await terminate_then_kill(self._signal, self.exited, grace)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self._proc.returncode is None:
            self._signalled = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, sig)


class OciRuntime:
    """A container whose image is an OCI reference. `start` finds the engine and resolves the image by its
    pull policy (a failure is the Revision's: Ready=False with the engine's message); each instance then runs
    exactly that image, by id."""

    def __init__(self, spec: WorkloadSpec, engines: ContainerEngines, volume_root: Path | None = None) -> None:
        self.spec = spec
        self.engines = engines
        # Its Secret/ConfigMap volumes' files (volumes.py), bound into each container with the engine's -v.
        self._volumes = None if volume_root is None else volume_root / spec.namespace / spec.revision
        self.engine: Engine | None = None
        self.image: ImageInfo | None = None
        self.fastest_start: float | None = None  # spawn → ready, seconds, of this revision's instances

    def _started(self, seconds: float) -> None:
        if self.fastest_start is None or seconds < self.fastest_start:
            self.fastest_start = seconds

    @property
    def image_digest(self) -> str | None:
        """What the Revision's status records: repository@sha256:... once resolved."""
        if self.image is None:
            return self.spec.oci.pinned
        return self.image.digest_ref or self.spec.oci.pinned

    async def start(self) -> None:
        spec = self.spec
        try:
            engine = await self.engines.engine()
        except WorkloadError as exc:
            raise WorkloadError(f"image {spec.image} {exc}") from None
        image = await resolve_image(engine, spec.image, spec.oci.pull_policy, spec.oci.pinned)
        check_non_root(spec, image)
        self.engine, self.image = engine, image
        if spec.volumes and self._volumes is not None:
            await asyncio.to_thread(volumes.sync, self._volumes, spec.volumes, time.time())

    async def update_volumes(self, spec: WorkloadSpec) -> list[str]:
        """New Secret/ConfigMap contents, swapped in under the running containers (the bound directory)."""
        self.spec = spec
        if not spec.volumes or self._volumes is None:
            return []
        return await asyncio.to_thread(volumes.sync, self._volumes, spec.volumes, time.time())

    async def spawn(self, name: str, port: int, log_path: Path) -> OciInstance:
        engine, image, spec = self.engine, self.image, self.spec
        if engine is None or image is None:
            raise WorkloadError(f"revision {spec.revision}: the container engine is not started")
        container = container_name(spec.namespace, name)
        by_file, by_name = split_env(instance_env(spec, port))
        env_file = self.engines.env_file(name)
        write_env_file(env_file, by_file)
        labels = {DAEMON_LABEL: self.engines.label, REVISION_LABEL: f"{spec.namespace}/{spec.revision}",
                  INSTANCE_LABEL: name, IMAGE_LABEL: spec.image}
        argv = run_argv(engine, image, spec, container, labels, env_file, list(by_name), self._volumes)
        spawned_at = asyncio.get_running_loop().time()
        try:
            # No parent-death signal: killing the client would not stop the container (conmon keeps it), and a
            # daemon started again removes both; an exec less on every cold start. Run in the state dir: podman's
            # conmon writes a file named `oom` into its working directory when the kernel kills a container.
            proc = await start_logged(argv, name, log_path, {**engine.environ, **by_name}, env_file.parent,
                                      orphan_guard=False)
        except WorkloadError:
            env_file.unlink(missing_ok=True)
            raise
        quiet = QUIET_FRACTION * self.fastest_start if self.fastest_start is not None else 0.0
        return OciInstance(engine, container, name, port, proc, log_path, env_file, spec, spawned_at, quiet,
                           self._started)

    async def stop(self) -> None:
        """Instances are removed by `run --rm` when they stop (or by `rm -f` when killed); the volumes' files go."""
        if self._volumes is not None and self.spec.volumes:
            await asyncio.to_thread(volumes.remove, self._volumes)
