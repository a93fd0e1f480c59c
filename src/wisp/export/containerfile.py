"""The Containerfile of a build context. Both kinds install nothing at build time: `wisp build` has put the
requirements, installed for the image's Python, in `deps/`, so a build needs no network or pip in the base
image; the first step checks that the base image's Python is the one they were installed for."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

DEFAULT_BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
DEFAULT_PYTHON = "3.11"
APP_DIR = PurePosixPath("/app")
DEPS_DIR = PurePosixPath("/opt/wisp/deps")
RUNTIME_DIR = PurePosixPath("/opt/wisp/runtime")
USER = "65532"  # no root in the container; Knative's runAsNonRoot checks pass with a numeric user


def _python_check(python: str) -> str:
    major, minor = python.split(".")
    script = (f"import sys; v = '%d.%d' % sys.version_info[:2]; sys.exit(0 if v == '{python}' else "
              f"'deps/ holds packages for Python {python}; this base image has Python ' + v + "
              f"': run wisp build with --base-image naming a Python {python} image')")
    assert major.isdigit() and minor.isdigit()
    return json.dumps(["python3", "-c", script])


def _header(base_image: str, python: str) -> str:
    return (
        "# Written by `wisp export`; `wisp build` fills deps/ (the requirements, installed for Python "
        f"{python}) and builds it.\n"
        f"ARG BASE_IMAGE={base_image}\n"
        "FROM ${BASE_IMAGE}\n"
        f"RUN {_python_check(python)}\n"
        # The manifest's command may say `python`; Debian's python3 packages install only `python3`.
        'RUN command -v python >/dev/null || ln -s "$(command -v python3)" /usr/local/bin/python\n'
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\n"
        f"COPY deps/ {DEPS_DIR}/\n"
    )


def function(base_image: str, python: str, workdir: PurePosixPath, target: str, drain_seconds: int) -> str:
    """A wisp function: wisp's function runtime under uvicorn, as `wisp up` serves it."""
    return (
        _header(base_image, python)
        + f"COPY runtime/ {RUNTIME_DIR}/\n"
        + f"COPY app/ {APP_DIR}/\n"
        + f"ENV PYTHONPATH={RUNTIME_DIR}:{DEPS_DIR} FUNCTION_TARGET={target} "
        + f"WISP_DRAIN_SECONDS={drain_seconds} PORT=8080\n"
        + f"WORKDIR {APP_DIR / workdir}\n"
        + f"USER {USER}\n"
        + "EXPOSE 8080\n"
        + f"CMD {json.dumps(['python3', str(RUNTIME_DIR / 'wisp_serve.py')])}\n"
    )


def container(base_image: str, python: str, workdir: PurePosixPath, command: list[str], ships_runtime: bool) -> str:
    """A container-class directory: its command and args run in the code directory, as `wisp up` runs them."""
    path = f"{RUNTIME_DIR}:{DEPS_DIR}" if ships_runtime else str(DEPS_DIR)
    return (
        _header(base_image, python)
        + (f"COPY runtime/ {RUNTIME_DIR}/\n" if ships_runtime else "")
        + f"COPY app/ {APP_DIR}/\n"
        + f"ENV PYTHONPATH={path} PORT=8080\n"
        + f"WORKDIR {APP_DIR / workdir}\n"
        + f"USER {USER}\n"
        + "EXPOSE 8080\n"
        + (f"CMD {json.dumps(command)}\n" if command else "")
    )


def func_project(base_image: str, python: str, invoke: str) -> str:
    """A Knative Functions project: its `function` package under func-python (hypercorn), as `func deploy`'s
    image runs it."""
    return (
        _header(base_image, python)
        + f"COPY runtime/ {RUNTIME_DIR}/\n"
        + f"COPY app/ {APP_DIR}/\n"
        + f"ENV PYTHONPATH={DEPS_DIR} PORT=8080\n"
        + f"WORKDIR {APP_DIR}\n"
        + f"USER {USER}\n"
        + "EXPOSE 8080\n"
        + f"CMD {json.dumps(['python3', str(RUNTIME_DIR / 'func_serve.py'), '--invoke', invoke])}\n"
    )
