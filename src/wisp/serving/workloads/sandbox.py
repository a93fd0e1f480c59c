"""A local process's own mount namespace, made with bubblewrap (`bwrap`): what volumes and an absolute
workingDir need (docs/conformance.md, "The sandbox").

What it is: the instance sees the host's file system (each top-level directory bound in, writable as before), but
its own `/tmp` (an empty tmpfs), its own minimal `/dev` (null, zero, full, random, urandom, tty, ptmx, pts, shm,
fd, stdin/out/err; no console), its volumes at their mountPaths, and it starts in its workingDir. It dies with
the daemon (`--die-with-parent`). What it is not: no user, PID or network namespace, no seccomp filter — the
process runs as the daemon's user (or `runAsUser`), sees every process, shares the network and may write where
the daemon may. Only revisions that need it run in one: an ordinary local process starts as before (the sandbox
costs a few milliseconds of start, paid ahead by a parked instance: parked.py).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

# Host entries not bound into the sandbox: it gets its own.
_OWN = frozenset({"dev", "tmp", "proc"})
CHECK_TIMEOUT = 10.0


@functools.cache
def unavailable() -> str | None:
    """Why this machine cannot make a sandbox (None when it can): bwrap missing, or the kernel refusing the
    namespaces it needs (no user namespaces for an unprivileged user, a container without CAP_SYS_ADMIN)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        result = subprocess.run([bwrap, *_root_args(), "--", "true"], capture_output=True, text=True,
                                timeout=CHECK_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run: {exc}"
    if result.returncode != 0:
        return f"bwrap cannot create a mount namespace here: {result.stderr.strip()[:300]}"
    return None


def _root_args() -> list[str]:
    args: list[str] = []
    if os.geteuid() != 0:
        args.append("--unshare-user")  # an unprivileged user gets its mount namespace inside a user namespace
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.name in _OWN:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), f"/{entry.name}"]
        elif entry.is_dir():
            args += ["--bind", entry.path, f"/{entry.name}"]
        else:
            args += ["--ro-bind", entry.path, f"/{entry.name}"]
    return [*args, "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp", "--die-with-parent"]


def wrap(argv: Sequence[str], *, mounts: Sequence[str] = (), chdir: str | None = None,
         user: int | None = None, group: int | None = None, keep: Sequence[Path] = ()) -> list[str]:
    """`argv` run inside a fresh sandbox with the given bwrap mount arguments, working directory and user.
    `keep`: host paths the instance needs (its code directory) that would be hidden by the sandbox's own /tmp."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError(2, "No such file or directory", "bwrap")
    command = list(argv)
    if user is not None or group is not None:
        setpriv = shutil.which("setpriv") or "setpriv"
        ids = [f"--reuid={user if user is not None else os.geteuid()}",
               f"--regid={group if group is not None else os.getegid()}", "--clear-groups"]
        command = [setpriv, *ids, "--", *command]
    where = ["--chdir", chdir] if chdir else []
    kept: list[str] = []
    for path in keep:
        if path.is_absolute() and path.parts[1:2] == ("tmp",):
            # Made inside the sandbox's /tmp, not the host's; bwrap would make the parents 0700 (root's), which
            # a runAsUser process could not pass through.
            for parent in reversed(path.parents[:-2]):
                kept += ["--perms", "0755", "--dir", str(parent)]
            kept += ["--bind", str(path), str(path)]
    return [bwrap, *_root_args(), *kept, *mounts, *where, "--", *command]


def absolute_working_dir(working_dir: str | None, code_dir: Path | None) -> tuple[Path | None, str | None]:
    """Kubernetes' workingDir for a local process: relative to the code directory (no sandbox needed), or absolute
    (the sandbox's --chdir). Returns (cwd for the process, chdir inside the sandbox)."""
    if not working_dir:
        return code_dir, None
    if working_dir.startswith("/"):
        return code_dir, working_dir
    base = code_dir or Path(".")
    return (base / working_dir).resolve(), None


def host_side_effect(mount_path: str) -> str | None:
    """Why mounting at `mount_path` would change the host (None when it would not): bwrap creates a missing
    mount point, and inside a host directory bound into the sandbox that would create it on the host itself.
    Mount points under a top-level name the host lacks, or under /tmp and /dev, are made in the sandbox's own
    root; an existing path is mounted over inside the sandbox only."""
    parts = [p for p in mount_path.split("/") if p]
    if not parts or parts[0] in _OWN or os.path.lexists(mount_path):
        return None
    if not os.path.lexists("/" + parts[0]):
        return None
    existing = "/"
    for part in parts:
        candidate = os.path.join(existing, part)
        if not os.path.lexists(candidate):
            break
        existing = candidate
    return (f"mountPath {mount_path} does not exist on this machine, and making it would create it in the "
            f"host's {existing}: mount under a directory the host does not have (such as /{parts[-1]}), or create "
            "it on the host first")
