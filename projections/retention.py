"""Retention of the achievement log (the spec's 2 years): whole monthly partitions.

One run, in this order, each step on its own so one failing never blocks the others:
1. for each month from this one to ``ahead_months`` ahead that has no partition yet:
   move that month's rows out of the DEFAULT partition (a future-dated achievement
   lands there), create the month's partition, and put the rows back into it, in one
   transaction. ``CREATE ... PARTITION OF`` refuses to create a range that rows in
   DEFAULT already occupy: without the move, one row dated months ahead wedged
   retention for good (issue 10 item 10);
2. drop every monthly partition whose whole month ended before ``now - retention``
   (dropping a partition is instant and leaves no bloat, unlike deleting rows), and
   delete the rows in DEFAULT that old (back-dated achievements that landed there).
The aggregates (stats) are not touched: they count every achievement ever made.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

PARENT = "workflow_goal_achievements"
DEFAULT_PARTITION = "workflow_goal_achievements_default"
_PARTITION = re.compile(r"^workflow_goal_achievements_(\d{4})_(\d{2})$")
DEFAULT_RETENTION = timedelta(days=730)


@dataclass(frozen=True)
class RetentionResult:
    created: int
    dropped: list[str]
    kept: int
    #: Rows moved out of DEFAULT into the partitions created for them.
    moved: int = 0
    #: Rows older than the cutoff deleted from DEFAULT.
    purged: int = 0
    #: What failed (step: error); the other steps ran regardless.
    failed: list[str] = field(default_factory=list)


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def _month_end(year: int, month: int) -> datetime:
    return _month_start(year, month + 1)


def months_ahead(now: datetime, ahead_months: int) -> list[datetime]:
    """The first instant of this month and of each of the next ``ahead_months``."""
    return [_month_start(now.year, now.month + i) for i in range(ahead_months + 1)]


async def create_month(conn: asyncpg.Connection, month: datetime, lock_timeout: timedelta) -> int | None:
    """Create ``month``'s partition if missing, with the rows DEFAULT holds for it.

    Returns how many rows were moved, or None if the partition already existed. Gives up
    after ``lock_timeout`` waiting for the DEFAULT partition: while the lock request
    waits, every writer queues behind it, so a long query on DEFAULT must not hold up
    the projector for as long as it runs (the next run tries again).
    """
    name = f"{PARENT}_{month:%Y_%m}"
    until = _month_end(month.year, month.month)
    async with conn.transaction():
        if await conn.fetchval("SELECT to_regclass($1)", name) is not None:
            return None
        await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout.total_seconds() * 1000)}")
        # CREATE ... PARTITION OF takes this lock anyway; taking it first keeps a writer
        # from adding a row of this month to DEFAULT between the move and the create.
        await conn.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE")
        await conn.execute(f"CREATE TEMP TABLE moving (LIKE {PARENT}) ON COMMIT DROP")
        await conn.execute(
            f"""
            WITH gone AS (
                DELETE FROM {DEFAULT_PARTITION} WHERE achieved_at >= $1 AND achieved_at < $2 RETURNING *
            )
            INSERT INTO moving SELECT * FROM gone
            """,
            month,
            until,
        )
        await conn.execute("SELECT goal_engine_ensure_month_partitions($1, $1)", month)
        moved = await conn.execute(f"INSERT INTO {PARENT} SELECT * FROM moving")
    return int(moved.split()[-1])


async def drop_expired(conn: asyncpg.Connection, cutoff: datetime) -> tuple[list[str], int, int]:
    """Drop the months wholly before ``cutoff``; returns (dropped, kept, rows purged from DEFAULT)."""
    names = await conn.fetch(
        """
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass ORDER BY c.relname
        """,
        PARENT,
    )
    dropped: list[str] = []
    kept = 0
    for row in names:
        match = _PARTITION.match(row["relname"])
        if match is None:
            continue  # the DEFAULT partition
        if _month_end(int(match[1]), int(match[2])) <= cutoff:
            await conn.execute(f'DROP TABLE "{row["relname"]}"')  # name checked by the pattern above
            dropped.append(row["relname"])
        else:
            kept += 1
    # Whole months only, as for the partitions: a row is kept until its month has expired.
    first_kept = _month_start(cutoff.year, cutoff.month)
    purged = await conn.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE achieved_at < $1", first_kept)
    return dropped, kept, int(purged.split()[-1])


async def apply_retention(
    conn: asyncpg.Connection,
    retention: timedelta = DEFAULT_RETENTION,
    now: datetime | None = None,
    ahead_months: int = 3,
    lock_timeout: timedelta = timedelta(seconds=5),
) -> RetentionResult:
    now = now or datetime.now(UTC)
    created = moved = 0
    failed: list[str] = []
    for month in months_ahead(now, ahead_months):
        try:
            rows = await create_month(conn, month, lock_timeout)
        except asyncpg.PostgresError as exc:
            failed.append(f"create {month:%Y-%m}: {exc!r}")
            extra = {"month": f"{month:%Y-%m}", "error": repr(exc)}
            log.error("could not create a month's partition", extra=extra)
            continue
        if rows is not None:
            created += 1
            moved += rows
    cutoff = now - retention
    dropped: list[str] = []
    kept = purged = 0
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout.total_seconds() * 1000)}")
            dropped, kept, purged = await drop_expired(conn, cutoff)
    except asyncpg.PostgresError as exc:
        failed.append(f"drop: {exc!r}")
        log.error("could not drop expired months", extra={"error": repr(exc)})
    result = RetentionResult(created, dropped, kept, moved, purged, failed)
    log.info(
        "achievement retention applied",
        # Not "created": a LogRecord attribute, which logging refuses to overwrite (KeyError).
        extra={
            "partitions_created": created,
            "rows_moved": moved,
            "dropped": dropped,
            "rows_purged": purged,
            "kept": kept,
            "failed": failed,
            "cutoff": cutoff.isoformat(),
        },
    )
    return result
