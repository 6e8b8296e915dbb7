"""Topic creation (``goal-engine topics``): every topic, its partitions and config."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from goal_engine.contract.topics import CONFIG_TOPICS, Topic
from goal_engine.core.config import Settings

log = logging.getLogger(__name__)

_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    topic: Topic
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """What every topic looks like. Why each choice:

    - contact-scoped topics share one partition count, so the re-keyed stream
      and the worker's contact table are co-partitioned;
    - configuration topics are compacted: each record is a whole workflow
      snapshot, so the newest per key is all a starting worker needs;
    - reference data is kept forever (the catalog is rebuilt from it);
    - published goal events keep 30 days: the read models hold the 2-year log.
    """
    n = settings.partitions
    specs: list[TopicSpec] = []
    for topic in Topic:
        if topic in CONFIG_TOPICS:
            config = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(_DAY_MS)}
        elif topic is Topic.CATALOG_ENTITY_CHANGED:
            # Not compacted: the contract sets no key for it, and a compacted topic
            # refuses unkeyed records. Kept forever so the read model can be rebuilt.
            config = {"retention.ms": "-1"}
        elif topic is Topic.CONTACT_EVENTS:
            config = {"retention.ms": str(7 * _DAY_MS)}
        else:
            config = {"retention.ms": str(30 * _DAY_MS)}
        specs.append(TopicSpec(topic, n, config))
    return specs


async def create_topics(settings: Settings) -> list[str]:
    """Create every missing topic; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="goal-engine-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.topic(s.topic), s.partitions, 1, topic_configs=s.config)
            for s in topic_specs(settings)
            if settings.topic(s.topic) not in existing
        ]
        if not wanted:
            return []
        # Another process may create them between our list and our create.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(wanted)
        created = [t.name for t in wanted]
        log.info("created topics", extra={"topics": created})
        return created
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, names: list[str]) -> list[TopicPartition]:
    """Every partition of these topics, for a consumer that assigns them itself.

    (A consumer without a group has no metadata for topics it has not
    subscribed to, so it cannot list their partitions on its own.)
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="goal-engine-admin")
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if not d["error_code"]
        for p in d["partitions"]
    ]
    if missing := sorted(set(names) - {tp.topic for tp in partitions}):
        raise RuntimeError(f"missing topics {missing}: run `goal-engine topics` first")
    return partitions
