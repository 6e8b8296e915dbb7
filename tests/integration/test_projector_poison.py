"""Issue 10 item 6: one poison record never stops the projector (real PostgreSQL).

Each poison record is parked in ``projector_parked_records`` with its reason, in the
same transaction that moves tracking past it; the other records of its batch fold.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from goal_engine.contract.topics import Topic
from projections import metrics
from projections.projector import Projector
from tests.integration.helpers import ProjectorTopics as Topics
from tests.integration.helpers import cloud_event

pytestmark = pytest.mark.integration


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def started(tenant: str, enrollment: str, **overrides: Any) -> bytes:
    event = cloud_event(
        "workflow.enrollment.started", tenant, {"workflow_id": "wf", "enrollment_id": enrollment}, "c1"
    )
    event.update(overrides)
    return json.dumps(event).encode()


def catalog(tenant: str, entity: str, **extra: Any) -> bytes:
    data = {"kind": "tag", "entity_id": entity, "name": "VIP", **extra}
    return json.dumps(cloud_event("catalog.entity.changed", tenant, data)).encode()


def deep_json(depth: int) -> str:
    # Written out by hand: json.dumps itself recurses and would stop at Python's limit.
    return "[" * depth + '"leaf"' + "]" * depth


def catalog_deep(tenant: str, entity: str, depth: int) -> bytes:
    prefix = catalog(tenant, entity, ignored="__DEEP__").decode()
    return prefix.replace('"__DEEP__"', deep_json(depth)).encode()


async def parked(pool: asyncpg.Pool, prefix: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        """
        SELECT topic, partition, "offset", reason, error, value FROM projector_parked_records
        WHERE topic LIKE $1 || '%' ORDER BY topic, "offset"
        """,
        prefix,
    )


async def test_poison_records_are_parked_and_the_rest_of_the_batch_folds(pool: asyncpg.Pool) -> None:
    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    before = metrics.PARKED.labels(Topic.CATALOG_ENTITY_CHANGED, "invalid")._value.get()
    batch = [
        topics.record(Topic.ENROLLMENT_STARTED, started(tenant, "en1")),
        # ~340 levels of ignored data: once a RecursionError between JSON and the fold; now
        # parse_event refuses it (too deep), and the projector parks it as invalid.
        topics.record(Topic.CATALOG_ENTITY_CHANGED, catalog_deep(tenant, "tag-deep", 340)),
        # A valid time whose UTC instant is before year 1: asyncpg cannot encode it (parse_event
        # now refuses times before 1970; a time inside data that fails the fold is the next test's).
        topics.record(Topic.ENROLLMENT_STARTED, started(tenant, "en2", time="0001-01-01T00:00:00+01:00")),
        topics.record(Topic.CATALOG_ENTITY_CHANGED, catalog(tenant, "tag-ok")),
        topics.record(Topic.ENROLLMENT_STARTED, started(tenant, "en3")),
        topics.record(Topic.ENROLLMENT_STARTED, b"{not json"),
    ]
    assert await projector.process_batch(batch) == 3

    enrollments = await pool.fetch(
        "SELECT enrollment_id FROM enrollments WHERE tenant_id = $1 ORDER BY 1", tenant
    )
    assert [r["enrollment_id"] for r in enrollments] == ["en1", "en3"]
    tags = await pool.fetch("SELECT entity_id FROM catalog_entities WHERE tenant_id = $1", tenant)
    assert [r["entity_id"] for r in tags] == ["tag-ok"]
    total = await pool.fetchval("SELECT total_enrolled FROM workflow_stats WHERE tenant_id = $1", tenant)
    assert total == 2

    rows = await parked(pool, topics.prefix)
    by_offset = {(r["topic"].removeprefix(topics.prefix), r["offset"]): r for r in rows}
    assert set(by_offset) == {
        (Topic.CATALOG_ENTITY_CHANGED, 0),
        (Topic.ENROLLMENT_STARTED, 1),
        (Topic.ENROLLMENT_STARTED, 3),
    }
    deep = by_offset[(Topic.CATALOG_ENTITY_CHANGED, 0)]
    assert deep["error"] == "too_deep" and deep["value"] == batch[1].value
    assert by_offset[(Topic.ENROLLMENT_STARTED, 1)]["error"] == "time_out_of_range"
    assert "malformed JSON" in by_offset[(Topic.ENROLLMENT_STARTED, 3)]["reason"]
    assert all(r["reason"] for r in rows)

    positions = await projector.positions()
    assert positions[(topics.prefix + Topic.ENROLLMENT_STARTED, 0)] == 4
    assert positions[(topics.prefix + Topic.CATALOG_ENTITY_CHANGED, 0)] == 2
    after = metrics.PARKED.labels(Topic.CATALOG_ENTITY_CHANGED, "invalid")._value.get()
    assert after == before + 1


async def test_a_parked_record_redelivered_is_parked_once(pool: asyncpg.Pool) -> None:
    """After a crash between commit and Kafka commit, the batch comes again from the tracking row."""
    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    poison = topics.record(Topic.ENROLLMENT_STARTED, started(tenant, "en1", time="0001-01-01T00:00:00+01:00"))
    good = topics.record(Topic.ENROLLMENT_STARTED, started(tenant, "en2"))
    assert await projector.process_batch([poison, good]) == 1
    # A second projector (after a restart) re-reads from the tracking row: nothing left to apply.
    later = topics.record(Topic.ENROLLMENT_STARTED, started(tenant, "en3"))
    assert await projector.process_batch([later]) == 1
    assert len(await parked(pool, topics.prefix)) == 1
    total = await pool.fetchval("SELECT total_enrolled FROM workflow_stats WHERE tenant_id = $1", tenant)
    assert total == 2


async def test_a_poison_achievement_is_found_in_its_set_based_batch(pool: asyncpg.Pool) -> None:
    """Achievements and exits fold set-based; one that fails sends the batch through the per-record pass."""
    from tests.integration.test_projector import journey

    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    good = journey(tenant, "wf", "en1", "g1")
    (_, bad_achieved), (_, bad_exit) = journey(tenant, "wf", "en2", "g2")[1:]
    poisoned = []
    for value, field in ((bad_achieved, "achieved_at"), (bad_exit, "exited_at")):
        event = json.loads(value)
        event["data"][field] = "0001-01-01T00:00:00+01:00"
        poisoned.append(json.dumps(event).encode())
    batch = [
        topics.record(Topic.GOAL_ACHIEVED, poisoned[0]),
        *(topics.record(topic, value) for topic, value in good),
        topics.record(Topic.EXIT_GOAL, poisoned[1]),
    ]
    assert await projector.process_batch(batch) == 3
    stats = await pool.fetchrow(
        "SELECT total_enrolled, goals_achieved FROM workflow_stats WHERE tenant_id = $1", tenant
    )
    assert (stats["total_enrolled"], stats["goals_achieved"]) == (1, 1)
    logged = await pool.fetchval(
        "SELECT count(*) FROM workflow_goal_achievements WHERE tenant_id = $1", tenant
    )
    assert logged == 1
    rows = await parked(pool, topics.prefix)
    assert [(r["topic"].removeprefix(topics.prefix), r["offset"]) for r in rows] == [
        (Topic.EXIT_GOAL, 1),
        (Topic.GOAL_ACHIEVED, 0),
    ]
