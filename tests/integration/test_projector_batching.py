"""The set-based fold of a batch equals the fold of its records one by one (real PostgreSQL).

The same records, duplicates and reorderings included, go into two fresh databases: in one
batch (achievements and exits set-based, several per aggregate key) and one record per
batch. Every read-model table must come out equal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from goal_engine.contract.topics import Topic
from goal_engine.devstack.postgres import create_database, drop_database
from projections.migrate import upgrade_async
from projections.projector import Projector
from tests.integration.helpers import ProjectorTopics as Topics
from tests.integration.helpers import cloud_event
from tests.integration.test_projector import T0, journey
from tests.integration.test_rebuild import COMPARED, rows

pytestmark = pytest.mark.integration


@pytest.fixture
async def two_pools(postgres_server_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    names = [f"batching_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    urls = [await create_database(postgres_server_url, n) for n in names]
    for url in urls:  # one at a time: two alembic runs in threads at once deadlock
        await upgrade_async(url)
    pools = [await asyncpg.create_pool(u, min_size=1, max_size=2) for u in urls]
    try:
        yield pools[0], pools[1]
    finally:
        for pool in pools:
            await pool.close()
        for name in names:
            await drop_database(postgres_server_url, name)


def records(topics: Topics) -> list[object]:
    """Three tenants x two workflows x four enrollments, redelivered and reordered."""
    values: list[tuple[Topic, bytes]] = []
    for t in range(3):
        for w in range(2):
            for e in range(4):
                tenant, workflow, enrollment = f"t{t}", f"wf{w}", f"en-{w}-{e}"
                started, achieved, exited = journey(tenant, workflow, enrollment, f"g{w}")
                if e == 1:  # an achievement without enrolled_at, timed from the start if projected
                    event = json.loads(achieved[1])
                    del event["data"]["enrolled_at"]
                    achieved = (achieved[0], json.dumps(event).encode())
                if e == 2:  # ended an hour before its goal: the end stands
                    data = {"workflow_id": workflow, "enrollment_id": enrollment, "reason": "exited"}
                    ended = cloud_event(
                        "workflow.enrollment.ended", tenant, data, "c1", T0 + timedelta(hours=1)
                    )
                    values.append((Topic.ENROLLMENT_ENDED, json.dumps(ended).encode()))
                values += [exited, started, achieved, achieved, exited]  # exit first; then redelivered
                if e == 3:  # the same achievement re-emitted a day later: the first one stands
                    event = json.loads(achieved[1])
                    event["id"] += "-retry"
                    event["data"]["achieved_at"] = (T0 + timedelta(days=1, hours=3)).isoformat()
                    values.append((achieved[0], json.dumps(event).encode()))
    return [topics.record(topic, value) for topic, value in values]


async def test_the_set_based_batch_folds_as_one_record_at_a_time(
    two_pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    batched, one_by_one = two_pools
    topics = Topics()
    batch = records(topics)
    assert await Projector(batched, topics.prefix).process_batch(batch) == len(batch)  # type: ignore[arg-type]
    projector = Projector(one_by_one, topics.prefix)
    for record in batch:
        await projector.process_batch([record])  # type: ignore[list-item]
    tenants = ["t0", "t1", "t2"]
    for table in COMPARED:
        if table in ("catalog_entities", "published_workflow_configs"):
            continue  # no such events here
        expected = await rows(one_by_one, table, tenants)
        assert expected, f"{table}: nothing to compare"
        assert await rows(batched, table, tenants) == expected, table
    audit = "SELECT tenant_id, entity_id, at, after, achievement_id FROM audit_log ORDER BY 1, 2, 3"
    assert [tuple(r) for r in await batched.fetch(audit)] == [tuple(r) for r in await one_by_one.fetch(audit)]
    stats = await batched.fetch("SELECT goals_achieved FROM workflow_stats ORDER BY tenant_id, workflow_id")
    assert [r["goals_achieved"] for r in stats] == [3] * 6  # four enrollments, one ended before its goal
    by_type = await batched.fetch("SELECT achieved FROM workflow_goal_type_stats")
    assert [r["achieved"] for r in by_type] == [4] * 6  # the re-emitted achievement counted once
    days = await batched.fetch("SELECT DISTINCT bucket FROM workflow_goal_type_daily")
    assert [r["bucket"] for r in days] == [T0.replace(hour=0)]  # not the retry's day
