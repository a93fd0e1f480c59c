"""Workload runtimes: function revisions (instances forked from a template) and container revisions
(processes, or podman/docker for OCI images). `make_runtime(spec, envs, engines)` picks the right one."""

from __future__ import annotations

from pathlib import Path

from wisp.serving.workloads.container import ProcessRuntime
from wisp.serving.workloads.function import FunctionRuntime
from wisp.serving.workloads.oci import OciRuntime
from wisp.serving.workloads.oci_engine import ContainerEngines
from wisp.serving.workloads.project_env import ProjectEnvs
from wisp.serving.workloads.types import Instance, OciOptions, Probe, Runtime, WorkloadError, WorkloadSpec


def make_runtime(spec: WorkloadSpec, envs: ProjectEnvs | None = None,
                 engines: ContainerEngines | None = None, volume_root: Path | None = None) -> Runtime:
    """The runtime for a revision's workload class and image (local directory or OCI reference): a function
    gets its project's environment from `envs`; an OCI image runs through `engines`, the daemon's container
    engine; a container's volumes are written under `volume_root`."""
    if spec.workload_class == "function":
        return FunctionRuntime(spec, project_envs=envs)
    if spec.directory is not None:
        return ProcessRuntime(spec, volume_root)
    if engines is None:
        raise ValueError(f"revision {spec.revision}: image {spec.image} is an OCI image: make_runtime needs the "
                         "daemon's ContainerEngines")
    return OciRuntime(spec, engines, volume_root)


__all__ = ["ContainerEngines", "Instance", "OciOptions", "Probe", "ProjectEnvs", "Runtime", "WorkloadError",
           "WorkloadSpec", "make_runtime"]
