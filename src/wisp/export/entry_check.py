"""A function's entry point imported for real before anything is written, by the runtime file the image
runs (`wisp_serve.py --check`) beside copies of wisp's runtime modules, in a separate process with the code
directory as its working directory and the manifest's plain env values: as `wisp up` would load it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from wisp.export.context import runtime_files

CHECK_TIMEOUT_S = 60.0


class EntryPointError(ValueError):
    """The function's entry point does not import, or names nothing usable."""


def check_entry_point(code_dir: Path, target: str, env: Mapping[str, str]) -> str:
    """The function's signature (http, cloudevent or asgi); EntryPointError when it does not load."""
    with tempfile.TemporaryDirectory(prefix="wisp-export-check-") as tmp:
        for path, data in runtime_files().items():
            file = Path(tmp) / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        child_env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": os.environ.get("HOME", tmp),
                     **env, "FUNCTION_TARGET": target, "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            done = subprocess.run(
                [sys.executable, str(Path(tmp) / "runtime" / "wisp_serve.py"), "--check"], cwd=code_dir,
                env=child_env, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired:
            raise EntryPointError(f"{target} did not finish importing within {CHECK_TIMEOUT_S:g}s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except ValueError:
        answer = {}
    if done.returncode == 0 and isinstance(answer.get("signature"), str):
        return str(answer["signature"])
    reason = answer.get("error") or (done.stderr.strip().splitlines() or ["exited " + str(done.returncode)])[-1]
    raise EntryPointError(f"{target} does not import in {code_dir}: {reason}")


def check_func_project(project: Path, invoke: str) -> str:
    """A Knative Functions project's `function` package must parse and export `new` or `handle`. Read, not
    imported: it imports what the project's own environment holds (made by `wisp up` or the image build)."""
    init = project / "function" / "__init__.py"
    if not init.is_file():
        raise EntryPointError(f"{project}: no function/__init__.py (a Knative Functions project's package)")
    try:
        tree = ast.parse(init.read_bytes(), filename=str(init))
    except (SyntaxError, ValueError) as e:
        raise EntryPointError(f"{init}: not valid Python: {e}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    if not names & {"new", "handle"}:
        raise EntryPointError(f"{init}: the function package exports neither new nor handle")
    return f"func-python {invoke}"
