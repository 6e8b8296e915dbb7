"""The projector: folds the engine's events into the PostgreSQL read models.

Modelled on the eventsourcing library's projections: ``process_batch``
``match``es each event on its type and calls the view, and writes the
tracking record (the next offset of each partition) in the **same
transaction**. Steps, in this order:

1. open one transaction for the whole batch;
2. apply every record through its view (idempotent on the event id);
3. park every record that cannot be folded (invalid, or its fold raised) in
   ``projector_parked_records`` with its reason;
4. advance the tracking row of each partition, guarded so it only moves
   forward: a batch that would move it back (a zombie after a rebalance)
   raises and the transaction rolls back;
5. commit. Only then is the Kafka offset committed, and only for lag
   monitoring: on (re)assignment the projector seeks to its tracking rows.

A batch is first folded without savepoints, and its achievements and exits set-based
(:data:`BATCHED`: a few statements per batch instead of several per record).
If one record's fold raises, that transaction is rolled back and the batch is
folded again with a savepoint around each record, so the poison record is
parked and the others still fold. Errors of the connection or the server
(:func:`is_transient`) are never a record's fault: they propagate, the whole
transaction rolls back, and the runner retries the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from goal_engine.contract.events import CloudEvent, InvalidEvent, parse_typed_event
from goal_engine.contract.topics import Topic
from goal_engine.core.database import UNAVAILABLE
from projections import metrics, views

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

#: The views that fold many events of their topic in a few statements (set-based): on the
#: fast path a batch's events of these topics go through them together, after the others
#: (the order across topics in a batch is arbitrary already: the views do not depend on it).
BATCHED: dict[Topic, Callable[[asyncpg.Connection, Sequence[tuple[CloudEvent, Any]]], Awaitable[None]]] = {
    Topic.GOAL_ACHIEVED: views.goal_achieved_many,
    Topic.EXIT_GOAL: views.exit_goal_many,
}

#: Failures of the connection or the server, not of a record: retried, never parked.
TRANSIENT_ERRORS = UNAVAILABLE


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


class KafkaRecord(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class TrackingConflict(RuntimeError):
    """Another projector instance has already written past this batch."""


@dataclass(frozen=True)
class Parked:
    """A record that was not folded, and why: ``kind`` is ``invalid`` (refused by
    ``parse_event``) or ``error`` (anything else raised while parsing or folding it)."""

    record: KafkaRecord
    kind: str
    error: str
    reason: str

    @classmethod
    def of(cls, record: KafkaRecord, exc: BaseException) -> Parked:
        if isinstance(exc, InvalidEvent):
            return cls(record, "invalid", exc.code, exc.reason)
        return cls(record, "error", type(exc).__name__, f"{type(exc).__name__}: {exc}"[:1000])


class _RecordFailed(Exception):
    """One record's fold raised on the fast path: fold the batch again, isolating each record."""


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
        try:
            applied, parked = await self._fold(records, isolate=False)
        except _RecordFailed as failed:
            log.warning(
                "a record failed to fold; folding its batch record by record",
                extra={"error": repr(failed.__cause__)},
            )
            applied, parked = await self._fold(records, isolate=True)
        for p in parked:
            metrics.PARKED.labels(p.record.topic[len(self._prefix) :], p.kind).inc()
            log.error(
                "parked a record the projector cannot fold",
                extra={
                    "topic": p.record.topic,
                    "partition": p.record.partition,
                    "offset": p.record.offset,
                    "error": p.error,
                    "reason": p.reason,
                },
            )
        return applied

    async def _fold(self, records: Sequence[KafkaRecord], *, isolate: bool) -> tuple[int, list[Parked]]:
        applied = 0
        parked: list[Parked] = []
        next_offsets: dict[tuple[str, int], int] = {}
        grouped: dict[Topic, list[tuple[CloudEvent, Any]]] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            for record in records:
                next_offsets[(record.topic, record.partition)] = record.offset + 1
                try:
                    parsed = self._parse(record)
                except Exception as exc:  # parsing touches no database: park it straight away
                    parked.append(Parked.of(record, exc))
                    continue
                if parsed is None:
                    continue
                try:
                    if isolate:
                        async with conn.transaction():  # a savepoint: a failure undoes this record only
                            applied += await self._apply(conn, *parsed)
                    elif (topic := Topic(parsed[0].type)) in BATCHED:
                        grouped.setdefault(topic, []).append(parsed)
                        applied += 1
                    else:
                        applied += await self._apply(conn, *parsed)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    if not isolate:
                        raise _RecordFailed() from exc
                    parked.append(Parked.of(record, exc))
            await self._apply_grouped(conn, grouped)
            await self._park(conn, parked)
            await self._track(conn, next_offsets)
        return applied, parked

    def _parse(self, record: KafkaRecord) -> tuple[CloudEvent, Any] | None:
        """The record's event and its typed data; None for a tombstone (a compacted topic's
        deletion, not poison)."""
        if record.value is None:
            return None
        return parse_typed_event(record.value, expected_type=record.topic[len(self._prefix) :])

    @staticmethod
    async def _apply(conn: asyncpg.Connection, event: CloudEvent, data: Any) -> int:
        match Topic(event.type):
            case topic if topic in VIEWS:
                await VIEWS[topic](conn, event, data)
                return 1
            case _:
                return 0

    @staticmethod
    async def _apply_grouped(
        conn: asyncpg.Connection, grouped: dict[Topic, list[tuple[CloudEvent, Any]]]
    ) -> None:
        for topic, items in grouped.items():
            try:
                await BATCHED[topic](conn, items)
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise _RecordFailed() from exc  # which record is found by folding them one by one

    @staticmethod
    async def _park(conn: asyncpg.Connection, parked: list[Parked]) -> None:
        if not parked:
            return
        # A redelivered batch (the tracking row was behind) parks the same record once.
        await conn.executemany(
            """
            INSERT INTO projector_parked_records
                (projection, topic, partition, "offset", reason, error, value)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT DO NOTHING
            """,
            [
                (
                    PROJECTION,
                    p.record.topic,
                    p.record.partition,
                    p.record.offset,
                    p.reason,
                    p.error,
                    p.record.value,
                )
                for p in parked
            ],
        )

    @staticmethod
    async def _track(conn: asyncpg.Connection, next_offsets: dict[tuple[str, int], int]) -> None:
        """Every partition's tracking row in one statement (in key order, as the rows are
        locked); each moves only forward, and one that would not is a conflict."""
        keys = sorted(next_offsets)
        moved = await conn.fetch(
            """
            INSERT INTO projector_tracking AS t (projection, topic, partition, next_offset)
            SELECT $1, topic, partition, next_offset
            FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(topic, partition, next_offset)
            ORDER BY topic, partition
            ON CONFLICT (projection, topic, partition) DO UPDATE
                SET next_offset = EXCLUDED.next_offset, updated_at = now()
                WHERE t.next_offset < EXCLUDED.next_offset
            RETURNING topic, partition
            """,
            PROJECTION,
            [topic for topic, _ in keys],
            [partition for _, partition in keys],
            [next_offsets[key] for key in keys],
        )
        if len(moved) < len(keys):
            behind = sorted(set(keys) - {(r["topic"], r["partition"]) for r in moved})
            raise TrackingConflict(
                ", ".join(f"{t}[{p}] is already past offset {next_offsets[(t, p)] - 1}" for t, p in behind)
            )
