"""knative/serving test/conformance/runtime/cmd_args_test.go: command and args as Kubernetes joins them."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch


async def test_cmd_args(tmp_path: Path, target: Target) -> None:
    command = [*target.command, "abra"]
    args = ["cadabra", "do"]
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "cmdargs", command=command, args=args)
        assert info["host"]["args"] == command + args
