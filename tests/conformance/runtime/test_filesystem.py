"""knative/serving test/conformance/runtime/filesystem_test.go: the files the runtime contract says MUST and
SHOULD be there (test/types/runtime.go's MustFiles and ShouldFiles), with their kinds, links and modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch

# path → expected (is_dir, symlink source, permission pattern with '*' = any, error)
MUST_FILES: dict[str, dict[str, Any]] = {
    "/dev/fd": {"isDir": True, "sourceFile": "/proc/self/fd"},
    "/dev/full": {"isDir": False}, "/dev/null": {"isDir": False}, "/dev/ptmx": {"isDir": False},
    "/dev/random": {"isDir": False},
    "/dev/stdin": {"isDir": False, "sourceFile": "/proc/self/fd/0"},
    "/dev/stdout": {"isDir": False, "sourceFile": "/proc/self/fd/1"},
    "/dev/stderr": {"isDir": False, "sourceFile": "/proc/self/fd/2"},
    "/dev/tty": {"isDir": False}, "/dev/urandom": {"isDir": False}, "/dev/zero": {"isDir": False},
    "/proc/self/fd": {"isDir": True}, "/proc/self/fd/0": {"isDir": False}, "/proc/self/fd/1": {"isDir": False},
    "/proc/self/fd/2": {"isDir": False},
    "/tmp": {"isDir": True, "mode": "rwxrwxrwx"},
}
SHOULD_FILES: dict[str, dict[str, Any]] = {
    "/etc/resolv.conf": {"isDir": False, "mode": "rw*r**r**"},
    "/dev/console": {"error": "stat /dev/console: no such file or directory"},  # SHOULD NOT exist
}


def mismatches(info: dict[str, Any], expected: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    files, access = info["host"]["files"], info["host"]["fileaccess"]
    for path, want in expected.items():
        got = files.get(path)
        if got is None:
            found.append(f"{path}: not reported")
            continue
        for key in ("error", "isDir", "sourceFile"):
            if key in want and got.get(key) != want[key]:
                found.append(f"{path}.{key} = {got.get(key)!r}, want {want[key]!r}")
        if "mode" in want:
            mode, pattern = got.get("mode", ""), want["mode"]
            if len(mode) != len(pattern) or any(w not in ("*", m) for w, m in zip(pattern, mode, strict=True)):
                found.append(f"{path}.mode = {mode!r}, want {want['mode']!r}")
        errors = access.get(path, {})
        if errors.get("read_error") or errors.get("write_error"):
            found.append(f"{path}: {errors}")
    return found


async def test_must_have_files(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "files")
        assert mismatches(info, MUST_FILES) == []


@pytest.mark.parametrize("target", ["oci"], indirect=True)
async def test_should_have_files(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "files")
        assert mismatches(info, SHOULD_FILES) == []
