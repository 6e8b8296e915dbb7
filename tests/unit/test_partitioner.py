"""The C murmur2 partitioner places every key exactly where Kafka's default one does."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from goal_engine.core.config import Settings
from goal_engine.kafka.partitioner import default_partitioner, home_partition, murmur2
from goal_engine.stream.topology import new_app

keys = st.binary(max_size=300) | st.text(max_size=120).map(str.encode)


@given(keys)
def test_the_hash_is_kafkas_murmur2(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(keys, st.integers(min_value=1, max_value=500))
def test_a_keyed_record_goes_where_the_default_partitioner_sends_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert default_partitioner(key, partitions, partitions) == expected
    assert home_partition(key, count) == expected


def test_known_keys_land_where_javas_client_puts_them() -> None:
    # From Kafka 4.4's Java client, Utils.toPositive(Utils.murmur2(key)) % 12, so a hash
    # library that agreed with aiokafka but not with Java's producers would still fail.
    java = {b"": 9, b"a": 4, b"acme:c-1": 11, b"tenant-7:contact-000042": 4, b"bench-t5:c-123456789": 5}
    assert {key: home_partition(key, 12) for key in java} == java


def test_an_unkeyed_record_goes_to_an_available_partition() -> None:
    assert default_partitioner(None, [0, 1, 2, 3], [2]) == 2
    assert default_partitioner(None, [0, 1, 2, 3], []) in {0, 1, 2, 3}


def test_the_worker_sends_and_places_keys_with_it() -> None:
    app = new_app(Settings())
    assert app.conf.producer_partitioner is default_partitioner
