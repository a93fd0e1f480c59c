"""knative/serving test/conformance/runtime/cgroup_test.go: the cgroup files an instance sees are read-only.
OCI instances only so far: a local process sees the host's own cgroup tree (docs/conformance.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch


@pytest.mark.parametrize("target", ["oci"], indirect=True)
async def test_should_have_cgroup_read_only(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        cgroups = (await serve_and_fetch(h, target, "cgroups"))["host"]["cgroups"]
        assert cgroups and all("error" not in c for c in cgroups), cgroups
        assert [c["name"] for c in cgroups if not c["readOnly"]] == []
