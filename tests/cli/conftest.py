from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from wisp.cli.main import make_app

from .fake_daemon import FakeDaemon, ServerThread
from .fixtures import NOW


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    fake = FakeDaemon()
    server = ServerThread(fake.app())
    fake.url = server.url
    server.start()
    try:
        yield fake
    finally:
        server.stop()


@pytest.fixture
def app() -> typer.Typer:
    return make_app(clock=lambda: NOW)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"WISP_API": None, "WISP_TOKEN": None})
