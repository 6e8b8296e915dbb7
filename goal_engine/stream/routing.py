"""Which records the worker evaluates where it read them, and which it re-keys first.

A contact's state lives in partition ``p`` of the contact table, ``p`` being
its key's partition (Kafka's default partitioner: murmur2 of
``{tenantid}:{subject}``, modulo the partition count). Faust gives partition
``p`` of every input topic with the table's partition count to the worker that
holds table partition ``p``. So a source record is evaluated where it was read
exactly when it sits in its contact's partition: the producer keyed it as the
contract asks, with the default partitioner, on a topic of the table's
partition count. Any other record (another key, a custom partitioner, a topic
created with another partition count) is re-keyed onto
``goal_engine.contact-events``, which the worker creates itself and reads too.
"""

from __future__ import annotations

import faust

from goal_engine.core.config import Settings
from goal_engine.kafka.partitioner import home_partition
from goal_engine.stream.steps import SourceRecord
from goal_engine.stream.topology import Topology


class Routing:
    def __init__(self, app: faust.App, topology: Topology, settings: Settings) -> None:
        self._app = app
        self._changelog = topology.contacts.changelog_topic.get_topic_name()
        self.contact_events = topology.contact_events.get_topic_name()
        prefix = len(settings.topic_prefix)
        self._types = {name: name[prefix:] for name in topology.source_names}
        self._copartitioned: dict[str, int | None] = {}  # topic -> its partition count if the table's

    def expected_type(self, topic: str) -> str | None:
        """The event type a source topic carries (None: the re-keyed topic carries them all)."""
        return self._types.get(topic)

    def at_home(self, record: SourceRecord, key: bytes) -> bool:
        """Whether ``record`` is in the partition of its contact ``key`` (else: re-key it)."""
        if record.topic == self.contact_events:
            return True  # we keyed it
        if record.key != key:
            return False
        partitions = self.copartitioned(record.topic)
        return partitions is not None and home_partition(key, partitions) == record.partition

    def copartitioned(self, topic: str) -> int | None:
        """``topic``'s partition count if it is the contact table's (so Faust assigns its
        partition ``p`` with the table's ``p``), else None; read from the consumer's metadata
        once per topic."""
        if topic in self._copartitioned:
            return self._copartitioned[topic]
        consumer = self._app.consumer
        count, table = consumer.topic_partitions(topic), consumer.topic_partitions(self._changelog)
        if count is None or table is None:
            return None  # metadata not there yet (not cached): re-keying is always correct
        self._copartitioned[topic] = count if count == table else None
        return self._copartitioned[topic]
