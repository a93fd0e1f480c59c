"""knative/serving test/conformance/runtime/file_descriptor_test.go: stdin is at EOF."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch


async def test_should_have_stdin_eof(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "stdin")
        assert info["host"]["stdin"] == {"eof": True}
