"""Bad input stays harmless at speed (engine issue 9): poison records inside a burst of good
ones, and good ones that a producer keyed or partitioned otherwise, over real Kafka.

The worker evaluates records where it reads them when they sit in their contact's
partition, in batches of up to ``evaluate_batch_size``. A poison record in such a batch
must cost its dead letter and nothing more: every good record of the batch still exits,
nothing is retried forever (the group's lag reaches 0), and a record keyed by something
else than its contact is re-keyed and exits too.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer

from goal_engine.bench.events import KafkaRecord
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.kafka.admin import topic_partitions
from tests.integration.helpers import eventually, read_topic
from tests.integration.worker_harness import (
    Exits,
    Producer,
    TagWorkflow,
    Worker,
    isolated_deployment,
    uncommitted,
)

pytestmark = pytest.mark.integration

CONTACTS = 600
POISON_EVERY = 50  # one poison record after every 50th good one, in the same partition
MISKEYED_EVERY = 7  # every 7th tag keyed by something else than its contact


def a_burst(workflow: TagWorkflow) -> tuple[list[KafkaRecord], int]:
    """A tag for every contact (built now: after the enrollments, rule 1), poison in between."""
    burst: list[KafkaRecord] = []
    poisoned = 0
    for i in range(CONTACTS):
        tag = workflow.tag_added(i)
        if i % MISKEYED_EVERY == 0:
            tag = KafkaRecord(tag.topic, f"some-other-key-{i}".encode(), tag.value)
        burst.append(tag)
        if i % POISON_EVERY == 0:
            burst.append(poison(poisoned, workflow.tag_added(i)))
            poisoned += 1
    return burst, poisoned


def poison(i: int, good: KafkaRecord) -> KafkaRecord:
    """Three kinds in turn, each keyed like a good record so it lands among them."""
    values = [
        b'{"specversion": "1.0", "id": ',  # malformed JSON
        json.dumps(
            {"specversion": "1.0", "id": f"p-{i}", "type": "contact.tag.added"}
        ).encode(),  # no envelope
        good.value.replace(b'"tag_id"', b'"tag_idx"'),  # valid envelope, invalid data
    ]
    return KafkaRecord(Topic.TAG_ADDED, good.key, values[i % len(values)])


async def records_on(settings: Settings, topic: Topic) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await topic_partitions(settings, [settings.topic(topic)]))
    finally:
        await consumer.stop()
    return sum(ends.values())


async def test_poison_records_inside_a_burst_cost_their_dead_letters_only(topics: Settings) -> None:
    settings = await isolated_deployment(topics, "poison", evaluate_batch_size=200)
    workflow = TagWorkflow(f"t-{uuid.uuid4().hex[:6]}", "wf-goal", "tag-goal")
    worker = Worker(settings, "one")
    async with Producer(settings) as producer:
        await producer.send([workflow.activated(datetime.now(UTC))])
        worker.start()
        try:
            await worker.hold_enrollments(producer, workflow, CONTACTS)
            burst, poisoned = a_burst(workflow)
            await producer.send(burst)  # all at once: batches full of good and bad records

            everyone = {workflow.enrollment(i) for i in range(CONTACTS)}
            exits = await eventually(
                lambda: Exits.read(settings),
                lambda e: e.count(everyone) == CONTACTS,
                timeout=120,
                what="every good record's exit",
            )
            assert exits.duplicates == 0
            letters = await eventually(
                lambda: read_topic(settings, Topic.DEAD_LETTER, timeout=10),
                lambda found: len(found) >= poisoned,
                what="one dead letter per poison record",
            )
            assert len(letters) == poisoned, "a dead letter for each poison record, and nothing else"
            assert {d["data"]["source_topic"] for d in letters} == {settings.topic(Topic.TAG_ADDED)}
            rekeyed = await records_on(settings, Topic.CONTACT_EVENTS)
            assert rekeyed >= CONTACTS // MISKEYED_EVERY, "the mis-keyed records went through the re-key"
            # Nothing is retried forever: the group commits past every record, poison included.
            await eventually(
                lambda: uncommitted(settings),
                lambda lag: not any(lag.values()),
                timeout=60,
                what="the group to commit every record",
            )
        finally:
            worker.stop()
