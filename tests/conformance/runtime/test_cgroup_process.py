"""knative/serving test/conformance/runtime/cgroup_test.go's TestMustHaveCgroupConfigured for local processes:
the same limits (CPU limit 1, memory limit 128Mi, CPU request 125m), read from the cgroup the instance is in
(/proc/self/cgroup), since without a cgroup namespace /sys/fs/cgroup shows the host's root at upstream's fixed
paths (docs/conformance.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch

CPU_LIMIT, MEMORY_LIMIT, CPU_REQUEST = 1000, 128 * 2**20, 125  # millicores, bytes, millicores


@pytest.mark.parametrize("target", ["process"], indirect=True)
async def test_must_have_cgroup_configured(tmp_path: Path, target: Target) -> None:
    resources = {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "125m"}}
    async with conformance_daemon(tmp_path, target) as h:
        own = (await serve_and_fetch(h, target, "cgroup", resources=resources))["host"]["ownCgroups"]
        if "memory.max" in own:  # cgroup v2
            assert own["memory.max"] == str(MEMORY_LIMIT & ~4095)
            quota, period = own["cpu.max"].split()
            assert int(quota) * 1000 // int(period) == CPU_LIMIT and int(own["cpu.weight"]) >= 1
        else:
            assert own["memory.limit_in_bytes"] == str(MEMORY_LIMIT & ~4095)
            assert int(own["cpu.cfs_quota_us"]) * 1000 // int(own["cpu.cfs_period_us"]) == CPU_LIMIT
            assert own["cpu.shares"] == str(CPU_REQUEST * 1024 // 1000)
