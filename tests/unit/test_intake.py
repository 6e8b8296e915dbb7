"""BulkIntake over Faust's own app, topic, stream, queue and consumer bookkeeping (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import cast

import faust
import pytest
from faust.events import Event
from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer
from faust.types import TP, ConsumerMessage
from mode.utils.queues import ThrowableQueue

from goal_engine.stream.intake import BulkIntake

TOPIC = "contact.tag.added"


@pytest.fixture
def app() -> Iterator[faust.App]:
    app = faust.App("test-intake", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)
    app.flow_control.resume()  # as after a rebalance: records flow
    cast(Conductor, app.topics)._acking_topics.add(
        TOPIC
    )  # the conductor does this for every subscribed topic
    yield app


def _queue(stream: faust.StreamT) -> ThrowableQueue:
    return cast(ThrowableQueue, cast(faust.ChannelT, stream.channel).queue)


def _consumer(app: faust.App) -> Consumer:
    return cast(Consumer, app.consumer)


def _stream(app: faust.App) -> faust.StreamT:
    return app.stream(app.topic(TOPIC, key_serializer="raw", value_serializer="raw"))


def _event(app: faust.App, offset: int, generation: int | None = None) -> Event:
    """A record as Faust's aiokafka consumer makes it (``_to_message``): tracked until acked."""
    generation = app.consumer_generation_id if generation is None else generation
    message = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"t:c", b"{}", None, generation_id=generation)
    return Event(app, b"t:c", b"{}", {}, message)


def _arrive(stream: faust.StreamT, *events: Event) -> None:
    for event in events:
        _queue(stream).put_nowait(event)  # what the conductor's delivery does


def _offsets(events: list) -> list[int]:
    return [e.message.offset for e in events]


async def test_a_batch_is_everything_that_has_arrived_up_to_the_cap(app: faust.App) -> None:
    stream = _stream(app)
    _arrive(stream, *(_event(app, i) for i in range(7)))
    intake = BulkIntake(stream, max_size=5, linger=0)
    assert _offsets(await intake.take()) == [0, 1, 2, 3, 4]
    assert _offsets(await intake.take()) == [5, 6]


async def test_a_lone_event_is_taken_without_waiting_for_more(app: faust.App) -> None:
    stream = _stream(app)
    intake = BulkIntake(stream, max_size=1000, linger=0)
    taking = asyncio.ensure_future(intake.take())
    await asyncio.sleep(0.01)
    assert not taking.done()  # nothing has arrived
    _arrive(stream, _event(app, 0))
    assert _offsets(await asyncio.wait_for(taking, 1)) == [0]


async def test_linger_lets_a_burst_that_has_begun_join_the_batch(app: faust.App) -> None:
    stream = _stream(app)
    _arrive(stream, _event(app, 0))
    asyncio.get_running_loop().call_later(0.01, _arrive, stream, _event(app, 1), _event(app, 2))
    assert _offsets(await BulkIntake(stream, max_size=1000, linger=0.2).take()) == [0, 1, 2]


async def test_events_are_tracked_until_the_batch_is_acked(app: faust.App) -> None:
    stream, consumer, tp = _stream(app), _consumer(app), TP(TOPIC, 0)
    _arrive(stream, *(_event(app, i) for i in range(3)))
    intake = BulkIntake(stream, max_size=10, linger=0)
    batch = await intake.take()
    # Unacked: the consumer commits nothing past them, and waits for them at a rebalance.
    assert {m.offset for m in consumer._unacked_messages} == {0, 1, 2}
    assert consumer._acked[tp] == []
    intake.ack(batch)
    assert consumer._acked[tp] == [0, 1, 2]
    assert not consumer._unacked_messages


async def test_an_event_of_an_older_generation_is_acked_and_not_evaluated(app: faust.App) -> None:
    stream = _stream(app)
    old = app.consumer_generation_id - 1
    _arrive(stream, _event(app, 0, old), _event(app, 1), _event(app, 2, old))
    intake = BulkIntake(stream, max_size=10, linger=0)
    assert _offsets(await intake.take()) == [1]
    assert sorted(_consumer(app)._acked[TP(TOPIC, 0)]) == [0, 2]  # not left behind in the lag


async def test_nothing_is_evaluated_while_the_flow_is_stopped(app: faust.App) -> None:
    stream = _stream(app)
    _arrive(stream, _event(app, 0))
    app.flow_control.suspend()  # a rebalance has begun: the partition may not be ours
    intake = BulkIntake(stream, max_size=10, linger=0)
    taking = asyncio.ensure_future(intake.take())
    await asyncio.sleep(0.01)
    assert not taking.done()
    assert _consumer(app)._acked[TP(TOPIC, 0)] == [0]
    app.flow_control.resume()
    _arrive(stream, _event(app, 1))
    assert _offsets(await asyncio.wait_for(taking, 1)) == [1]


async def test_an_error_thrown_into_the_channel_comes_after_the_events_before_it(app: faust.App) -> None:
    stream = _stream(app)
    _arrive(stream, _event(app, 0), _event(app, 1))
    _queue(stream)._throw(RuntimeError("upstream failed"))  # no getter waits: it is queued
    intake = BulkIntake(stream, max_size=10, linger=0)
    with pytest.raises(RuntimeError, match="upstream failed"):
        await intake.take()  # as Faust's stream iterator: an error is raised first
    assert _offsets(await intake.take()) == [0, 1]  # and the events are still there


async def test_an_error_thrown_while_a_batch_fills_waits_for_the_next_take(app: faust.App) -> None:
    stream = _stream(app)
    _arrive(stream, _event(app, 0))

    def fail_midway() -> None:
        _arrive(stream, _event(app, 1))
        _queue(stream)._throw(RuntimeError("upstream failed"))

    asyncio.get_running_loop().call_later(0.01, fail_midway)
    intake = BulkIntake(stream, max_size=10, linger=0.1)
    assert _offsets(await intake.take()) == [0]  # taken before the error: not lost with it
    with pytest.raises(RuntimeError, match="upstream failed"):
        await intake.take()
    assert _offsets(await intake.take()) == [1]
