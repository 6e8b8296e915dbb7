"""Read-model writes, one function per event type, all idempotent.

Each takes the open transaction's connection and the event; a redelivered
event changes nothing (conditional upserts keyed on deterministic ids), and
aggregates move only when a row really changed, so nothing double-counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from goal_engine.contract.events import (
    CatalogEntityChanged,
    CloudEvent,
    EnrollmentEnded,
    EnrollmentStarted,
    ExitGoal,
    GoalAchieved,
    GoalConfigured,
    WorkflowStatusChanged,
)
from projections.histogram import bin_of


async def enrollment_started(conn: asyncpg.Connection, event: CloudEvent, data: EnrollmentStarted) -> None:
    counted = await conn.fetchval(
        """
        INSERT INTO enrollments (tenant_id, enrollment_id, workflow_id, contact_id, status,
                                 start_seen, enrolled_at)
        VALUES ($1, $2, $3, $4, 'active', true, $5)
        ON CONFLICT (tenant_id, enrollment_id) DO UPDATE
            SET start_seen = true, enrolled_at = EXCLUDED.enrolled_at
            WHERE NOT enrollments.start_seen
        RETURNING true
        """,
        event.tenantid,
        data.enrollment_id,
        data.workflow_id,
        event.subject,
        event.time,
    )
    if counted:
        key = (event.tenantid, data.workflow_id)
        await _upsert(conn, _STATS, {key: [1, 0, 0, 0.0]})
        for unit, sql in _ACTIVITY:
            await _upsert(conn, sql, {(*key, _truncate(event.time, unit)): [1, 0, 0, 0.0]})


async def enrollment_ended(conn: asyncpg.Connection, event: CloudEvent, data: EnrollmentEnded) -> None:
    # A goal exit is final: an end reported after it does not overwrite it.
    await conn.execute(
        """
        INSERT INTO enrollments (tenant_id, enrollment_id, workflow_id, contact_id, status, ended_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (tenant_id, enrollment_id) DO UPDATE
            SET status = EXCLUDED.status, ended_at = EXCLUDED.ended_at
            WHERE enrollments.status = 'active'
        """,
        event.tenantid,
        data.enrollment_id,
        data.workflow_id,
        event.subject,
        data.reason,
        event.time,
    )


async def catalog_entity_changed(
    conn: asyncpg.Connection, event: CloudEvent, data: CatalogEntityChanged
) -> None:
    # Last writer by event time wins, so a reordered older change cannot undo a newer one.
    await conn.execute(
        """
        INSERT INTO catalog_entities (tenant_id, kind, entity_id, name, parent_id, deleted, changed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (tenant_id, kind, entity_id) DO UPDATE
            SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id,
                deleted = EXCLUDED.deleted, changed_at = EXCLUDED.changed_at
            WHERE catalog_entities.changed_at <= EXCLUDED.changed_at
        """,
        event.tenantid,
        data.kind,
        data.entity_id,
        data.name,
        data.parent_id,
        data.deleted,
        event.time,
    )


async def workflow_config_published(
    conn: asyncpg.Connection, event: CloudEvent, data: GoalConfigured | WorkflowStatusChanged
) -> None:
    """Every configuration event carries the whole snapshot: keep the newest version.

    The guard on ``version`` makes it idempotent (the same version again changes
    nothing) and forward-only (a reordered older snapshot, or a replay of the
    topic from its start, never moves a workflow back).
    """
    snapshot = data.workflow
    await conn.execute(
        """
        INSERT INTO published_workflow_configs (tenant_id, workflow_id, version, status, logic,
                                                activated_at, goals, published_at, event_id, event_type)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (tenant_id, workflow_id) DO UPDATE
            SET version = EXCLUDED.version, status = EXCLUDED.status, logic = EXCLUDED.logic,
                activated_at = EXCLUDED.activated_at, goals = EXCLUDED.goals,
                published_at = EXCLUDED.published_at, event_id = EXCLUDED.event_id,
                event_type = EXCLUDED.event_type
            WHERE published_workflow_configs.version < EXCLUDED.version
        """,
        event.tenantid,
        snapshot.workflow_id,
        snapshot.version,
        snapshot.status,
        snapshot.logic,
        snapshot.activated_at,
        json.dumps([goal.model_dump(mode="json") for goal in snapshot.goals]),
        event.time,
        event.id,
        event.type,
    )


# --- achievements and exits, many at once (projections/projector.py's fast path) ----------
# The two views that carry every achievement fold a batch in a few statements: one
# INSERT ... SELECT FROM unnest(...) of the rows that are new, then one upsert per aggregate
# table with the new rows summed per key in Python (an upsert may not touch a row twice).
# Only new rows move the aggregates, so a redelivery inside or across batches changes
# nothing. The per-event views are these with one event: one implementation.

_UNITS = ("hour", "day")


def _per_grain(sql: str, hourly: str, daily: str) -> tuple[tuple[str, str], ...]:
    """Each rollup is kept per hour and per day (UTC): a window reads whole days from the
    daily table and only its edge hours from the hourly one (projections/analytics.py).
    One upsert per grain, as (unit, statement): ``{table}`` is the grain's table."""
    return tuple(zip(_UNITS, (sql.format(table=hourly), sql.format(table=daily)), strict=True))


def _truncate(at: datetime, unit: str) -> datetime:
    """date_trunc(unit, at, 'UTC') for the units of :data:`_UNITS`."""
    hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour.replace(hour=0) if unit == "day" else hour


def _columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows to columns: unnest's arguments."""
    return [list(column) for column in zip(*rows, strict=True)]


class _Rollups:
    """A batch's sums for one view's rollups, then one upsert per table: per key, its totals
    (all time, and per grain at the event's bucket) and, when its time to goal is known,
    its timed sums in the time's bin (all time, and per grain)."""

    def __init__(
        self,
        totals: str,
        totals_per_grain: tuple[tuple[str, str], ...],
        bins: str,
        bins_per_grain: tuple[tuple[str, str], ...],
    ) -> None:
        self._totals, self._totals_per_grain = totals, totals_per_grain
        self._bins, self._bins_per_grain = bins, bins_per_grain
        self._sums: dict[str, dict[tuple[Any, ...], list[float]]] = {}  # per upsert statement

    def add(
        self,
        key: tuple[Any, ...],
        at: datetime,
        amounts: Sequence[float],
        timed: tuple[float, Sequence[float]] | None,
    ) -> None:
        """``amounts`` at ``at`` under ``key``; ``timed``: (its time to goal, the timed amounts)."""
        self._add(self._totals, key, amounts)
        for unit, sql in self._totals_per_grain:
            self._add(sql, (*key, _truncate(at, unit)), amounts)
        if timed is None:
            return
        bin_ = bin_of(timed[0])
        self._add(self._bins, (*key, bin_), timed[1])
        for unit, sql in self._bins_per_grain:
            self._add(sql, (*key, _truncate(at, unit), bin_), timed[1])

    def _add(self, sql: str, key: tuple[Any, ...], amounts: Sequence[float]) -> None:
        sums = self._sums.setdefault(sql, {}).setdefault(key, [0] * len(amounts))  # counts stay ints
        for i, amount in enumerate(amounts):
            sums[i] += amount

    async def write(self, conn: asyncpg.Connection) -> None:
        for sql, totals in self._sums.items():
            await _upsert(conn, sql, totals)


async def _upsert(
    conn: asyncpg.Connection, sql: str, totals: Mapping[tuple[Any, ...], Sequence[float]]
) -> None:
    """One upsert of every key's totals; ``sql`` takes key columns then totals, as arrays.
    In key order: the rows are locked in the index's order (two projectors overlapping
    after a rebalance take them in the same order, so they wait, never deadlock)."""
    if totals:
        await conn.execute(sql, *_columns((*key, *totals[key]) for key in sorted(totals)))


async def goal_achieved(conn: asyncpg.Connection, event: CloudEvent, data: GoalAchieved) -> None:
    await goal_achieved_many(conn, [(event, data)])


async def goal_achieved_many(
    conn: asyncpg.Connection, items: Sequence[tuple[CloudEvent, GoalAchieved]]
) -> None:
    # Deduplicated on the deterministic id alone: an achievement re-emitted with another
    # achieved_at (a retried evaluation) is the same achievement and counts once; in a batch
    # the first one stands, as it would folded one by one.
    first: dict[tuple[str, str], GoalAchieved] = {}
    for event, data in items:
        first.setdefault((event.tenantid, data.id), data)
    if not first:
        return
    candidates = list(first.items())
    fresh = await conn.fetch(
        """
        WITH new AS (
            INSERT INTO achievement_ids (tenant_id, id)
            SELECT t, id::uuid FROM unnest($1::text[], $2::text[]) AS u(t, id)
            ON CONFLICT DO NOTHING
            RETURNING tenant_id, id
        )
        -- which of the candidates are new, by position (RETURNING has only the table's columns)
        SELECT u.n FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(t, id, n)
        JOIN new ON new.tenant_id = u.t AND new.id = u.id::uuid
        """,
        *_columns(key for key, _ in candidates),
    )
    inserted = {r["n"] for r in fresh}
    new = [(tenant, data) for n, ((tenant, _), data) in enumerate(candidates, 1) if n in inserted]
    if not new:
        return
    times = await _times_to_goal(conn, new)
    await conn.execute(
        """
        INSERT INTO workflow_goal_achievements (tenant_id, id, workflow_id, workflow_enrollment_id,
            contact_id, goal_config_id, goal_type, achieved_at, trigger_event, metadata,
            time_to_goal_seconds)
        SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::timestamptz[], $9::jsonb[], $10::jsonb[], $11::float8[])
        ON CONFLICT (tenant_id, id, achieved_at) DO NOTHING
        """,
        *_columns(
            (t, d.id, d.workflow_id, d.workflow_enrollment_id, d.contact_id, d.goal_config_id, d.goal_type,
             d.achieved_at, d.trigger_event.model_dump_json(), json.dumps(d.metadata), seconds)
            for (t, d), seconds in zip(new, times, strict=True)
        ),
    )  # fmt: skip
    rollups = _Rollups(_GOAL_TYPE_STATS, _GOAL_TYPE_ACTIVITY, _GOAL_TYPE_BINS, _GOAL_TYPE_TIMING)
    for (tenant, data), seconds in zip(new, times, strict=True):
        # An unknown time to goal (seconds None) is counted as achieved, not timed.
        timing = None if seconds is None else (seconds, (1, seconds))
        rollups.add((tenant, data.workflow_id, data.goal_type), data.achieved_at, (1,), timing)
    await rollups.write(conn)
    # The contract's audit entry of the achievement: once per achievement id, so a replay of
    # the log into this database (an in-place rebuild) does not write it again.
    await conn.execute(
        """
        INSERT INTO audit_log (tenant_id, at, actor, action, entity_type, entity_id, after, achievement_id)
        SELECT t, at, 'goal-engine', 'goal.achieved', 'enrollment', en, a, id
        FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::uuid[]) AS u(t, at, en, a, id)
        ON CONFLICT (tenant_id, achievement_id) WHERE achievement_id IS NOT NULL DO NOTHING
        """,
        *_columns((t, d.achieved_at, d.workflow_enrollment_id, d.model_dump_json(), d.id) for t, d in new),
    )


async def _times_to_goal(conn: asyncpg.Connection, new: list[tuple[str, GoalAchieved]]) -> list[float | None]:
    """Seconds from each enrollment to its achievement; None when the start is unknown."""
    # Achievements published before they carried enrolled_at: the start, if already projected.
    missing = [(t, d.workflow_enrollment_id) for t, d in new if d.enrolled_at is None]
    starts: dict[tuple[str, str], datetime] = {}
    if missing:
        found = await conn.fetch(
            """
            SELECT e.tenant_id, e.enrollment_id, e.enrolled_at FROM enrollments e
            JOIN unnest($1::text[], $2::text[]) AS u(t, en) ON e.tenant_id = u.t AND e.enrollment_id = u.en
            WHERE e.enrolled_at IS NOT NULL
            """,
            *_columns(missing),
        )
        starts = {(r["tenant_id"], r["enrollment_id"]): r["enrolled_at"] for r in found}
    times: list[float | None] = []
    for tenant, data in new:
        enrolled_at = data.enrolled_at or starts.get((tenant, data.workflow_enrollment_id))
        times.append(
            None if enrolled_at is None else max(0.0, (data.achieved_at - enrolled_at).total_seconds())
        )
    return times


_GOAL_TYPE_STATS = """
    INSERT INTO workflow_goal_type_stats AS s (tenant_id, workflow_id, goal_type, achieved)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
    ON CONFLICT (tenant_id, workflow_id, goal_type) DO UPDATE SET achieved = s.achieved + EXCLUDED.achieved
"""
_GOAL_TYPE_BINS = """
    INSERT INTO workflow_goal_type_time_to_goal_bins AS b
        (tenant_id, workflow_id, goal_type, bin, achievements, seconds)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::float8[])
    ON CONFLICT (tenant_id, workflow_id, goal_type, bin)
        DO UPDATE SET achievements = b.achievements + EXCLUDED.achievements,
                      seconds = b.seconds + EXCLUDED.seconds
"""
_GOAL_TYPE_ACTIVITY = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, goal_type, bucket, achieved)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[])
    ON CONFLICT (tenant_id, workflow_id, goal_type, bucket)
        DO UPDATE SET achieved = h.achieved + EXCLUDED.achieved
    """,
    "workflow_goal_type_hourly",
    "workflow_goal_type_daily",
)
_GOAL_TYPE_TIMING = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, goal_type, bucket, bin, achievements, seconds)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int[], $6::bigint[],
                         $7::float8[])
    ON CONFLICT (tenant_id, workflow_id, goal_type, bucket, bin)
        DO UPDATE SET achievements = h.achievements + EXCLUDED.achievements,
                      seconds = h.seconds + EXCLUDED.seconds
    """,
    "workflow_goal_type_time_to_goal_histogram",
    "workflow_goal_type_time_to_goal_histogram_daily",
)


async def exit_goal(conn: asyncpg.Connection, event: CloudEvent, data: ExitGoal) -> None:
    await exit_goal_many(conn, [(event, data)])


async def exit_goal_many(conn: asyncpg.Connection, items: Sequence[tuple[CloudEvent, ExitGoal]]) -> None:
    # One row per enrollment, the first exit: folded one by one, a later exit of the same
    # enrollment finds it completed_goal and changes nothing (and an upsert may not touch a
    # row twice). The row keeps the seconds its exit is counted with: a window's partial
    # hours count from it.
    first: dict[tuple[str, str], ExitGoal] = {}
    for event, data in items:
        first.setdefault((event.tenantid, data.workflow_enrollment_id), data)
    if not first:
        return
    changed = await conn.fetch(
        """
        INSERT INTO enrollments AS e (tenant_id, enrollment_id, workflow_id, contact_id, status,
                                      enrolled_at, ended_at, goal_config_ids, time_to_goal_seconds)
        SELECT t, en, wf, c, 'completed_goal', st, ex, ARRAY(SELECT jsonb_array_elements_text(g)),
               CASE WHEN st IS NOT NULL THEN greatest(0.0, extract(epoch FROM ex - st)::float8) END
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                    $7::jsonb[]) AS u(t, en, wf, c, st, ex, g)
        ON CONFLICT (tenant_id, enrollment_id) DO UPDATE
            SET status = 'completed_goal', ended_at = EXCLUDED.ended_at,
                goal_config_ids = EXCLUDED.goal_config_ids,
                enrolled_at = coalesce(e.enrolled_at, EXCLUDED.enrolled_at),
                time_to_goal_seconds = CASE WHEN coalesce(e.enrolled_at, EXCLUDED.enrolled_at) IS NOT NULL
                    THEN greatest(0.0, extract(epoch FROM EXCLUDED.ended_at
                                               - coalesce(e.enrolled_at, EXCLUDED.enrolled_at))::float8)
                    END
            -- An end that happened before the goal stands, whatever order the topics came in.
            WHERE e.status = 'active' OR (e.status <> 'completed_goal' AND e.ended_at > EXCLUDED.ended_at)
        RETURNING tenant_id, enrollment_id, ended_at, time_to_goal_seconds
        """,
        *_columns(
            (t, en, d.workflow_id, d.contact_id, d.enrolled_at, d.exited_at, json.dumps(d.goal_config_ids))
            for (t, en), d in first.items()
        ),
    )
    rollups = _Rollups(_STATS, _ACTIVITY, _EXIT_BINS, _EXIT_HISTOGRAM)
    for row in changed:
        tenant, seconds = row["tenant_id"], row["time_to_goal_seconds"]
        key = (tenant, first[(tenant, row["enrollment_id"])].workflow_id)
        if seconds is None:  # counted as an exit, not timed
            rollups.add(key, row["ended_at"], (0, 1, 0, 0.0), None)
        else:
            rollups.add(key, row["ended_at"], (0, 1, 1, seconds), (seconds, (1,)))
    await rollups.write(conn)


_EXIT_BINS = """
    INSERT INTO workflow_time_to_goal_bins AS b (tenant_id, workflow_id, bin, exits)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
    ON CONFLICT (tenant_id, workflow_id, bin) DO UPDATE SET exits = b.exits + EXCLUDED.exits
"""
_EXIT_HISTOGRAM = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, bucket, bin, exits)
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::bigint[])
    ON CONFLICT (tenant_id, workflow_id, bucket, bin) DO UPDATE SET exits = h.exits + EXCLUDED.exits
    """,
    "workflow_time_to_goal_histogram",
    "workflow_time_to_goal_histogram_daily",
)
# Per workflow, key columns then (enrolled, achieved, timed exits, their seconds).
_STATS = """
    INSERT INTO workflow_stats AS s (tenant_id, workflow_id, total_enrolled, goals_achieved,
                                     timed_exits, time_to_goal_seconds)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[])
    ON CONFLICT (tenant_id, workflow_id) DO UPDATE SET
        total_enrolled = s.total_enrolled + EXCLUDED.total_enrolled,
        goals_achieved = s.goals_achieved + EXCLUDED.goals_achieved,
        timed_exits = s.timed_exits + EXCLUDED.timed_exits,
        time_to_goal_seconds = s.time_to_goal_seconds + EXCLUDED.time_to_goal_seconds
"""
_ACTIVITY = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, bucket, enrolled, achieved, timed_exits,
                              time_to_goal_seconds)
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::bigint[],
                         $7::float8[])
    ON CONFLICT (tenant_id, workflow_id, bucket) DO UPDATE
        SET enrolled = h.enrolled + EXCLUDED.enrolled, achieved = h.achieved + EXCLUDED.achieved,
            timed_exits = h.timed_exits + EXCLUDED.timed_exits,
            time_to_goal_seconds = h.time_to_goal_seconds + EXCLUDED.time_to_goal_seconds
    """,
    "workflow_activity_hourly",
    "workflow_activity_daily",
)
