"""ContainerSource: its pod template's container run as a wisp container workload (a local directory image;
its command in that directory) with `K_SINK` and `K_CE_OVERRIDES` set, started again when it exits.
Knative runs it as a Deployment bound by a SinkBinding; on one machine it is a supervised process."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wisp.api import kinds as k
from wisp.api.names import MANIFEST_DIR_ANNOTATION
from wisp.control.conditions import Condition
from wisp.control.controller import Enqueue, Key
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.control.eventing.builders import Status, observed
from wisp.control.eventing.container_runner import ContainerRunner, Program
from wisp.control.workload_builder import SpecError, instance_env
from wisp.eventing.delivery import DeliveryCounters
from wisp.observability.metrics import SourceState
from wisp.store import Store, StoreEvent
from wisp.types import Resource

_NOT_A_SERVICE = ("K_SERVICE", "K_CONFIGURATION", "K_REVISION")
_DEFAULT_GRACE = 30.0


def _failed(source: Resource, type_: str, reason: str, message: str, **fields: Any) -> Status:
    return {**observed(source), **fields}, [Condition.false(type_, reason, message)]


def local_program(store: Store, owner: Resource, pod: Mapping[str, Any], path: str, extra: dict[str, str],
                  log_path: Path) -> Program:
    """A pod template's one container as a local program (its image a directory, its command run there), with
    its env/envFrom resolved and `extra` added; SpecError naming the field when wisp cannot run it."""
    namespace, name = name_of(owner)
    containers = pod.get("containers") or []
    if len(containers) > 1:
        raise SpecError(f"{path}.containers: wisp runs one container per pod template; sidecars "
                        f"({', '.join(str(c.get('name')) for c in containers[1:])}) are not supported")
    container = containers[0]
    image = str(container.get("image", ""))
    if not image.startswith(("./", "../", "/")) and image not in (".", ".."):
        raise SpecError(f"{path}.containers[0].image: {image!r} is an OCI image; wisp runs a {owner['kind']}'s "
                        "container from a local directory (./dir) with its command")
    base = Path((owner["metadata"].get("annotations") or {}).get(MANIFEST_DIR_ANNOTATION, "."))
    directory = (base / image).resolve()
    if not directory.is_dir():
        raise SpecError(f"{path}.containers[0].image: {image} is not a directory (looked in {directory})")
    argv = [*map(str, container.get("command") or []), *map(str, container.get("args") or [])]
    if not argv:
        raise SpecError(f"{path}.containers[0].command: required when the image is a local directory")
    pseudo = {"metadata": {"name": name, "namespace": namespace}, "spec": {"containers": [container]}}
    env = instance_env(pseudo, lambda ns, n: store.get(k.SECRET, ns, n),
                       lambda ns, n: store.get(k.CONFIG_MAP, ns, n), extra)
    env = {key: value for key, value in env.items() if key not in _NOT_A_SERVICE}
    grace = pod.get("terminationGracePeriodSeconds")
    return Program(tuple(argv), directory, tuple(sorted(env.items())), log_path,
                   float(grace) if isinstance(grace, int) and grace >= 0 else _DEFAULT_GRACE)


class ContainerSourceReconciler(PieceReconciler[ContainerRunner]):
    kind = k.CONTAINER_SOURCE

    def __init__(self, ctx: EventingContext, enqueue: Enqueue, logs_dir: Path) -> None:
        super().__init__(ctx)
        self._enqueue = enqueue
        self._logs_dir = logs_dir

    def _program(self, source: Resource, k_sink: str) -> Program:
        """What to run; SpecError when wisp cannot run this template."""
        namespace, name = name_of(source)
        spec = source["spec"]
        extra = {"K_SINK": k_sink}
        overrides = spec.get("ceOverrides")
        if overrides:
            extra["K_CE_OVERRIDES"] = json.dumps(overrides, separators=(",", ":"), sort_keys=True)
        return local_program(self.ctx.store, source, spec["template"].get("spec") or {}, "spec.template.spec",
                             extra, self._logs_dir / namespace / f"containersource-{name}.log")

    async def apply(self, source: Resource) -> None:
        key = name_of(source)
        namespace, name = key
        sink = source["spec"].get("sink") or {}
        k_sink = self.ctx.sinks.instance_url(sink, namespace)
        if k_sink is None:
            await self.pieces.stop(key)
            self.write_status(source, _failed(source, "SinkBindingReady", "SinkNotFound",
                                              "spec.sink: the sink does not exist yet"))
            return
        sink_uri = self.ctx.sinks.reported_uri(sink, namespace)
        try:
            program = self._program(source, k_sink)
        except SpecError as exc:
            await self.pieces.stop(key)
            self.write_status(source, _failed(source, "ReceiveAdapterReady", "InvalidSpec", str(exc),
                                              sinkUri=sink_uri))
            return

        async def build() -> ContainerRunner:
            return ContainerRunner(f"{namespace}/{name}", program, lambda: self._enqueue(self.kind, namespace, name))

        runner = await self.pieces.ensure(key, program, build)
        status: dict[str, Any] = {**observed(source), "sinkUri": sink_uri}
        if runner.running:
            adapter = Condition.true("ReceiveAdapterReady")
        elif runner.error:
            adapter = Condition.false("ReceiveAdapterReady", "CannotStart", runner.error)
        elif runner.last_exit is not None:
            adapter = Condition.false("ReceiveAdapterReady", "CrashLoopBackOff",
                                      f"the program exited with {runner.last_exit} ({runner.restarts} restart(s)); "
                                      f"its output is in {program.log_path}")
        else:
            adapter = Condition.unknown("ReceiveAdapterReady", "Starting")
        self.write_status(source, (status, [Condition.true("SinkBindingReady"), adapter]))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        kind, namespace, _ = event.key
        if kind in (k.SECRET, k.CONFIG_MAP):
            return [(self.kind, namespace, name_of(s)[1]) for s in self.ctx.store.list(self.kind, namespace)]
        return self.sink_dependents(event)

    def counters(self, namespace: str, name: str, piece: ContainerRunner) -> tuple[DeliveryCounters, int | None]:
        return DeliveryCounters(), None

    def source_states(self) -> list[SourceState]:
        return []  # the program sends its events itself: wisp counts none of them
