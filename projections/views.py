"""Read-model writes, one function per event type, all idempotent.

Each takes the open transaction's connection and the event; a redelivered
event changes nothing (conditional upserts keyed on deterministic ids), and
aggregates move only when a row really changed, so nothing double-counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
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
        await _bump_stats(conn, event.tenantid, data.workflow_id, enrolled=1)
        await _bump_hourly(conn, event.tenantid, data.workflow_id, event.time, enrolled=1)


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


async def goal_achieved(conn: asyncpg.Connection, event: CloudEvent, data: GoalAchieved) -> None:
    await goal_achieved_many(conn, [(event, data)])


async def exit_goal(conn: asyncpg.Connection, event: CloudEvent, data: ExitGoal) -> None:
    await exit_goal_many(conn, [(event, data)])


async def _bump_hourly(
    conn: asyncpg.Connection,
    tenant_id: str,
    workflow_id: str,
    at: datetime,
    *,
    enrolled: int = 0,
    achieved: int = 0,
    time_to_goal: float | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO workflow_activity_hourly AS h (tenant_id, workflow_id, bucket, enrolled, achieved,
                                                   timed_exits, time_to_goal_seconds)
        VALUES ($1, $2, date_trunc('hour', $3::timestamptz, 'UTC'), $4, $5, $6, $7)
        ON CONFLICT (tenant_id, workflow_id, bucket) DO UPDATE
            SET enrolled = h.enrolled + EXCLUDED.enrolled, achieved = h.achieved + EXCLUDED.achieved,
                timed_exits = h.timed_exits + EXCLUDED.timed_exits,
                time_to_goal_seconds = h.time_to_goal_seconds + EXCLUDED.time_to_goal_seconds
        """,
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


# --- set-based folds (the projector's batches) ------------------------------------------
# The two views that carry every achievement, applied to many events in a few statements:
# one INSERT ... SELECT FROM unnest(...) RETURNING the rows that are new, then one upsert per
# aggregate table with the new rows counted per key in Python. Only new rows move the
# aggregates, as above, so a redelivery inside or across batches changes nothing; the
# per-event views above are these with one event.


def _hour(at: datetime) -> datetime:
    """date_trunc('hour', at, 'UTC')."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _columns(rows: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to columns (unnest's arguments); ``width`` columns even when there are no rows."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


async def goal_achieved_many(
    conn: asyncpg.Connection, items: Sequence[tuple[CloudEvent, GoalAchieved]]
) -> None:
    rows = [
        (e.tenantid, d.id, d.workflow_id, d.workflow_enrollment_id, d.contact_id, d.goal_config_id,
         d.goal_type, d.achieved_at, d.trigger_event.model_dump_json(), json.dumps(d.metadata))
        for e, d in items
    ]  # fmt: skip
    inserted = await conn.fetch(
        """
        INSERT INTO workflow_goal_achievements (tenant_id, id, workflow_id, workflow_enrollment_id,
            contact_id, goal_config_id, goal_type, achieved_at, trigger_event, metadata)
        SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::timestamptz[], $9::jsonb[], $10::jsonb[])
        ON CONFLICT (tenant_id, id, achieved_at) DO NOTHING
        RETURNING tenant_id, id::text AS id
        """,
        *_columns(rows, 10),
    )
    new_keys = {(r["tenant_id"], r["id"]) for r in inserted}
    new: list[tuple[str, GoalAchieved]] = []
    for event, data in items:
        if (event.tenantid, data.id) in new_keys:
            new_keys.discard((event.tenantid, data.id))  # a duplicate in the batch counts once
            new.append((event.tenantid, data))
    if not new:
        return
    by_type = Counter((t, d.workflow_id, d.goal_type) for t, d in new)
    await conn.execute(
        """
        INSERT INTO workflow_goal_type_stats AS s (tenant_id, workflow_id, goal_type, achieved)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
        ON CONFLICT (tenant_id, workflow_id, goal_type)
            DO UPDATE SET achieved = s.achieved + EXCLUDED.achieved
        """,
        *_columns(((*k, n) for k, n in by_type.items()), 4),
    )
    hourly = Counter((t, d.workflow_id, d.goal_type, _hour(d.achieved_at)) for t, d in new)
    await conn.execute(
        """
        INSERT INTO workflow_goal_type_hourly AS h (tenant_id, workflow_id, goal_type, bucket, achieved)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[])
        ON CONFLICT (tenant_id, workflow_id, goal_type, bucket)
            DO UPDATE SET achieved = h.achieved + EXCLUDED.achieved
        """,
        *_columns(((*k, n) for k, n in hourly.items()), 5),
    )
    await _time_goal_types(conn, new)
    await conn.execute(
        """
        INSERT INTO audit_log (tenant_id, at, actor, action, entity_type, entity_id, after)
        SELECT t, at, 'goal-engine', 'goal.achieved', 'enrollment', e, a
        FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[]) AS u(t, at, e, a)
        """,
        *_columns(((t, d.achieved_at, d.workflow_enrollment_id, d.model_dump_json()) for t, d in new), 4),
    )


async def _time_goal_types(conn: asyncpg.Connection, new: list[tuple[str, GoalAchieved]]) -> None:
    """Counts newly recorded achievements in their goal type's time-to-goal histogram."""
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
            *_columns(missing, 2),
        )
        starts = {(r["tenant_id"], r["enrollment_id"]): r["enrolled_at"] for r in found}
    bins: dict[tuple[str, str, str, datetime, int], list[float]] = {}
    for tenant, data in new:
        enrolled_at = data.enrolled_at or starts.get((tenant, data.workflow_enrollment_id))
        if enrolled_at is None:
            continue  # its time to goal is unknown: counted as achieved, not timed
        seconds = max(0.0, (data.achieved_at - enrolled_at).total_seconds())
        key = (tenant, data.workflow_id, data.goal_type, _hour(data.achieved_at), bin_of(seconds))
        bins.setdefault(key, [0, 0.0])
        bins[key][0] += 1
        bins[key][1] += seconds
    if bins:
        await conn.execute(
            """
            INSERT INTO workflow_goal_type_time_to_goal_histogram AS h
                (tenant_id, workflow_id, goal_type, bucket, bin, achievements, seconds)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int[],
                                 $6::bigint[], $7::float8[])
            ON CONFLICT (tenant_id, workflow_id, goal_type, bucket, bin)
                DO UPDATE SET achievements = h.achievements + EXCLUDED.achievements,
                              seconds = h.seconds + EXCLUDED.seconds
            """,
            *_columns(((*k, int(n), s) for k, (n, s) in bins.items()), 7),
        )


async def exit_goal_many(conn: asyncpg.Connection, items: Sequence[tuple[CloudEvent, ExitGoal]]) -> None:
    # One row per enrollment: an upsert may not touch a row twice (a redelivery in the batch).
    first: dict[tuple[str, str], tuple[CloudEvent, ExitGoal]] = {}
    for event, data in items:
        first.setdefault((event.tenantid, data.workflow_enrollment_id), (event, data))
    rows = [
        (e.tenantid, d.workflow_enrollment_id, d.workflow_id, d.contact_id, d.enrolled_at, d.exited_at,
         json.dumps(d.goal_config_ids))
        for e, d in first.values()
    ]  # fmt: skip
    changed = await conn.fetch(
        """
        INSERT INTO enrollments (tenant_id, enrollment_id, workflow_id, contact_id, status,
                                 enrolled_at, ended_at, goal_config_ids)
        SELECT t, en, wf, c, 'completed_goal', st, ex, ARRAY(SELECT jsonb_array_elements_text(g))
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                    $7::jsonb[]) AS u(t, en, wf, c, st, ex, g)
        ON CONFLICT (tenant_id, enrollment_id) DO UPDATE
            SET status = 'completed_goal', ended_at = EXCLUDED.ended_at,
                goal_config_ids = EXCLUDED.goal_config_ids,
                enrolled_at = coalesce(enrollments.enrolled_at, EXCLUDED.enrolled_at)
            -- An end that happened before the goal stands, whatever order the topics came in.
            WHERE enrollments.status = 'active'
               OR (enrollments.status <> 'completed_goal' AND enrollments.ended_at > EXCLUDED.ended_at)
        RETURNING tenant_id, enrollment_id, enrolled_at, ended_at
        """,
        *_columns(rows, 7),
    )
    stats: dict[tuple[str, str], list[float]] = {}
    hourly: dict[tuple[str, str, datetime], list[float]] = {}
    histogram: Counter[tuple[str, str, datetime, int]] = Counter()
    for row in changed:
        tenant, workflow = row["tenant_id"], first[(row["tenant_id"], row["enrollment_id"])][1].workflow_id
        seconds = None
        if row["enrolled_at"] is not None:
            seconds = max(0.0, (row["ended_at"] - row["enrolled_at"]).total_seconds())
        per_workflow = stats.setdefault((tenant, workflow), [0, 0, 0.0])
        per_hour = hourly.setdefault((tenant, workflow, _hour(row["ended_at"])), [0, 0, 0.0])
        for totals in (per_workflow, per_hour):
            totals[0] += 1
            if seconds is not None:
                totals[1] += 1
                totals[2] += seconds
        if seconds is not None:
            histogram[(tenant, workflow, _hour(row["ended_at"]), bin_of(seconds))] += 1
    if not changed:
        return
    await conn.execute(
        """
        INSERT INTO workflow_stats AS s (tenant_id, workflow_id, total_enrolled, goals_achieved,
                                         timed_exits, time_to_goal_seconds)
        SELECT t, wf, 0, n, timed, secs
        FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::float8[])
            AS u(t, wf, n, timed, secs)
        ON CONFLICT (tenant_id, workflow_id) DO UPDATE SET
            goals_achieved = s.goals_achieved + EXCLUDED.goals_achieved,
            timed_exits = s.timed_exits + EXCLUDED.timed_exits,
            time_to_goal_seconds = s.time_to_goal_seconds + EXCLUDED.time_to_goal_seconds
        """,
        *_columns(((*k, int(n), int(t), s) for k, (n, t, s) in stats.items()), 5),
    )
    await conn.execute(
        """
        INSERT INTO workflow_activity_hourly AS h (tenant_id, workflow_id, bucket, enrolled, achieved,
                                                   timed_exits, time_to_goal_seconds)
        SELECT t, wf, b, 0, n, timed, secs
        FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::float8[])
            AS u(t, wf, b, n, timed, secs)
        ON CONFLICT (tenant_id, workflow_id, bucket) DO UPDATE
            SET achieved = h.achieved + EXCLUDED.achieved, timed_exits = h.timed_exits + EXCLUDED.timed_exits,
                time_to_goal_seconds = h.time_to_goal_seconds + EXCLUDED.time_to_goal_seconds
        """,
        *_columns(((*k, int(n), int(t), s) for k, (n, t, s) in hourly.items()), 6),
    )
    if histogram:
        await conn.execute(
            """
            INSERT INTO workflow_time_to_goal_histogram AS h (tenant_id, workflow_id, bucket, bin, exits)
            SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::bigint[])
            ON CONFLICT (tenant_id, workflow_id, bucket, bin) DO UPDATE SET exits = h.exits + EXCLUDED.exits
            """,
            *_columns(((*k, n) for k, n in histogram.items()), 5),
        )
