"""knative/serving test/conformance/runtime/envpropagation_test.go: Secrets and ConfigMaps reach the environment
through env.valueFrom and envFrom."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch

ENV_KEY, ENV_VALUE = "CONFORMANCE_TEST_ENV_KEY", "conformance test env value"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "conformance-secret", "namespace": "default"},
          "data": {ENV_KEY: base64.b64encode(ENV_VALUE.encode()).decode()}}
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "conformance-config", "namespace": "default"}, "data": {ENV_KEY: ENV_VALUE}}

SECRET_WAYS: dict[str, dict[str, Any]] = {
    "env": {"env": [{"name": ENV_KEY, "valueFrom": {"secretKeyRef": {"name": "conformance-secret", "key": ENV_KEY}}}]},
    "envFrom": {"envFrom": [{"secretRef": {"name": "conformance-secret"}}]},
}
CONFIG_WAYS: dict[str, dict[str, Any]] = {
    "env": {"env": [{"name": ENV_KEY,
                     "valueFrom": {"configMapKeyRef": {"name": "conformance-config", "key": ENV_KEY}}}]},
    "envFrom": {"envFrom": [{"configMapRef": {"name": "conformance-config"}}]},
}


@pytest.mark.parametrize("way", list(SECRET_WAYS))
async def test_secrets_via_env(tmp_path: Path, target: Target, way: str) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(SECRET)
        info = await serve_and_fetch(h, target, "secrets", **SECRET_WAYS[way])
        assert info["host"]["envs"].get(ENV_KEY) == ENV_VALUE


@pytest.mark.parametrize("way", list(CONFIG_WAYS))
async def test_configs_via_env(tmp_path: Path, target: Target, way: str) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(CONFIG_MAP)
        info = await serve_and_fetch(h, target, "configs", **CONFIG_WAYS[way])
        assert info["host"]["envs"].get(ENV_KEY) == ENV_VALUE
