"""Issue 10 item 6: a PostgreSQL restart under a running projector loses nothing.

The projector runs against its own embedded PostgreSQL (so restarting it disturbs no
other test) and the session's real Kafka broker, on a topic prefix of its own.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from goal_engine.contract.topics import Topic
from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.postgres import LocalPostgres, create_database
from goal_engine.kafka.admin import create_topics
from projections import metrics
from projections.migrate import upgrade_async
from projections.runner import run_projector
from tests.conftest import RUN_ID
from tests.integration.helpers import EventSender, cloud_event, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def own_postgres() -> AsyncIterator[LocalPostgres]:
    pg = LocalPostgres(REPO_ROOT / ".local" / f"test-pg-outage-{RUN_ID}", port=free_port())
    await asyncio.to_thread(pg.start)
    try:
        yield pg
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(pg.data_dir, ignore_errors=True)
        pg.log_path.unlink(missing_ok=True)


async def folded(url: str, tenant: str) -> tuple[int, int, int]:
    """(enrollments, total_enrolled, tracked next offsets summed) as the read models say."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM enrollments WHERE tenant_id = $1", tenant)
        total = await conn.fetchval(
            "SELECT coalesce(sum(total_enrolled), 0) FROM workflow_stats WHERE tenant_id = $1", tenant
        )
        tracked = await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projector_tracking")
        return int(rows), int(total), int(tracked)
    finally:
        await conn.close()


async def test_a_postgres_restart_under_the_projector_loses_nothing(
    kafka_bootstrap: str, own_postgres: LocalPostgres, settings: Settings
) -> None:
    url = await create_database(own_postgres.url, "outage")
    await upgrade_async(url)
    ours = settings.model_copy(
        update={
            "database_url": url,
            "topic_prefix": f"outage-{uuid.uuid4().hex[:8]}.",
            "projector_group": f"outage-{uuid.uuid4().hex[:8]}",
            "projector_batch_size": 50,
        }
    )
    await create_topics(ours)
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    sender = EventSender(ours)
    await sender.start()
    stop = asyncio.Event()
    projector = asyncio.create_task(run_projector(ours, stop))

    async def send(first: int, count: int) -> None:
        for i in range(first, first + count):
            data = {"workflow_id": "wf", "enrollment_id": f"en-{i}"}
            await sender.send(cloud_event(Topic.ENROLLMENT_STARTED, tenant, data, f"c-{i}"))

    try:
        await send(0, 200)
        await eventually(lambda: folded(url, tenant), lambda f: f == (200, 200, 200), 60, "the first 200")
        retries = metrics.DB_RETRIES._value.get()
        # Records arrive while PostgreSQL is going down, is down, and is starting again.
        sending = asyncio.create_task(send(200, 300))
        await asyncio.to_thread(own_postgres.stop)
        await eventually(
            lambda: asyncio.sleep(0, metrics.DB_RETRIES._value.get()),
            lambda n: n > retries,
            60,
            "the projector to notice the outage",
        )
        await sending
        assert not projector.done(), "the projector must outlive a PostgreSQL restart"
        await asyncio.to_thread(own_postgres.start)
        # Every event folded exactly once: counted once, tracked once, nothing parked.
        assert await eventually(lambda: folded(url, tenant), lambda f: f == (500, 500, 500), 120, "all 500")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM projector_parked_records") == 0
        finally:
            await conn.close()
        assert not projector.done()
    finally:
        stop.set()
        await sender.stop()
        await asyncio.wait_for(projector, 60)
