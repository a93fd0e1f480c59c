"""Container-class runtime for a local directory: command/args run there as a process group (architecture.md:
runtime contract, machine facts). OCI images are `oci.py`'s."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from wisp.serving.workloads import cgroups, sandbox, volumes
from wisp.serving.workloads.parked import PARKED_DIR, Parked, parked_argv
from wisp.serving.workloads.probe import wait_ready
from wisp.serving.workloads.stopping import terminate_then_kill
from wisp.serving.workloads.types import ContainerMissing, WorkloadError, WorkloadSpec

PARK_DELAY = 0.1  # after a spawn, before the next instance is parked


class ProcessInstance:
    """A container instance: one process, leader of its own process group (signalled as a group)."""

    def __init__(self, name: str, port: int, proc: asyncio.subprocess.Process, log_path: Path,
                 spec: WorkloadSpec, env: dict[str, str] | None = None,
                 cgroup: cgroups.InstanceCgroup | None = None) -> None:
        self.name = name
        self.port = port
        self.pid = proc.pid
        self.log_path = log_path
        self.spec = spec
        self._proc = proc
        self.env = env if env is not None else dict(spec.env)
        self.exited: asyncio.Future[int] = asyncio.ensure_future(proc.wait())
        self.exited.add_done_callback(lambda _: self._signal_group(signal.SIGKILL))  # no stragglers
        self.cgroup = cgroup
        self.sandboxed = False  # set by the runtime when the process runs in its bwrap sandbox
        self.cwd: Path | None = None
        self._oom_killed = False
        # Its cgroup's release, started as the process exits (a done callback, so before anything awaiting the
        # exit resumes): a terminated instance has left nothing once it is done.
        self._cgroup_gone: asyncio.Task[None] | None = None
        if cgroup is not None:
            self.exited.add_done_callback(self._leave_cgroup)

    def _leave_cgroup(self, _: object) -> None:
        assert self.cgroup is not None
        self._oom_killed = self.cgroup.oom_killed()
        self._cgroup_gone = asyncio.get_running_loop().create_task(self.cgroup.release())

    def oom_killed(self) -> bool:
        """Whether the kernel killed the instance for going over its memory limit (known once it has exited)."""
        return self._oom_killed

    def __repr__(self) -> str:
        return f"ProcessInstance({self.name!r}, port={self.port}, pid={self.pid})"

    async def wait_ready(self, timeout: float) -> None:
        what = f"instance {self.name}"
        await wait_ready(what, self.port, self.spec.probe, self.exited, self.log_path, timeout, instance=self)

    async def run_command(self, command: Sequence[str], timeout: float) -> int:
        """An exec probe's command, in the instance's directory and environment (and, for a sandboxed instance,
        in its mount namespace: it sees the instance's volumes and /tmp); killed after `timeout`."""
        argv = list(command)
        if self.sandboxed and _NSENTER is not None and os.geteuid() == 0:
            inside = _sandboxed_child(self.pid)
            if inside is not None:
                argv = [_NSENTER, f"--target={inside}", "--mount", "--", *argv]
        return await run_probe_command(argv, timeout, self.cwd or self.spec.directory, self.env)

    async def terminate(self, grace: float) -> None:
        """SIGTERM to the group (the process drains), then SIGKILL after `grace` seconds; returns once its cgroup
        is gone too."""
        await terminate_then_kill(self._signal_group, self.exited, grace)
        if self._cgroup_gone is not None:
            await self._cgroup_gone

    def kill(self) -> None:
        if not self.exited.done():
            self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


# util-linux's setpriv sets the parent-death signal and execs the command: an instance must not outlive a
# daemon killed with SIGKILL (it would keep its port). A C helper, so it adds ~1 ms, not an interpreter start.
_SETPRIV = shutil.which("setpriv") if sys.platform == "linux" else None


def _orphan_guarded(argv: list[str], cwd: Path | None, env: dict[str, str]) -> list[str]:
    if _SETPRIV is None:
        return argv
    # setpriv would report a missing command only in the log; keep the error the direct exec gives.
    program = argv[0]
    found = (Path(cwd or ".") / program).exists() if "/" in program else shutil.which(program, path=env["PATH"])
    if not found:
        raise FileNotFoundError(2, "No such file or directory", program)
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


_NSENTER = shutil.which("nsenter") if sys.platform == "linux" else None


def _sandboxed_child(pid: int) -> int | None:
    """The process bwrap runs inside the sandbox's mount namespace: its child (bwrap itself stays outside)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


async def run_probe_command(command: Sequence[str], timeout: float, cwd: Path | None, env: dict[str, str]) -> int:
    """Run an exec probe's command (output discarded) and return its exit status; 1 when it cannot start, and
    the process group killed with status -9 when it outlives `timeout`, as the kubelet counts a timed-out probe."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return 1
    try:
        async with asyncio.timeout(timeout):
            return await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return -signal.SIGKILL


async def start_logged(argv: list[str], name: str, log_path: Path, env: dict[str, str],
                       cwd: Path | None, orphan_guard: bool = True,
                       stdin_pipe: bool = False) -> asyncio.subprocess.Process:
    """`argv` as the leader of a new process group, output appended to `log_path`; with `orphan_guard`,
    killed if the daemon dies; stdin from /dev/null, or a pipe from the daemon (`stdin_pipe`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Instance output may hold what the app prints of its secrets: readable by its owner only.
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        try:
            run = _orphan_guarded(argv, cwd, env) if orphan_guard else argv
            stdin = asyncio.subprocess.PIPE if stdin_pipe else asyncio.subprocess.DEVNULL
            return await asyncio.create_subprocess_exec(
                *run, cwd=cwd, env=env, stdin=stdin, stdout=log, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            message = f"instance {name}: cannot run {argv[0]!r} in {cwd or '.'}: {e.strerror or e}"
            log.write(f"wisp: {message}\n".encode())
            raise WorkloadError(message) from None


def _cgroup_wanted(limits: cgroups.Limits) -> bool:
    """Whether instances get a cgroup of their own; a CPU request alone is a weight, best effort: where wisp cannot
    make a cgroup the instance runs without (limits it cannot enforce are refused by `start`)."""
    found = cgroups.hierarchy() if limits.any else None
    weight_only = limits.memory is None and limits.cpu_millis is None
    return found is not None and not (weight_only and cgroups.unavailable(limits, found))


class ProcessRuntime:
    """A container whose image is a local directory: `command` + `args` run there, once per instance. One with
    volumes, an absolute workingDir or a user to run as runs each instance in a sandbox (sandbox.py); its
    Secret/ConfigMap volumes are written under `volume_root/<namespace>/<revision>`."""

    def __init__(self, spec: WorkloadSpec, volume_root: Path | None = None) -> None:
        self.spec = spec
        self._volumes = None if volume_root is None else volume_root / spec.namespace / spec.revision
        self._cwd, self._chdir = sandbox.absolute_working_dir(spec.working_dir, spec.directory)
        # One instance parked past its sandbox and cgroup set-up, for revisions that have them (parked.py).
        self._parked: Parked | None = None
        self.parked = asyncio.Event()  # set while a process is parked
        self._parking: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._cgroup_wanted = _cgroup_wanted(spec.limits)

    @property
    def sandboxed(self) -> bool:
        spec = self.spec
        return bool(spec.mounts) or self._chdir is not None or spec.run_as_user is not None \
            or spec.run_as_group is not None

    async def start(self) -> None:
        spec = self.spec
        if spec.directory is None or not spec.directory.is_dir():
            raise ContainerMissing(
                f"revision {spec.revision}: directory {spec.directory} (image {spec.image!r}) does not exist"
            )
        if not spec.command and not spec.args:
            raise WorkloadError(f"revision {spec.revision}: image {spec.image!r} is a directory, so the "
                                "container needs a command (and/or args) to run in it")
        if self._cwd is not None and not self._cwd.is_dir():
            raise WorkloadError(f"spec.containers[0].workingDir: {self._cwd} is not a directory")
        if spec.limits.memory is not None or spec.limits.cpu_millis is not None:
            problem = cgroups.unavailable(spec.limits, cgroups.hierarchy())
            if problem is not None:
                raise WorkloadError(f"spec.containers[0].resources: the limits cannot be enforced here: {problem}")
        if not self.sandboxed:
            return
        reason = await asyncio.to_thread(sandbox.unavailable)
        if reason is not None:
            raise WorkloadError(f"revision {spec.revision} needs its own mount namespace (for its volumes, "
                                f"workingDir or user) and this machine cannot make one: {reason}")
        if (spec.run_as_user is not None or spec.run_as_group is not None) and os.geteuid() != 0:
            raise WorkloadError("spec.containers[0].securityContext: runAsUser/runAsGroup for a local process need "
                                "wisp to run as root")
        for i, mount in enumerate(spec.mounts):
            problem = sandbox.host_side_effect(mount.mount_path)
            if problem is not None:
                raise WorkloadError(f"spec.containers[0].volumeMounts[{i}].mountPath: {problem}")
        await asyncio.to_thread(self._write_volumes, spec)

    def _write_volumes(self, spec: WorkloadSpec) -> list[str]:
        if self._volumes is None or not spec.volumes:
            return []
        return volumes.sync(self._volumes, spec.volumes, time.time())

    async def update_volumes(self, spec: WorkloadSpec) -> list[str]:
        """New contents of the Secrets and ConfigMaps the volumes show, swapped in under the running instances
        (the kubelet's update); the names of the volumes that changed."""
        self.spec = spec
        return await asyncio.to_thread(self._write_volumes, spec)

    def _env(self) -> dict[str, str]:
        env = dict(self.spec.env)
        env.setdefault("PATH", os.environ.get("PATH", os.defpath))
        return env

    async def spawn(self, name: str, port: int, log_path: Path) -> ProcessInstance:
        spec = self.spec
        if not self.sandboxed and not self._cgroup_wanted:
            env = {**self._env(), "PORT": str(port)}
            proc = await start_logged([*spec.command, *spec.args], name, log_path, env, self._cwd)
            return ProcessInstance(name, port, proc, log_path, spec, env)
        parked = self._parked
        if parked is not None and not parked.alive:  # died while parked: its file and cgroup go
            self._keep(asyncio.create_task(parked.discard()))
            self._parked = parked = None
            self.parked.clear()
        ordered = parked.order(port, log_path) if parked is not None else None
        if parked is not None and ordered is not None:
            self._parked = None
            self.parked.clear()
            env, proc, cgroup = ordered, parked.proc, parked.cgroup
        else:
            env = {**self._env(), "PORT": str(port)}
            proc, cgroup = await self._start_wrapped(name, log_path, env, park=False)
        self._park_soon(log_path.parent)
        instance = ProcessInstance(name, port, proc, log_path, spec, env, cgroup)
        instance.sandboxed, instance.cwd = self.sandboxed, self._cwd
        return instance

    async def _start_wrapped(self, name: str, log_path: Path, env: dict[str, str],
                             park: bool) -> tuple[asyncio.subprocess.Process, cgroups.InstanceCgroup | None]:
        """The command in its sandbox and/or cgroup (with `park`, waiting for its port: parked.py)."""
        spec = self.spec
        argv = [*spec.command, *spec.args]
        if park:
            argv = parked_argv(argv)
        guard = True
        if self.sandboxed:
            root = self._volumes or Path("/nonexistent")
            keep = [p for p in (spec.directory, self._cwd) if p is not None]
            argv = sandbox.wrap(argv, mounts=volumes.mount_args(root, spec.volumes, spec.mounts), chdir=self._chdir,
                                user=spec.run_as_user, group=spec.run_as_group, keep=keep)
            guard = False  # bwrap's --die-with-parent stands in for setpriv's parent-death signal
        cgroup = None
        found = cgroups.hierarchy()
        if self._cgroup_wanted and found is not None:
            try:
                cgroup = await asyncio.to_thread(cgroups.create, name, spec.limits, found)
            except OSError as exc:
                if spec.limits.memory is not None or spec.limits.cpu_millis is not None:
                    raise WorkloadError(f"instance {name}: cannot make its cgroup for the resource limits: "
                                        f"{exc}") from None
        if cgroup is not None:
            argv = cgroups.joined(argv, cgroup)
        try:
            proc = await start_logged(argv, name, log_path, env, self._cwd, orphan_guard=guard, stdin_pipe=park)
        except WorkloadError:
            if cgroup is not None:
                cgroup.remove()
            raise
        return proc, cgroup

    def _park_soon(self, log_dir: Path) -> None:
        """Park the next instance shortly after this one starts (not competing with it for the CPU now)."""
        if self._stopped or self._parking is not None:
            return
        loop = asyncio.get_running_loop()
        self._parking = loop.call_later(PARK_DELAY, lambda: self._keep(loop.create_task(self._park(log_dir))))

    async def _park(self, log_dir: Path) -> None:
        self._parking = None
        if self._stopped or self._parked is not None:
            return
        directory = log_dir / PARKED_DIR
        key = secrets.token_hex(4)
        env = self._env()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            proc, cgroup = await self._start_wrapped(f"parked-{key}", directory / f"{key}.log", env, park=True)
        except (WorkloadError, OSError):
            return  # the next spawn starts its instance directly, and reports what fails
        parked = Parked(proc, directory / f"{key}.log", env, cgroup)
        if self._stopped or self._parked is not None:
            await parked.discard()
        else:
            self._parked = parked
            self.parked.set()

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Nothing is shared between a container revision's instances but its volumes' files (and the parked
        process, discarded)."""
        self._stopped = True
        if self._parking is not None:
            self._parking.cancel()
        parked, self._parked = self._parked, None
        self.parked.clear()
        if parked is not None:
            await parked.discard()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._volumes is not None:
            await asyncio.to_thread(volumes.remove, self._volumes)
