"""The Knative Functions templates' own tests (tests/test_func.py), run against the vendored copy as `pytest`
runs them in a project made from the template: from its folder, with its pytest settings (asyncio strict)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import TEMPLATES


@pytest.mark.parametrize("template", ["http", "cloudevents"])
def test_the_templates_own_tests_pass(template: str) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # leave the vendored copy as it is
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests/test_func.py"],
        cwd=TEMPLATES / template, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout, result.stdout
