"""Local OCI images for tests that need a container engine (podman), built from Debian packages: no registry is
reachable on these machines.

The small API other test suites use:

- `engine()` → podman's path; skips the test outside CI when podman is missing, fails in CI (DESIGN: CI
  installs podman, runc and mmdebstrap through `make test-install`).
- `containers_conf(directory)` → a `containers.conf` for these VMs (runc, cgroupfs, no default ulimits, host
  network). Tests put it in `CONTAINERS_CONF` of the processes they start, as a user of such a machine would in
  their shell; wisp itself is given no flag.
- `engine_env(conf)` → `os.environ` plus `CONTAINERS_CONF=conf`, for subprocesses.
- `base_image(env)` → `localhost/wisp-test-python:bookworm` (Debian bookworm + python3), built once per machine
  with `mmdebstrap` + `podman import`; kept in podman's storage, so later sessions reuse it.
- `build_image(tag, files, env)` → `podman build` of a tiny image `FROM` the base image; `files` maps a path in
  the build context to its text, and must include `Containerfile`.
- `remove_image(tag, env)`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

BASE_IMAGE = "localhost/wisp-test-python:bookworm"
BASE_BUILD_TIMEOUT = 900.0  # mmdebstrap downloads ~40 MB of Debian packages
BUILD_TIMEOUT = 300.0
LOCK_FILE = Path(tempfile.gettempdir()) / "wisp-test-oci-base.lock"

CONTAINERS_CONF = """\
# Settings these VMs need (DESIGN §10): crun, systemd cgroups and podman's default ulimits fail here.
[containers]
default_ulimits = []
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(message: str) -> None:
    if _in_ci():
        pytest.fail(f"{message} (CI installs it with `make test-install`)")
    pytest.skip(message)


def engine() -> str:
    """podman's path; a skip (a failure when CI=true) where it is not installed."""
    path = shutil.which("podman")
    if path is None:
        _missing("podman is not installed")
    assert path is not None
    return path


def containers_conf(directory: Path) -> Path:
    """Write the machine's containers.conf into `directory`; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "containers.conf"
    path.write_text(CONTAINERS_CONF)
    return path


def engine_env(conf: Path) -> dict[str, str]:
    """The environment for podman (and for a wisp daemon that runs it): ours plus CONTAINERS_CONF."""
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def _run(argv: list[str], env: Mapping[str, str], timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{what} failed ({result.returncode}): {' '.join(argv)}\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def image_exists(tag: str, env: Mapping[str, str]) -> bool:
    return subprocess.run([engine(), "image", "exists", tag], env=dict(env), capture_output=True,
                          timeout=60, check=False).returncode == 0


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """One build of the base image at a time on this machine (several test sessions may start together)."""
    with LOCK_FILE.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def base_image(env: Mapping[str, str]) -> str:
    """The base image's tag, built now unless podman already has it."""
    if image_exists(BASE_IMAGE, env):
        return BASE_IMAGE
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        _missing("mmdebstrap is not installed (it builds the tests' base image from Debian packages)")
    assert mmdebstrap is not None
    with _machine_lock():
        if image_exists(BASE_IMAGE, env):  # built by another session while we waited
            return BASE_IMAGE
        with tempfile.TemporaryDirectory(prefix="wisp-oci-base-") as tmp:
            tar = Path(tmp) / "base.tar"
            _run([mmdebstrap, "--quiet", "--variant=apt", "--include=python3", "bookworm", str(tar)], env,
                 BASE_BUILD_TIMEOUT, "mmdebstrap (the base image's root file system)")
            _run([engine(), "import", "--change", "CMD=/usr/bin/python3", str(tar), BASE_IMAGE], env,
                 BUILD_TIMEOUT, "podman import (the base image)")
    return BASE_IMAGE


def build_image(tag: str, files: Mapping[str, str], env: Mapping[str, str]) -> str:
    """`podman build -t tag` of a context holding `files` (path → text; `Containerfile` among them); the tag.
    The Containerfile may say `FROM {base}`: it is filled in with `base_image()`."""
    if "Containerfile" not in files:
        raise ValueError("build_image: files must include a Containerfile")
    base = base_image(env)
    with tempfile.TemporaryDirectory(prefix="wisp-oci-build-") as tmp:
        context = Path(tmp)
        for name, text in files.items():
            path = context / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{base}", base) if name == "Containerfile" else text)
        _run([engine(), "build", "--quiet", "-t", tag, "-f", str(context / "Containerfile"), str(context)], env,
             BUILD_TIMEOUT, f"podman build {tag}")
    return tag


def remove_image(tag: str, env: Mapping[str, str]) -> None:
    subprocess.run([engine(), "rmi", "--force", tag], env=dict(env), capture_output=True, timeout=60, check=False)
