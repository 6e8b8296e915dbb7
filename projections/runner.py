"""``goal-engine projector``: the Kafka consumer loop around :class:`Projector`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from goal_engine.core.config import Settings
from goal_engine.core.metrics import CONSUMER_LAG
from projections import metrics
from projections.projector import VIEWS, Projector, TrackingConflict
from projections.retention import apply_retention

log = logging.getLogger(__name__)


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
    positions = await projector.positions()
    for tp in partitions:
        # Only the synchronous seek here: awaiting seek_to_beginning inside the
        # rebalance callback holds up the heartbeats until the session expires.
        # Offset 0 below the log start falls back to auto_offset_reset="earliest".
        consumer.seek(tp, positions.get((tp.topic, tp.partition), 0))


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
                await apply_retention(conn, retention)
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("retention failed; retrying in an hour", extra={"error": repr(exc)})
            await _wait(stop, 3600)
            continue
        await _wait(stop, 24 * 3600)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


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
                await projector.process_batch(records)
            except TrackingConflict as exc:
                log.warning("tracking conflict, re-seeking", extra={"reason": str(exc)})
                await seek_to_tracking(consumer, projector, consumer.assignment())
                continue
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
            metrics.LAST_BATCH.set_to_current_time()
            record_lag(consumer, batch)
            metrics.BATCH_SIZE.observe(len(records))
            for r in records:
                metrics.PROJECTED.labels(r.topic[len(settings.topic_prefix) :]).inc()
            # Informational only (lag dashboards): the tracking rows are the truth.
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
    finally:
        metrics.READY.set(0)
        stop.set()
        await retention
        await consumer.stop()
        await pool.close()
