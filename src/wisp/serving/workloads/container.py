"""Container-class runtimes: a local directory runs command/args as a process group; an OCI image runs
through podman or docker when one works here (architecture.md: runtime contract, machine facts)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path

from wisp.serving.workloads.probe import wait_ready
from wisp.serving.workloads.stopping import terminate_then_kill
from wisp.serving.workloads.types import WorkloadError, WorkloadSpec

ENGINES = ("podman", "docker")
ENGINE_CHECK_TIMEOUT = 15.0


class ProcessInstance:
    """A container instance: one process, leader of its own process group (signalled as a group)."""

    def __init__(self, name: str, port: int, proc: asyncio.subprocess.Process, log_path: Path,
                 spec: WorkloadSpec) -> None:
        self.name = name
        self.port = port
        self.pid = proc.pid
        self.log_path = log_path
        self.spec = spec
        self._proc = proc
        self.exited: asyncio.Future[int] = asyncio.ensure_future(proc.wait())
        self.exited.add_done_callback(lambda _: self._signal_group(signal.SIGKILL))  # no stragglers

    def __repr__(self) -> str:
        return f"ProcessInstance({self.name!r}, port={self.port}, pid={self.pid})"

    async def wait_ready(self, timeout: float) -> None:
        what = f"instance {self.name}"
        await wait_ready(what, self.port, self.spec.probe, self.exited, self.log_path, timeout)

    async def terminate(self, grace: float) -> None:
        """SIGTERM to the group (the process drains), then SIGKILL after `grace` seconds."""
        await terminate_then_kill(self._signal_group, self.exited, grace)

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


async def _start_process(argv: list[str], name: str, port: int, log_path: Path, spec: WorkloadSpec,
                         cwd: Path | None) -> ProcessInstance:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(spec.env)
    env.setdefault("PATH", os.environ.get("PATH", os.defpath))
    env["PORT"] = str(port)
    # Instance output may hold what the app prints of its secrets: readable by its owner only.
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        try:
            proc = await asyncio.create_subprocess_exec(
                *_orphan_guarded(argv, cwd, env), cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        except OSError as e:
            message = f"instance {name}: cannot run {argv[0]!r} in {cwd or '.'}: {e.strerror or e}"
            log.write(f"wisp: {message}\n".encode())
            raise WorkloadError(message) from None
    return ProcessInstance(name, port, proc, log_path, spec)


class ProcessRuntime:
    """A container whose image is a local directory: `command` + `args` run there, once per instance."""

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec

    async def start(self) -> None:
        spec = self.spec
        if spec.directory is None or not spec.directory.is_dir():
            raise WorkloadError(
                f"revision {spec.revision}: directory {spec.directory} (image {spec.image!r}) does not exist"
            )
        if not spec.command and not spec.args:
            raise WorkloadError(f"revision {spec.revision}: image {spec.image!r} is a directory, so the "
                                "container needs a command (and/or args) to run in it")

    async def spawn(self, name: str, port: int, log_path: Path) -> ProcessInstance:
        return await _start_process([*self.spec.command, *self.spec.args], name, port, log_path, self.spec,
                                    self.spec.directory)

    async def stop(self) -> None:
        """Nothing is shared between a container revision's instances."""


async def find_engine() -> tuple[str | None, list[str]]:
    """The first of podman/docker whose `info` succeeds, and why each other one cannot be used."""
    problems: list[str] = []
    for engine in ENGINES:
        path = shutil.which(engine)
        if path is None:
            problems.append(f"{engine} is not installed")
            continue
        try:
            proc = await asyncio.create_subprocess_exec(
                path, "info", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            problems.append(f"{engine} cannot run: {e}")
            continue
        try:
            _, err = await asyncio.wait_for(proc.communicate(), ENGINE_CHECK_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            problems.append(f"`{engine} info` did not answer within {ENGINE_CHECK_TIMEOUT:g}s")
            continue
        if proc.returncode == 0:
            return path, problems
        lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
        detail = lines[0] if lines else ""
        problems.append(f"`{engine} info` failed ({detail or f'exit status {proc.returncode}'})")
    return None, problems


class EngineRuntime:
    """A container whose image is an OCI reference, run by podman or docker with the port published."""

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.engine: str | None = None

    async def start(self) -> None:
        engine, problems = await find_engine()
        if engine is None:
            raise WorkloadError(
                f"image {self.spec.image} needs a container engine (podman or docker); "
                f"none is installed and working: {'; '.join(problems)}"
            )
        self.engine = engine

    def run_argv(self, name: str, port: int) -> list[str]:
        """`<engine> run` for one instance: Knative's command overrides the entrypoint, args the cmd."""
        assert self.engine is not None
        spec = self.spec
        argv = [self.engine, "run", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:{port}"]
        for key, value in {**spec.env, "PORT": str(port)}.items():
            if key not in spec.host_env:
                argv += ["-e", f"{key}={value}"]
        if spec.command:
            argv += ["--entrypoint", spec.command[0]]
        return [*argv, spec.image, *spec.command[1:], *spec.args]

    async def spawn(self, name: str, port: int, log_path: Path) -> ProcessInstance:
        if self.engine is None:
            raise WorkloadError(f"revision {self.spec.revision}: the container engine is not started")
        # The engine client forwards SIGTERM to the container (sig-proxy): draining works as for a process.
        return await _start_process(self.run_argv(name, port), name, port, log_path, self.spec, None)

    async def stop(self) -> None:
        """Instances are removed by `run --rm` when they stop."""
