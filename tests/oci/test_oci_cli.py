"""`wisp up --container-engine`: only the engines wisp knows are accepted, before anything starts."""

from __future__ import annotations

from typer.testing import CliRunner

from wisp.cli.main import make_app


def test_an_unknown_engine_is_refused() -> None:
    result = CliRunner(env={"WISP_CONTAINER_ENGINE": None}).invoke(make_app(), ["up", "--container-engine", "rkt"])
    assert result.exit_code == 1
    assert "--container-engine must be auto, podman or docker, not 'rkt'" in result.output


def test_the_environment_variable_is_read() -> None:
    result = CliRunner(env={"WISP_CONTAINER_ENGINE": "lxc"}).invoke(make_app(), ["up"])
    assert result.exit_code == 1 and "not 'lxc'" in result.output
