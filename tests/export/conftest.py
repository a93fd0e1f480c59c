"""Shared pieces of the export tests: the apps exported, and reading an export back."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
EXAMPLES = [REPO / "examples" / "barrage", REPO / "examples" / "hello"]
REGISTRY = "registry.wisp.test/export"
KAFKA = "my-cluster-kafka-bootstrap.kafka:9092"
DOMAIN = "apps.example.com"
FUNC_TEMPLATE = REPO / "src" / "wisp" / "api" / "reference" / "func-templates" / "http"


def func_project(parent: Path, name: str = "greeter") -> Path:
    """A Knative Functions project as `func create -l python -t http` writes it (the vendored template)."""
    project = parent / name
    shutil.copytree(FUNC_TEMPLATE, project)
    (project / "func.yaml").write_text(
        f"specVersion: 0.36.0\nname: {name}\nruntime: python\ncreated: 2026-11-30T12:00:00Z\ninvoke: http\n"
    )
    return project


def read_export(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every manifest file `kubectl apply -f out` would read → its documents."""
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
            for p in sorted(out.iterdir()) if p.suffix in (".yaml", ".yml", ".json")}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return func_project(tmp_path / "projects")
