"""Finding the daemon's cgroups (v1 hybrid and v2) from /proc/self/cgroup, and why limits cannot be enforced."""

from __future__ import annotations

import subprocess
from pathlib import Path

from wisp.serving.workloads.cgroups import Hierarchy, InstanceCgroup, Limits, detect, joined, unavailable

V1 = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n"


def test_v1_hybrid(tmp_path: Path) -> None:
    (tmp_path / "memory" / "process_api" / "abc").mkdir(parents=True)
    (tmp_path / "cpu").mkdir()
    found = detect(tmp_path, V1)
    assert found == Hierarchy(1, tmp_path / "memory" / "process_api" / "abc", tmp_path / "cpu")


def test_v2(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory")
    (tmp_path / "user.slice" / "me").mkdir(parents=True)
    found = detect(tmp_path, "0::/user.slice/me\n")
    assert found == Hierarchy(2, tmp_path / "user.slice" / "me", tmp_path / "user.slice" / "me")


def test_nothing_mounted(tmp_path: Path) -> None:
    assert detect(tmp_path, "0::/\n") is None


def test_why_limits_cannot_be_enforced(tmp_path: Path) -> None:
    assert unavailable(Limits(), None) is None  # nothing asked
    assert "no cgroup hierarchy" in (unavailable(Limits(memory=1), None) or "")
    assert "memory cgroup controller" in (unavailable(Limits(memory=1), Hierarchy(1, None, tmp_path)) or "")
    assert "cpu cgroup controller" in (unavailable(Limits(cpu_millis=1), Hierarchy(1, tmp_path, None)) or "")
    assert unavailable(Limits(memory=1, cpu_millis=5), Hierarchy(1, tmp_path, tmp_path)) is None


def test_the_command_joins_before_it_runs(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"
    cgroup = InstanceCgroup([tmp_path], 1)
    out = subprocess.run(joined(["sh", "-c", "echo $$"], cgroup), capture_output=True, text=True, check=True)
    assert procs.read_text().strip() == out.stdout.strip()  # the same process: it wrote itself, then exec'd
