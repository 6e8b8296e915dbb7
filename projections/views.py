"""Read-model writes, one function per event type, all idempotent.

Each takes the open transaction's connection and the event; a redelivered
event changes nothing (conditional upserts keyed on deterministic ids), and
aggregates move only when a row really changed, so nothing double-counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    await conn.execute(_ENROLLMENT_STARTED, event.tenantid, data.enrollment_id, data.workflow_id,
                       event.subject, event.time)  # fmt: skip


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
# The two views that carry every achievement fold a batch in one statement each (exits: two):
# the batch's rows go to PostgreSQL once, as arrays, and data-modifying CTEs insert the rows
# that are new and sum them into every rollup table there (GROUP BY: an upsert may not touch
# a row twice), instead of a Python loop over the rows and one round trip per rollup table.
# Only new rows move the rollups, so a redelivery inside or across batches changes nothing.
# The per-event views are these with one event: one implementation.

HOUR = "date_trunc('hour', at, 'UTC')"
DAY = "date_trunc('day', at, 'UTC')"


@dataclass(frozen=True)
class _Rollup:
    """One rollup table's upsert of a batch's new rows (columns t, wf, gt, at, s, bin):
    per key, its figures summed. ``timed``: only the rows whose time to goal ``s`` is known."""

    table: str
    keys: tuple[tuple[str, str], ...]  # (column, expression), in the primary key's order
    figures: tuple[tuple[str, str], ...]  # (column, aggregate), added to the row's
    timed: bool = False

    def cte(self, name: str, rows: str) -> str:
        keys = ", ".join(column for column, _ in self.keys)
        positions = ", ".join(str(i) for i in range(1, len(self.keys) + 1))
        # In key order: the rows are locked in the index's order (two projectors overlapping
        # after a rebalance take them in the same order, so they wait, never deadlock).
        return f"""{name} AS (
            INSERT INTO {self.table} AS r ({keys}, {", ".join(column for column, _ in self.figures)})
            SELECT {", ".join(expression for _, expression in (*self.keys, *self.figures))}
            FROM {rows} {"WHERE s IS NOT NULL" if self.timed else ""}
            GROUP BY {positions} ORDER BY {positions}
            ON CONFLICT ({keys}) DO UPDATE
                SET {", ".join(f"{column} = r.{column} + EXCLUDED.{column}" for column, _ in self.figures)}
        )"""


@dataclass(frozen=True)
class _BinArrays(_Rollup):
    """A histogram rollup kept as one row per key: ``bins`` (sorted, unique) and, for each
    figure, an array of the bins' figures in the same order (migration 0009). A batch's bins
    are summed per key and bin, then added to the row's with histogram_bins/histogram_add."""

    timed: bool = True

    def cte(self, name: str, rows: str) -> str:
        keys = [column for column, _ in self.keys]
        figures = [column for column, _ in self.figures]
        positions = ", ".join(str(i) for i in range(1, len(keys) + 1))
        per_bin = ", ".join(
            [*(f"{expression} AS {column}" for column, expression in self.keys), "bin"]
            + [f"{aggregate} AS {column}" for column, aggregate in self.figures]
        )
        added = ", ".join(
            f"{column} = histogram_add(r.bins, r.{column}, EXCLUDED.bins, EXCLUDED.{column})"
            for column in figures
        )
        return f"""{name} AS (
            INSERT INTO {self.table} AS r ({", ".join(keys)}, bins, {", ".join(figures)})
            SELECT {", ".join(keys)}, array_agg(bin ORDER BY bin),
                   {", ".join(f"array_agg({column} ORDER BY bin)" for column in figures)}
            FROM (
                SELECT {per_bin} FROM {rows} WHERE s IS NOT NULL GROUP BY {positions}, bin
            ) AS per_bin
            GROUP BY {positions} ORDER BY {positions}
            ON CONFLICT ({", ".join(keys)}) DO UPDATE
                SET bins = histogram_bins(r.bins, EXCLUDED.bins), {added}
        )"""


def _rollups(rows: str, rollups: Sequence[_Rollup]) -> str:
    return ",\n".join(rollup.cte(f"rollup_{i}", rows) for i, rollup in enumerate(rollups))


_T, _WF, _GT, _BIN = ("tenant_id", "t"), ("workflow_id", "wf"), ("goal_type", "gt"), ("bin", "bin")
_HOUR, _DAY = ("bucket", HOUR), ("bucket", DAY)


def _columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows to columns: unnest's arguments."""
    return [list(column) for column in zip(*rows, strict=True)]


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
    candidates = [(tenant, data) for (tenant, _), data in first.items()]
    times = await _times_to_goal(conn, candidates)
    await conn.execute(
        _GOAL_ACHIEVED,
        *_columns(
            (t, d.id, d.workflow_id, d.workflow_enrollment_id, d.contact_id, d.goal_config_id, d.goal_type,
             d.achieved_at, d.trigger_event.model_dump_json(), json.dumps(d.metadata), seconds,
             None if seconds is None else bin_of(seconds), d.model_dump_json())
            for (t, d), seconds in zip(candidates, times, strict=True)
        ),
    )  # fmt: skip


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


_TYPE_BIN_FIGURES = (("achievements", "count(*)"), ("seconds", "sum(s)"))
_GOAL_TYPE_ROLLUPS = (
    _Rollup("workflow_goal_type_stats", (_T, _WF, _GT), (("achieved", "count(*)"),)),
    _Rollup("workflow_goal_type_hourly", (_T, _WF, _GT, _HOUR), (("achieved", "count(*)"),)),
    _Rollup("workflow_goal_type_daily", (_T, _WF, _DAY, _GT), (("achieved", "count(*)"),)),
    *(
        _Rollup(table, keys, _TYPE_BIN_FIGURES, timed=True)
        for table, keys in (
            ("workflow_goal_type_time_to_goal_bins", (_T, _WF, _GT, _BIN)),
            ("workflow_goal_type_time_to_goal_histogram", (_T, _WF, _GT, _HOUR, _BIN)),
        )
    ),
    _BinArrays("workflow_goal_type_time_to_goal_histogram_daily", (_T, _WF, _DAY, _GT), _TYPE_BIN_FIGURES),
)
# The candidates, first of their id in the batch; ``fresh`` the ones whose id is new (in the
# batch's order); an unknown time to goal (s NULL) is counted as achieved, not timed. The
# contract's audit entry of the achievement: once per achievement id, so a replay of the log
# into this database (an in-place rebuild) does not write it again.
_GOAL_ACHIEVED = f"""
WITH u AS (
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::timestamptz[], $9::jsonb[], $10::jsonb[], $11::float8[], $12::int[],
                         $13::jsonb[])
        WITH ORDINALITY AS u(t, id, wf, en, c, gc, gt, at, trigger_event, metadata, s, bin, audit, n)
),
new AS (
    INSERT INTO achievement_ids (tenant_id, id) SELECT t, id FROM u ORDER BY t, id  -- in key order
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, id
),
fresh AS MATERIALIZED (
    SELECT u.* FROM u JOIN new ON new.tenant_id = u.t AND new.id = u.id ORDER BY u.n
),
logged AS (
    INSERT INTO workflow_goal_achievements (tenant_id, id, workflow_id, workflow_enrollment_id, contact_id,
        goal_config_id, goal_type, achieved_at, trigger_event, metadata, time_to_goal_seconds)
    SELECT t, id, wf, en, c, gc, gt, at, trigger_event, metadata, s FROM fresh ORDER BY n
    ON CONFLICT (tenant_id, id, achieved_at) DO NOTHING
),
audited AS (
    INSERT INTO audit_log (tenant_id, at, actor, action, entity_type, entity_id, after, achievement_id)
    SELECT t, at, 'goal-engine', 'goal.achieved', 'enrollment', en, audit, id FROM fresh ORDER BY n
    ON CONFLICT (tenant_id, achievement_id) WHERE achievement_id IS NOT NULL DO NOTHING
),
{_rollups("fresh", _GOAL_TYPE_ROLLUPS)}
SELECT count(*) FROM fresh
"""


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
        ORDER BY t, en  -- in key order, as the rollups
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
        RETURNING tenant_id, workflow_id, ended_at, time_to_goal_seconds
        """,
        *_columns(
            (t, en, d.workflow_id, d.contact_id, d.enrolled_at, d.exited_at, json.dumps(d.goal_config_ids))
            for (t, en), d in first.items()
        ),
    )
    if not changed:
        return
    # An exit whose enrollment time is unknown (s NULL) is counted as an exit, not timed.
    await conn.execute(
        _EXITED,
        *_columns(
            (r["tenant_id"], r["workflow_id"], r["ended_at"], s, None if s is None else bin_of(s))
            for r in changed
            for s in (r["time_to_goal_seconds"],)
        ),
    )


def _exit_figures(exits: str) -> tuple[tuple[str, str], ...]:
    """An exit table's figures: its exits, those timed, and their seconds."""
    return ((exits, "count(*)"), ("timed_exits", "count(s)"), ("time_to_goal_seconds", "coalesce(sum(s), 0)"))


_EXIT_BIN_FIGURES = (("exits", "count(*)"),)
_EXIT_ROLLUPS = (
    _Rollup("workflow_stats", (_T, _WF), _exit_figures("goals_achieved")),
    _Rollup("workflow_activity_hourly", (_T, _WF, _HOUR), _exit_figures("achieved")),
    _Rollup("workflow_activity_daily", (_T, _WF, _DAY), _exit_figures("achieved")),
    *(
        _Rollup(table, keys, _EXIT_BIN_FIGURES, timed=True)
        for table, keys in (
            ("workflow_time_to_goal_bins", (_T, _WF, _BIN)),
            ("workflow_time_to_goal_histogram", (_T, _WF, _HOUR, _BIN)),
        )
    ),
    _BinArrays("workflow_time_to_goal_histogram_daily", (_T, _WF, _DAY), _EXIT_BIN_FIGURES),
)
_EXITED = f"""
WITH x AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::int[])
        AS x(t, wf, at, s, bin)
),
{_rollups("x", _EXIT_ROLLUPS)}
SELECT 1
"""

_START_ROLLUPS = tuple(
    _Rollup(table, keys, ((column, "count(*)"),))
    for table, keys, column in (
        ("workflow_stats", (_T, _WF), "total_enrolled"),
        ("workflow_activity_hourly", (_T, _WF, _HOUR), "enrolled"),
        ("workflow_activity_daily", (_T, _WF, _DAY), "enrolled"),
    )
)
# A start is counted once per enrollment (start_seen), in the hour and day it started.
_ENROLLMENT_STARTED = f"""
WITH started AS (
    INSERT INTO enrollments (tenant_id, enrollment_id, workflow_id, contact_id, status, start_seen,
                             enrolled_at)
    VALUES ($1, $2, $3, $4, 'active', true, $5)
    ON CONFLICT (tenant_id, enrollment_id) DO UPDATE
        SET start_seen = true, enrolled_at = EXCLUDED.enrolled_at
        WHERE NOT enrollments.start_seen
    RETURNING tenant_id AS t, workflow_id AS wf, enrolled_at AS at
),
{_rollups("started", _START_ROLLUPS)}
SELECT 1
"""
