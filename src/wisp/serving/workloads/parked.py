"""A local-process instance started ahead of its order, up to its own command (docs/conformance.md, "Start
cost"). bwrap's sandbox and joining a cgroup of its own cost an instance 5–15 ms of start before the command
runs (a namespace to build; the kernel's cgroup v1 migration), so a revision that needs them keeps one process
parked past them: a POSIX sh inside the sandbox and the cgroup, waiting on a pipe. The order writes the port;
the sh execs the command with `PORT` set. Nothing of the user's runs before the order.

Its output goes to a file of its own until the order names the instance: that file becomes the instance's log
(a new name for the same open file), so everything the command writes lands there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from wisp.serving.workloads.cgroups import InstanceCgroup

# A line on stdin is the port; end of file (the daemon discarded it or died) exits quietly. The command gets
# /dev/null as stdin, as an instance started directly does.
_PARK = 'IFS= read -r port || exit 0; PORT=$port; export PORT; exec "$@" </dev/null'
PARKED_DIR = ".parked"  # under a revision's log directory: not an instance's log (`wisp logs` globs *.log)


def parked_argv(argv: list[str]) -> list[str]:
    """`argv` behind the wait for its port."""
    return ["/bin/sh", "-c", _PARK, "sh", *argv]


class Parked:
    """One parked process: its group leader, the file its output goes to, and its cgroup (if any)."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path, env: dict[str, str],
                 cgroup: InstanceCgroup | None) -> None:
        self.proc = proc
        self.log_path = log_path
        self.env = env  # without PORT: that comes with the order
        self.cgroup = cgroup

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def order(self, port: int, log_path: Path) -> dict[str, str] | None:
        """Run the command on `port`, its output in `log_path`; the instance's env. None, and still parked, when
        its file cannot take that name: `log_path` exists (a restarted instance appends to its log, which this
        process's file cannot), or the file system has no hard links."""
        try:
            os.link(self.log_path, log_path)
        except OSError:
            return None
        os.unlink(self.log_path)
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{port}\n".encode())
        self.proc.stdin.close()
        return {**self.env, "PORT": str(port)}

    async def discard(self) -> None:
        """Kill it, and remove its file and cgroup."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        self.log_path.unlink(missing_ok=True)
        if self.cgroup is not None:
            await self.cgroup.release()
