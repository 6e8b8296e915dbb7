"""``goal-engine projections rebuild``: the read models again, from the Kafka log alone.

Steps:
1. bring the target database to the newest schema;
2. empty its read models and tracking rows (never the configuration, outbox or
   audit log: those are the API's own records, not projections; the configuration
   *as published* is one, ``published_workflow_configs``, and is rebuilt). The fold's
   audit entries of achievements are written once per achievement id, so a replay into
   a database that has them (in place) adds none;
3. note the end offset of every partition of the projector's topics;
4. read each partition from the beginning up to that offset through the same
   :class:`Projector` the live process uses, in batches, showing progress;
5. the achievements of months the retention has already dropped came back into the
   DEFAULT partition: they are deleted again (they stay counted in the aggregates,
   like every achievement ever made, and their ids stay known to the dedup);
6. the tracking rows now point at those offsets, so a projector started on the
   target goes on from there.
Rebuilding in place needs the live projector stopped; rebuilding into another
database (``--database-url``) can run beside it, e.g. to compare the two.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer

from goal_engine.core.config import Settings
from goal_engine.kafka.admin import topic_partitions
from projections.migrate import upgrade_async
from projections.projector import VIEWS, Projector

log = logging.getLogger(__name__)

READ_MODELS = (
    "enrollments",
    "workflow_goal_achievements",
    "workflow_stats",
    "workflow_goal_type_stats",
    "catalog_entities",
    "workflow_activity_hourly",
    "workflow_goal_type_hourly",
    "workflow_time_to_goal_histogram",
    "workflow_goal_type_time_to_goal_histogram",
    "workflow_time_to_goal_bins",
    "workflow_goal_type_time_to_goal_bins",
    "workflow_activity_daily",
    "workflow_goal_type_daily",
    "workflow_time_to_goal_histogram_daily",
    "workflow_goal_type_time_to_goal_histogram_daily",
    "achievement_ids",
    "published_workflow_configs",
    "projector_tracking",
)

Progress = Callable[[int, int, float], None]


def print_progress(done: int, total: int, seconds: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / seconds if seconds > 0 else 0.0
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} records, {rate:,.0f}/s ")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def rebuild(settings: Settings, database_url: str, progress: Progress = print_progress) -> int:
    """Rebuild the read models of ``database_url``; returns how many records were read."""
    await upgrade_async(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, client_id="goal-engine-rebuild"
    )
    await consumer.start()
    try:
        await pool.execute(f"TRUNCATE {', '.join(READ_MODELS)}")
        partitions = await topic_partitions(settings, [settings.topic(t) for t in VIEWS])
        consumer.assign(partitions)
        start = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if end[tp] > start[tp]}
        for tp in partitions:
            consumer.seek(tp, start[tp])
        total = sum(end[tp] - start[tp] for tp in partitions)
        projector = Projector(pool, settings.topic_prefix)
        done, started = 0, time.monotonic()
        progress(done, total, 0.0)
        while pending:
            batch = await consumer.getmany(
                *pending, timeout_ms=500, max_records=settings.projector_batch_size
            )
            records = [r for tp, rs in batch.items() for r in rs if r.offset < end[tp]]
            if records:
                await projector.process_batch(records)
                done += len(records)
                progress(min(done, total), total, time.monotonic() - started)
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        progress(total, total, time.monotonic() - started)
        expired = await drop_expired_achievements(pool, timedelta(days=settings.retention_days))
        log.info(
            "read models rebuilt",
            extra={
                "records": done,
                "expired_achievements": expired,
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        return done
    finally:
        await consumer.stop()
        await pool.close()


async def drop_expired_achievements(
    pool: asyncpg.Pool, retention: timedelta, now: datetime | None = None
) -> int:
    """Delete the replayed achievements of months past the retention (as the retention job drops
    their partitions: months that ended before ``now - retention``); how many were deleted."""
    cutoff = (now or datetime.now(UTC)) - retention
    status = await pool.execute(
        "DELETE FROM workflow_goal_achievements_default WHERE achieved_at < date_trunc('month', $1, 'UTC')",
        cutoff,
    )
    return int(status.split()[-1])


def run(settings: Settings, database_url: str) -> int:
    return asyncio.run(rebuild(settings, database_url))
