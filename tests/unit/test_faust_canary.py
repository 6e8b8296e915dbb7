"""Canary: the faust-streaming internals that goal_engine.stream.transport relies on.

transport.py corrects faust-streaming 0.15.3 by overriding private methods and
reading private attributes. An upgrade may rename or drop them silently, and
the corrections would then never run (records lost around a rebalance, a hung
shutdown). This test fails loudly instead: re-check each correction against
the new version's code (the faust-streaming issues named in transport.py),
then update the pins below.
"""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

import aiokafka
import faust
from aiokafka import AIOKafkaProducer
from faust.tables.base import Collection
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import StoreT

from goal_engine.stream import transport

PINNED_FAUST = "0.15.3"
#: sha256 of faust-streaming 0.15.3's Consumer._drain_messages (see correction 5 in transport.py).
DRAIN_MESSAGES_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
#: sha256 of faust-streaming 0.15.3's Stream._py_aiter, whose per-event checks stream/intake.py keeps.
STREAM_ITERATOR_SHA256 = "3a48ee257a65435b482d51edb74f2993a67867949b1ef89b49fea893769e0614"


def test_faust_streaming_is_the_version_the_corrections_were_written_for() -> None:
    assert version("faust-streaming") == PINNED_FAUST, (
        "faust-streaming changed: re-check goal_engine/stream/transport.py against it, "
        "then update PINNED_FAUST"
    )


def _parameters(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_the_overridden_methods_still_exist_with_the_same_parameters() -> None:
    overridden = {
        (faust_aiokafka.AIOKafkaConsumerThread, "seek_to_committed"): ["self"],
        (faust_aiokafka.AIOKafkaConsumerThread, "call_thread"): ["self", "fun", "args", "kwargs"],
        (faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer"): ["self"],
        (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"): ["self", "transport"],
        (faust_aiokafka.Consumer, "_new_consumer_thread"): ["self"],
        (faust_aiokafka.Consumer, "_getmany"): ["self", "active_partitions", "timeout"],
        (faust_consumer.Consumer, "perform_seek"): ["self"],
        (faust_consumer.Consumer, "_new_offset"): ["self", "tp"],
        (faust_consumer.Consumer, "stop_flow"): ["self"],
        (faust.App, "_new_transport"): ["self"],
        (faust.App, "_stop_consumer"): ["self"],
        (faust.App, "_stop_fetcher"): ["self"],
        (faust.App, "_consumer_wait_empty"): ["self", "consumer", "logger"],
    }
    for (cls, name), parameters in overridden.items():
        method = getattr(cls, name, None)
        assert method is not None, f"{cls.__qualname__}.{name} is gone"
        assert _parameters(method) == parameters, f"{cls.__qualname__}.{name} changed its signature"
    assert issubclass(transport._Transport, faust_aiokafka.Transport)
    assert transport._Transport.Consumer is transport._Consumer


def test_the_private_state_the_corrections_read_is_still_there() -> None:
    # _new_offset reads the consumer's per-partition bookkeeping.
    source = inspect.getsource(faust_consumer.Consumer)
    for attribute in ("self._acked", "self._committed_offset", "self._gap"):
        assert attribute in source, f"Consumer no longer keeps {attribute}"


def test_what_the_worker_calls_one_level_under_the_topic_and_table_api() -> None:
    # worker.py sends outputs and the table's changelog through Faust's producer itself,
    # writes the table's store directly, and routes by the consumer's partition counts.
    called = {
        (faust_aiokafka.Producer, "send"): [
            "self",
            "topic",
            "key",
            "value",
            "partition",
            "timestamp",
            "headers",
            "transactional_id",
        ],
        (faust_aiokafka.Consumer, "topic_partitions"): ["self", "topic"],
        (StoreT, "set_persisted_offset"): ["self", "tp", "offset"],
    }
    for (cls, name), parameters in called.items():
        assert _parameters(getattr(cls, name)) == parameters, f"{cls.__qualname__}.{name} changed"
    # The changelog records the worker writes are the ones Faust's table writes and recovers:
    # partition of the event, key through the table's key serializer, value as given.
    source = inspect.getsource(Collection.send_changelog)
    assert "key_serializer" in source and "partition" in source
    assert inspect.getsource(Collection._on_changelog_sent).count("set_persisted_offset") == 1


def test_what_the_batch_sender_reads_of_faust_and_aiokafka() -> None:
    # sending.py takes aiokafka's producer from Faust's, partitions keyed records with the
    # producer's partitioner over the cluster metadata (as AIOKafkaProducer._partition does),
    # and sends record batches.
    assert _parameters(faust_aiokafka.Producer._ensure_producer) == ["self"]
    partition_source = inspect.getsource(AIOKafkaProducer._partition)
    assert "self._partitioner(serialized_key, all_partitions, available)" in partition_source
    assert "list(self._metadata.partitions_for_topic(topic))" in partition_source
    assert "self._metadata = self.client.cluster" in inspect.getsource(AIOKafkaProducer.__init__)
    assert _parameters(AIOKafkaProducer.send_batch) == ["self", "batch", "topic", "partition"]
    assert _parameters(AIOKafkaProducer.create_batch) == ["self"]


def test_the_fetch_loop_that_correction_5_reproduces_is_unchanged() -> None:
    # transport._Consumer._drain_messages is Faust's loop with one wait_first per fetch
    # instead of per record: any change to Faust's loop must be carried over by hand.
    source = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == DRAIN_MESSAGES_SHA256, (
        "faust's Consumer._drain_messages changed: carry the change into transport._Consumer"
    )
    assert _parameters(faust_consumer.Consumer._add_gap) == ["self", "tp", "offset_from", "offset_to"]
    assert _parameters(faust_consumer.Consumer.getmany) == ["self", "timeout"]
    source = inspect.getsource(faust_consumer.Consumer)
    for attribute in ("self._read_offset", "self._commit_every", "self._n_acked", "self.suspend_flow"):
        assert attribute in source, f"Consumer no longer keeps {attribute}"


def test_the_fetch_wait_that_correction_6_shortens_is_still_faust_s_and_aiokafka_s() -> None:
    # Faust hard-codes the wait; aiokafka's consumer hands its attribute to the fetcher at start.
    source = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in source, "Faust's fetch wait changed: re-check correction 6"
    start = inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start


def test_what_the_bulk_intake_reads_of_faust_stream_machinery() -> None:
    # stream/intake.py reads the queue that the conductor fills: the stream's channel is the
    # iterator clone app.stream makes, and it keeps the checks of Faust's stream iterator.
    from faust.streams import Stream

    assert "channel=aiter(channel)" in inspect.getsource(faust.App.stream)
    assert (
        hashlib.sha256(inspect.getsource(Stream._py_aiter).encode()).hexdigest() == STREAM_ITERATOR_SHA256
    ), "faust's stream iterator changed: carry its per-event checks into stream/intake.py"
    source = inspect.getsource(Stream._py_aiter)
    for used in (
        "chan_queue._errors",
        "self.app.flow_control.is_active()",
        "self.app.consumer_generation_id",
        "message.tracked",
        "acking_topics",
    ):
        assert used in source, f"Faust's stream iterator no longer reads {used}"
    assert _parameters(faust_consumer.Consumer.track_message) == ["self", "message"]
    assert "def on_message_out" in inspect.getsource(faust.Sensor)
