"""Per-project environments: made once per content hash with uv, found again without installing, remade when
the declared dependencies change, and uv's own message when an install fails."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from wisp.serving.workloads.project_env import ProjectEnvs, env_key
from wisp.serving.workloads.types import WorkloadError

from .conftest import project


async def runs(python: Path, code: str) -> bool:
    process = await asyncio.create_subprocess_exec(str(python), "-c", code)
    return await asyncio.wait_for(process.wait(), 60) == 0


async def test_made_once_then_found_by_content_hash(tmp_path: Path, uv_cache: Path) -> None:
    directory = project(tmp_path, "cloudevents", "echo", invoke="cloudevent")
    envs = ProjectEnvs(tmp_path / "envs", uv_cache)
    python = await envs.ensure(directory)
    assert python.parent.parent.name == env_key(directory)
    # Exactly what the project declares, with the middleware: cloudevents 2.x (the template asks for it).
    assert await runs(python, "import func_python, cloudevents.core, httpx")

    started = time.monotonic()
    assert await ProjectEnvs(tmp_path / "envs", uv_cache).ensure(directory) == python
    assert time.monotonic() - started < 0.5  # found, nothing run

    # Editing the code leaves the environment as it is; editing the dependencies makes another.
    (directory / "function" / "func.py").write_text("def new(): ...\n")
    assert env_key(directory) == python.parent.parent.name
    (directory / "requirements.txt").write_text("six\n")
    changed = await envs.ensure(directory)
    assert changed != python and python.exists()
    assert await runs(changed, "import six")


async def test_a_failed_install_says_what_uv_said_and_leaves_nothing_behind(tmp_path: Path, uv_cache: Path) -> None:
    directory = project(tmp_path, "http", "deps")
    (directory / "requirements.txt").write_text("wisp-no-such-package-x7q==1.0\n")
    envs = ProjectEnvs(tmp_path / "envs", uv_cache)
    with pytest.raises(WorkloadError) as info:
        await envs.ensure(directory)
    message = str(info.value)
    assert message.startswith("the dependencies of deps failed to install (uv pip install exited with 1):")
    assert "wisp-no-such-package-x7q" in message
    assert not (tmp_path / "envs" / env_key(directory)).exists()
