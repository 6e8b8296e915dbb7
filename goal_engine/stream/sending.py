"""One batch's outgoing records, handed to Kafka as record batches, not one by one.

Why: a goal event makes three records (achievement, exit, the contact's
changelog), and each record sent through the producer's ``send`` costs a
partitioner call, an accumulator append and a future of its own; at saturation
that was a sixth of the worker's CPU. Here the records of a batch are grouped by
topic-partition in order, appended to one aiokafka ``BatchBuilder`` per
partition, and sent with ``send_batch``: one future per record batch.

What stays the same:

- the partition of a keyed record is the producer's own choice
  (``key_partition``: the default murmur2 partitioner, as ``send`` does);
- order within a partition is the order of the records given;
- the batches join the producer's accumulator, so Faust's flush before each
  offset commit still waits for them (at-least-once, :mod:`.worker` step 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from aiokafka import AIOKafkaProducer
from faust.types import TP, RecordMetadata


class Outgoing(NamedTuple):
    topic: str
    key: bytes
    value: bytes | None
    partition: int | None = None  # None: by key, as the producer's partitioner decides
    timestamp_ms: int | None = None  # None: now
    headers: list[tuple[str, bytes]] | None = None


@dataclass(frozen=True)
class Sent:
    """One record batch on its way: ``ack`` resolves once Kafka has all ``count`` records."""

    ack: asyncio.Future[RecordMetadata]
    count: int

    def last_offset(self) -> int:
        return self.ack.result().offset + self.count - 1


class BatchSender:
    def __init__(self, producer: Callable[[], AIOKafkaProducer]) -> None:
        self._producer = producer  # the worker's: Faust's aiokafka producer, once started
        self._known_topics: set[str] = set()

    async def send(self, records: Iterable[Outgoing]) -> list[Sent]:
        """Queue the records in order; each :class:`Sent` is one partition's record batch."""
        producer = self._producer()
        records = list(records)
        for topic in {r.topic for r in records if r.partition is None} - self._known_topics:
            await producer.partitions_for(topic)  # the partitioner needs its metadata, as send's
            self._known_topics.add(topic)
        by_partition: dict[TP, list[Outgoing]] = {}
        partition_of = _Partitioner(producer)
        for record in records:
            p = record.partition if record.partition is not None else partition_of(record.topic, record.key)
            by_partition.setdefault(TP(record.topic, p), []).append(record)
        sent = []
        for tp, group in by_partition.items():
            batch, count = producer.create_batch(), 0
            for r in group:
                if (
                    batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=r.headers)
                    is None
                ):
                    # Full (max_batch_size): send it, start the next. An empty batch
                    # takes any record the producer's request size allows.
                    sent.append(
                        Sent(await producer.send_batch(batch, tp.topic, partition=tp.partition), count)
                    )
                    batch, count = producer.create_batch(), 0
                    batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=r.headers)
                count += 1
            sent.append(Sent(await producer.send_batch(batch, tp.topic, partition=tp.partition), count))
        return sent


class _Partitioner:
    """The producer's partitioner for keyed records, as ``AIOKafkaProducer.send`` calls it,
    with each topic's partitions read once per batch and each key hashed once
    (a goal event's achievement and exit share their contact's key)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._partitions: dict[str, list[int]] = {}
        self._chosen: dict[tuple[str, bytes], int] = {}

    def __call__(self, topic: str, key: bytes) -> int:
        if (chosen := self._chosen.get((topic, key))) is None:
            if (partitions := self._partitions.get(topic)) is None:
                partitions = self._partitions[topic] = list(
                    self._producer.client.cluster.partitions_for_topic(topic)
                )
            # Keyed: the default partitioner hashes over all partitions (available unused).
            chosen = self._chosen[(topic, key)] = self._producer._partitioner(key, partitions, partitions)
        return chosen
