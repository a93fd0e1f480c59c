"""knative/serving test/conformance/runtime/sysctl_test.go: /proc/sys is a read-only proc mount. OCI instances
only: a local process sees the host's own /proc (docs/conformance.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch


@pytest.mark.parametrize("target", ["oci"], indirect=True)
async def test_should_have_sysctl_read_only(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        mounts = (await serve_and_fetch(h, target, "sysctl"))["host"]["mounts"]
        assert all("error" not in m for m in mounts), mounts
        sys_mounts = [m for m in mounts if m["path"] == "/proc/sys"]
        assert sys_mounts, mounts
        for mount in sys_mounts:
            assert (mount["type"], mount["device"]) == ("proc", "proc") and "ro" in mount["options"], mount
