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


@pytest.mark.parametrize("target", ["oci"], indirect=True)
async def test_must_have_cgroup_configured(tmp_path: Path, target: Target) -> None:
    """Upstream's fixed paths, as the container sees them (the engine gives it its own cgroup view)."""
    resources = {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "125m"}}
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "cgroup", resources=resources)
        values = {c["name"]: c.get("value") for c in info["host"]["cgroups"]}
        v2 = any(m.get("path") == "/sys/fs/cgroup" and m.get("type") == "cgroup2" for m in info["host"]["mounts"])
        if v2:
            assert values["/sys/fs/cgroup/memory.max"] == str(128 * 2**20 & ~4095)
            quota, period = (values["/sys/fs/cgroup/cpu.max"] or "").split()
            assert int(quota) * 1000 // int(period) == 1000
        else:
            assert values["/sys/fs/cgroup/memory/memory.limit_in_bytes"] == str(128 * 2**20 & ~4095)
            assert values["/sys/fs/cgroup/cpu/cpu.shares"] == str(125 * 1024 // 1000)
            quota = int(values["/sys/fs/cgroup/cpu/cpu.cfs_quota_us"] or 0)
            assert quota * 1000 // int(values["/sys/fs/cgroup/cpu/cpu.cfs_period_us"] or 1) == 1000
