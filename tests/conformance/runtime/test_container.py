"""knative/serving test/conformance/runtime/container_test.go: container fields a Knative Service must not (or
should not) have are refused at create, or pruned. Admission is the same for every workload class; the test runs
for both targets as the rest of the suite does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conformance.api_v1.kube import Kube
from tests.conformance.conftest import Target, conformance_daemon, knative_service

MUST_NOT: dict[str, dict[str, Any]] = {
    "TestArbitraryPortName": {"ports": [{"name": "arbitrary"}]},
    "TestMountPropagation": {"volumeMounts": [{"name": "VolumeMount", "mountPath": "/",
                                               "mountPropagation": "HostToContainer"}]},
}
SHOULD_NOT: dict[str, tuple[dict[str, Any], list[str]]] = {
    # case → (container fields, the path that must be gone if the create succeeds)
    "TestPoststartHook": ({"lifecycle": {"postStart": {"exec": {"command": ["/bin/sh", "-c", "echo hi"]}}}},
                          ["lifecycle", "postStart"]),
    "TestPrestopHook": ({"lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "echo hi"]}}}},
                        ["lifecycle", "preStop"]),
    "TestMultiplePorts": ({"ports": [{"containerPort": 80}, {"containerPort": 81}]}, []),
    "TestHostPort": ({"ports": [{"hostPort": 80}]}, ["ports", "0", "hostPort"]),
    "TestStdin": ({"stdin": True}, ["stdin"]),
    "TestStdinOnce": ({"stdinOnce": True}, ["stdinOnce"]),
    "TestTTY": ({"tty": True}, ["tty"]),
    "TestInvalidUID": ({"securityContext": {"runAsUser": -10}}, []),
}


@pytest.mark.parametrize("case", list(MUST_NOT))
async def test_must_not_container_constraints(tmp_path: Path, target: Target, case: str) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        r = await kube.create(knative_service("constraints", {**target.container(), **MUST_NOT[case]}))
        assert 400 <= r.status_code < 500, r.text


def _dig(value: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(value, list):
            value = value[int(key)] if int(key) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


@pytest.mark.parametrize("case", list(SHOULD_NOT))
async def test_should_not_container_constraints(tmp_path: Path, target: Target, case: str) -> None:
    fields, pruned = SHOULD_NOT[case]
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        r = await kube.create(knative_service("constraints", {**target.container(), **fields}))
        if r.status_code < 300:  # accepted: then the field must have been pruned
            assert pruned, f"{case} was accepted: {r.text}"
            container = r.json()["spec"]["template"]["spec"]["containers"][0]
            assert _dig(container, pruned) in (None, False, 0), container
        else:
            assert 400 <= r.status_code < 500, r.text
