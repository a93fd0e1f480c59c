"""The eventing reconcilers, one per kind, built over what they share; started before the controller and
stopped first: dispatchers (in-flight deliveries settle or stay uncommitted), then the producer, the broker
log and the delivery client they use."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from wisp.control.controller import Enqueue, Reconciler
from wisp.control.eventing.api_server_source import ApiServerSourceReconciler
from wisp.control.eventing.base import EventingContext, PieceReconciler
from wisp.control.eventing.broker import BrokerReconciler
from wisp.control.eventing.channel import ChannelReconciler
from wisp.control.eventing.container_source import ContainerSourceReconciler
from wisp.control.eventing.event_type import AutoEventTypes, EventTypeReconciler
from wisp.control.eventing.in_memory_channel import InMemoryChannelReconciler
from wisp.control.eventing.job_sink import JobSinkReconciler
from wisp.control.eventing.kafka_channel import KafkaChannelReconciler
from wisp.control.eventing.kafka_source import KafkaSourceReconciler
from wisp.control.eventing.parallel import ParallelReconciler
from wisp.control.eventing.ping_source import PingSourceReconciler
from wisp.control.eventing.producer import SharedProducer
from wisp.control.eventing.sequence import SequenceReconciler
from wisp.control.eventing.sink_binding import SinkBindingReconciler
from wisp.control.eventing.subscription import SubscriptionReconciler
from wisp.control.eventing.trigger import TriggerReconciler
from wisp.control.kafka_cluster import KafkaCluster
from wisp.control.sinks import SinkResolver
from wisp.eventing.broker import Brokers
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.channel import DEFAULT_MAX_BODY_BYTES, Channels
from wisp.eventing.delivery import Deliverer
from wisp.eventing.job_sink import JobSinks
from wisp.eventing.kafka_channel import KafkaChannels
from wisp.observability.metrics import SourceState
from wisp.observability.recorder import SpanRecorder
from wisp.store import Store
from wisp.types import Clock, Resource


class Eventing:
    def __init__(self, store: Store, sinks: SinkResolver, kafka: KafkaCluster, deliverer: Deliverer,
                 brokers: Brokers, broker_log: BrokerLog, enqueue: Enqueue, clock: Clock,
                 tracer: SpanRecorder | None = None, hosts: MutableMapping[str, Any] | None = None,
                 max_body_bytes: int | None = None, logs_dir: Path = Path("logs"),
                 jobs_dir: Path | None = None) -> None:
        """`brokers` is the registry the broker ingress serves from; `enqueue` asks the controller for a
        reconcile (a KafkaSource's dispatcher reports readiness and progress through it); `hosts` is the
        ingress's virtual-host table, where each channel is served at its address; `logs_dir` holds the
        output of the programs ContainerSources and JobSinks run; `jobs_dir` the events of running jobs (default:
        beside `logs_dir`)."""
        ctx = EventingContext(store, sinks, clock)
        self._deliverer = deliverer
        self._broker_log = broker_log
        self._producer = SharedProducer()
        self.kafka_source = KafkaSourceReconciler(ctx, kafka, deliverer, enqueue, tracer)
        event_types = AutoEventTypes(store)
        self.channels = Channels(hosts if hosts is not None else {})
        self.kafka_channels = KafkaChannels(self.channels.hosts)
        self.broker = BrokerReconciler(ctx, kafka, brokers, broker_log, self._producer, event_types, self.channels,
                                       self.kafka_channels)
        self.trigger = TriggerReconciler(ctx, kafka, deliverer, brokers, broker_log, self.channels,
                                         self.kafka_channels)
        self.ping_source = PingSourceReconciler(ctx, deliverer)
        self.sink_binding = SinkBindingReconciler(ctx)
        self.in_memory_channel = InMemoryChannelReconciler(ctx, deliverer, self.channels, max_body_bytes,
                                                           event_types)
        self.channel = ChannelReconciler(ctx)
        self.kafka_channel = KafkaChannelReconciler(ctx, kafka, self._producer, self.kafka_channels,
                                                    max_body_bytes or DEFAULT_MAX_BODY_BYTES)
        self.subscription = SubscriptionReconciler(ctx, self.channels, self.kafka_channels, deliverer)
        self.sequence = SequenceReconciler(ctx)
        self.parallel = ParallelReconciler(ctx)
        self.container_source = ContainerSourceReconciler(ctx, enqueue, logs_dir)
        self.event_type = EventTypeReconciler(ctx)
        self.api_server_source = ApiServerSourceReconciler(ctx, deliverer)
        self.job_sink = JobSinkReconciler(ctx, JobSinks(self.channels.hosts, max_body_bytes or DEFAULT_MAX_BODY_BYTES),
                                          logs_dir, jobs_dir or logs_dir.parent / "jobsink")

    @property
    def reconcilers(self) -> list[Reconciler]:
        return [self.kafka_source, self.broker, self.trigger, self.ping_source, self.sink_binding,
                self.in_memory_channel, self.channel, self.kafka_channel, self.subscription, self.sequence,
                self.parallel,
                self.container_source, self.event_type, self.api_server_source, self.job_sink]

    @property
    def _running(self) -> list[PieceReconciler[Any]]:
        return [self.kafka_source, self.trigger, self.ping_source, self.in_memory_channel, self.container_source,
                self.api_server_source, self.subscription, self.job_sink]

    async def start(self) -> None:
        await self._deliverer.start()
        await self._broker_log.start()

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self._running), return_exceptions=True)
        await self._producer.stop()
        await self._broker_log.stop()
        await self._deliverer.stop()

    def source_states(self) -> list[SourceState]:
        """Delivery counters of every running source and trigger, for /metrics."""
        return [state for r in self._running for state in r.source_states()]

    def binding_env(self, namespace: str, subject: Resource) -> dict[str, str]:
        return self.sink_binding.binding_env(namespace, subject)
