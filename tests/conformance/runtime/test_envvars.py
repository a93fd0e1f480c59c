"""knative/serving test/conformance/runtime/envvars_test.go: the runtime contract's environment variables."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.conftest import Target, conformance_daemon, revision_of, serve_and_fetch


async def test_should_env_vars(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "envvars")
        envs = info["host"]["envs"]
        revision = revision_of(h, "envvars")["metadata"]["name"]
        assert {name: envs.get(name) for name in ("K_SERVICE", "K_CONFIGURATION", "K_REVISION")} == {
            "K_SERVICE": "envvars", "K_CONFIGURATION": "envvars", "K_REVISION": revision}


async def test_must_env_vars(tmp_path: Path, target: Target) -> None:
    # Upstream declares containerPort 8801 and expects PORT=8801. On one machine instances share the host's
    # network, so wisp picks each instance's port and PORT names it (docs/conformance.md): the MUST part — PORT
    # is set and is where the instance is reached — is what is checked.
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "envvars", ports=[{"containerPort": 8801}])
        port = info["host"]["envs"]["PORT"]
        assert port.isdigit() and 0 < int(port) < 65536
        pods = [p for runner in h.daemon.dataplane.runners() for p in runner.pods]
        assert any(p.instance is not None and p.instance.port == int(port) for p in pods)
