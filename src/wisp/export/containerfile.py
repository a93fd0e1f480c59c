"""The Containerfile of a build context. None installs anything at build time: `wisp build` has put the
requirements, installed for the image's Python, in `deps/`, so a build needs no network or pip in the base
image; the first step checks that the base image's Python is the one they were installed for."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

DEFAULT_BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
DEFAULT_PYTHON = "3.11"  # the default base image's
APP_DIR = PurePosixPath("/app")
DEPS_DIR = PurePosixPath("/opt/wisp/deps")
RUNTIME_DIR = PurePosixPath("/opt/wisp/runtime")
USER = "65532"  # no root in the container; Knative's runAsNonRoot checks pass with a numeric user


PYTHON_MARK = "deps/.wisp-python"  # written by `wisp build`: the Python X.Y the packages in deps/ are for

# The first step after deps/ is in: it was filled (by `wisp build`) for this base image's Python.
_CHECK = (
    "import os, sys; p = '/opt/wisp/" + PYTHON_MARK + "'; "
    "want = open(p).read().strip() if os.path.exists(p) else None; have = '%d.%d' % sys.version_info[:2]; "
    "sys.exit('deps/ is empty: run wisp build on the export, which installs the requirements there' "
    "if want is None else 0 if want == have else 'deps/ holds packages for Python ' + want + "
    "'; this base image has Python ' + have + ': give wisp build --base-image a Python ' + want + "
    "' image, or --python ' + have)"
)


def _header(base_image: str) -> str:
    return (
        "# Written by `wisp export`; `wisp build` fills deps/ (the requirements, installed for the base image's "
        "Python) and builds it.\n"
        f"ARG BASE_IMAGE={base_image}\n"
        "FROM ${BASE_IMAGE}\n"
        f"COPY deps/ {DEPS_DIR}/\n"
        f"RUN {json.dumps(['python3', '-c', _CHECK])}\n"
        # The manifest's command may say `python`; Debian's python3 packages install only `python3`.
        'RUN command -v python >/dev/null || ln -s "$(command -v python3)" /usr/local/bin/python\n'
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\n"
    )


def function(base_image: str, workdir: PurePosixPath, target: str, drain_seconds: int) -> str:
    """A wisp function: wisp's function runtime under uvicorn, as `wisp up` serves it."""
    return (
        _header(base_image)
        + f"COPY runtime/ {RUNTIME_DIR}/\n"
        + f"COPY app/ {APP_DIR}/\n"
        + f"ENV PYTHONPATH={RUNTIME_DIR}:{DEPS_DIR} FUNCTION_TARGET={target} "
        + f"WISP_DRAIN_SECONDS={drain_seconds} PORT=8080\n"
        + f"WORKDIR {APP_DIR / workdir}\n"
        + f"USER {USER}\n"
        + "EXPOSE 8080\n"
        + f"CMD {json.dumps(['python3', str(RUNTIME_DIR / 'wisp_serve.py')])}\n"
    )


def container(base_image: str, workdir: PurePosixPath, command: list[str], ships_runtime: bool) -> str:
    """A container-class directory: its command and args run in the code directory, as `wisp up` runs them."""
    path = f"{RUNTIME_DIR}:{DEPS_DIR}" if ships_runtime else str(DEPS_DIR)
    return (
        _header(base_image)
        + (f"COPY runtime/ {RUNTIME_DIR}/\n" if ships_runtime else "")
        + f"COPY app/ {APP_DIR}/\n"
        + f"ENV PYTHONPATH={path} PORT=8080\n"
        + f"WORKDIR {APP_DIR / workdir}\n"
        + f"USER {USER}\n"
        + "EXPOSE 8080\n"
        + (f"CMD {json.dumps(command)}\n" if command else "")
    )


def func_project(base_image: str, invoke: str) -> str:
    """A Knative Functions project: its `function` package under func-python (hypercorn), as `func deploy`'s
    image runs it."""
    return (
        _header(base_image)
        + f"COPY runtime/ {RUNTIME_DIR}/\n"
        + f"COPY app/ {APP_DIR}/\n"
        + f"ENV PYTHONPATH={DEPS_DIR} PORT=8080\n"
        + f"WORKDIR {APP_DIR}\n"
        + f"USER {USER}\n"
        + "EXPOSE 8080\n"
        + f"CMD {json.dumps(['python3', str(RUNTIME_DIR / 'func_serve.py'), '--invoke', invoke])}\n"
    )
