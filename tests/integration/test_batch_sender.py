"""The worker's record batches land where ``send`` would put each record, in order.

:class:`~goal_engine.stream.sending.BatchSender` partitions keyed records itself
and hands Kafka one record batch per partition. Consumers and the contact table
rely on both: every record of a contact in the partition its key hashes to (the
same as the Java client's), and a partition's records in the order given.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from goal_engine.stream.sending import BatchSender, Outgoing

pytestmark = pytest.mark.integration

PARTITIONS = 12


async def _new_topic(bootstrap: str) -> str:
    name = f"test-batch-sender-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()
    return name


async def _read_all(bootstrap: str, topic: str, expected: int) -> dict[int, list[tuple[bytes, bytes, int]]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        by_partition: dict[int, list[tuple[bytes, bytes, int]]] = {}
        seen = 0
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, f"only {seen} of {expected} records came back"
            for tp, messages in batches.items():
                by_partition.setdefault(tp.partition, []).extend((m.key, m.value, m.offset) for m in messages)
                seen += len(messages)
        return by_partition
    finally:
        await consumer.stop()


async def test_records_land_in_their_keys_partition_in_order_and_acks_name_the_last_offset(
    kafka_bootstrap: str,
) -> None:
    keyed_topic, placed_topic = await _new_topic(kafka_bootstrap), await _new_topic(kafka_bootstrap)
    # Small batches, so one partition's records span several record batches.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_batch_size=4096)
    await producer.start()
    try:
        keys = [f"tenant-{i % 3}:contact-{i}".encode() for i in range(300)]
        # Three records per key, as a goal event's achievement, exit (and changelog) go.
        records = [
            Outgoing(keyed_topic, k, f"{k.decode()}#{n}".encode() * 20) for n in range(3) for k in keys
        ]
        sender = BatchSender(lambda: producer)
        sent = await sender.send(records)
        assert sum(s.count for s in sent) == len(records)
        assert len(sent) > PARTITIONS, "some partition's records took more than one record batch"
        for s in sent:
            await s.ack

        # Where the producer's own send puts each key.
        expected_partition = {
            k: (await (await producer.send(placed_topic, b"x", key=k))).partition for k in keys
        }

        # An explicit partition (the changelog's) is kept as given.
        placed = await sender.send([Outgoing(placed_topic, b"k", b"v", partition=5)])
        assert (await placed[0].ack).partition == 5
    finally:
        await producer.stop()

    landed = await _read_all(kafka_bootstrap, keyed_topic, len(records))
    for partition, messages in landed.items():
        for key, _, _ in messages:
            assert expected_partition[key] == partition, f"{key!r} is not where send puts it"
        # In the order given: per key #0, #1, #2; and overall the order of the list.
        values = [value for _, value, _ in messages]
        assert values == [r.value for r in records if expected_partition[r.key] == partition]
    # Each ack names its batch; the last offset of a partition's last batch is its last record.
    last_offsets = {s.ack.result().partition: s.last_offset() for s in sent}
    assert last_offsets == {p: messages[-1][2] for p, messages in landed.items()}
