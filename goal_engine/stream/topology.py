"""What the worker reads and writes: the Faust app, its topics and the contact table.

Flow (one agent, ``evaluate``, reads every input topic)::

    5 source topics + enrollment topics  (keyed tenant:contact, as the contract asks)
        --evaluate-> workflow.goal.achieved, workflow.exit.goal, goal_engine.dead_letter
    a record NOT in its contact's partition (another key, or another partition count)
        --evaluate-> goal_engine.contact-events (re-keyed) --evaluate-> ...

Partition p of every input topic and of the contact table's changelog goes
to the same worker (Faust's assignor co-partitions the topics of one
partition count), so a record keyed by its contact is evaluated where it was
read: one hop. Only a misrouted record takes the second.

Nothing here decides anything: :mod:`.steps` holds the per-record logic and
:mod:`.worker` the order of the steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TableT

from goal_engine.contract.topics import CONTACT_SCOPED_TOPICS, Topic
from goal_engine.core.config import Settings
from goal_engine.kafka.partitioner import default_partitioner
from goal_engine.stream import transport

#: The topics the worker publishes to.
OUTPUT_TOPICS = (Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL, Topic.DEAD_LETTER)


def new_app(settings: Settings) -> faust.App:
    return transport.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.table_store,
        datadir=str(settings.state_dir),
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A batch of 1,000 goal events is ~5 MB of outputs and changelog; aiokafka sends one
        # record batch per partition per request, one request in flight: 16 KB batches (the
        # default) made that ~6 broker round trips per batch, 512 KB makes it one or two.
        producer_max_batch_size=512 * 1024,
        # Kafka's default partitioner with murmur2 in C: every keyed record sent, and every
        # key the consumer places (kafka/partitioner.py says why).
        producer_partitioner=default_partitioner,
        processing_guarantee="at_least_once",
        broker_commit_every=settings.worker_commit_every,
        table_standby_replicas=0,
        # A killed worker is noticed only when its session expires: until then its
        # partitions wait, even for the same worker restarted.
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_seconds / 3),
    )


@dataclass(frozen=True)
class Topology:
    inputs: faust.TopicT  # every contact-scoped source topic and the re-keyed events, as one stream
    source_names: tuple[str, ...]  # the source topics' names on the broker
    contact_events: faust.TopicT  # the re-keyed events, co-partitioned with ``contacts``
    outputs: Mapping[Topic, faust.TopicT]
    contacts: TableT  # one stored ContactState per tenant:contact (see stored.py)


def build_topology(app: faust.App, settings: Settings, on_recover: Callable[[], Awaitable[None]]) -> Topology:
    def raw_topic(topic: Topic, **kw: Any) -> faust.TopicT:
        return app.topic(settings.topic(topic), key_serializer="raw", value_serializer="raw", **kw)

    source_names = tuple(settings.topic(t) for t in CONTACT_SCOPED_TOPICS)
    contact_events = settings.topic(Topic.CONTACT_EVENTS)
    inputs = app.topic(*source_names, contact_events, key_serializer="raw", value_serializer="raw")
    contacts = app.Table(
        "contacts",
        default=None,
        partitions=settings.partitions,
        # Keys JSON: they come back from the changelog as the same str they went in as.
        # Values raw: each is a JSON document as bytes (see stored.py for why).
        # (Faust picks the changelog's serializer from value_type: bytes is "raw".)
        value_type=bytes,
        schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="json", value_serializer="raw"),
        on_recover=on_recover,
    )
    return Topology(
        inputs=inputs,
        source_names=source_names,
        contact_events=raw_topic(Topic.CONTACT_EVENTS, partitions=settings.partitions),
        outputs={t: raw_topic(t) for t in OUTPUT_TOPICS},
        contacts=contacts,
    )
