"""`wisp build`: each build context of an export made into an image by the machine's container engine.

First the requirements are installed for the image's Python into the context's `deps/` (on this machine,
with pip, as binary wheels for Linux on this machine's architecture): the image build then needs no network
and no pip in the base image, and a context handed to CI is complete. Then podman, docker or buildah builds
it (and pushes with `--push`). Without an engine the contexts are left ready and named.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wisp.export.containerfile import DEFAULT_BASE_IMAGE, DEFAULT_PYTHON, PYTHON_MARK

ENGINES = ("podman", "docker", "buildah")
PIP_TIMEOUT_S = 900.0
BUILD_TIMEOUT_S = 900.0
# glibc versions of the manylinux wheels a Debian bookworm (glibc 2.36) or newer base image runs.
_GLIBC = ("2_17", "2_24", "2_27", "2_28", "2_31", "2_34", "2_35", "2_36")
MAX_INDEX_BYTES = 1024 * 1024


class BuildError(Exception):
    """A build that could not go on; the message names the context and the command."""


@dataclass(frozen=True)
class Context:
    name: str
    path: Path
    image: str
    workload: str
    signature: str


def contexts(out: Path) -> list[Context]:
    """The build contexts `wisp export` wrote under `out`."""
    index = out / "build" / "index.json"
    if not index.is_file():
        raise BuildError(f"{out}: no build/index.json; run `wisp export ... -o {out}` first (or the export has "
                         "no local code to build)")
    if index.stat().st_size > MAX_INDEX_BYTES:
        raise BuildError(f"{index}: larger than {MAX_INDEX_BYTES} bytes")
    try:
        raw = json.loads(index.read_text(encoding="utf-8"))
        found = [Context(str(e["name"]), out / str(e["context"]), str(e["image"]), str(e["workload"]),
                         str(e.get("signature", ""))) for e in raw]
    except (ValueError, KeyError, TypeError) as e:
        raise BuildError(f"{index}: not what wisp export writes ({e})") from None
    for ctx in found:
        if not ctx.path.resolve().is_relative_to((out / "build").resolve()) or not ctx.path.is_dir():
            raise BuildError(f"{index}: context {ctx.name} is not a directory under {out / 'build'}")
    return found


def find_engine(preferred: str | None = None) -> str | None:
    """The engine's path: `preferred` if given, else the first of podman, docker, buildah installed."""
    if preferred is not None:
        if preferred not in ENGINES:
            raise BuildError(f"--engine {preferred!r}: one of {', '.join(ENGINES)}")
        return shutil.which(preferred)
    for name in ENGINES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(argv: list[str], what: str, timeout: float, env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=dict(env) if env is not None else None)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: no result within {timeout:g}s ({' '.join(argv[:4])} ...)") from None
    except OSError as e:
        raise BuildError(f"{what}: cannot run {argv[0]}: {e}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (exit {done.returncode}): {' '.join(argv[:6])} ...\n{tail}")
    return done.stdout


def image_python(engine: str, image: str, env: Mapping[str, str] | None = None) -> str:
    """The `X.Y` of the Python in `image` (run once, without network)."""
    if Path(engine).name == "buildah":
        raise BuildError("buildah cannot run the base image to ask its Python version; pass --python X.Y")
    script = "import sys; print('%d.%d' % sys.version_info[:2])"
    out = _run([engine, "run", "--rm", "--network=none", "--entrypoint", "python3", image, "-c", script],
               f"asking {image} for its Python version", 300.0, env)
    version = out.strip().splitlines()[-1] if out.strip() else ""
    if not version.replace(".", "").isdigit():
        raise BuildError(f"{image}: python3 -c said {out.strip()!r}, not a version")
    return version


def install_deps(ctx: Context, python: str, pip_python: str = sys.executable) -> None:
    """The context's requirements, installed for Linux/`python` on this architecture, into `deps/`."""
    deps = ctx.path / "deps"
    shutil.rmtree(deps, ignore_errors=True)
    deps.mkdir()
    (ctx.path / PYTHON_MARK).write_text(f"{python}\n")
    requirement_files = [f for f in ("requirements.txt", "runtime-requirements.txt") if (ctx.path / f).is_file()]
    if not any(_has_requirements(ctx.path / f) for f in requirement_files):
        return
    arch = platform.machine()
    argv = [pip_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(deps), "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
            *[arg for glibc in _GLIBC for arg in ("--platform", f"manylinux_{glibc}_{arch}")],
            "--platform", f"manylinux2014_{arch}"]
    for f in requirement_files:
        argv += ["-r", str(ctx.path / f)]
    _run(argv, f"{ctx.name}: installing its requirements for Python {python}", PIP_TIMEOUT_S)


def _has_requirements(path: Path) -> bool:
    return any(line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())


def build_image(engine: str, ctx: Context, base_image: str, env: Mapping[str, str] | None = None) -> None:
    name = Path(engine).name
    verb = ["bud"] if name == "buildah" else ["build"]
    argv = [engine, *verb, "--tag", ctx.image, "--build-arg", f"BASE_IMAGE={base_image}",
            "--file", str(ctx.path / "Containerfile"), str(ctx.path)]
    _run(argv, f"{ctx.name}: building {ctx.image}", BUILD_TIMEOUT_S, env)


def push_image(engine: str, ctx: Context) -> None:
    _run([engine, "push", ctx.image], f"{ctx.name}: pushing {ctx.image}", BUILD_TIMEOUT_S)


def image_size(engine: str, image: str) -> int | None:
    """The image's size in bytes, as the engine reports it."""
    try:
        out = _run([engine, "image", "inspect", "--format", "{{.Size}}", image], "inspect", 60.0)
        return int(out.strip().splitlines()[-1])
    except (BuildError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class BuildOutcome:
    built: list[Context]
    engine: str | None
    python: str


def build_all(out: Path, *, base_image: str | None = None, engine_name: str | None = None,
              python: str | None = None, push: bool = False,
              say: Callable[[str], Any] = print) -> BuildOutcome:
    """Install each context's requirements, then build (and push) it if the machine has an engine."""
    found = contexts(out)
    engine = find_engine(engine_name)
    base = base_image or DEFAULT_BASE_IMAGE
    if python is None:
        python = image_python(engine, base) if (engine and base_image) else DEFAULT_PYTHON
    for ctx in found:
        say(f"{ctx.name}: installing requirements for Python {python} into {ctx.path / 'deps'}")
        install_deps(ctx, python)
    if engine is None:
        return BuildOutcome([], None, python)
    for ctx in found:
        say(f"{ctx.name}: building {ctx.image} with {Path(engine).name}")
        build_image(engine, ctx, base, os.environ)
        if push:
            say(f"{ctx.name}: pushing {ctx.image}")
            push_image(engine, ctx)
    return BuildOutcome(found, engine, python)
