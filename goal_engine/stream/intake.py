"""The agent's events, taken from its channel's queue a batch at a time.

Why not ``Stream.take_events``: Faust hands a stream its events one at a time.
Each goes through the stream iterator (a ``sleep(0)``, a full turn of the event
loop, per event), its sensors and a processor that appends it to
``take_events``' buffer, and that processor blocks while the agent works on the
previous batch. Measured in a 20,000-event burst (``bench --burst``): batches of
~50-90 events where the cap is 1,000, with the agent waiting the whole
``within`` before each one. The ack wait per batch (~3 ms) then bounds the
worker, whatever the evaluation costs.

Here the agent reads the queue that Faust's conductor fills (the stream's
channel: ``app.stream`` made it the iterator that the conductor delivers to)
and takes everything that has arrived, up to ``max_size``, without yielding to
the loop per event. While a batch is evaluated, the conductor keeps filling the
queue, so batches grow with the load by themselves and a lone event is not
held back.

Kept from Faust's stream iterator, per event (``faust/_cython/streams.pyx``):

- an event of an older consumer generation, or read while the flow is stopped
  (a rebalance under way), is acknowledged without being evaluated: its
  partition may belong to another worker by now;
- an event of an acking topic is tracked as unacked (``Consumer.track_message``),
  so the consumer never commits past it before it is acknowledged;
- errors thrown into the channel are raised to the agent.

:meth:`BulkIntake.ack` acknowledges a batch after the worker's steps, as
``take_events`` did, so at-least-once is unchanged (see :mod:`.worker`).
"""

from __future__ import annotations

import asyncio
from typing import cast

import faust
from faust.types import EventT
from mode.utils.queues import ThrowableQueue


class BulkIntake:
    def __init__(self, stream: faust.StreamT, max_size: int, linger: float) -> None:
        self.max_size = max_size
        self.linger = linger  # at most this long for more, once a batch has room left
        self._queue = cast(ThrowableQueue, cast(faust.ChannelT, stream.channel).queue)
        app = stream.app
        self._app = app
        self._consumer = app.consumer
        self._acking_topics = app.topics.acking_topics
        self._on_message_out = app.sensors.on_message_out

    async def take(self) -> list[EventT]:
        """The next batch of events to evaluate: at least one, at most ``max_size``."""
        while True:
            events = self._admit(await self._arrived())
            if events:
                return events

    async def _arrived(self) -> list[EventT]:
        queue = self._queue
        arrived = [await queue.get()]  # raises an error thrown into the channel
        self._drain(arrived)
        if self.linger and len(arrived) < self.max_size:
            # Once: let a burst that has begun fill the batch, rather than send it in
            # pieces of a few events, each with its own wait for Kafka.
            await asyncio.sleep(self.linger)
            self._drain(arrived)
        return arrived

    def _drain(self, into: list[EventT]) -> None:
        queue, room = self._queue, self.max_size - len(into)
        # A thrown error would be raised by ``get_nowait`` ahead of the events:
        # stop before it, and the next ``get()`` raises it after this batch.
        while room and queue.qsize() and not queue._errors:
            into.append(queue.get_nowait())
            room -= 1

    def _admit(self, arrived: list[EventT]) -> list[EventT]:
        app, consumer, acking = self._app, self._consumer, self._acking_topics
        generation, flowing = app.consumer_generation_id, app.flow_control.is_active()
        admitted = []
        for event in arrived:
            message = event.message
            if not flowing or message.generation_id != generation:
                self._ack_one(event)  # as Faust does: skipped, and not left in the lag
                continue
            if message.topic in acking and not message.tracked:
                message.tracked = True
                consumer.track_message(message)
            admitted.append(event)
        return admitted

    def ack(self, events: list[EventT]) -> None:
        """The batch is done: its offsets may be committed."""
        for event in events:
            self._ack_one(event)

    def _ack_one(self, event: EventT) -> None:
        if event.ack():  # the last reader of the message: the consumer may commit it
            message = event.message
            self._on_message_out(message.tp, message.offset, message)
