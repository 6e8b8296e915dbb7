"""Goal analytics (R12) from the projector's aggregates: never a scan of the log.

Without a window, totals are all-time (``workflow_stats``). With one, every
count is a sum of hourly aggregates, so it is exact for any window of whole
hours: ``from`` and ``to`` are rounded down to the hour (and series buckets
to the interval). Percentiles of time to goal come from log-spaced histograms,
within :data:`projections.histogram.RELATIVE_ERROR`; averages from exact sums.
Per goal type, time to goal runs from the enrollment to that goal's achievement
(in an ``all`` workflow, each goal's own moment), bucketed by achievement hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from projections.histogram import RELATIVE_ERROR, percentile
from projections.queries import workflow_known

Interval = Literal["hour", "day", "week"]
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


@dataclass(frozen=True)
class Window:
    start: datetime | None = None  # inclusive, rounded down to the hour
    end: datetime | None = None  # exclusive, rounded down to the hour
    interval: Interval | None = None  # when set, the answer has a series


def rate(part: int, whole: int) -> float:
    """Percent with one decimal; 0.0 when nothing is enrolled."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def _hours(total_seconds: float, count: int) -> float | None:
    return round(total_seconds / count / 3600, 2) if count else None


_IN_WINDOW = """
    tenant_id = $1 AND workflow_id = ANY($2::text[])
    AND ($3::timestamptz IS NULL OR bucket >= date_trunc('hour', $3::timestamptz, 'UTC'))
    AND ($4::timestamptz IS NULL OR bucket < date_trunc('hour', $4::timestamptz, 'UTC'))
"""


async def workflow_stats(
    pool: asyncpg.Pool, tenant_id: str, workflow_id: str, window: Window = Window()
) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        if not await workflow_known(conn, tenant_id, workflow_id):
            return None
        args = (tenant_id, [workflow_id], window.start, window.end)
        if window.start is None and window.end is None:
            # All time: the running totals, which also count what predates the hourly tables.
            totals = await conn.fetchrow(
                """
                SELECT total_enrolled AS enrolled, goals_achieved AS achieved, timed_exits AS timed,
                       time_to_goal_seconds AS seconds
                FROM workflow_stats WHERE tenant_id = $1 AND workflow_id = $2
                """,
                tenant_id,
                workflow_id,
            )
        else:
            totals = await conn.fetchrow(
                f"""
                SELECT coalesce(sum(enrolled), 0) AS enrolled, coalesce(sum(achieved), 0) AS achieved,
                       coalesce(sum(timed_exits), 0) AS timed,
                       coalesce(sum(time_to_goal_seconds), 0) AS seconds
                FROM workflow_activity_hourly WHERE {_IN_WINDOW}
                """,
                *args,
            )
        totals = totals or {"enrolled": 0, "achieved": 0, "timed": 0, "seconds": 0.0}
        by_type = await conn.fetch(
            f"""
            SELECT goal_type, sum(achieved) AS achieved FROM workflow_goal_type_hourly
            WHERE {_IN_WINDOW} GROUP BY goal_type ORDER BY goal_type
            """,
            *args,
        )
        histogram = await conn.fetch(
            f"""
            SELECT bin, sum(exits) AS exits FROM workflow_time_to_goal_histogram
            WHERE {_IN_WINDOW} GROUP BY bin
            """,
            *args,
        )
        type_histogram = await conn.fetch(
            f"""
            SELECT goal_type, bin, sum(achievements) AS achievements, sum(seconds) AS seconds
            FROM workflow_goal_type_time_to_goal_histogram
            WHERE {_IN_WINDOW} GROUP BY goal_type, bin
            """,
            *args,
        )
        series = await _series(conn, tenant_id, workflow_id, window) if window.interval else []
    enrolled, achieved = int(totals["enrolled"]), int(totals["achieved"])
    return {
        "workflow_id": workflow_id,
        "total_enrolled": enrolled,
        "goals_achieved": achieved,
        "conversion_rate": rate(achieved, enrolled),
        "avg_time_to_goal_hours": _hours(float(totals["seconds"]), int(totals["timed"])),
        "time_to_goal_hours": _percentiles([(r["bin"], int(r["exits"])) for r in histogram]),
        "by_goal_type": {
            r["goal_type"]: {
                "achieved": int(r["achieved"]),
                "conversion_rate": rate(int(r["achieved"]), enrolled),
                **_goal_type_timing([t for t in type_histogram if t["goal_type"] == r["goal_type"]]),
            }
            for r in by_type
        },
        "series": series,
    }


def _goal_type_timing(rows: list[asyncpg.Record]) -> dict[str, Any]:
    """Average and percentiles of one goal type's time to goal, from its histogram rows."""
    counts = [(r["bin"], int(r["achievements"])) for r in rows]
    seconds = sum(float(r["seconds"]) for r in rows)
    return {
        "avg_time_to_goal_hours": _hours(seconds, sum(c for _, c in counts)),
        "time_to_goal_hours": _percentiles(counts),
    }


def _percentiles(counts: list[tuple[int, int]]) -> dict[str, Any]:
    values = {name: percentile(counts, q) for name, q in PERCENTILES.items()}
    return {
        **{name: round(v / 3600, 4) if v is not None else None for name, v in values.items()},
        "relative_error": round(RELATIVE_ERROR, 4),
    }


async def _series(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, window: Window
) -> list[dict[str, Any]]:
    activity = await conn.fetch(
        f"""
        SELECT date_trunc($5, bucket, 'UTC') AS start, sum(enrolled) AS enrolled, sum(achieved) AS achieved
        FROM workflow_activity_hourly WHERE {_IN_WINDOW}
        GROUP BY 1 ORDER BY 1
        """,
        tenant_id,
        [workflow_id],
        window.start,
        window.end,
        window.interval,
    )
    by_type = await conn.fetch(
        f"""
        SELECT date_trunc($5, bucket, 'UTC') AS start, goal_type, sum(achieved) AS achieved
        FROM workflow_goal_type_hourly WHERE {_IN_WINDOW}
        GROUP BY 1, 2
        """,
        tenant_id,
        [workflow_id],
        window.start,
        window.end,
        window.interval,
    )
    types: dict[datetime, dict[str, int]] = {}
    for r in by_type:
        types.setdefault(r["start"], {})[r["goal_type"]] = int(r["achieved"])
    starts = sorted({r["start"] for r in activity} | set(types))
    rows = {r["start"]: r for r in activity}
    out = []
    for start in starts:
        enrolled = int(rows[start]["enrolled"]) if start in rows else 0
        achieved = int(rows[start]["achieved"]) if start in rows else 0
        out.append(
            {
                "start": start,
                "enrolled": enrolled,
                "achieved": achieved,
                "conversion_rate": rate(achieved, enrolled),
                "by_goal_type": types.get(start, {}),
            }
        )
    return out


async def tenant_summary(pool: asyncpg.Pool, tenant_id: str) -> list[dict[str, Any]]:
    """Every workflow of the tenant with its all-time totals, best converting first."""
    rows = await pool.fetch(
        """
        SELECT workflow_id, total_enrolled, goals_achieved, timed_exits, time_to_goal_seconds
        FROM workflow_stats WHERE tenant_id = $1
        """,
        tenant_id,
    )
    workflows = [
        {
            "workflow_id": r["workflow_id"],
            "total_enrolled": r["total_enrolled"],
            "goals_achieved": r["goals_achieved"],
            "conversion_rate": rate(r["goals_achieved"], r["total_enrolled"]),
            "avg_time_to_goal_hours": _hours(r["time_to_goal_seconds"], r["timed_exits"]),
        }
        for r in rows
    ]
    return sorted(workflows, key=lambda w: (-w["conversion_rate"], -w["goals_achieved"], w["workflow_id"]))
