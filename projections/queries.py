"""Reads of the read models for the API; every query is tenant-scoped."""

from __future__ import annotations

from typing import Any

import asyncpg


async def workflow_stats(pool: asyncpg.Pool, tenant_id: str, workflow_id: str) -> dict[str, Any] | None:
    """The spec's stats shape, from the aggregates (never a scan of the log)."""
    async with pool.acquire() as conn:
        totals = await conn.fetchrow(
            "SELECT * FROM workflow_stats WHERE tenant_id = $1 AND workflow_id = $2", tenant_id, workflow_id
        )
        if totals is None:
            known = await conn.fetchval(
                "SELECT true FROM workflows WHERE tenant_id = $1 AND workflow_id = $2", tenant_id, workflow_id
            )
            if not known:
                return None
        by_type = await conn.fetch(
            """
            SELECT goal_type, achieved FROM workflow_goal_type_stats
            WHERE tenant_id = $1 AND workflow_id = $2 ORDER BY goal_type
            """,
            tenant_id,
            workflow_id,
        )
    enrolled = totals["total_enrolled"] if totals else 0
    achieved = totals["goals_achieved"] if totals else 0
    timed = totals["timed_exits"] if totals else 0
    return {
        "workflow_id": workflow_id,
        "total_enrolled": enrolled,
        "goals_achieved": achieved,
        "conversion_rate": _rate(achieved, enrolled),
        "avg_time_to_goal_hours": (
            round(totals["time_to_goal_seconds"] / timed / 3600, 2) if totals and timed else None
        ),
        "by_goal_type": {
            r["goal_type"]: {"achieved": r["achieved"], "conversion_rate": _rate(r["achieved"], enrolled)}
            for r in by_type
        },
    }


def _rate(part: int, whole: int) -> float:
    """Percent with one decimal; 0.0 when nothing is enrolled."""
    return round(100.0 * part / whole, 1) if whole else 0.0


async def enrollment(pool: asyncpg.Pool, tenant_id: str, enrollment_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        """
        SELECT enrollment_id, workflow_id, contact_id, status, enrolled_at, ended_at, goal_config_ids
        FROM enrollments WHERE tenant_id = $1 AND enrollment_id = $2
        """,
        tenant_id,
        enrollment_id,
    )
    return dict(row) if row is not None else None
