"""Migration 0010 both ways: the window's indexes gain the columns they are read for, and lose
them again, with the rows and the projector's upserts (ON CONFLICT on the primary keys) intact."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from alembic import command

from goal_engine.devstack.postgres import create_database, drop_database
from projections.migrate import alembic_config

pytestmark = pytest.mark.integration

HOUR = datetime(2026, 11, 20, 7, tzinfo=UTC)
INDEXES = (
    "workflow_activity_hourly_pkey",
    "workflow_time_to_goal_histogram_pkey",
    "enrollments_workflow",
    "enrollments_workflow_exits",
)
# The projector's upsert of an hour's activity: it needs the primary key as its arbiter.
UPSERT = """
INSERT INTO workflow_activity_hourly (tenant_id, workflow_id, bucket, enrolled, achieved, timed_exits,
                                      time_to_goal_seconds)
VALUES ('t1', 'wf', $1, 1, 0, 0, 0)
ON CONFLICT (tenant_id, workflow_id, bucket) DO UPDATE
    SET enrolled = workflow_activity_hourly.enrolled + EXCLUDED.enrolled
"""


async def _state(url: str) -> tuple[dict[str, str], list[tuple[object, ...]]]:
    """The four indexes' definitions, and the hourly activity rows after one more upsert."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = any($1::text[])", list(INDEXES)
        )
        await conn.execute(UPSERT, HOUR)
        activity = await conn.fetch("SELECT bucket, enrolled FROM workflow_activity_hourly")
        return {r["indexname"]: r["indexdef"] for r in rows}, [tuple(r) for r in activity]
    finally:
        await conn.close()


def test_migration_0010_adds_the_read_columns_to_the_window_indexes_and_takes_them_back(
    postgres_server_url: str,
) -> None:
    name = f"goal_engine_0010_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_database(postgres_server_url, name))
    config = alembic_config(url)
    try:
        command.upgrade(config, "0009")
        before, rows = asyncio.run(_state(url))
        assert set(before) == set(INDEXES) and not any("INCLUDE" in d for d in before.values())
        assert rows == [(HOUR, 1)]

        command.upgrade(config, "0010")
        after, rows = asyncio.run(_state(url))
        assert "INCLUDE (enrolled, achieved, timed_exits, time_to_goal_seconds)" in after[INDEXES[0]]
        assert "INCLUDE (exits)" in after[INDEXES[1]]
        assert "INCLUDE (start_seen)" in after[INDEXES[2]]
        assert "INCLUDE (time_to_goal_seconds) WHERE (status = 'completed_goal'::text)" in after[INDEXES[3]]
        assert "UNIQUE" in after[INDEXES[0]] and "UNIQUE" in after[INDEXES[1]]
        assert rows == [(HOUR, 2)]  # the rows kept, the upsert still finds its key

        command.downgrade(config, "0009")
        again, rows = asyncio.run(_state(url))
        assert again == before
        assert rows == [(HOUR, 3)]
    finally:
        asyncio.run(drop_database(postgres_server_url, name))
