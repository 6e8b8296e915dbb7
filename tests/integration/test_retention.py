"""Two-year retention of the achievement log, on real PostgreSQL with back-dated rows."""

from __future__ import annotations

import logging
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


async def partition_of(conn: asyncpg.Connection, tenant: str) -> list[str]:
    rows = await conn.fetch(
        """
        SELECT tableoid::regclass::text AS p FROM workflow_goal_achievements
        WHERE tenant_id = $1 ORDER BY 1
        """,
        tenant,
    )
    return [r["p"] for r in rows]


async def test_a_future_dated_row_in_default_does_not_wedge_retention(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10 item 10: a row dated months ahead sits in DEFAULT until its month comes into the window."""
    caplog.set_level(logging.INFO, logger="projections.retention")  # as in production: its summary logs
    tenant, later = f"t-{uuid.uuid4().hex[:6]}", datetime(2027, 8, 15, tzinfo=UTC)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass('workflow_goal_achievements_2027_10')") is None
        await insert(conn, tenant, datetime(2027, 10, 10, tzinfo=UTC))  # months ahead: lands in DEFAULT
        await insert(conn, tenant, datetime(2019, 1, 1, tzinfo=UTC))  # before every partition: DEFAULT too
        await conn.execute(
            "SELECT goal_engine_ensure_month_partitions($1, $1)", datetime(2025, 6, 1, tzinfo=UTC)
        )
        assert await partition_of(conn, tenant) == ["workflow_goal_achievements_default"] * 2

        result = await apply_retention(conn, timedelta(days=730), now=later)

        assert result.failed == [] and result.moved == 1 and result.purged >= 1
        assert "achievement retention applied" in caplog.messages
        # The future row is in its own month's partition now, the 2019 one is gone (past retention).
        assert await partition_of(conn, tenant) == ["workflow_goal_achievements_2027_10"]
        assert "workflow_goal_achievements_2025_06" in result.dropped
        for month in ("2027_08", "2027_09", "2027_10", "2027_11"):
            assert (
                await conn.fetchval(f"SELECT to_regclass('workflow_goal_achievements_{month}')") is not None
            )


async def test_expired_months_are_dropped_even_when_creating_one_fails(pool: asyncpg.Pool) -> None:
    """A partition made by hand over a quarter makes creating its months fail; the drops still happen."""
    later = datetime(2028, 6, 15, tzinfo=UTC)
    async with pool.acquire() as conn:
        await conn.execute(
            "SELECT goal_engine_ensure_month_partitions($1, $1)", datetime(2026, 3, 1, tzinfo=UTC)
        )
        await conn.execute(
            """
            CREATE TABLE manual_2028_q3 PARTITION OF workflow_goal_achievements
                FOR VALUES FROM ('2028-07-01 00:00+00') TO ('2028-10-01 00:00+00')
            """
        )
        try:
            result = await apply_retention(conn, timedelta(days=730), now=later)
        finally:
            await conn.execute("DROP TABLE manual_2028_q3")
        assert result.created == 1  # 2028-06; July to September overlap the manual partition
        assert len(result.failed) == 3 and all("overlap" in f for f in result.failed)
        assert "workflow_goal_achievements_2026_03" in result.dropped
        again = await apply_retention(conn, timedelta(days=730), now=later)
        assert again.created == 3 and again.failed == []
