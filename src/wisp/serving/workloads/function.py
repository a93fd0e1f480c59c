"""Function-class runtime, daemon side: drives the template process and tracks its forked instances."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from wisp.serving.workloads.probe import wait_ready
from wisp.serving.workloads.stopping import terminate_then_kill
from wisp.serving.workloads.types import WorkloadError, WorkloadSpec

logger = logging.getLogger("wisp.workloads.function")

START_TIMEOUT = 60.0  # importing a user's module (and its dependencies) can be slow
FORK_TIMEOUT = 10.0
STOP_GRACE = 5.0
TEMPLATE_LOG_LINES = 200


class FunctionInstance:
    """A forked worker of a function revision; `exited` is resolved by the template's exit report."""

    def __init__(self, name: str, port: int, pid: int, log_path: Path, spec: WorkloadSpec) -> None:
        self.name = name
        self.port = port
        self.pid = pid
        self.log_path = log_path
        self.spec = spec
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        # Set when the instance says it listens: the probe runs at once instead of at its next period.
        self.listening: asyncio.Future[None] = loop.create_future()

    def __repr__(self) -> str:
        return f"FunctionInstance({self.name!r}, port={self.port}, pid={self.pid})"

    async def wait_ready(self, timeout: float) -> None:
        what = f"instance {self.name}"
        await wait_ready(what, self.port, self.spec.probe, self.exited, self.log_path, timeout,
                         wake=self.listening)

    async def terminate(self, grace: float) -> None:
        await terminate_then_kill(self._signal, self.exited, grace)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        # Once reaped the pid may belong to someone else: never signal a finished instance.
        if not self.exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


class FunctionRuntime:
    """One template process per revision; `spawn` asks it to fork an instance."""

    def __init__(self, spec: WorkloadSpec, python: str = sys.executable) -> None:
        self.spec = spec
        self.python = python
        self.signature: str | None = None
        self.template_log: collections.deque[str] = collections.deque(maxlen=TEMPLATE_LOG_LINES)
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started: asyncio.Future[str] | None = None
        self._pending: dict[str, asyncio.Future[FunctionInstance]] = {}
        self._spawning: dict[str, tuple[int, Path]] = {}
        self._instances: dict[int, FunctionInstance] = {}
        self._early_listening: set[int] = set()
        self._closed = False

    @property
    def instances(self) -> list[FunctionInstance]:
        return list(self._instances.values())

    async def start(self) -> None:
        spec = self.spec
        if spec.directory is None:
            raise WorkloadError(
                f"function revision {spec.revision}: image {spec.image!r} is not a local directory; "
                "a function's image must be a directory of Python code (e.g. ./homepage)"
            )
        if not spec.directory.is_dir():
            raise WorkloadError(
                f"function revision {spec.revision}: code directory {spec.directory} does not exist"
            )
        env = dict(spec.env)
        env.setdefault("PATH", os.environ.get("PATH", os.defpath))
        env["FUNCTION_TARGET"] = spec.function_target
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self._proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "wisp.serving.workloads.template",
            "--target", spec.function_target, "--drain", str(spec.timeout_seconds),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=spec.directory, env=env, start_new_session=True,
        )
        self._tasks = [
            asyncio.create_task(self._read_replies(self._proc), name=f"template-replies-{spec.revision}"),
            asyncio.create_task(self._read_log(self._proc), name=f"template-log-{spec.revision}"),
        ]
        try:
            self.signature = await asyncio.wait_for(asyncio.shield(self._started), START_TIMEOUT)
        except BaseException as e:
            await self.stop()
            if isinstance(e, TimeoutError):
                raise WorkloadError(
                    f"function {spec.function_target} in {spec.directory} did not load within "
                    f"{START_TIMEOUT:g}s"
                ) from None
            raise
        logger.info("revision %s: template pid %d ready (%s)", spec.revision, self._proc.pid, self.signature)

    async def spawn(self, name: str, port: int, log_path: Path) -> FunctionInstance:
        proc = self._proc
        if proc is None or proc.stdin is None or self._started is None or not self._started.done():
            raise WorkloadError(f"revision {self.spec.revision}: the function template is not started")
        if proc.returncode is not None or self._closed:
            raise WorkloadError(f"revision {self.spec.revision}: the function template has exited")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        future: asyncio.Future[FunctionInstance] = asyncio.get_running_loop().create_future()
        self._pending[name] = future
        self._spawning[name] = (port, log_path)
        order = {"op": "fork", "name": name, "port": port, "log": str(log_path)}
        try:
            proc.stdin.write((json.dumps(order) + "\n").encode())
            await proc.stdin.drain()
            return await asyncio.wait_for(future, FORK_TIMEOUT)
        except (ConnectionError, TimeoutError) as e:
            raise WorkloadError(
                f"revision {self.spec.revision}: could not fork instance {name}: {e!r}"
            ) from None
        finally:
            self._pending.pop(name, None)
            self._spawning.pop(name, None)

    async def stop(self) -> None:
        """Kill instances still running (terminate them first to drain), then end the template."""
        self._closed = True
        for instance in list(self._instances.values()):
            instance.kill()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the template returns from its order loop and exits
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read_replies(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                logger.warning("revision %s: bad reply from template: %r", self.spec.revision, line)
                continue
            self._on_reply(message)
        await proc.wait()
        self._on_template_exit(proc.returncode)

    def _on_reply(self, message: dict[str, Any]) -> None:
        event = message.get("ev")
        if event == "ready" and self._started is not None and not self._started.done():
            self._started.set_result(str(message.get("signature")))
        elif event == "error" and self._started is not None and not self._started.done():
            self._started.set_exception(WorkloadError(self._load_error(str(message.get("message", "")))))
        elif event == "forked":
            name, pid = str(message["name"]), int(message["pid"])
            port, log_path = self._spawning[name]
            # Registered before the next reply is read, so an immediate "exit" always finds it.
            instance = FunctionInstance(name, port, pid, log_path, self.spec)
            self._instances[pid] = instance
            if pid in self._early_listening:
                self._early_listening.discard(pid)
                instance.listening.set_result(None)
            future = self._pending.get(name)
            if future is not None and not future.done():
                future.set_result(instance)
        elif event == "listening":
            pid = int(message["pid"])
            listening = self._instances.get(pid)
            if listening is None:
                self._early_listening.add(pid)  # the child outran the template's "forked" line
            elif not listening.listening.done():
                listening.listening.set_result(None)
        elif event == "exit":
            found = self._instances.pop(int(message["pid"]), None)
            if found is not None and not found.exited.done():
                found.exited.set_result(int(message["status"]))

    def _on_template_exit(self, returncode: int | None) -> None:
        if not self._closed:
            logger.warning("revision %s: function template exited with %s", self.spec.revision, returncode)
        if self._started is not None and not self._started.done():
            log = "\n".join(list(self.template_log)[-20:]) or "(no output)"
            self._started.set_exception(WorkloadError(
                f"function template for revision {self.spec.revision} exited with status {returncode} "
                f"before loading {self.spec.function_target}:\n{log}"
            ))
        # Instances die with their template (PR_SET_PDEATHSIG); nobody is left to report their status.
        for instance in self._instances.values():
            if not instance.exited.done():
                instance.exited.set_result(-signal.SIGKILL)
        self._instances.clear()
        gone = WorkloadError(f"revision {self.spec.revision}: the function template exited")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)

    async def _read_log(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self.template_log.append(text)
            logger.debug("template %s: %s", self.spec.revision, text)

    def _load_error(self, trace: str) -> str:
        lines = trace.strip().splitlines()
        return (
            f"function {self.spec.function_target} in {self.spec.directory} failed to load:\n"
            + "\n".join(lines[-8:])
        )
