"""N achievements in the log, and everything the projector would have derived from them, by SQL.

What a seeded database holds (every row the projector would have written for the same log):

- ``workflows`` and ``workflow_goals``: TENANTS x WORKFLOWS active workflows (``any``
  logic), each with 1-3 goals of different goal types;
- ``enrollments`` and ``workflow_goal_achievements``: N enrollments that exited on a goal,
  one achievement each (its trigger event built from the contract's models), achieved
  uniformly over the last MONTHS months, time to goal log-uniform between a minute and 30
  days; plus the enrollments that did not convert (each workflow converts 20-60 %):
  ``active`` if enrolled in the last 30 days, else ``completed``, ``exited`` or ``removed``;
- the aggregates (``workflow_stats``, ``workflow_goal_type_stats``, the hourly tables, both
  time-to-goal histograms, their all-time bins and daily rollups, ``achievement_ids``),
  computed by GROUP BY over those rows with the projector's
  rules (``projections/views.py``: hour buckets in UTC, exits by exit time, enrollments by
  enrollment time, the bins of ``projections/histogram.py``).

Not seeded: ``audit_log`` (the projector also writes one entry per achievement, but no
benchmarked route reads it) and ``published_workflow_configs``.
``tests/integration/test_api_bench.py`` folds a small seeded log through the projector's
own views and checks that they give the same aggregates.

Steps, in order (2-6 on every connection of the seed at once, one statement each):
1. the configuration (workflows, goals); the indexes and primary keys of the tables the
   load fills dropped (``bulk.py``);
2. per workflow, in chunks: converted enrollments and their achievements, one statement
   each (a data-modifying CTE), so both share the same random draws;
3. per workflow, in chunks: the enrollments that did not convert;
4. the aggregates, each one INSERT ... SELECT ... GROUP BY over the log (one derived from
   another after it);
5. the indexes and primary keys built again, each sorting its table once;
6. VACUUM (ANALYZE) and a CHECKPOINT: the planner knows the tables' sizes and nothing of the
   bulk load is left to autovacuum or the checkpointer during the measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from pydantic import BaseModel

from goal_engine.bench.api.bulk import drop_indexes
from goal_engine.contract.events import (
    AppointmentBooked,
    FormSubmitted,
    PaymentCompleted,
    PipelineStageChanged,
    TagAdded,
)
from goal_engine.domain.goals import GOAL_TYPES, GoalType, canonical_criteria
from projections.histogram import BINS_PER_DOUBLING

SOURCE = "goal-engine/bench"
CHUNK = 25_000  # rows per INSERT: one progress step
ACTIVE_DAYS = 30  # a non-converted enrollment younger than this is still active
TTG_MIN_SECONDS, TTG_MAX_SECONDS = 60.0, 30 * 86_400.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Goal:
    id: str
    goal_type: GoalType
    criteria: dict[str, object]
    trigger_data: dict[str, object]  # the data of the source event that met it


@dataclass(frozen=True)
class SeedWorkflow:
    index: int
    tenant: str
    workflow_id: str
    goals: tuple[Goal, ...]
    achievements: int  # converted enrollments, one achievement each
    other_enrollments: int  # enrollments that did not convert

    @property
    def enrollments(self) -> int:
        return self.achievements + self.other_enrollments


def _goal_example(goal_type: GoalType, k: int) -> tuple[dict[str, object], BaseModel]:
    """Criteria of one goal and the data of an event that meets it (the contract's models)."""
    match goal_type:
        case GoalType.TAG_ADDED:
            return {"tag_id": f"tag-{k}"}, TagAdded(tag_id=f"tag-{k}", tag_name=f"Customer {k}")
        case GoalType.PURCHASE_MADE:
            return {"product_id": f"prod-{k}"}, PaymentCompleted(
                transaction_id=f"tx-{k}", amount=Decimal("49.99"), currency="USD", product_ids=[f"prod-{k}"]
            )
        case GoalType.APPOINTMENT_BOOKED:
            starts_at = datetime(2026, 1, 5, 9, tzinfo=UTC)
            return {"calendar_id": f"cal-{k}"}, AppointmentBooked(
                appointment_id=f"apt-{k}", calendar_id=f"cal-{k}", starts_at=starts_at
            )
        case GoalType.FORM_SUBMITTED:
            return {"form_id": f"form-{k}"}, FormSubmitted(form_id=f"form-{k}", submission_id=f"sub-{k}")
        case GoalType.PIPELINE_STAGE_REACHED:
            return {"pipeline_id": f"pipe-{k}", "stage_id": "won"}, PipelineStageChanged(
                pipeline_id=f"pipe-{k}",
                stage_id="won",
                previous_stage_id="proposal",
                opportunity_id=f"opp-{k}",
            )


def plan(achievements: int, tenants: int, workflows_per_tenant: int) -> list[SeedWorkflow]:
    """Who gets how many: achievements split evenly, conversion 20-60 % (scrambled over tenants)."""
    count = tenants * workflows_per_tenant
    types = list(GOAL_TYPES)
    out = []
    for k in range(count):
        tenant, w = divmod(k, workflows_per_tenant)
        goals = []
        for j in range(1 + k % 3):
            goal_type = types[(k + j) % len(types)]
            criteria, data = _goal_example(goal_type, k)
            goals.append(
                Goal(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SOURCE}/{k}/{j}")),
                    goal_type=goal_type,
                    criteria=canonical_criteria(goal_type, criteria),
                    trigger_data=data.model_dump(mode="json"),
                )
            )
        converted = achievements // count + (1 if k < achievements % count else 0)
        rate = 0.2 + 0.4 * ((k * 7) % count) / max(1, count - 1)
        out.append(
            SeedWorkflow(
                index=k,
                tenant=f"bench-t{tenant}",
                workflow_id=f"bench-wf-{w}",
                goals=tuple(goals),
                achievements=converted,
                other_enrollments=round(converted * (1 - rate) / rate),
            )
        )
    return out


@dataclass
class SeedResult:
    achievements: int
    enrollments: int
    workflows: int
    tenants: int
    months: int
    first_achievement: str  # the seeded log's span (ISO 8601)
    last_achievement: str
    log_seconds: float  # steps 1-3: the configuration, enrollments and achievements
    aggregate_seconds: float  # step 4
    index_seconds: float  # step 5
    analyze_seconds: float  # step 6: VACUUM (ANALYZE) and CHECKPOINT
    seconds: float
    rows_per_second: float  # enrollments + achievements per second of steps 1-3
    database_mib: float
    connections: int  # the seed's connections, each a lane of statements at once
    reused: bool = False  # a kept database of the same seed (``kept.py``): nothing seeded by this run


# Converted enrollments and their achievements in one statement: the CTE is evaluated once,
# so both inserts see the same random draws. $1 tenant, $2 workflow, $3 the workflow's index,
# $4/$5 the first/last enrollment number, $6 goal ids, $7 goal types, $8 source event types,
# $9 trigger data, $10 start of the span, $11 its length (s), $12/$13 time to goal bounds (s).
_CONVERTED = """
WITH e AS MATERIALIZED (
    SELECT enrollment_id, contact_id, achieved_at, enrolled_at, goal,
           -- the seconds the projector counts the exit and the achievement with (views.py)
           greatest(0.0, extract(epoch FROM achieved_at - enrolled_at)::float8) AS seconds
    FROM (
    SELECT 'en-' || $3::int || '-' || g AS enrollment_id, 'c-' || $3::int || '-' || g AS contact_id,
           achieved_at, achieved_at - ttg * interval '1 second' AS enrolled_at, goal
    FROM (
        SELECT g, $10::timestamptz + random() * $11::float8 * interval '1 second' AS achieved_at,
               exp(ln($12::float8) + random() * (ln($13::float8) - ln($12::float8))) AS ttg,
               1 + floor(random() * cardinality($6::text[]))::int AS goal
        FROM generate_series($4::int, $5::int) AS g
    ) AS draws
    ) AS times
), enrolled AS (
    INSERT INTO enrollments (tenant_id, enrollment_id, workflow_id, contact_id, status, start_seen,
                             enrolled_at, ended_at, goal_config_ids, time_to_goal_seconds)
    SELECT $1, enrollment_id, $2, contact_id, 'completed_goal', true, enrolled_at, achieved_at,
           ARRAY[($6::text[])[goal]], seconds
    FROM e
)
INSERT INTO workflow_goal_achievements (tenant_id, id, workflow_id, workflow_enrollment_id, contact_id,
    goal_config_id, goal_type, achieved_at, trigger_event, metadata, time_to_goal_seconds)
SELECT $1, md5($1 || '/' || enrollment_id || '/' || ($6::text[])[goal])::uuid, $2, enrollment_id, contact_id,
       ($6::text[])[goal], ($7::text[])[goal], achieved_at,
       jsonb_build_object('id', md5('trigger/' || $1 || '/' || enrollment_id)::uuid,
                          'type', ($8::text[])[goal], 'time', achieved_at, 'data', ($9::jsonb[])[goal]),
       jsonb_build_object('source', 'goal-engine/bench'), seconds
FROM e
"""

# Enrollments that did not convert. $1 tenant, $2 workflow, $3 index, $4/$5 numbers,
# $6 start of the span, $7 its length (s), $8 its end, $9 days an enrollment stays active.
_OTHER = """
WITH e AS MATERIALIZED (
    SELECT g, enrolled_at, enrolled_at > $8::timestamptz - $9::int * interval '1 day' AS active,
           status_draw, end_draw
    FROM (
        SELECT g, $6::timestamptz + random() * $7::float8 * interval '1 second' AS enrolled_at,
               random() AS status_draw, random() AS end_draw
        FROM generate_series($4::int, $5::int) AS g
    ) AS draws
)
INSERT INTO enrollments (tenant_id, enrollment_id, workflow_id, contact_id, status, start_seen,
                         enrolled_at, ended_at)
SELECT $1, 'en-' || $3::int || '-' || g, $2, 'c-' || $3::int || '-' || g,
       CASE WHEN active THEN 'active'
            ELSE (ARRAY['completed', 'exited', 'removed'])[1 + floor(3 * status_draw)::int] END,
       true, enrolled_at,
       CASE WHEN NOT active THEN least($8::timestamptz, enrolled_at + end_draw * interval '20 days') END
FROM e
"""

_BIN = f"greatest(0, floor({BINS_PER_DOUBLING} * ln(greatest(%s, 1.0)) / ln(2.0)))::int"
_EXIT_SECONDS = "extract(epoch FROM ended_at - enrolled_at)::float8"
_ACHIEVEMENT_SECONDS = "extract(epoch FROM a.achieved_at - e.enrolled_at)::float8"

#: Each aggregate table from the log, by the rules of projections/views.py.
AGGREGATES: dict[str, str] = {
    "workflow_stats": f"""
        INSERT INTO workflow_stats (tenant_id, workflow_id, total_enrolled, goals_achieved, timed_exits,
                                    time_to_goal_seconds)
        SELECT tenant_id, workflow_id, count(*) FILTER (WHERE start_seen),
               count(*) FILTER (WHERE status = 'completed_goal'),
               count(*) FILTER (WHERE status = 'completed_goal' AND enrolled_at IS NOT NULL),
               coalesce(sum({_EXIT_SECONDS}) FILTER (WHERE status = 'completed_goal'), 0)
        FROM enrollments GROUP BY tenant_id, workflow_id
    """,
    "workflow_goal_type_stats": """
        INSERT INTO workflow_goal_type_stats (tenant_id, workflow_id, goal_type, achieved)
        SELECT tenant_id, workflow_id, goal_type, count(*)
        FROM workflow_goal_achievements GROUP BY tenant_id, workflow_id, goal_type
    """,
    "workflow_activity_hourly": f"""
        INSERT INTO workflow_activity_hourly (tenant_id, workflow_id, bucket, enrolled, achieved,
                                              timed_exits, time_to_goal_seconds)
        SELECT tenant_id, workflow_id, bucket, sum(enrolled), sum(achieved), sum(timed), sum(seconds)
        FROM (
            SELECT tenant_id, workflow_id, date_trunc('hour', enrolled_at, 'UTC') AS bucket,
                   1 AS enrolled, 0 AS achieved, 0 AS timed, 0.0::float8 AS seconds
            FROM enrollments WHERE start_seen
            UNION ALL
            SELECT tenant_id, workflow_id, date_trunc('hour', ended_at, 'UTC'), 0, 1,
                   (enrolled_at IS NOT NULL)::int, coalesce({_EXIT_SECONDS}, 0)
            FROM enrollments WHERE status = 'completed_goal'
        ) AS activity
        GROUP BY tenant_id, workflow_id, bucket
    """,
    "workflow_goal_type_hourly": """
        INSERT INTO workflow_goal_type_hourly (tenant_id, workflow_id, goal_type, bucket, achieved)
        SELECT tenant_id, workflow_id, goal_type, date_trunc('hour', achieved_at, 'UTC'), count(*)
        FROM workflow_goal_achievements GROUP BY 1, 2, 3, 4
    """,
    "workflow_time_to_goal_histogram": f"""
        INSERT INTO workflow_time_to_goal_histogram (tenant_id, workflow_id, bucket, bin, exits)
        SELECT tenant_id, workflow_id, date_trunc('hour', ended_at, 'UTC'), {_BIN % _EXIT_SECONDS}, count(*)
        FROM enrollments WHERE status = 'completed_goal' AND enrolled_at IS NOT NULL
        GROUP BY 1, 2, 3, 4
    """,
    "workflow_goal_type_time_to_goal_histogram": f"""
        INSERT INTO workflow_goal_type_time_to_goal_histogram
            (tenant_id, workflow_id, goal_type, bucket, bin, achievements, seconds)
        SELECT a.tenant_id, a.workflow_id, a.goal_type, date_trunc('hour', a.achieved_at, 'UTC'),
               {_BIN % _ACHIEVEMENT_SECONDS}, count(*), sum(greatest(0.0, {_ACHIEVEMENT_SECONDS}))
        FROM workflow_goal_achievements a
        JOIN enrollments e ON e.tenant_id = a.tenant_id AND e.enrollment_id = a.workflow_enrollment_id
        WHERE e.enrolled_at IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5
    """,
    "achievement_ids": "INSERT INTO achievement_ids SELECT tenant_id, id FROM workflow_goal_achievements",
    # The all-time bins and the daily rollups, from the hourly ones above.
    "workflow_time_to_goal_bins": """
        INSERT INTO workflow_time_to_goal_bins
        SELECT tenant_id, workflow_id, bin, sum(exits) FROM workflow_time_to_goal_histogram GROUP BY 1, 2, 3
    """,
    "workflow_goal_type_time_to_goal_bins": """
        INSERT INTO workflow_goal_type_time_to_goal_bins
        SELECT tenant_id, workflow_id, goal_type, bin, sum(achievements), sum(seconds)
        FROM workflow_goal_type_time_to_goal_histogram GROUP BY 1, 2, 3, 4
    """,
    "workflow_activity_daily": """
        INSERT INTO workflow_activity_daily
        SELECT tenant_id, workflow_id, date_trunc('day', bucket, 'UTC'), sum(enrolled), sum(achieved),
               sum(timed_exits), sum(time_to_goal_seconds)
        FROM workflow_activity_hourly GROUP BY 1, 2, 3
    """,
    "workflow_goal_type_daily": """
        INSERT INTO workflow_goal_type_daily (tenant_id, workflow_id, goal_type, bucket, achieved)
        SELECT tenant_id, workflow_id, goal_type, date_trunc('day', bucket, 'UTC'), sum(achieved)
        FROM workflow_goal_type_hourly GROUP BY 1, 2, 3, 4
    """,
    # A day's bins in arrays, sorted (migration 0009).
    "workflow_time_to_goal_histogram_daily": """
        INSERT INTO workflow_time_to_goal_histogram_daily (tenant_id, workflow_id, bucket, bins, exits)
        SELECT tenant_id, workflow_id, day, array_agg(bin ORDER BY bin), array_agg(exits ORDER BY bin)
        FROM (
            SELECT tenant_id, workflow_id, date_trunc('day', bucket, 'UTC') AS day, bin,
                   sum(exits)::bigint AS exits
            FROM workflow_time_to_goal_histogram GROUP BY 1, 2, 3, 4
        ) AS per_bin
        GROUP BY 1, 2, 3
    """,
    "workflow_goal_type_time_to_goal_histogram_daily": """
        INSERT INTO workflow_goal_type_time_to_goal_histogram_daily
            (tenant_id, workflow_id, bucket, goal_type, bins, achievements, seconds)
        SELECT tenant_id, workflow_id, day, goal_type, array_agg(bin ORDER BY bin),
               array_agg(achievements ORDER BY bin), array_agg(seconds ORDER BY bin)
        FROM (
            SELECT tenant_id, workflow_id, date_trunc('day', bucket, 'UTC') AS day, goal_type, bin,
                   sum(achievements)::bigint AS achievements, sum(seconds) AS seconds
            FROM workflow_goal_type_time_to_goal_histogram GROUP BY 1, 2, 3, 4, 5
        ) AS per_bin
        GROUP BY 1, 2, 3, 4
    """,
}


#: What each aggregate above is derived from, when that is another aggregate (it waits for it).
DERIVED_FROM = {
    "workflow_time_to_goal_bins": "workflow_time_to_goal_histogram",
    "workflow_goal_type_time_to_goal_bins": "workflow_goal_type_time_to_goal_histogram",
    "workflow_activity_daily": "workflow_activity_hourly",
    "workflow_goal_type_daily": "workflow_goal_type_hourly",
    "workflow_time_to_goal_histogram_daily": "workflow_time_to_goal_histogram",
    "workflow_goal_type_time_to_goal_histogram_daily": "workflow_goal_type_time_to_goal_histogram",
}
#: The tables the load fills: their indexes are built after it (``bulk.py``).
BULK_TABLES = ["enrollments", "workflow_goal_achievements", *AGGREGATES]

# A bulk load: nothing here needs to survive a crash before the commit; the sorts and
# hashes of the aggregates and the index builds in memory rather than in temporary files.
_SESSION = "SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '1GB'"

Job = Callable[[asyncpg.Connection], Awaitable[object]]


async def _in_lanes(lanes: list[asyncpg.Connection], jobs: list[Job]) -> None:
    """Every job, each on the first connection free: as many at a time as there are lanes."""
    pending = iter(jobs)

    async def lane(conn: asyncpg.Connection) -> None:
        for job in pending:  # one iterator shared by the lanes: each job runs once
            await job(conn)

    async with asyncio.TaskGroup() as group:
        for conn in lanes:
            group.create_task(lane(conn))


class Seeder:
    """Writes one seeded database (see the module's docstring); ``progress`` gets its lines.

    ``lanes``: more connections to the same database; the log, the aggregates, the index
    builds and the VACUUM run on all of them at once (PostgreSQL runs a statement on one
    core).
    """

    def __init__(
        self,
        conn: asyncpg.Connection,
        workflows: list[SeedWorkflow],
        months: int,
        end: datetime,
        lanes: Sequence[asyncpg.Connection] = (),
    ):
        self.conn = conn
        self.lanes = [conn, *lanes]
        self.workflows = workflows
        self.end = end
        self.start = end - timedelta(days=round(months * 365.25 / 12))
        self.months = months

    @property
    def span_seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    async def run(self, progress: Progress, every: float = 5.0) -> SeedResult:
        conn = self.conn
        for lane in self.lanes:
            await lane.execute(_SESSION)
        started = time.monotonic()
        await self._configuration()
        indexes = await drop_indexes(conn, BULK_TABLES)
        total_achievements = sum(w.achievements for w in self.workflows)
        total_rows = sum(w.enrollments for w in self.workflows) + total_achievements
        done = 0
        next_report = started + every

        def step(rows: int) -> None:
            nonlocal done, next_report
            done += rows
            if (now := time.monotonic()) >= next_report or done == total_rows:
                next_report = now + every
                rate = done / (now - started)
                progress(f"seed: the log, {done:,}/{total_rows:,} rows ({rate:,.0f} rows/s)")

        def converted(w: SeedWorkflow, first: int, last: int) -> Job:
            async def job(lane: asyncpg.Connection) -> None:
                await self._converted(lane, w, first, last)
                step(2 * (last - first + 1))

            return job

        def other(w: SeedWorkflow, first: int, last: int) -> Job:
            async def job(lane: asyncpg.Connection) -> None:
                await self._other(lane, w, first, last)
                step(last - first + 1)

            return job

        jobs = [converted(w, *chunk) for w in self.workflows for chunk in _chunks(w.achievements)]
        jobs += [
            other(w, *chunk) for w in self.workflows for chunk in _chunks(w.other_enrollments, w.achievements)
        ]
        await _in_lanes(self.lanes, jobs)
        log_seconds = time.monotonic() - started

        await _in_lanes(self.lanes, _aggregate_jobs(progress))
        aggregate_seconds = time.monotonic() - started - log_seconds

        t = time.monotonic()
        await _in_lanes(self.lanes, [_timed(index.create_sql(), progress) for index in indexes])
        progress(f"seed: {len(indexes)} indexes built in {time.monotonic() - t:.1f} s")
        index_seconds = time.monotonic() - t
        t = time.monotonic()
        # A settled database, as production's would be: statistics and visibility maps made
        # now, dirty pages flushed, so no autovacuum or checkpoint of the load runs under the
        # measurement. CHECKPOINT needs pg_checkpoint (or a superuser): skipped without it.
        tables = await conn.fetch(_TABLES)
        vacuums = [_timed(f"VACUUM (ANALYZE) {r[0]}", progress, quiet=True) for r in tables]
        await _in_lanes(self.lanes, vacuums)
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
        analyze_seconds = time.monotonic() - t
        span = await conn.fetchrow(
            "SELECT min(achieved_at), max(achieved_at) FROM workflow_goal_achievements"
        )
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        seconds = time.monotonic() - started
        return SeedResult(
            achievements=total_achievements,
            enrollments=sum(w.enrollments for w in self.workflows),
            workflows=len(self.workflows),
            tenants=len({w.tenant for w in self.workflows}),
            months=self.months,
            first_achievement=span[0].isoformat() if span[0] else "",
            last_achievement=span[1].isoformat() if span[1] else "",
            log_seconds=round(log_seconds, 1),
            aggregate_seconds=round(aggregate_seconds, 1),
            index_seconds=round(index_seconds, 1),
            analyze_seconds=round(analyze_seconds, 1),
            seconds=round(seconds, 1),
            rows_per_second=round(total_rows / log_seconds),
            database_mib=round(size / 2**20, 1),
            connections=len(self.lanes),
        )

    async def _configuration(self) -> None:
        activated = self.start - timedelta(days=1)
        await self.conn.executemany(
            """
            INSERT INTO workflows (tenant_id, workflow_id, status, logic, activated_at, version, updated_at)
            VALUES ($1, $2, 'active', 'any', $3, 1, $3)
            """,
            [(w.tenant, w.workflow_id, activated) for w in self.workflows],
        )
        await self.conn.executemany(
            """
            INSERT INTO workflow_goals (tenant_id, id, workflow_id, goal_type, criteria, created_at,
                                        updated_at, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $6, 'goal-engine-bench')
            """,
            [
                (w.tenant, g.id, w.workflow_id, g.goal_type.value, json.dumps(g.criteria), activated)
                for w in self.workflows
                for g in w.goals
            ],
        )

    async def _converted(self, conn: asyncpg.Connection, w: SeedWorkflow, first: int, last: int) -> None:
        await conn.execute(
            _CONVERTED,
            w.tenant,
            w.workflow_id,
            w.index,
            first,
            last,
            [g.id for g in w.goals],
            [g.goal_type.value for g in w.goals],
            [str(GOAL_TYPES[g.goal_type].source) for g in w.goals],
            [json.dumps(g.trigger_data) for g in w.goals],
            self.start,
            self.span_seconds,
            TTG_MIN_SECONDS,
            TTG_MAX_SECONDS,
        )

    async def _other(self, conn: asyncpg.Connection, w: SeedWorkflow, first: int, last: int) -> None:
        await conn.execute(
            _OTHER,
            w.tenant,
            w.workflow_id,
            w.index,
            first,
            last,
            self.start,
            self.span_seconds,
            self.end,
            ACTIVE_DAYS,
        )


def _chunks(count: int, offset: int = 0) -> list[tuple[int, int]]:
    """[first, last] enrollment numbers, CHUNK at a time, of ``count`` numbers from ``offset``."""
    return [(offset + i, offset + min(count, i + CHUNK) - 1) for i in range(0, count, CHUNK)]


# The schema's tables, a partitioned one as itself (its VACUUM covers its partitions).
_TABLES = """
SELECT quote_ident(relname) FROM pg_class
WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition
ORDER BY relkind = 'p' DESC, pg_relation_size(oid) DESC  -- the longest first: the lanes end together
"""


def _timed(sql: str, progress: Progress, quiet: bool = False) -> Job:
    async def job(conn: asyncpg.Connection) -> None:
        t = time.monotonic()
        await conn.execute(sql)
        if not quiet:
            progress(f"seed: {sql.split(' (', 1)[0]} in {time.monotonic() - t:.1f} s")

    return job


def _aggregate_jobs(progress: Progress) -> list[Job]:
    """One job per aggregate; a derived one waits until its source is complete."""
    complete = {table: asyncio.Event() for table in AGGREGATES}

    def job_of(table: str, sql: str) -> Job:
        async def job(conn: asyncpg.Connection) -> None:
            if (source := DERIVED_FROM.get(table)) is not None:
                await complete[source].wait()
            t = time.monotonic()
            await conn.execute(sql)
            complete[table].set()
            progress(f"seed: {table} from the log in {time.monotonic() - t:.1f} s")

        return job

    return [job_of(table, sql) for table, sql in AGGREGATES.items()]
