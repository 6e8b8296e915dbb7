"""The read side in PostgreSQL's shared buffers before the load (``pg_prewarm``).

What the benchmarked routes read at 10M achievements is ~2.4 GiB: the all-time and daily
rollups with their indexes, the achievement log's indexes and its newest month. A
production server that answers dashboards all day holds that in memory. This machine's
page cache does not keep it: it shrank by ~600 MiB a minute while idle (measured with
``free``), so a run of the same code reads its p99 from the disk, 30 ms or 1.2 s
depending on how long ago the last one ran. The bench therefore gives the PostgreSQL it
starts shared buffers of its own (``--shared-buffers``) and loads these relations into
them once the seed is there, smallest first, as long as they fit; the report says what
was loaded, and ``--no-prewarm`` measures without it.

A window up to now (a dashboard's "last 30 days") also reads, beyond the daily rollups,
the hourly rollups and the ``enrollments`` rows of the hours at both of its ends: today's
and those of 30 days ago. Whole, those indexes are 5 GiB more than the shared buffers
hold; what such windows read of them is every workflow's last month, the part a
production server reads (the dashboards) and writes (the projector) all day. That part
is loaded by reading it: per source, each workflow's rows of the last 32 days, through
the index the window reads (index-only, migration 0010).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from projections.analytics import HOURLY_ROLLUPS, PARTIAL_SOURCES
from projections.rebuild import READ_MODELS

#: The tables the four benchmarked routes read, with all their indexes: the configured
#: workflows, and the read models kept for all time (``_stats``, ``_bins``) and by day.
READ_TABLES = ("workflows", *(t for t in READ_MODELS if t.endswith(("_stats", "_bins", "_daily"))))
LOG = "workflow_goal_achievements"
#: What a window up to now reads beyond them, as (table, condition, time column): the
#: hourly rollups, and the partial hours' rows.
RECENT_SOURCES = (
    *((table, "", "bucket") for table in HOURLY_ROLLUPS),
    *((table, condition, at) for _, table, condition, at in PARTIAL_SOURCES),
)
RECENT_DAYS = 32  # a 30-day window, and its start's hour as the clock moves on


@dataclass
class WarmResult:
    relations: int = 0
    mib: float = 0.0
    seconds: float = 0.0
    left_cold: list[str] | None = None  # did not fit in the shared buffers
    recent_rows: int = 0  # read of RECENT_SOURCES to load every workflow's last days
    recent_seconds: float = 0.0
    skipped: str | None = None  # why nothing was loaded


async def _relations(conn: asyncpg.Connection, end: datetime) -> list[asyncpg.Record]:
    """(name, bytes) of what the routes read, smallest first: the tables above and their
    indexes, every partition's indexes of the log, and the heap of the partitions that
    hold the last 31 days (an achievements page is the newest 50 of a workflow)."""
    newest = {f"{LOG}_{t:%Y_%m}" for t in (end - timedelta(days=31), end)}
    return await conn.fetch(
        """
        WITH tables AS (
            SELECT c.oid, c.relname FROM pg_class c
            WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
              AND (c.relname = ANY($1::text[])
                   OR c.oid IN (SELECT relid FROM pg_partition_tree($2::regclass)))
        )
        SELECT c.oid::regclass::text AS name, pg_relation_size(c.oid) AS bytes
        FROM tables t JOIN pg_index i ON i.indrelid = t.oid JOIN pg_class c ON c.oid = i.indexrelid
        UNION ALL
        SELECT t.oid::regclass::text, pg_relation_size(t.oid) FROM tables t
        WHERE t.relname = ANY($1::text[]) OR t.relname = ANY($3::text[])
        ORDER BY bytes, name
        """,
        list(READ_TABLES),
        LOG,
        sorted(newest),
    )


async def prewarm(conn: asyncpg.Connection, end: datetime, say: Callable[[str], None]) -> WarmResult:
    """Load the read side into the shared buffers (``end``: the seed's last instant)."""
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    except asyncpg.PostgresError as exc:  # not installed on that server, or not allowed
        result = WarmResult(skipped=f"pg_prewarm: {exc}")
        say(f"prewarm: skipped ({result.skipped})")
        return result
    setting = await conn.fetchval(
        "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'"
    )
    room = int(setting * 0.9)  # the rest for what the load itself reads and writes
    result, started, left = WarmResult(), time.monotonic(), []
    for name, size in await _relations(conn, end):
        if size > room:
            left.append(name)
            continue
        await conn.fetchval("SELECT pg_prewarm($1::regclass, 'buffer')", name)
        room -= size
        result.relations += 1
        result.mib += size / 2**20
    result.seconds = time.monotonic() - started
    result.left_cold = left
    started = time.monotonic()
    result.recent_rows = await _read_recent(conn, datetime.now(UTC) - timedelta(days=RECENT_DAYS))
    result.recent_seconds = time.monotonic() - started
    say(
        f"prewarm: {result.relations} relations, {result.mib:,.0f} MiB into shared_buffers "
        f"({setting / 2**20:,.0f} MiB) in {result.seconds:.1f} s"
        + (f"; {len(left)} did not fit and stay cold" if left else "")
        + f"; every workflow's last {RECENT_DAYS} days of the hourly rollups and enrollments"
        f" ({result.recent_rows:,} rows) in {result.recent_seconds:.1f} s"
    )
    return result


async def _read_recent(conn: asyncpg.Connection, since: datetime) -> int:
    """Read each workflow's rows since ``since`` of every recent source, by the index a
    window reads them with: one descent per workflow and source (a nested loop over the
    configured workflows; the other plans would read the whole table instead)."""
    rows = 0
    async with conn.transaction():
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin"):
            await conn.execute(f"SET LOCAL {setting} = off")
        for table, condition, at in RECENT_SOURCES:
            rows += await conn.fetchval(
                f"""
                SELECT count(*) FROM workflows w CROSS JOIN LATERAL (
                    SELECT 1 FROM {table}
                    WHERE tenant_id = w.tenant_id AND workflow_id = w.workflow_id{condition} AND {at} >= $1
                ) AS r
                """,
                since,
            )
    return rows
