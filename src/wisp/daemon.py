"""Wires wisp's components together and owns their start and stop order.

Start: store → data plane → controller → control API → ingress → apply the given manifests.
Stop (Ctrl-C / SIGTERM): ingress stops accepting and finishes its requests → controller → every instance
drains → control API → store. Started again on the same state dir, the controller rebuilds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.loader import load_paths
from wisp.api.names import SERVICE_LABEL
from wisp.console.assembly import Console, TeeObserver, dataplane_readings
from wisp.console.sources import ConsoleSources
from wisp.control.admission import apply_manifests, warnings_for
from wisp.control.api import VirtualKinds, build_api
from wisp.control.conditions import get_condition
from wisp.control.controller import Controller, Enqueue
from wisp.control.eventing.assembly import Eventing
from wisp.control.host_check import LoopbackHostOnly
from wisp.control.k8s_surface import KubernetesSurface
from wisp.control.kafka_cluster import KafkaCluster
from wisp.control.serving import ServingReconciler
from wisp.control.serving_builders import Network
from wisp.control.sinks import BROKER_INGRESS_HOST, SinkResolver
from wisp.control.stored_check import check_stored
from wisp.control.tracing_watch import TracingWatch
from wisp.eventing.broker import Brokers, broker_ingress_app
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.delivery import Deliverer
from wisp.head_limits import LimitedHttpToolsProtocol
from wisp.observability.hub import Observability
from wisp.observability.metrics import RevisionState, SourceState
from wisp.serving import views
from wisp.serving.dataplane import DataPlane
from wisp.serving.h2c import H2cOrHttp1Protocol
from wisp.serving.ingress import Ingress
from wisp.serving.instance_limit import InstanceBudget, configured_limit, this_machine
from wisp.serving.local_client import LocalClient
from wisp.serving.node_resources import this_node
from wisp.serving.routing import RoutingTable
from wisp.serving.workloads import ProjectEnvs, make_runtime
from wisp.serving.workloads.log_rotation import LogLimits
from wisp.serving.workloads.logs import MAX_TAIL_BYTES, follow, tail_async
from wisp.serving.workloads.oci_engine import ContainerEngines, EnginePreference
from wisp.serving.workloads.project_env import CACHE_DIR, ENVS_DIR
from wisp.store import Store, StoreError
from wisp.store.state_dir import BROKER_DB, KAFKA_LOG, LOGS_DIR, STORE_DB
from wisp.store.state_dir import prepare as prepare_state_dir
from wisp.types import Clock, Resource

log = logging.getLogger("wisp")
VOLUMES_DIR = "volumes"  # local processes' Secret/ConfigMap volumes, by namespace and revision

DEFAULT_BODY_LIMIT = 10 * 1024 * 1024
LOG_BLOCK_LINES = 1000


@dataclass(frozen=True)
class DaemonOptions:
    paths: list[Path] = field(default_factory=list)
    port: int = 8080
    api_port: int = 8001
    state_dir: Path = Path(".wisp")
    host: str = "127.0.0.1"
    kafka: str | None = None
    domain: str = "localhost"
    body_limit: int = DEFAULT_BODY_LIMIT
    token: str | None = None  # required when the control API listens beyond loopback
    ready_timeout: float = 120.0
    tick_interval: float = 2.0  # the KPA's tick; Knative's is 2 s
    max_instances: int | None = None  # every revision's instances together; None: derived from memory and CPUs
    log_max_bytes: int = LogLimits.max_bytes  # per instance log, one rotated file kept
    container_engine: EnginePreference = "auto"  # for OCI images: podman, docker, or auto (podman, else docker)


class StartupError(Exception):
    """The daemon cannot start; the message says why."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and without it
    # Nagle's algorithm and delayed ACKs add ~40 ms to small responses.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen for the {what} on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server:
    """A uvicorn server on a socket we bound, without uvicorn's own signal handling."""

    def __init__(self, app: ASGIApp | Any, sock: socket.socket, drain_seconds: float,
                 http: type[LimitedHttpToolsProtocol] = LimitedHttpToolsProtocol) -> None:
        # proxy_headers off: a local client's X-Forwarded-For must not become the ingress's idea of the client.
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, proxy_headers=False,
                                timeout_graceful_shutdown=int(drain_seconds), date_header=False,
                                timeout_keep_alive=30, http=http, loop="none")
        config.load()
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)
        self.sock = sock

    async def start(self) -> None:
        await self.server.startup(sockets=[self.sock])

    async def stop(self) -> None:
        await self.server.shutdown(sockets=[self.sock])

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


class Daemon:
    def __init__(self, options: DaemonOptions, clock: Clock = time.time) -> None:
        # Absolute: instances run in their own code directories and are handed paths under it.
        options = replace(options, state_dir=options.state_dir.resolve())
        self.options = options
        self.clock = clock
        state = options.state_dir
        self.store = Store(state / STORE_DB, clock)
        self.routing = RoutingTable()
        machine = this_machine() if options.max_instances is None else configured_limit(options.max_instances)
        # OCI images run through the user's podman or docker, found when the first one is needed.
        self.containers = ContainerEngines(state, options.container_engine)
        # Knative Functions projects' environments; uv's cache beside them unless the user keeps one elsewhere.
        envs = ProjectEnvs(state / ENVS_DIR, None if os.environ.get("UV_CACHE_DIR") else state / CACHE_DIR)
        self.dataplane = DataPlane(lambda spec: make_runtime(spec, envs, self.containers,
                                                         state / VOLUMES_DIR), state / LOGS_DIR, clock,
                                   self._revision_changed,
                                   tick_interval=options.tick_interval, budget=InstanceBudget(machine),
                                   node=this_node(),
                                   log_limits=LogLimits(options.log_max_bytes))
        # The web console at the control API's root; it reads running state through these callables.
        self.console = Console(ConsoleSources(self.store, dataplane_readings(self.dataplane),
                                              lambda ns: views.pods(self.dataplane, ns), self._source_states, clock))
        # What kubectl and Kubernetes clients read beside the API's verbs: discovery, OpenAPI, Tables, Events.
        self.kube = KubernetesSurface(self.store, clock, lambda ns: views.pods(self.dataplane, ns), state / LOGS_DIR,
                                      _version())
        self._ingress_sock: socket.socket | None = None
        self._api_sock: socket.socket | None = None
        self.controller: Controller | None = None
        self.eventing: Eventing | None = None
        self.kafka: KafkaCluster | None = None
        self.obs: Observability | None = None
        self.tracing_watch: TracingWatch | None = None
        self._token: str | None = None
        # What instances send their spans with when the API needs a token: good for POST /v1/traces only, so
        # the API token itself never reaches an instance's environment.
        self._ingest_token = secrets.token_urlsafe(32)
        self._servers: list[_Server] = []

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        opts = self.options
        token = opts.token or os.environ.get("WISP_TOKEN")
        if not _is_loopback(opts.host) and not token:
            raise StartupError(f"the control API would listen on {opts.host}, beyond loopback: set WISP_TOKEN")
        self._ingress_sock = _bind(opts.host, opts.port, "ingress")
        self._api_sock = _bind(opts.host, opts.api_port, "control API")
        network = Network(opts.domain, self._ingress_sock.getsockname()[1])
        self.network = network
        self._open_store()
        # Containers a killed predecessor on this state dir left running (none ever ran here: no engine call).
        await self.containers.remove_leftovers()
        self.obs = Observability(os.environ, self_urls=[f"http://{opts.host}:{opts.api_port}",
                                                        f"http://127.0.0.1:{opts.api_port}"],
                                 revisions=self._revision_states, sources=self._source_states)
        await self.obs.start()
        self.tracing_watch = TracingWatch(self.store, self.obs.configure_tracing)
        await self.tracing_watch.start()
        await self.dataplane.start()
        self.kafka = KafkaCluster(opts.kafka, opts.state_dir / KAFKA_LOG)
        # Built in dependency order, each collaborator passed to the constructor of what uses it: the broker
        # registry → the ingress (serving it) → the delivery client (entering that ingress in-process: same
        # routing and throttling, no loopback hop) → the eventing reconcilers → the controller, which binds
        # `enqueue` (the reconcilers' way to ask it for a reconcile) to itself.
        brokers = Brokers()
        # Virtual hosts served in-process: the broker ingress, and each channel (added as channels appear).
        host_apps: dict[str, Any] = {BROKER_INGRESS_HOST: broker_ingress_app(brokers, max_body_bytes=opts.body_limit)}
        ingress_app = Ingress(self.routing, self.dataplane, opts.body_limit, host_apps,
                              observer=TeeObserver(self.obs.metrics, self.console.requests),
                              tracer=self.obs.tracer, sampler=self.obs.sampler)
        enqueue = Enqueue()
        self.eventing = Eventing(self.store, SinkResolver(self.store, network), self.kafka,
                                 Deliverer(local=LocalClient(ingress_app, network.port)), brokers,
                                 BrokerLog(opts.state_dir / BROKER_DB), enqueue, self.clock, tracer=self.obs.tracer,
                                 hosts=host_apps, max_body_bytes=opts.body_limit,
                                 logs_dir=opts.state_dir / LOGS_DIR)
        await self.eventing.start()
        serving = ServingReconciler(self.store, self.dataplane, self.routing, network, self.clock,
                                    extra_env=self._instance_env)
        await self.kube.start()  # before the controller: its first reconciles are events to record
        self.controller = Controller(self.store, [serving, *self.eventing.reconcilers], enqueue,
                                     on_failure=self.kube.reconcile_failed)
        await self.controller.start()
        virtual = VirtualKinds(
            list_pods=self.kube.pods,
            list_autoscalers=lambda ns: views.autoscalers(self.dataplane, ns),
            service_logs=self._service_logs, info=self._info, metrics=self.obs.metrics.render,
        )
        self._token = token
        api_app = build_api(self.store, virtual, token,
                            [*self.obs.routes(), *self.console.routes(), *self.kube.routes()],
                            ingest_token=self._ingest_token)
        await self.console.start()
        api_asgi = self.console.gate(self.kube.wrap(api_app), token)
        # Without a token only loopback names are served (a DNS-rebound page must not reach the API).
        api = _Server(api_asgi if token else LoopbackHostOnly(api_asgi), self._api_sock, 5)
        # The ingress also speaks HTTP/2 over cleartext (prior knowledge and Upgrade: h2c): gRPC clients.
        ingress = _Server(ingress_app, self._ingress_sock, 30, http=H2cOrHttp1Protocol)
        for server in (api, ingress):
            await server.start()
            self._servers.append(server)

    def _open_store(self) -> None:
        """The state dir made private, then the store opened and its objects checked before anything acts on
        them: a damaged database stops the start; a damaged or invalid object is set aside and reported."""
        prepare_state_dir(self.options.state_dir)
        try:
            self.store.open()
            reports = check_stored(self.store, str(self.options.state_dir / STORE_DB))
        except StoreError as exc:  # damaged, locked by another wisp, unwritable, or a full disk
            for sock in (self._ingress_sock, self._api_sock):
                if sock is not None:
                    sock.close()
            raise StartupError(str(exc)) from exc
        for report in reports:
            log.error("%s", report)

    async def stop(self) -> None:
        # Event dispatchers first: they stop taking events while the ingress can still deliver the ones
        # in flight (anything unsettled stays uncommitted and is redelivered next time).
        if self.eventing is not None:
            await self.eventing.stop()
        await self.console.stop()  # ends the pages' event streams, which would hold the API server's shutdown
        self.store.watchers.end_all()  # Kubernetes watches end cleanly instead of holding the shutdown
        self.kube.end_streams()  # so do event watches and pod log follows
        for server in reversed(self._servers):  # ingress next: no new requests, in-flight ones finish
            await server.stop()
        self._servers.clear()
        if self.controller is not None:
            await self.controller.stop()
        await self.kube.stop()
        await self.dataplane.stop()
        if self.kafka is not None:
            await self.kafka.stop()
        if self.tracing_watch is not None:
            await self.tracing_watch.stop()
        if self.obs is not None:
            await self.obs.stop()  # sends the spans still queued for an outside collector
        self.store.close()

    # -- applying --------------------------------------------------------------------------------
    def apply_paths(self, paths: list[Path]) -> list[str]:
        docs = load_paths(paths)
        results = apply_manifests([d.resource for d in docs], self.store)
        for result in results:
            for warning in warnings_for(result.resource):
                log.warning("%s", warning)
        return [f"{r.kind.kind.lower()}{'.' + r.kind.group if r.kind.group else ''}/{r.name} {r.action}"
                for r in results]

    async def wait_services_ready(self, timeout: float) -> None:
        """Until every Service is Ready or has failed and every KafkaSource has joined its group (or failed),
        or the timeout passes: a message sent after `wisp up` reports must not be skipped."""
        deadline = time.monotonic() + timeout
        starting = ("JoiningGroup", "Connecting")
        while time.monotonic() < deadline:
            pending = [s for s in self.store.list(k.SERVICE)
                       if (get_condition(s, "Ready") or {}).get("status", "Unknown") == "Unknown"]
            for source in self.store.list(k.KAFKA_SOURCE):
                connection = get_condition(source, "ConnectionEstablished") or {}
                if connection.get("status") != "True" and connection.get("reason", "Connecting") in starting:
                    pending.append(source)
            if not pending:
                return
            await asyncio.sleep(0.05)

    def service_lines(self) -> list[str]:
        lines = []
        for svc in self.store.list(k.SERVICE):
            ready = get_condition(svc, "Ready") or {}
            url = svc.get("status", {}).get("url", "")
            mark = "Ready" if ready.get("status") == "True" else f"NotReady ({ready.get('reason', '')}: " \
                f"{ready.get('message', '')})"
            lines.append(f"  {svc['metadata']['namespace']}/{svc['metadata']['name']}  {url}  {mark}")
        for source in self.store.list(k.KAFKA_SOURCE):
            ready = get_condition(source, "Ready") or {}
            state = "Ready" if ready.get("status") == "True" else f"NotReady ({ready.get('reason', '')})"
            lines.append(f"  kafkasource {source['metadata']['namespace']}/{source['metadata']['name']}  {state}")
        for dm in self.store.list(k.DOMAIN_MAPPING):
            lines.append(f"  domain {dm['metadata']['name']} → {dm['spec']['ref'].get('name')}  "
                         f"{dm.get('status', {}).get('url', '')}")
        return lines

    # -- hooks -----------------------------------------------------------------------------------
    def _instance_env(self, revision: Resource) -> dict[str, str]:
        """What wisp adds to every instance's environment: its Kafka, and SinkBinding's K_SINK."""
        meta = revision["metadata"]
        # Apps export their spans to the daemon, which keeps them and forwards them to a collector if set.
        env: dict[str, str] = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.options.api_port}",
            "OTEL_SERVICE_NAME": meta.get("labels", {}).get(SERVICE_LABEL, meta["name"]),
        }
        if self._token:
            env["OTEL_EXPORTER_OTLP_HEADERS"] = f"authorization=Bearer%20{self._ingest_token}"
        if self.kafka is not None:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.kafka.bootstrap_servers
        service = self.store.get(k.SERVICE, meta["namespace"], meta.get("labels", {}).get(SERVICE_LABEL, ""))
        if service is not None and self.eventing is not None:
            env.update(self.eventing.binding_env(meta["namespace"], service))
        return env

    def _revision_changed(self, key: tuple[str, str]) -> None:
        self.console.revision_changed(key)
        runner, decision = self.dataplane.runner(key), self.dataplane.last_decision(key)
        if runner is not None:
            self.kube.scale_events.changed(*key, runner.desired, decision.reason if decision is not None else "")
            for event in runner.take_events():  # probe restarts and OOM kills, as the kubelet reports them
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": event.pod, "namespace": key[0]}}
                self.kube.recorder.record(pod, event.type, event.reason, event.message, "kubelet")
        if self.controller is not None:
            self.controller.enqueue(k.REVISION, key[0], key[1])

    def _revision_states(self) -> list[RevisionState]:
        return [RevisionState(r.key[0], r.key[1], r.desired, r.ready_count, r.throttler.in_flight, r.throttler.queued)
                for r in self.dataplane.runners()]

    def _source_states(self) -> list[SourceState]:
        return self.eventing.source_states() if self.eventing is not None else []

    def _info(self) -> dict[str, Any]:
        return {"ingress": self.network.url(self.options.host), "domain": self.options.domain,
                "version": _version(), "ingressPort": self.network.port}

    async def _service_logs(self, namespace: str, service: str, follow_: bool, lines: int) -> AsyncIterator[str]:
        """The last `lines` of each instance's log (files read in worker threads, at most MAX_TAIL_BYTES for
        the whole answer, newest logs first), then, when following, new lines as they come. Yields blocks of
        lines joined by newlines: one write per block, not per line."""
        paths = views.service_log_paths(self.options.state_dir / LOGS_DIR, self.store, namespace, service)
        tails: list[tuple[Path, list[str]]] = []
        budget = MAX_TAIL_BYTES
        for path in reversed(paths):
            if budget <= 0:
                break
            found = await tail_async(path, lines, budget)
            budget -= sum(len(line) + 1 for line in found)
            tails.append((path, found))
        for path, found in reversed(tails):
            for start in range(0, len(found), LOG_BLOCK_LINES):
                yield "\n".join(f"[{path.stem}] {line}" for line in found[start:start + LOG_BLOCK_LINES])
        if not follow_:
            return
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=LOG_BLOCK_LINES)  # a slow reader slows the pumps

        async def pump(path: Path) -> None:
            async for line in follow(path, lines=0):
                await queue.put(f"[{path.stem}] {line}")

        watched: dict[Path, asyncio.Task[None]] = {}
        try:
            while True:
                for path in views.service_log_paths(self.options.state_dir / LOGS_DIR, self.store, namespace, service):
                    if path not in watched:
                        watched[path] = asyncio.create_task(pump(path))
                with contextlib.suppress(TimeoutError):
                    yield await asyncio.wait_for(queue.get(), 1.0)
        finally:
            for task in watched.values():
                task.cancel()


async def serve(options: DaemonOptions, stop: asyncio.Event, hurry: asyncio.Event | None = None) -> int:
    """Run until `stop` is set; `hurry` (a second Ctrl-C) kills instances instead of waiting for their drain."""
    daemon = Daemon(options)
    try:
        await daemon.start()
    except StartupError as exc:
        print(f"wisp: {exc}", file=sys.stderr)
        return 1
    hurrying = asyncio.create_task(_kill_when(hurry, daemon)) if hurry is not None else None
    try:
        if options.paths:
            try:
                for line in daemon.apply_paths(options.paths):
                    print(line)
            except (ManifestError, StoreError) as exc:
                print(f"wisp: {exc}", file=sys.stderr)
                return 1
        # Ctrl-C while services start (a large scale-up, a slow import) stops at once, not after the wait.
        stopping = asyncio.create_task(stop.wait())
        waiting = asyncio.create_task(daemon.wait_services_ready(options.ready_timeout))
        await asyncio.wait({stopping, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not stop.is_set():
            print(f"wisp is serving on {daemon.network.url(options.host)} "
                  f"(control API and console http://{options.host}:{options.api_port}/)")
            for line in daemon.service_lines():
                print(line)
            sys.stdout.flush()
        await stopping
        print("wisp: stopping (draining in-flight requests; Ctrl-C again to stop them at once)", file=sys.stderr)
        return 0
    finally:
        await daemon.stop()
        if hurrying is not None:
            hurrying.cancel()


async def _kill_when(hurry: asyncio.Event, daemon: Daemon) -> None:
    await hurry.wait()
    print("wisp: stopping instances without waiting for their drain", file=sys.stderr)
    daemon.dataplane.kill_instances()


def run(options: DaemonOptions) -> int:
    """Run the daemon in the foreground until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    async def main() -> int:
        stop, hurry = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            (hurry if stop.is_set() else stop).set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        return await serve(options, stop, hurry)

    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with contextlib.suppress(ImportError):  # uvloop is optional (no wheels on some platforms)
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wisp")
    except PackageNotFoundError:
        return "unknown"
