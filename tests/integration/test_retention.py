"""Two-year retention of the achievement log, on real PostgreSQL with back-dated rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from projections.retention import apply_retention

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def insert(conn: asyncpg.Connection, tenant: str, at: datetime) -> None:
    await conn.execute(
        """
        INSERT INTO workflow_goal_achievements (tenant_id, id, workflow_id, workflow_enrollment_id,
            contact_id, goal_config_id, goal_type, achieved_at, trigger_event)
        VALUES ($1, $2, 'wf', $3, 'c', 'g', 'tag_added', $4, '{}')
        """,
        tenant,
        uuid.uuid4(),
        f"en-{at.isoformat()}",
        at,
    )


async def test_whole_months_past_retention_are_dropped(pool: asyncpg.Pool) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    async with pool.acquire() as conn:
        await conn.execute(
            "SELECT goal_engine_ensure_month_partitions($1, $2)", NOW - timedelta(days=800), NOW
        )
        old = datetime(2024, 10, 15, tzinfo=UTC)  # its month ended more than 730 days before NOW
        edge = datetime(2024, 11, 30, tzinfo=UTC)  # its month ends after the cutoff (2024-11-26): kept whole
        recent = NOW - timedelta(days=1)
        for at in (old, edge, recent):
            await insert(conn, tenant, at)

        result = await apply_retention(conn, timedelta(days=730), now=NOW)

        assert "workflow_goal_achievements_2024_10" in result.dropped
        assert "workflow_goal_achievements_2024_11" not in result.dropped
        left = await conn.fetch(
            "SELECT achieved_at FROM workflow_goal_achievements WHERE tenant_id = $1 ORDER BY 1", tenant
        )
        assert [r["achieved_at"] for r in left] == [edge, recent]
        # Months ahead exist, so new achievements never land in the default partition.
        ahead = await conn.fetchval("SELECT to_regclass('workflow_goal_achievements_2027_02')")
        assert ahead is not None
        again = await apply_retention(conn, timedelta(days=730), now=NOW)
        assert again.created == 0 and "workflow_goal_achievements_2024_10" not in again.dropped
