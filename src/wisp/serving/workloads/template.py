"""The per-revision template process of a function (architecture.md: runtime contract, machine facts).

Run as `python -m wisp.serving.workloads.template --target main:handle --drain 300` with cwd = the code
directory. It imports the user's function and the serving stack once, then waits for fork orders on stdin
without starting threads or an event loop (fork is only safe then). Each order forks an instance that
serves the function on 127.0.0.1:PORT; the template reaps instances and reports each exit at once.

Wire protocol, one JSON object per line:
  stdin  (orders):  {"op": "fork", "name": ..., "port": ..., "log": ...}
  stdout (replies): {"ev": "ready", "signature": ...} | {"ev": "error", "message": ...}
                    {"ev": "forked", "name": ..., "pid": ...} | {"ev": "exit", "pid": ..., "status": ...}
                    {"ev": "listening", "pid": ...}  (written by the instance itself; lines are
                    shorter than PIPE_BUF, so writes from both processes never interleave)
The user's own prints go to stderr, so they cannot corrupt the replies.

A fork order is served by a *spare*: a child forked in advance (shortly after the previous order, when the
template is idle), which has already done what does not depend on the order (dropped the template's
signal handling, asked to die with it, created its event loop, run the serving plumbing once on a
throwaway app — never the user's code) and blocks on a pipe. The order is written
to that pipe and the spare becomes the instance, so a scale from zero does not wait for fork() and that
setup. The daemon never hears of a spare until it is handed an order; it dies with the template.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib
import io
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Literal

import uvicorn
from starlette.concurrency import run_in_threadpool

import wisp
from wisp.serving.workloads.function_app import build_app
from wisp.serving.workloads.project_env import MACHINERY_PATH_ENV
from wisp.serving.workloads.signatures import TargetError, detect_signature, load_target

_PR_SET_PDEATHSIG = 1


class _InstanceServer(uvicorn.Server):
    """uvicorn's server, except that it reports when it listens, and SIGTERM ends in a clean exit
    instead of re-raising the signal."""

    def __init__(self, config: uvicorn.Config, notify_fd: int) -> None:
        super().__init__(config)
        self.notify_fd = notify_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            # Tells the daemon to probe now rather than at its next period; then let go of the pipe so
            # the daemon sees EOF exactly when the template itself dies.
            with contextlib.suppress(OSError):
                _reply(self.notify_fd, {"ev": "listening", "pid": os.getpid()})
            os.close(self.notify_fd)
            self.notify_fd = -1

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class Template:
    """Holds what every instance shares (the loaded uvicorn config) and answers fork orders."""

    def __init__(self, config: uvicorn.Config, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
                 reply_fd: int) -> None:
        self.config = config
        self.loop_factory = loop_factory
        self.reply_fd = reply_fd
        self.pid = os.getpid()
        self.wake_r, self.wake_w = os.pipe()
        self.spare: tuple[int, int] | None = None  # (pid, write end of its order pipe)
        self.spare_due: float | None = 0.0  # when to fork the next spare (monotonic); None = have one

    def reply(self, message: dict[str, Any]) -> None:
        _reply(self.reply_fd, message)

    def serve_orders(self) -> None:
        """Wait for orders and child exits with select(); returns when the daemon closes stdin."""
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # the wakeup fd is what wakes select()
        buffer = b""
        while True:
            if self.spare_due is not None and time.monotonic() >= self.spare_due:
                self.spare = self.fork_spare()
                self.spare_due = None
            wait = None if self.spare_due is None else max(0.0, self.spare_due - time.monotonic())
            readable, _, _ = select.select([0, self.wake_r], [], [], wait)
            if self.wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 4096)
                self.reap()
            if 0 in readable:
                data = os.read(0, 65536)
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self.order(json.loads(line))

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and pid == self.spare[0]:  # the daemon never heard of it
                os.close(self.spare[1])
                self.spare, self.spare_due = None, time.monotonic() + SPARE_DELAY
                continue
            self.reply({"ev": "exit", "pid": pid, "status": os.waitstatus_to_exitcode(status)})

    def order(self, message: dict[str, Any]) -> None:
        if message.get("op") != "fork":
            print(f"wisp template: unknown order {message!r}", file=sys.stderr)
            return
        order = {"name": str(message["name"]), "port": int(message["port"]), "log": str(message["log"])}
        pid = self.hand_to_spare(order)
        if pid is None:
            pid = self.fork_child(lambda: self.instance_main(order, None))
        self.reply({"ev": "forked", "name": order["name"], "pid": pid})
        if self.spare is None:
            # Not at once: the instance just started needs the CPU more than the next spare does.
            self.spare_due = time.monotonic() + SPARE_DELAY

    def hand_to_spare(self, order: dict[str, Any]) -> int | None:
        """Give the order to the waiting spare; its pid, or None when there is no live spare."""
        if self.spare is None:
            return None
        (pid, order_w), self.spare = self.spare, None
        try:
            os.write(order_w, (json.dumps(order) + "\n").encode())  # < PIPE_BUF: one atomic write
        except OSError:  # it died; its exit is reported like any unknown child's and ignored
            return None
        finally:
            os.close(order_w)
        return pid

    def fork_spare(self) -> tuple[int, int]:
        order_r, order_w = os.pipe()
        pid = self.fork_child(lambda: self.spare_main(order_r, order_w))
        os.close(order_r)
        return pid, order_w

    def fork_child(self, main: Callable[[], int]) -> int:
        # Anything still buffered would be written twice, once by each process.
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = main()
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        return pid

    def spare_main(self, order_r: int, order_w: int) -> int:
        """Runs in a spare: get ready for any order, wait for one, then become that instance."""
        os.close(order_w)
        loop = self.detach()
        if loop is None:
            return 1
        loop.run_until_complete(_warm_up())
        with os.fdopen(order_r, "rb") as orders:
            line = orders.readline()
        if not line:  # the template closed the pipe without an order
            loop.close()
            return 0
        return self.instance_main(json.loads(line), loop)

    def detach(self) -> asyncio.AbstractEventLoop | None:
        """The order-independent part of becoming an instance; None if the template is already gone."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() != self.pid:
            return None  # the template died between fork and prctl
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        return self.loop_factory() if self.loop_factory is not None else asyncio.new_event_loop()

    def instance_main(self, order: dict[str, Any], loop: asyncio.AbstractEventLoop | None) -> int:
        """Runs in the child: become an instance serving on 127.0.0.1:port (`loop` given by a spare)."""
        if loop is None:
            loop = self.detach()
            if loop is None:
                return 1
        name, port = str(order["name"]), int(order["port"])
        log_fd = os.open(str(order["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(line_buffering=True)
        os.environ["PORT"] = str(port)
        os.environ.setdefault("K_POD_NAME", name)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        # Not listening yet: uvicorn listens once the app is ready, so a TCP probe means "serving".
        server = _InstanceServer(self.config, self.reply_fd)
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            runner.run(server.serve(sockets=[sock]))
        return 0


# Modules an instance would otherwise import on its first request (anyio loads its asyncio backend lazily,
# on the first thread-pool call or task group): ~15 ms of a cold start, paid once here. Importing them
# starts no thread, so forking stays safe.
PRELOAD = ("anyio._backends._asyncio",)
# How long after handing out its spare the template forks the next one.
SPARE_DELAY = 0.1


def _preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


_WARM_UP_SCOPE: dict[str, Any] = {
    "type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
    "headers": [(b"host", b"warm-up")], "http_version": "1.1", "scheme": "http",
    "server": ("127.0.0.1", 0), "client": ("127.0.0.1", 0),
}


async def _warm_up() -> None:
    """Run the serving plumbing once in a spare, never the user's code: anyio's thread pool and a request
    through a throwaway function app, so the first real request does not pay for them (~1-2 ms)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    await run_in_threadpool(lambda: None)
    await build_app(lambda request: "", "http")(dict(_WARM_UP_SCOPE), receive, send)


def _reply(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _user_traceback(exc: BaseException) -> str:
    """The traceback of a failed load without the frames of importlib and of wisp itself: the user's code."""
    skipped = tuple(os.path.dirname(os.path.abspath(str(module.__file__))) + os.sep for module in (importlib, wisp))
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if not frame.filename.startswith("<frozen ") and not os.path.abspath(frame.filename).startswith(skipped)]
    shown = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    return "".join([*shown, *traceback.format_exception_only(type(exc), exc)])


def _user_frame(exc: BaseException, root: str) -> str | None:
    """The file of the user's code where loading failed, relative to the code directory (for a short reason
    that names no path outside it): the innermost traceback frame under `root`, or a SyntaxError's file."""
    candidates = [frame.filename for frame in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        candidates.append(exc.filename)
    for filename in reversed(candidates):
        path = os.path.abspath(filename)
        if path.startswith(root.rstrip(os.sep) + os.sep):
            return os.path.relpath(path, root)
    return None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the template dies, so no instance outlives its template."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wisp.serving.workloads.template")
    parser.add_argument("--target", default="main:handle")
    parser.add_argument("--drain", type=float, default=300.0, help="graceful shutdown budget in seconds")
    parser.add_argument("--knative-func", choices=("http", "cloudevent"), default=None,
                        help="serve a Knative Functions project (its `function` package) under func-python")
    args = parser.parse_args(argv)

    reply_fd = os.dup(1)
    os.dup2(2, 1)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        if args.knative_func is not None:
            app, signature = _knative_function(args.knative_func), f"func-python {args.knative_func}"
            lifespan: Literal["auto", "on", "off"] = "on"
        else:
            target = load_target(args.target)
            signature = detect_signature(target)
            app, lifespan = build_app(target, signature), "auto" if signature == "asgi" else "off"
        config = uvicorn.Config(
            app,
            lifespan=lifespan,
            access_log=False,
            timeout_graceful_shutdown=max(1, round(args.drain)),
            log_level="info",
        )
        config.load()
        loop_factory = config.get_loop_factory()
        _preload()
    except BaseException as exc:
        _reply(reply_fd, {"ev": "error", "message": _user_traceback(exc), "type": type(exc).__name__,
                          "where": _user_frame(exc, cwd)})
        return 1
    if threading.active_count() > 1:
        print(
            f"wisp template: {'the function package' if args.knative_func else args.target} started "
            f"{threading.active_count() - 1} thread(s) at import; "
            "forking with threads is unsafe — start them in the function instead",
            file=sys.stderr,
        )
    template = Template(config, loop_factory, reply_fd)
    template.reply({"ev": "ready", "signature": signature})
    template.serve_orders()
    return 0


def _knative_function(invoke: str) -> Any:
    """A Knative Functions project's `function` package under the func-python middleware, as the image
    `func deploy` builds serves it: `new()` (or a module-level `handle`) wrapped in func-python's ASGI app,
    whose lifespan calls `start(cfg)` and `stop()` in each instance and which answers /health/*.

    The template runs in the project's own environment with wisp's serving code on PYTHONPATH: that code is
    loaded first (a throwaway uvicorn config imports the server's modules), then PYTHONPATH is taken off
    sys.path and out of the environment (the entries WISP_MACHINERY_PATH names), so the project imports only
    what its environment holds. `new()` runs here, once: each instance is a fork of the object it made."""
    _preload()
    machinery = uvicorn.Config(_no_app, lifespan="on")
    machinery.load()
    machinery.get_loop_factory()  # uvloop, when installed: imported now, while wisp's packages are on the path
    hidden = set(filter(None, os.environ.pop(MACHINERY_PATH_ENV, "").split(os.pathsep)))
    sys.path[:] = [p for p in sys.path if p not in hidden]
    rest = [p for p in os.environ.pop("PYTHONPATH", "").split(os.pathsep) if p and p not in hidden]
    if rest:  # the revision's own PYTHONPATH, for what the function starts
        os.environ["PYTHONPATH"] = os.pathsep.join(rest)
    function = importlib.import_module("function")
    middleware = importlib.import_module("func_python.http" if invoke == "http" else "func_python.cloudevent")
    if callable(getattr(function, "new", None)):
        instance = function.new()
    elif callable(getattr(function, "handle", None)):
        instance = middleware.DefaultFunction(function.handle)
    else:
        raise TargetError("the function package exports neither new nor handle (function/__init__.py must "
                          "import one of them)")
    return middleware.ASGIApplication(instance)


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    """Only loaded, never called: makes uvicorn import its server modules before the project's path is set."""


if __name__ == "__main__":
    sys.exit(main())
