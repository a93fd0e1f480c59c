"""Environment values and image references as hostile as the API lets them be: what the container sees is
exactly what the Revision says (through the env file, or by name for what a line cannot hold)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wisp.net import free_port
from wisp.serving.workloads import ContainerEngines, WorkloadSpec
from wisp.serving.workloads.oci import ENV_FILE_MAX_VALUE, OciRuntime, split_env, write_env_file
from wisp.serving.workloads.oci_engine import _digest_ref, _repository

NAMES = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,30}\Z").filter(
    lambda n: n not in ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "HOME", "HOSTNAME", "TERM",
                        "container", "PATH"))
# Any text an env value can hold (no NUL, no lone surrogates), line breaks and '=' well represented.
VALUES = st.one_of(
    st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)), max_size=40),
    st.text(st.sampled_from(" =\n\r\t\"'$#\\\u00e9\u2603"), max_size=20),
    st.integers(ENV_FILE_MAX_VALUE - 2, ENV_FILE_MAX_VALUE + 2).map(lambda n: "x" * n),
)
ENVS = st.dictionaries(NAMES, VALUES, max_size=12)


def _read_env_file_like_podman(path: Path) -> dict[str, str]:
    """podman's and docker's reader: one variable a line, split at the first '='."""
    env = {}
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line:
            name, value = line.split("=", 1)
            env[name] = value
    return env


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=ENVS)
def test_the_env_file_holds_exactly_what_a_line_can(tmp_path: Path, env: dict[str, str]) -> None:
    by_file, by_name = split_env(env)
    assert {**by_file, **by_name} == env and not set(by_file) & set(by_name)
    path = tmp_path / "e.env"
    write_env_file(path, by_file)
    assert _read_env_file_like_podman(path) == by_file
    assert path.stat().st_mode & 0o777 == 0o600
    assert all("\n" in v or "\r" in v or len(v) > ENV_FILE_MAX_VALUE for v in by_name.values())


def test_digest_of_a_reference() -> None:
    assert _repository("localhost:5000/app:1") == "localhost:5000/app"
    assert _repository("localhost:5000/app") == "localhost:5000/app"
    assert _repository("app@sha256:ab") == "app"
    digests = ["docker.io/library/other@sha256:1", "docker.io/library/nginx@sha256:2"]
    assert _digest_ref("nginx:1.27", digests) == "docker.io/library/nginx@sha256:2"
    assert _digest_ref("ghcr.io/x/y@sha256:3", digests) == "ghcr.io/x/y@sha256:3"
    assert _digest_ref("localhost/app:1", []) is None


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=ENVS)
@example(env={"PEM": "-----BEGIN-----\nabc\r\n-----END-----\n", "EQ": "a=b=c", "SPACES": "  x  ", "EMPTY": "",
              "LONG": "y" * (ENV_FILE_MAX_VALUE + 1), "QUOTES": "\"'$HOME#"})
def test_a_container_sees_exactly_the_revisions_env(tmp_path: Path, server_image: str, oci_env: dict[str, str],
                                                    env: dict[str, str]) -> None:
    async def run() -> dict[str, str]:
        engines = ContainerEngines(tmp_path / "state", "auto", oci_env)
        spec = WorkloadSpec(revision="env-00001", namespace="default", workload_class="container", directory=None,
                            image=server_image, env=env, timeout_seconds=5)
        runtime = OciRuntime(spec, engines)
        await runtime.start()
        instance = await runtime.spawn("env-00001-deployment-h1p0t", free_port(), tmp_path / "logs" / "env.log")
        try:
            await instance.wait_ready(30)
            async with httpx.AsyncClient(timeout=10) as client:
                seen: dict[str, str] = (await client.get(f"http://127.0.0.1:{instance.port}/")).json()["env"]
            return seen
        finally:
            instance.kill()
            await instance.exited

    seen = asyncio.run(run())
    assert {key: seen.get(key) for key in env} == env


def test_the_engine_runs_with_the_users_environment_but_not_wisps_token() -> None:
    """What made `podman run` work for the user (CONTAINERS_CONF, ...) reaches the engine; the API token does not
    (an engine may pass its environment on to containers: containers.conf `env_host`)."""
    user = {"CONTAINERS_CONF": "/home/u/containers.conf", "DOCKER_HOST": "unix:///run/user/1000/podman.sock",
            "XDG_RUNTIME_DIR": "/run/user/1000", "HTTPS_PROXY": "http://proxy:3128", "WISP_TOKEN": "t0ken"}
    engines = ContainerEngines(Path("/nonexistent"), "auto", user)
    assert engines.environ == {k: v for k, v in user.items() if k != "WISP_TOKEN"}
