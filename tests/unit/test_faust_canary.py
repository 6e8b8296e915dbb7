"""Canary: the faust-streaming internals that goal_engine.stream.transport relies on.

transport.py corrects faust-streaming 0.15.3 by overriding private methods and
reading private attributes. An upgrade may rename or drop them silently, and
the corrections would then never run (records lost around a rebalance, a hung
shutdown). This test fails loudly instead: re-check each correction against
the new version's code (the faust-streaming issues named in transport.py),
then update the pins below.
"""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from importlib.metadata import version

import faust
from faust import streams as faust_streams
from faust.tables.base import Collection
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from goal_engine.stream import transport

PINNED_FAUST = "0.15.3"


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
    # as_current_event sets the context variable that a table write reads its partition from.
    assert isinstance(faust_streams._current_event, ContextVar)
    assert "current_event()" in inspect.getsource(Collection), "table writes no longer follow current_event"
