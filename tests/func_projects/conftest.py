"""Knative Functions projects: copies of the vendored templates with a func.yaml, and one uv cache per session
(environments are made by uv from PyPI; the cache makes the second one of a session take well under a second)."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import wisp.api

TEMPLATES = Path(wisp.api.__file__).parent / "reference" / "func-templates"


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def uv_cache_env(uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The daemon (in this process or a child) leaves uv's cache to UV_CACHE_DIR when it is set."""
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    yield uv_cache


def func_yaml(name: str, invoke: str = "http", extra: str = "") -> str:
    head = f"""\
        specVersion: 0.36.0
        name: {name}
        runtime: python
        created: 2026-11-30T10:00:00.000000+00:00
        invoke: {invoke}
        """
    return textwrap.dedent(head) + textwrap.dedent(extra)


def project(root: Path, template: str, name: str, invoke: str = "http", extra: str = "") -> Path:
    """A copy of a vendored template as `func create -l python -t TEMPLATE NAME` writes it."""
    directory = root / name
    shutil.copytree(TEMPLATES / template, directory)
    (directory / "func.yaml").write_text(func_yaml(name, invoke, extra))
    return directory


def write_func(directory: Path, code: str) -> None:
    (directory / "function" / "func.py").write_text(textwrap.dedent(code))
