"""Workload runtimes: function revisions (instances forked from a template) and container revisions
(processes, or podman/docker for OCI images). `make_runtime(spec)` picks the right one."""

from __future__ import annotations

from wisp.serving.workloads.container import EngineRuntime, ProcessRuntime
from wisp.serving.workloads.function import FunctionRuntime
from wisp.serving.workloads.project_env import ProjectEnvs
from wisp.serving.workloads.types import Instance, Probe, Runtime, WorkloadError, WorkloadSpec


def make_runtime(spec: WorkloadSpec, envs: ProjectEnvs | None = None) -> Runtime:
    """The runtime for a revision's workload class and image (local directory or OCI reference); a function
    gets its project's environment from `envs`."""
    if spec.workload_class == "function":
        return FunctionRuntime(spec, project_envs=envs)
    if spec.directory is not None:
        return ProcessRuntime(spec)
    return EngineRuntime(spec)


__all__ = ["Instance", "Probe", "ProjectEnvs", "Runtime", "WorkloadError", "WorkloadSpec", "make_runtime"]
