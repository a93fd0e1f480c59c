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
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from wisp.serving.workloads.backoff import Backoff
from wisp.serving.workloads.container import run_probe_command
from wisp.serving.workloads.probe import wait_ready
from wisp.serving.workloads.project_env import MACHINERY_PATH_ENV, ProjectEnvs, machinery_path
from wisp.serving.workloads.stopping import terminate_then_kill
from wisp.serving.workloads.types import WorkloadError, WorkloadSpec

logger = logging.getLogger("wisp.workloads.function")

START_TIMEOUT = 60.0  # importing a user's module (and its dependencies) can be slow
FORK_TIMEOUT = 10.0
STOP_GRACE = 5.0
TEMPLATE_LOG_LINES = 200
FUNC_YAML = "func.yaml"  # a directory holding one is a Knative Functions project (wisp.api.func_project)
LOAD_ERROR_LINES = 40  # of the user's traceback (the template leaves out importlib's and wisp's frames)


class _TemplateGone(WorkloadError):
    """The template died while it had a fork order."""


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
                         wake=self.listening, instance=self)

    async def run_command(self, command: Sequence[str], timeout: float) -> int:
        """An exec probe's command, in the function's directory with the instance's environment."""
        env = {**self.spec.env, "PORT": str(self.port)}
        env.setdefault("PATH", os.environ.get("PATH", os.defpath))
        return await run_probe_command(command, timeout, self.spec.directory, env)

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
    """One template process per revision; `spawn` asks it to fork an instance.

    The template is supervised: when it dies (its instances die with it), it is started again after a
    `Backoff` delay. A `spawn` while a restart is under way waits for it; during a backoff wait after a failed
    restart it fails at once with the reason, so the revision reports it and held requests are answered."""

    def __init__(self, spec: WorkloadSpec, python: str = sys.executable, backoff: Backoff | None = None,
                 now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 project_envs: ProjectEnvs | None = None) -> None:
        self.spec = spec
        self.python = python
        # A Knative Functions project (its directory holds func.yaml) runs in its own environment under
        # func-python: `invoke` (http | cloudevent) once start() has read func.yaml, else None.
        self.project_envs = project_envs
        self.invoke: str | None = None
        self.target = spec.function_target  # what load errors name
        self.signature: str | None = None
        self.template_log: collections.deque[str] = collections.deque(maxlen=TEMPLATE_LOG_LINES)
        self.restarts = 0
        self.backoff = backoff or Backoff()
        self._now = now
        self._sleep = sleep
        self._proc: asyncio.subprocess.Process | None = None
        # The template that forks: resolved once it has loaded the function; failed with the reason while it
        # cannot (a restart failed and the next is waiting out its backoff).
        self._ready: asyncio.Future[asyncio.subprocess.Process] | None = None
        self._replies: asyncio.Task[None] | None = None  # the current template's reply reader
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[FunctionInstance]] = {}
        self._spawning: dict[str, tuple[int, Path]] = {}
        self._instances: dict[int, FunctionInstance] = {}
        self._early_listening: set[int] = set()
        self._closed = False

    @property
    def instances(self) -> list[FunctionInstance]:
        return list(self._instances.values())

    @property
    def template_pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

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
        if (spec.directory / FUNC_YAML).is_file():
            await self._prepare_project(spec.directory)
        try:
            proc = await self._load()
        except BaseException:
            await self.stop()
            raise
        self._ready = asyncio.get_running_loop().create_future()
        self._ready.set_result(proc)
        self._supervisor = asyncio.create_task(self._supervise(proc), name=f"template-supervisor-{spec.revision}")

    async def _prepare_project(self, directory: Path) -> None:
        """Read func.yaml's `invoke` and make (or find) the project's environment: the template runs in it."""
        # Here, not at the top: the template process imports this module, and what it loads the function
        # would see as loaded (func.yaml's schema checker, YAML).
        from wisp.api import func_project
        from wisp.api.errors import ManifestError

        try:
            doc = func_project.read(directory)
        except ManifestError as exc:
            raise WorkloadError(f"function revision {self.spec.revision}: {exc}") from None
        if self.project_envs is None:
            raise WorkloadError(f"function revision {self.spec.revision}: {directory} is a Knative Functions "
                                "project, and this runtime has no place for its environment")
        self.invoke = func_project.invoke(doc)
        self.target = f"package `function` of {directory.name} (func-python {self.invoke})"
        self.python = str(await self.project_envs.ensure(directory))

    async def spawn(self, name: str, port: int, log_path: Path) -> FunctionInstance:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return await self._fork(await self._template(), name, port, log_path)
        except _TemplateGone:
            # It died under the order (a kill just now): ask the template that replaces it.
            return await self._fork(await self._template(), name, port, log_path)

    async def _fork(self, proc: asyncio.subprocess.Process, name: str, port: int, log_path: Path) -> FunctionInstance:
        assert proc.stdin is not None
        future: asyncio.Future[FunctionInstance] = asyncio.get_running_loop().create_future()
        self._pending[name] = future
        self._spawning[name] = (port, log_path)
        order = {"op": "fork", "name": name, "port": port, "log": str(log_path)}
        try:
            proc.stdin.write((json.dumps(order) + "\n").encode())
            await proc.stdin.drain()
            return await asyncio.wait_for(future, FORK_TIMEOUT)
        except ConnectionError as e:
            raise _TemplateGone(f"revision {self.spec.revision}: could not fork instance {name}: {e!r}") from None
        except TimeoutError:
            raise WorkloadError(
                f"revision {self.spec.revision}: could not fork instance {name} within {FORK_TIMEOUT:g}s"
            ) from None
        finally:
            self._pending.pop(name, None)
            self._spawning.pop(name, None)

    async def stop(self) -> None:
        """Kill instances still running (terminate them first to drain), then end the template."""
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()
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

    # -- the template process --------------------------------------------------------------------
    async def _template(self) -> asyncio.subprocess.Process:
        """A live template to fork from, waiting (bounded) for one being restarted."""
        deadline = time.monotonic() + START_TIMEOUT
        while not self._closed and self._ready is not None:
            ready = self._ready
            if ready.done():
                # The usual case, taken without awaiting: wait_for() would yield to the loop even for a done
                # future, and a scale from zero would then write its fork order only after whatever else is
                # ready to run (the status update its own scale-up scheduled): ~1 ms of every cold start.
                proc = ready.result()  # a failed restart's reason, as awaiting it would raise
            else:
                try:
                    # Shielded: one spawn giving up must not cancel the template's readiness for the others.
                    proc = await asyncio.wait_for(asyncio.shield(ready), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    raise WorkloadError(f"revision {self.spec.revision}: the function template did not come "
                                        f"back within {START_TIMEOUT:g}s") from None
            if proc.returncode is None and proc.stdin is not None and not proc.stdin.is_closing():
                return proc
            replies = self._replies
            if ready is self._ready and proc is self._proc and replies is not None and not replies.done():
                # Dead, but its exit is not processed yet: once it is, `_ready` stands for the next template.
                await asyncio.shield(replies)
            if ready is self._ready:
                break
        raise WorkloadError(f"revision {self.spec.revision}: the function template is not running")

    async def _load(self) -> asyncio.subprocess.Process:
        """Start a template and wait until it has loaded the function; WorkloadError (it is gone) if it cannot."""
        spec = self.spec
        assert spec.directory is not None
        env = dict(spec.env)
        env.setdefault("PATH", os.environ.get("PATH", os.defpath))
        order = ["--target", spec.function_target, "--drain", str(spec.timeout_seconds)]
        if self.invoke is None:
            env["FUNCTION_TARGET"] = spec.function_target
        else:
            # wisp's serving code for the template, taken off again before the project is imported (the
            # template is told which entries are wisp's; a PYTHONPATH the revision has stays).
            machinery = os.pathsep.join(machinery_path())
            env[MACHINERY_PATH_ENV] = machinery
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [machinery, env.get("PYTHONPATH", "")]))
            order += ["--knative-func", self.invoke]
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        started.add_done_callback(_retrieved)  # a load abandoned by `stop` fails it with nobody left to look
        try:
            proc = await asyncio.create_subprocess_exec(
                self.python, "-m", "wisp.serving.workloads.template", *order,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                cwd=spec.directory, env=env, start_new_session=True,
            )
        except OSError as e:
            raise WorkloadError(f"function revision {spec.revision}: cannot start {self.python}: {e}") from None
        self._proc = proc
        self._replies = asyncio.create_task(self._read_replies(proc, started), name=f"template-replies-{spec.revision}")
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks += [self._replies, asyncio.create_task(self._read_log(proc), name=f"template-log-{spec.revision}")]
        try:
            self.signature = await asyncio.wait_for(asyncio.shield(started), START_TIMEOUT)
        except BaseException as e:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            if isinstance(e, TimeoutError):
                raise WorkloadError(
                    f"function {self.target} did not load within {START_TIMEOUT:g}s (in {spec.directory})"
                ) from None
            raise
        logger.info("revision %s: template pid %d ready (%s)", spec.revision, proc.pid, self.signature)
        return proc

    async def _supervise(self, proc: asyncio.subprocess.Process) -> None:
        """Restart the template whenever it dies, until `stop`."""
        loop = asyncio.get_running_loop()
        self.backoff.started(self._now())
        failed: WorkloadError | None = None  # why the last restart failed
        while True:
            assert self._replies is not None
            # Ends once the template has exited and its instances are accounted for; shielded, since `stop`
            # cancels this task and the reader must still report the exits.
            await asyncio.shield(self._replies)
            if self._closed:
                return
            status = proc.returncode
            delay = self.backoff.next_delay(self._now())
            self.restarts += 1
            logger.warning("revision %s: function template (pid %d) exited with status %s; restart %d in %gs",
                           self.spec.revision, proc.pid, status, self.restarts, delay)
            if delay > 0:
                why = str(failed) if failed is not None else (
                    f"the function template of revision {self.spec.revision} exited with status {status}\n"
                    f"{self._template_tail()}")
                self._fail_ready(WorkloadError(f"{why}\n(restart {self.restarts} in {delay:g}s)"))
                await self._sleep(delay)
            if self._ready is None or self._ready.done():
                self._ready = loop.create_future()
            try:
                proc = await self._load()
            except WorkloadError as exc:
                logger.warning("revision %s: function template restart failed: %s", self.spec.revision, exc)
                self._fail_ready(exc)
                failed = exc
                assert self._proc is not None
                proc = self._proc  # the failed one (or, if none could be started, the last): wait for its end
                continue
            failed = None
            self.backoff.started(self._now())
            if not self._ready.done():
                self._ready.set_result(proc)

    def _fail_ready(self, error: WorkloadError) -> None:
        """Spawns waiting for the template get `error`, and so do new ones until the next attempt starts."""
        if self._ready is None or self._ready.done():
            self._ready = asyncio.get_running_loop().create_future()
        self._ready.set_exception(error)
        _retrieved(self._ready)  # nobody may be waiting, and that is not worth a warning

    def _template_tail(self) -> str:
        return "\n".join(list(self.template_log)[-20:]) or "(no output)"

    async def _read_replies(self, proc: asyncio.subprocess.Process, started: asyncio.Future[str]) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                logger.warning("revision %s: bad reply from template: %r", self.spec.revision, line)
                continue
            self._on_reply(message, started)
        await proc.wait()
        self._on_template_exit(proc.returncode, started)

    def _on_reply(self, message: dict[str, Any], started: asyncio.Future[str]) -> None:
        event = message.get("ev")
        if event == "ready" and not started.done():
            started.set_result(str(message.get("signature")))
        elif event == "error" and not started.done():
            started.set_exception(WorkloadError(self._load_error(message)))
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

    def _on_template_exit(self, returncode: int | None, started: asyncio.Future[str]) -> None:
        if not self._closed:
            logger.warning("revision %s: function template exited with %s", self.spec.revision, returncode)
        if not started.done():
            started.set_exception(WorkloadError(
                f"the function template of revision {self.spec.revision} exited with status {returncode} "
                f"before loading {self.target}\n{self._template_tail()}"
            ))
        ready = self._ready
        if not self._closed and ready is not None and ready.done() and not ready.cancelled() \
                and ready.exception() is None:
            # A template that served has died: spawns from now on wait for its restart.
            self._ready = asyncio.get_running_loop().create_future()
        # Instances die with their template (PR_SET_PDEATHSIG); nobody is left to report their status.
        for instance in self._instances.values():
            if not instance.exited.done():
                instance.exited.set_result(-signal.SIGKILL)
        self._instances.clear()
        self._early_listening.clear()
        gone = _TemplateGone(f"revision {self.spec.revision}: the function template exited")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)

    async def _read_log(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self.template_log.append(text)
            logger.debug("template %s: %s", self.spec.revision, text)

    def _load_error(self, message: dict[str, Any]) -> str:
        """First line: what failed, naming no path outside the code (clients may see it); then the traceback."""
        kind = str(message.get("type") or "error")
        where = message.get("where")
        lines = str(message.get("message", "")).strip().splitlines()
        return (
            f"function {self.target} failed to load: {kind}{f' in {where}' if where else ''}\n"
            + "\n".join(lines[-LOAD_ERROR_LINES:])
        )


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (asyncio warns about unseen ones when they are collected)."""
    if future.done() and not future.cancelled():
        future.exception()
