"""Kafka's default partitioner for keyed records, with murmur2 in C.

Every record the worker reads is hashed to find its contact's partition
(:mod:`goal_engine.stream.routing`), and every keyed record it writes is hashed
again by the producer to choose its partition. aiokafka's ``murmur2`` is pure
Python: ~10 us per key, three keys per goal event, a tenth of the worker's CPU
at saturation. The ``murmurhash2`` package computes the same hash in C (~0.4 us);
``tests/unit/test_partitioner.py`` checks it against aiokafka's on arbitrary
keys, so a record lands exactly where Java's and aiokafka's producers put it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from murmurhash2 import murmurhash2

#: The seed of Kafka's murmur2 (Java's ``Utils.murmur2``, aiokafka's ``murmur2``).
KAFKA_SEED = 0x9747B28C


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 of ``key`` (the same value as ``aiokafka.partitioner.murmur2``)."""
    return murmurhash2(key, KAFKA_SEED)


def home_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record with ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def default_partitioner(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """aiokafka's ``DefaultPartitioner``, as the producer calls it (``partitioner=``)."""
    if key is None:  # as aiokafka's: a random available partition
        return random.choice(list(available) or list(all_partitions))
    return all_partitions[home_partition(key, len(all_partitions))]
