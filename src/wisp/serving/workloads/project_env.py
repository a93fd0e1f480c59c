"""Per-project virtualenvs for Knative Functions projects, made with `uv` and cached by content hash.

A project's environment holds exactly what it declares (`[project].dependencies` of its pyproject.toml and
its requirements.txt) plus the func-python middleware, as the image `func deploy` builds does. It is keyed
by a hash of those files, the middleware's range and the Python version, so a project whose dependencies did
not change starts without installing anything, and one that changed gets a new environment beside the old
(the previous revision keeps its own). uv links packages from its cache, so a new environment of packages
seen before takes well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import wisp
from wisp.api.func_python import FUNC_PYTHON
from wisp.serving.workloads.types import WorkloadError

logger = logging.getLogger("wisp.workloads.project_env")

INSTALL_TIMEOUT = 600.0  # the first install of a project downloads its packages
ERROR_LINES = 30  # of uv's output, in the Revision's message
# In the daemon's state dir: the environments, and uv's package cache unless UV_CACHE_DIR names one.
ENVS_DIR, CACHE_DIR = "func-envs", "uv-cache"
_COMPLETE = ".wisp-complete"  # written last: an environment without it was interrupted and is made again
_KEY_VERSION = b"wisp-func-env-1"


def uv_binary() -> str:
    """The `uv` installed with wisp (the `uv` package on PyPI), else one on PATH."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise WorkloadError("uv is not installed: `pip install uv` (wisp installs it with itself)") from None
        return found


MACHINERY_PATH_ENV = "WISP_MACHINERY_PATH"  # tells a project's template which PYTHONPATH entries are wisp's


def machinery_path() -> list[str]:
    """Where wisp's serving code and its packages live: put on a template's PYTHONPATH so it can serve, and
    taken off again before the project's code is imported (see template.py)."""
    paths = [str(Path(wisp.__file__).resolve().parent.parent)]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return paths


def declared_files(project: Path) -> list[Path]:
    """The project's dependency declarations that exist: pyproject.toml (with a [project] table), requirements.txt."""
    found: list[Path] = []
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        try:
            with pyproject.open("rb") as stream:
                if "project" in tomllib.load(stream):
                    found.append(pyproject)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise WorkloadError(f"{project.name}/pyproject.toml cannot be read: {exc}") from None
    requirements = project / "requirements.txt"
    if requirements.is_file():
        found.append(requirements)
    return found


def env_key(project: Path, python_version: str = sys.version) -> str:
    """The content hash naming a project's environment."""
    digest = hashlib.sha256(_KEY_VERSION)
    for part in (python_version, FUNC_PYTHON):
        digest.update(part.encode() + b"\0")
    for file in declared_files(project):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


class ProjectEnvs:
    """The environments of every project, under `root` (in the state dir), made with `uv`.

    `cache_dir` is uv's package cache (None: uv's own default, or UV_CACHE_DIR)."""

    def __init__(self, root: Path, cache_dir: Path | None = None, python: str = sys.executable,
                 uv: str | None = None, timeout: float = INSTALL_TIMEOUT) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self.python = python
        self._uv = uv
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, project: Path) -> Path:
        """The Python of `project`'s environment, made first if needed; WorkloadError with uv's message."""
        key = env_key(project)
        venv = self.root / key
        python = venv / "bin" / "python"
        if (venv / _COMPLETE).is_file():
            return python
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (venv / _COMPLETE).is_file():
                return python
            if venv.exists():
                shutil.rmtree(venv)
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            logger.info("making the environment of %s with uv (%s)", project, venv)
            started = time.monotonic()
            try:
                await self._uv_run(project, "venv", "--quiet", "--python", self.python, str(venv))
                requirements = [arg for file in declared_files(project) for arg in ("-r", str(file))]
                await self._uv_run(project, "pip", "install", "--quiet", "--python", str(python),
                                   *requirements, FUNC_PYTHON)
            except BaseException:
                shutil.rmtree(venv, ignore_errors=True)
                raise
            (venv / _COMPLETE).write_text(f"{project}\n")
            logger.info("environment of %s ready in %.1fs", project, time.monotonic() - started)
        return python

    async def _uv_run(self, project: Path, *args: str) -> None:
        uv = self._uv or uv_binary()
        env = dict(os.environ)
        env["UV_PYTHON_DOWNLOADS"] = "never"  # the environment uses wisp's own Python, never a downloaded one
        env.pop("VIRTUAL_ENV", None)
        if self.cache_dir is not None:
            env["UV_CACHE_DIR"] = str(self.cache_dir)
        what = f"uv {' '.join(args[:2])}"
        try:
            proc = await asyncio.create_subprocess_exec(
                uv, *args, cwd=project, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise WorkloadError(f"cannot run {uv}: {exc}") from None
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(sys.exc_info()[1], TimeoutError):
                raise WorkloadError(f"the dependencies of {project.name} did not install within "
                                    f"{self.timeout:g}s ({what})") from None
            raise
        if proc.returncode != 0:
            lines = output.decode(errors="replace").strip().splitlines()[-ERROR_LINES:]
            raise WorkloadError(f"the dependencies of {project.name} failed to install ({what} exited with "
                                f"{proc.returncode}):\n" + "\n".join(lines))
