"""Revision → the OCI options of its WorkloadSpec: Kubernetes' container fields, and the digest recorded earlier."""

from __future__ import annotations

from typing import Any

import pytest

from wisp.control.workload_builder import SpecError, workload_spec
from wisp.serving.workloads.types import OciOptions
from wisp.types import Resource


def revision(container: dict[str, Any], status: dict[str, Any] | None = None) -> Resource:
    body: Resource = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": "app-00001", "namespace": "default"},
        "spec": {"containers": [{"image": "localhost/app:1", **container}]},
    }
    if status is not None:
        body["status"] = status
    return body


def test_defaults() -> None:
    spec = workload_spec(revision({}), {})
    assert spec.directory is None and spec.oci == OciOptions()
    assert spec.oci.pull_policy == "IfNotPresent"


def test_container_fields() -> None:
    spec = workload_spec(revision({
        "imagePullPolicy": "Never", "workingDir": "/srv",
        "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "seccompProfile": {"type": "Unconfined"}},
    }), {})
    assert spec.oci == OciOptions(pull_policy="Never", working_dir="/srv", run_as_user=1000, run_as_group=2000,
                                  run_as_non_root=True, read_only_root=True, no_new_privileges=True,
                                  cap_add=("NET_BIND_SERVICE",), cap_drop=("ALL",), seccomp_unconfined=True)


def test_a_localhost_seccomp_profile_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"spec\.containers\[0\]\.securityContext\.seccompProfile\.type: "
                                        "Localhost is not supported"):
        workload_spec(revision({"securityContext": {"seccompProfile": {"type": "Localhost",
                                                                        "localhostProfile": "p.json"}}}), {})


def test_the_recorded_digest_is_pinned_without_changing_the_spec() -> None:
    digest = "localhost/app@sha256:" + "a" * 64
    fresh = workload_spec(revision({}), {})
    recorded = workload_spec(revision({}, {"containerStatuses": [{"name": "user-container",
                                                                  "imageDigest": digest}]}), {})
    assert recorded.oci.pinned == digest and fresh.oci.pinned is None
    assert recorded == fresh  # the data plane keeps the running instances when the status gains the digest
    # What an older wisp recorded (the image as written) is no digest.
    old = workload_spec(revision({}, {"containerStatuses": [{"imageDigest": "localhost/app:1"}]}), {})
    assert old.oci.pinned is None


def test_resources_become_the_engines_limits() -> None:
    spec = workload_spec(revision({"resources": {"limits": {"memory": "64Mi", "cpu": "500m"},
                                                 "requests": {"cpu": "250m"}}}), {})
    assert (spec.oci.memory_limit, spec.oci.cpu_limit_millis, spec.oci.cpu_request_millis) == (64 << 20, 500, 250)
    with pytest.raises(SpecError, match=r"spec\.containers\[0\]\.resources"):
        workload_spec(revision({"resources": {"limits": {"memory": "lots"}}}), {})
