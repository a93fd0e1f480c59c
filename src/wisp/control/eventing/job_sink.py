"""JobSink (sinks.knative.dev/v1alpha1): addressable at job-sink.knative-eventing.svc.cluster.local/{ns}/{name};
each event starts one run of its job template (see job_runner.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.conditions import Condition
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.control.eventing.builders import observed
from wisp.control.eventing.container_source import local_program
from wisp.control.eventing.job_runner import JobRunner, JobSpec, sandbox_available
from wisp.control.workload_builder import SpecError
from wisp.eventing.delivery import DeliveryCounters
from wisp.eventing.job_sink import JOB_SINK_HOST, JobSinks
from wisp.observability.metrics import SourceState
from wisp.types import Resource


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class JobSinkReconciler(PieceReconciler[JobRunner]):
    kind = k.JOB_SINK

    def __init__(self, ctx: EventingContext, sinks: JobSinks, logs_dir: Path, jobs_dir: Path) -> None:
        super().__init__(ctx)
        self._sinks = sinks
        self._logs_dir = logs_dir
        self._jobs_dir = jobs_dir
        self._sandbox: bool | None = None  # whether bubblewrap runs here, found out once

    def _spec(self, sink: Resource) -> JobSpec:
        namespace, name = name_of(sink)
        job = (sink["spec"].get("job") or {}).get("spec") or {}
        if job.get("completions") not in (None, 1) or job.get("parallelism") not in (None, 1):
            raise SpecError("spec.job.spec.completions: wisp runs one completion of a job per event")
        log_path = self._logs_dir / namespace / f"jobsink-{name}" / "job.log"  # each job logs beside it
        program = local_program(self.ctx.store, sink, (job.get("template") or {}).get("spec") or {},
                                "spec.job.spec.template.spec", {}, log_path)
        backoff = job.get("backoffLimit")
        return JobSpec(program, backoff if isinstance(backoff, int) and backoff >= 0 else 6,
                       _seconds(job.get("activeDeadlineSeconds")), _seconds(job.get("ttlSecondsAfterFinished")))

    async def apply(self, sink: Resource) -> None:
        key = name_of(sink)
        namespace, name = key
        try:
            spec = self._spec(sink)
        except SpecError as exc:
            self._sinks.remove(namespace, name)
            await self.pieces.stop(key)
            self.write_status(sink, (observed(sink), [Condition.false("Addressable", "InvalidSpec", str(exc))]))
            return

        if self._sandbox is None:
            self._sandbox = await sandbox_available()
        sandbox = self._sandbox

        async def build() -> JobRunner:
            return JobRunner(f"{namespace}/{name}", spec, self._jobs_dir / namespace / name, sandbox)

        runner = await self.pieces.ensure(key, spec, build)
        self._sinks.put(namespace, name, runner)
        url = f"http://{JOB_SINK_HOST}/{namespace}/{name}"
        self.write_status(sink, ({**observed(sink), "address": {"name": "http", "url": url}},
                                 [Condition.true("Addressable")]))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        self._sinks.remove(*name_of(resource))
        await super().deleted(kind, resource)

    def counters(self, namespace: str, name: str, piece: JobRunner) -> tuple[DeliveryCounters, int | None]:
        return DeliveryCounters(), None

    def source_states(self) -> list[SourceState]:
        return []  # a job is run, not delivered to
