"""``goal-engine projector``: the Kafka consumer loop around :class:`Projector`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from goal_engine.core.config import Settings
from goal_engine.core.metrics import CONSUMER_LAG
from projections import metrics
from projections.projector import VIEWS, Projector, TrackingConflict, is_transient
from projections.retention import apply_retention

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Backoff between retries while PostgreSQL is unreachable: doubles from the first to the last.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


class _SeekToTracking(ConsumerRebalanceListener):
    """On every assignment, resume from the tracking rows, not Kafka's offsets."""

    def __init__(self, consumer: AIOKafkaConsumer, projector: Projector) -> None:
        self._consumer = consumer
        self._projector = projector

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Another projector owns them now: its lag is its to report.
        for tp in revoked:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove("projector", tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await seek_to_tracking(self._consumer, self._projector, assigned)


async def seek_to_tracking(
    consumer: AIOKafkaConsumer, projector: Projector, partitions: set[TopicPartition]
) -> None:
    # Without a stop event, with_retry returns only once it has the rows.
    positions = await with_retry(projector.positions, "read the tracking rows") or {}
    for tp in partitions:
        # Only the synchronous seek here: awaiting seek_to_beginning inside the
        # rebalance callback holds up the heartbeats until the session expires.
        # Offset 0 below the log start falls back to auto_offset_reset="earliest".
        consumer.seek(tp, positions.get((tp.topic, tp.partition), 0))


async def with_retry(
    attempt: Callable[[], Awaitable[T]], what: str, stop: asyncio.Event | None = None
) -> T | None:
    """``attempt()`` until it succeeds, waiting with backoff while PostgreSQL is unreachable.

    Only transient errors (a restart, a dropped connection) are retried: the attempt is
    one transaction, rolled back whole, and the tracking guard makes a retry after a
    commit whose answer was lost a TrackingConflict, never a second fold. Returns None
    if ``stop`` is set while waiting.
    """
    delay = RETRY_FIRST_SECONDS
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            metrics.DB_RETRIES.inc()
            metrics.READY.set(0)
            extra = {"what": what, "error": repr(exc), "retry_in_s": delay}
            log.warning("PostgreSQL unavailable; retrying", extra=extra)
            if stop is None:
                await asyncio.sleep(delay)
            elif await _wait(stop, delay):
                return None
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            continue
        metrics.READY.set(1)
        return result


def record_lag(consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Any]]) -> None:
    """Lag of the partitions in this batch: the end the broker reported minus our position."""
    for tp, records in batch.items():
        highwater = consumer.highwater(tp)
        if highwater is not None and records:
            lag = max(0, highwater - (records[-1].offset + 1))
            CONSUMER_LAG.labels("projector", tp.topic, str(tp.partition)).set(lag)


async def retention_daily(pool: asyncpg.Pool, retention: timedelta, stop: asyncio.Event) -> None:
    """Keep the achievement log to its retention: at start, then every day."""
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                result = await apply_retention(conn, retention)
        except Exception as exc:  # whatever it is, the daily task must not die silently
            log.exception("retention failed; retrying in an hour", extra={"error": repr(exc)})
            await _wait(stop, 3600)
            continue
        if result.failed:  # each step is logged by apply_retention; the others did run
            await _wait(stop, 3600)
            continue
        await _wait(stop, 24 * 3600)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True if ``stop`` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def run_projector(settings: Settings, stop: asyncio.Event) -> None:
    pool = await asyncpg.create_pool(settings.database_url_asyncpg, min_size=1, max_size=4)
    retention = asyncio.create_task(retention_daily(pool, timedelta(days=settings.retention_days), stop))
    projector = Projector(pool, settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.projector_group,
        client_id="goal-engine-projector",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    topics = [settings.topic(t) for t in VIEWS]
    consumer.subscribe(topics, listener=_SeekToTracking(consumer, projector))
    await consumer.start()
    log.info("projector started", extra={"topics": topics})
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=settings.projector_batch_size)
            metrics.READY.set(1)
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            started = time.perf_counter()
            try:
                folded = await with_retry(partial(projector.process_batch, records), "fold a batch", stop)
            except TrackingConflict as exc:
                log.warning("tracking conflict, re-seeking", extra={"reason": str(exc)})
                await seek_to_tracking(consumer, projector, consumer.assignment())
                continue
            if folded is None:
                break  # stopped while PostgreSQL was unreachable: the batch is read again next start
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
            metrics.LAST_BATCH.set_to_current_time()
            record_lag(consumer, batch)
            metrics.BATCH_SIZE.observe(len(records))
            for tp, rs in batch.items():  # one increment per partition, not per record
                metrics.PROJECTED.labels(tp.topic[len(settings.topic_prefix) :]).inc(len(rs))
            # Informational only (lag dashboards): the tracking rows are the truth, so a
            # commit refused after a rebalance (a long outage) is only logged.
            try:
                await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
            except KafkaError as exc:
                log.warning("Kafka offset commit failed (lag only)", extra={"error": repr(exc)})
    finally:
        metrics.READY.set(0)
        stop.set()
        await retention
        await consumer.stop()
        await pool.close()
