"""Retention of the achievement log (the spec's 2 years): whole monthly partitions.

One run, in this order:
1. create the monthly partitions for the next ``ahead_months`` (so new
   achievements never land in the DEFAULT partition);
2. drop every monthly partition whose whole month ended before ``now -
   retention``: dropping a partition is instant and leaves no bloat, unlike
   deleting rows.
The aggregates (stats) are not touched: they count every achievement ever made.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

_PARTITION = re.compile(r"^workflow_goal_achievements_(\d{4})_(\d{2})$")
DEFAULT_RETENTION = timedelta(days=730)


@dataclass(frozen=True)
class RetentionResult:
    created: int
    dropped: list[str]
    kept: int


def _month_end(year: int, month: int) -> datetime:
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


async def apply_retention(
    conn: asyncpg.Connection,
    retention: timedelta = DEFAULT_RETENTION,
    now: datetime | None = None,
    ahead_months: int = 3,
) -> RetentionResult:
    now = now or datetime.now(UTC)
    created = await conn.fetchval(
        "SELECT goal_engine_ensure_month_partitions($1, $2)", now, now + timedelta(days=31 * ahead_months)
    )
    names = await conn.fetch(
        """
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'workflow_goal_achievements'::regclass ORDER BY c.relname
        """
    )
    cutoff = now - retention
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
    result = RetentionResult(created=int(created), dropped=dropped, kept=kept)
    log.info(
        "achievement retention applied",
        extra={"created": result.created, "dropped": dropped, "kept": kept, "cutoff": cutoff.isoformat()},
    )
    return result
