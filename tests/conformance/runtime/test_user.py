"""knative/serving test/conformance/runtime/user_test.go: securityContext.runAsUser, and the image's own user by
default. A local process runs as runAsUser inside its sandbox when wisp runs as root; it has no image user, so
the default user test is for OCI instances only (docs/conformance.md)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch

SECURITY_CONTEXT_USER_ID = 2020
UNPRIVILEGED_USER_ID = 65532  # the test image's USER


def _runnable_by_anyone(target: Target) -> Target:
    """The user 2020 cannot reach an interpreter under root's home (pyenv's, or a venv pointing there): a process
    target runs as that user with the system's python3, as an image would carry its own."""
    if target.kind != "process":
        return target
    system_python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    assert system_python is not None, "a python3 outside root's home is needed to run as another user"
    return dataclasses.replace(target, command=(system_python, *target.command[1:]))


async def test_must_run_as_user(tmp_path: Path, target: Target) -> None:
    target = _runnable_by_anyone(target)
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "user", securityContext={"runAsUser": SECURITY_CONTEXT_USER_ID},
                                     workingDir="/")
        user = info["host"]["user"]
        assert (user["uid"], user["euid"]) == (SECURITY_CONTEXT_USER_ID, SECURITY_CONTEXT_USER_ID)
        assert user["cwd"] == {"directory": "/"}


@pytest.mark.parametrize("target", ["oci"], indirect=True)
async def test_should_run_as_user_container_default(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        user = (await serve_and_fetch(h, target, "user"))["host"]["user"]
        assert (user["uid"], user["euid"]) == (UNPRIVILEGED_USER_ID, UNPRIVILEGED_USER_ID)
