"""KafkaChannel: its topic created on wisp's Kafka (the configured cluster, or the local one), its address
registered with the ingress; status lists the Subscriptions attached to it."""

from __future__ import annotations

from collections.abc import Iterable

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.conditions import Condition, get_condition
from wisp.control.controller import Key
from wisp.control.eventing.base import EventingContext, KindReconciler, name_of
from wisp.control.eventing.builders import observed
from wisp.control.eventing.producer import SharedProducer
from wisp.control.kafka_cluster import KafkaCluster
from wisp.eventing.channel import channel_host
from wisp.eventing.kafka_channel import KafkaChannelIngress, KafkaChannels, kafka_channel_topic
from wisp.eventing.local_kafka import LocalKafkaError, ensure_topics
from wisp.store import StoreEvent
from wisp.types import Resource


class KafkaChannelReconciler(KindReconciler):
    kind = k.KAFKA_CHANNEL

    def __init__(self, ctx: EventingContext, kafka: KafkaCluster, producer: SharedProducer, channels: KafkaChannels,
                 max_body_bytes: int) -> None:
        super().__init__(ctx)
        self._kafka = kafka
        self._producer = producer
        self.channels = channels
        self._max_body = max_body_bytes
        self._topics: dict[tuple[str, str], tuple[str, str, int, int]] = {}

    def _subscribers(self, channel: Resource) -> list[dict[str, object]]:
        namespace, name = name_of(channel)
        out = []
        for sub in self.ctx.store.list(k.SUBSCRIPTION, namespace):
            ref = sub["spec"].get("channel") or {}
            added = get_condition(sub, "AddedToChannel") or {}
            if ref.get("kind") in ("KafkaChannel", "Channel") and ref.get("name") == name \
                    and added.get("status") == "True":
                out.append({"uid": sub["metadata"]["uid"], "observedGeneration": sub["metadata"].get("generation", 1),
                            "ready": "True"})
        return sorted(out, key=lambda s: str(s["uid"]))

    async def apply(self, channel: Resource) -> None:
        namespace, name = name_of(channel)
        spec = channel["spec"]
        bootstrap = await self._kafka.ensure()
        topic = kafka_channel_topic(namespace, name)
        wanted = (bootstrap, topic, int(spec.get("numPartitions", 1)), int(spec.get("replicationFactor", 1)))
        # Every Subscription change reconciles its channel: the topic is made once, not asked for each time.
        if self._topics.get((namespace, name)) != wanted:
            try:
                await ensure_topics(bootstrap, [topic], partitions=wanted[2], replication_factor=wanted[3])
            except LocalKafkaError as exc:
                self.channels.remove(namespace, name)
                self.write_status(channel, (observed(channel), [
                    Condition.false("TopicReady", "TopicCreationFailed", str(exc))]))
                return
            self._topics[(namespace, name)] = wanted
        if self.channels.get(namespace, name) is None:
            producer = await self._producer.get(bootstrap)
            self.channels.put(KafkaChannelIngress(namespace, name, producer, bootstrap, self._max_body))
        status = {**observed(channel), "address": {"url": f"http://{channel_host(name, namespace)}"}}
        subscribers = self._subscribers(channel)
        if subscribers:
            status["subscribers"] = subscribers
        self.write_status(channel, (status, [Condition.true("TopicReady"), Condition.true("ConfigParsed"),
                                             Condition.true("Addressable"), Condition.true("ChannelServiceReady")]))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        # The topic stays, as eventing-kafka-broker keeps it until its retention ends.
        self.channels.remove(*name_of(resource))
        self._topics.pop(name_of(resource), None)

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        if event.kind is not k.SUBSCRIPTION:
            return []
        ref = (event.resource.get("spec") or {}).get("channel") or {}
        if ref.get("kind") in ("KafkaChannel", "Channel") and ref.get("name"):
            return [(self.kind, event.key[1], str(ref["name"]))]
        return []
