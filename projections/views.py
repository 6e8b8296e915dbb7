"""Read-model writes, one function per event type, all idempotent.

Each takes the open transaction's connection and the event; a redelivered
event changes nothing (conditional upserts keyed on deterministic ids), and
aggregates move only when a row really changed, so nothing double-counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

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
        await _bump_stats(conn, event.tenantid, data.workflow_id, enrolled=1)
        await _bump_activity(conn, event.tenantid, data.workflow_id, event.time, enrolled=1)


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


def _per_grain(sql: str, hourly: str, daily: str) -> tuple[str, ...]:
    """Each rollup is kept per hour and per day (UTC): a window reads whole days from the
    daily table and only its edge hours from the hourly one (projections/analytics.py).
    One upsert per grain: ``{table}`` is the table, ``{unit}`` the date_trunc unit."""
    return (sql.format(table=hourly, unit="hour"), sql.format(table=daily, unit="day"))


_GOAL_TYPE_ACTIVITY = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, goal_type, bucket, achieved)
    VALUES ($1, $2, $3, date_trunc('{unit}', $4::timestamptz, 'UTC'), 1)
    ON CONFLICT (tenant_id, workflow_id, goal_type, bucket) DO UPDATE SET achieved = h.achieved + 1
    """,
    "workflow_goal_type_hourly",
    "workflow_goal_type_daily",
)
_GOAL_TYPE_TIMING = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, goal_type, bucket, bin, achievements, seconds)
    VALUES ($1, $2, $3, date_trunc('{unit}', $4::timestamptz, 'UTC'), $5, 1, $6)
    ON CONFLICT (tenant_id, workflow_id, goal_type, bucket, bin)
        DO UPDATE SET achievements = h.achievements + 1, seconds = h.seconds + EXCLUDED.seconds
    """,
    "workflow_goal_type_time_to_goal_histogram",
    "workflow_goal_type_time_to_goal_histogram_daily",
)


async def goal_achieved(conn: asyncpg.Connection, event: CloudEvent, data: GoalAchieved) -> None:
    # Deduplicated on the deterministic id alone: an achievement re-emitted with another
    # achieved_at (a retried evaluation) is the same achievement and counts once.
    new = await conn.fetchval(
        "INSERT INTO achievement_ids (tenant_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        event.tenantid,
        data.id,
    )
    if not new:
        return
    seconds = await _time_to_goal(conn, event.tenantid, data)
    await conn.execute(
        """
        INSERT INTO workflow_goal_achievements (tenant_id, id, workflow_id, workflow_enrollment_id,
            contact_id, goal_config_id, goal_type, achieved_at, trigger_event, metadata,
            time_to_goal_seconds)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (tenant_id, id, achieved_at) DO NOTHING
        """,
        event.tenantid,
        data.id,
        data.workflow_id,
        data.workflow_enrollment_id,
        data.contact_id,
        data.goal_config_id,
        data.goal_type,
        data.achieved_at,
        data.trigger_event.model_dump_json(),
        json.dumps(data.metadata),
        seconds,
    )
    key = (event.tenantid, data.workflow_id, data.goal_type)
    await conn.execute(
        """
        INSERT INTO workflow_goal_type_stats AS s (tenant_id, workflow_id, goal_type, achieved)
        VALUES ($1, $2, $3, 1)
        ON CONFLICT (tenant_id, workflow_id, goal_type) DO UPDATE SET achieved = s.achieved + 1
        """,
        *key,
    )
    for sql in _GOAL_TYPE_ACTIVITY:
        await conn.execute(sql, *key, data.achieved_at)
    if seconds is not None:  # else its time to goal is unknown: counted as achieved, not timed
        await conn.execute(
            """
            INSERT INTO workflow_goal_type_time_to_goal_bins AS b
                (tenant_id, workflow_id, goal_type, bin, achievements, seconds)
            VALUES ($1, $2, $3, $4, 1, $5)
            ON CONFLICT (tenant_id, workflow_id, goal_type, bin)
                DO UPDATE SET achievements = b.achievements + 1, seconds = b.seconds + EXCLUDED.seconds
            """,
            *key,
            bin_of(seconds),
            seconds,
        )
        for sql in _GOAL_TYPE_TIMING:
            await conn.execute(sql, *key, data.achieved_at, bin_of(seconds), seconds)
    # The contract's audit entry of the achievement: once per achievement id, so a replay of
    # the log into this database (an in-place rebuild) does not write it again.
    await conn.execute(
        """
        INSERT INTO audit_log (tenant_id, at, actor, action, entity_type, entity_id, after, achievement_id)
        VALUES ($1, $2, 'goal-engine', 'goal.achieved', 'enrollment', $3, $4, $5)
        ON CONFLICT (tenant_id, achievement_id) WHERE achievement_id IS NOT NULL DO NOTHING
        """,
        event.tenantid,
        data.achieved_at,
        data.workflow_enrollment_id,
        data.model_dump_json(),
        data.id,
    )


async def _time_to_goal(conn: asyncpg.Connection, tenant_id: str, data: GoalAchieved) -> float | None:
    """Seconds from the enrollment to this achievement; None when the start is unknown."""
    enrolled_at = data.enrolled_at
    if enrolled_at is None:
        # Achievements published before they carried enrolled_at: the start, if already projected.
        enrolled_at = await conn.fetchval(
            "SELECT enrolled_at FROM enrollments WHERE tenant_id = $1 AND enrollment_id = $2",
            tenant_id,
            data.workflow_enrollment_id,
        )
    if enrolled_at is None:
        return None
    return max(0.0, (data.achieved_at - enrolled_at).total_seconds())


_EXIT_HISTOGRAM = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, bucket, bin, exits)
    VALUES ($1, $2, date_trunc('{unit}', $3::timestamptz, 'UTC'), $4, 1)
    ON CONFLICT (tenant_id, workflow_id, bucket, bin) DO UPDATE SET exits = h.exits + 1
    """,
    "workflow_time_to_goal_histogram",
    "workflow_time_to_goal_histogram_daily",
)


async def exit_goal(conn: asyncpg.Connection, event: CloudEvent, data: ExitGoal) -> None:
    # The row keeps the seconds its exit is counted with: a window's partial hours count from it.
    row = await conn.fetchrow(
        """
        INSERT INTO enrollments AS e (tenant_id, enrollment_id, workflow_id, contact_id, status,
                                      enrolled_at, ended_at, goal_config_ids, time_to_goal_seconds)
        VALUES ($1, $2, $3, $4, 'completed_goal', $5, $6, $7,
                CASE WHEN $5::timestamptz IS NOT NULL
                     THEN greatest(0.0, extract(epoch FROM $6::timestamptz - $5::timestamptz)::float8) END)
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
        RETURNING ended_at, time_to_goal_seconds
        """,
        event.tenantid,
        data.workflow_enrollment_id,
        data.workflow_id,
        data.contact_id,
        data.enrolled_at,
        data.exited_at,
        data.goal_config_ids,
    )
    if row is None:
        return  # already recorded
    seconds: float | None = row["time_to_goal_seconds"]
    await _bump_stats(conn, event.tenantid, data.workflow_id, exits=1, time_to_goal=seconds)
    await _bump_activity(
        conn, event.tenantid, data.workflow_id, row["ended_at"], achieved=1, time_to_goal=seconds
    )
    if seconds is not None:
        key = (event.tenantid, data.workflow_id)
        await conn.execute(
            """
            INSERT INTO workflow_time_to_goal_bins AS b (tenant_id, workflow_id, bin, exits)
            VALUES ($1, $2, $3, 1)
            ON CONFLICT (tenant_id, workflow_id, bin) DO UPDATE SET exits = b.exits + 1
            """,
            *key,
            bin_of(seconds),
        )
        for sql in _EXIT_HISTOGRAM:
            await conn.execute(sql, *key, row["ended_at"], bin_of(seconds))


_ACTIVITY = _per_grain(
    """
    INSERT INTO {table} AS h (tenant_id, workflow_id, bucket, enrolled, achieved, timed_exits,
                              time_to_goal_seconds)
    VALUES ($1, $2, date_trunc('{unit}', $3::timestamptz, 'UTC'), $4, $5, $6, $7)
    ON CONFLICT (tenant_id, workflow_id, bucket) DO UPDATE
        SET enrolled = h.enrolled + EXCLUDED.enrolled, achieved = h.achieved + EXCLUDED.achieved,
            timed_exits = h.timed_exits + EXCLUDED.timed_exits,
            time_to_goal_seconds = h.time_to_goal_seconds + EXCLUDED.time_to_goal_seconds
    """,
    "workflow_activity_hourly",
    "workflow_activity_daily",
)


async def _bump_activity(
    conn: asyncpg.Connection,
    tenant_id: str,
    workflow_id: str,
    at: datetime,
    *,
    enrolled: int = 0,
    achieved: int = 0,
    time_to_goal: float | None = None,
) -> None:
    for sql in _ACTIVITY:
        await conn.execute(
            sql,
            tenant_id,
            workflow_id,
            at,
            enrolled,
            achieved,
            1 if time_to_goal is not None else 0,
            time_to_goal or 0.0,
        )


async def _bump_stats(
    conn: asyncpg.Connection,
    tenant_id: str,
    workflow_id: str,
    *,
    enrolled: int = 0,
    exits: int = 0,
    time_to_goal: float | None = None,
) -> None:
    timed = 1 if time_to_goal is not None else 0
    await conn.execute(
        """
        INSERT INTO workflow_stats AS s (tenant_id, workflow_id, total_enrolled, goals_achieved,
                                         timed_exits, time_to_goal_seconds)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (tenant_id, workflow_id) DO UPDATE SET
            total_enrolled = s.total_enrolled + EXCLUDED.total_enrolled,
            goals_achieved = s.goals_achieved + EXCLUDED.goals_achieved,
            timed_exits = s.timed_exits + EXCLUDED.timed_exits,
            time_to_goal_seconds = s.time_to_goal_seconds + EXCLUDED.time_to_goal_seconds
        """,
        tenant_id,
        workflow_id,
        enrolled,
        exits,
        timed,
        time_to_goal or 0.0,
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


# -- many events of one topic at once (projections/projector.py's fast path) ---------------


async def goal_achieved_many(
    conn: asyncpg.Connection, items: Sequence[tuple[CloudEvent, GoalAchieved]]
) -> None:
    """A batch's achievements, in order, each as :func:`goal_achieved` folds it."""
    for event, data in items:
        await goal_achieved(conn, event, data)


async def exit_goal_many(conn: asyncpg.Connection, items: Sequence[tuple[CloudEvent, ExitGoal]]) -> None:
    """A batch's exits, in order, each as :func:`exit_goal` folds it."""
    for event, data in items:
        await exit_goal(conn, event, data)
