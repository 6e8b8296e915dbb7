"""The projector: folds the engine's events into the PostgreSQL read models.

Modelled on the eventsourcing library's projections: ``process_batch``
``match``es each event on its type and calls the view, and writes the
tracking record (the next offset of each partition) in the **same
transaction**. Steps, in this order:

1. open one transaction for the whole batch;
2. apply every record through its view (idempotent on the event id);
3. advance the tracking row of each partition, guarded so it only moves
   forward: a batch that would move it back (a zombie after a rebalance)
   raises and the transaction rolls back;
4. commit. Only then is the Kafka offset committed, and only for lag
   monitoring: on (re)assignment the projector seeks to its tracking rows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg

from goal_engine.contract.events import CloudEvent, InvalidEvent, parse_event
from goal_engine.contract.topics import Topic
from projections import views

log = logging.getLogger(__name__)

PROJECTION = "read_models"

#: The topics the projector folds, and the view of each.
VIEWS: dict[Topic, Callable[[asyncpg.Connection, CloudEvent, Any], Awaitable[None]]] = {
    Topic.ENROLLMENT_STARTED: views.enrollment_started,
    Topic.ENROLLMENT_ENDED: views.enrollment_ended,
    Topic.GOAL_ACHIEVED: views.goal_achieved,
    Topic.EXIT_GOAL: views.exit_goal,
    Topic.CATALOG_ENTITY_CHANGED: views.catalog_entity_changed,
    # The configuration as the API published it to the engine (compacted topics).
    Topic.GOAL_CONFIGURED: views.workflow_config_published,
    Topic.WORKFLOW_ACTIVATED: views.workflow_config_published,
    Topic.WORKFLOW_DEACTIVATED: views.workflow_config_published,
}


class KafkaRecord(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class TrackingConflict(RuntimeError):
    """Another projector instance has already written past this batch."""


class Projector:
    def __init__(self, pool: asyncpg.Pool, topic_prefix: str = "") -> None:
        self._pool = pool
        self._prefix = topic_prefix

    async def positions(self) -> dict[tuple[str, int], int]:
        rows = await self._pool.fetch(
            "SELECT topic, partition, next_offset FROM projector_tracking WHERE projection = $1",
            PROJECTION,
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def process_batch(self, records: Sequence[KafkaRecord]) -> int:
        """Apply a batch in one transaction; returns how many records were applied."""
        applied = 0
        next_offsets: dict[tuple[str, int], int] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            for record in records:
                next_offsets[(record.topic, record.partition)] = record.offset + 1
                if await self.process_event(conn, record):
                    applied += 1
            for (topic, partition), offset in next_offsets.items():
                moved = await conn.fetchval(
                    """
                    INSERT INTO projector_tracking (projection, topic, partition, next_offset)
                    VALUES ($1, $2, $3, $4)
                    ON CONFLICT (projection, topic, partition) DO UPDATE
                        SET next_offset = EXCLUDED.next_offset, updated_at = now()
                        WHERE projector_tracking.next_offset < EXCLUDED.next_offset
                    RETURNING true
                    """,
                    PROJECTION,
                    topic,
                    partition,
                    offset,
                )
                if not moved:
                    raise TrackingConflict(f"{topic}[{partition}] is already past offset {offset - 1}")
        return applied

    async def process_event(self, conn: asyncpg.Connection, record: KafkaRecord) -> bool:
        event_type = record.topic[len(self._prefix) :]
        try:
            event = parse_event(record.value, expected_type=event_type)
        except InvalidEvent as exc:
            # The worker dead-letters bad records of the topics it reads; here
            # we only make sure one cannot stall the read models.
            log.warning(
                "skipped an invalid record",
                extra={"topic": record.topic, "offset": record.offset, "reason": exc.reason},
            )
            return False
        match Topic(event.type):
            case topic if topic in VIEWS:
                await VIEWS[topic](conn, event, event.typed_data())
                return True
            case _:
                return False
