"""knative/serving test/conformance/runtime/workingdir_test.go: workingDir is the process's current directory
(for a local process, an absolute workingDir is inside its sandbox)."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch


async def test_working_dir_service(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "workingdir", workingDir="/tmp")
        assert info["host"]["user"]["cwd"] == {"directory": "/tmp"}
