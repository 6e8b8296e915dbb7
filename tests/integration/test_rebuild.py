"""goal-engine projections rebuild: the read models from the Kafka log equal the live ones."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from goal_engine.contract.events import ExitGoal, GoalAchieved, TriggerEvent, encode_event, make_event
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.devstack.postgres import create_database, drop_database
from goal_engine.domain import ids
from goal_engine.kafka.admin import create_topics, topic_partitions
from projections.projector import PROJECTION, VIEWS
from projections.rebuild import READ_MODELS, rebuild
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually

pytestmark = pytest.mark.integration

# Table -> the columns compared (everything but bookkeeping times).
COMPARED = {
    "enrollments": ("tenant_id", "enrollment_id", "workflow_id", "contact_id", "status", "start_seen",
                    "enrolled_at", "ended_at", "goal_config_ids", "time_to_goal_seconds"),
    "workflow_goal_achievements": ("tenant_id", "id", "workflow_id", "workflow_enrollment_id", "contact_id",
                                   "goal_config_id", "goal_type", "achieved_at", "trigger_event", "metadata",
                                   "time_to_goal_seconds"),
    "achievement_ids": ("tenant_id", "id"),
    "workflow_stats": ("tenant_id", "workflow_id", "total_enrolled", "goals_achieved", "timed_exits",
                       "time_to_goal_seconds"),
    "workflow_goal_type_stats": ("tenant_id", "workflow_id", "goal_type", "achieved"),
    "catalog_entities": ("tenant_id", "kind", "entity_id", "name", "parent_id", "deleted", "changed_at"),
    "workflow_activity_hourly": ("tenant_id", "workflow_id", "bucket", "enrolled", "achieved", "timed_exits",
                                 "time_to_goal_seconds"),
    "workflow_goal_type_hourly": ("tenant_id", "workflow_id", "goal_type", "bucket", "achieved"),
    "workflow_time_to_goal_histogram": ("tenant_id", "workflow_id", "bucket", "bin", "exits"),
    "workflow_goal_type_time_to_goal_histogram": ("tenant_id", "workflow_id", "goal_type", "bucket", "bin",
                                                  "achievements", "seconds"),
    "workflow_time_to_goal_bins": ("tenant_id", "workflow_id", "bin", "exits"),
    "workflow_goal_type_time_to_goal_bins": ("tenant_id", "workflow_id", "goal_type", "bin", "achievements",
                                             "seconds"),
    "workflow_activity_daily": ("tenant_id", "workflow_id", "bucket", "enrolled", "achieved", "timed_exits",
                                "time_to_goal_seconds"),
    "workflow_goal_type_daily": ("tenant_id", "workflow_id", "goal_type", "bucket", "achieved"),
    "workflow_time_to_goal_histogram_daily": ("tenant_id", "workflow_id", "bucket", "bins", "exits"),
    "workflow_goal_type_time_to_goal_histogram_daily": ("tenant_id", "workflow_id", "bucket", "goal_type",
                                                        "bins", "achievements", "seconds"),
    "published_workflow_configs": ("tenant_id", "workflow_id", "version", "status", "logic", "activated_at",
                                   "goals", "published_at", "event_id", "event_type"),
}  # fmt: skip


async def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, [settings.topic(t) for t in VIEWS])
        return {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def rows(pool: asyncpg.Pool, table: str, tenants: list[str]) -> list[tuple[object, ...]]:
    columns = ", ".join(COMPARED[table])
    order = ", ".join(str(n) for n in range(1, len(COMPARED[table]) + 1))
    query = f"SELECT {columns} FROM {table} WHERE tenant_id = ANY($1::text[]) ORDER BY {order}"
    found = await pool.fetch(query, tenants)
    return [tuple(r.values()) for r in found]


async def test_rebuilt_read_models_equal_the_live_ones(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender, pool: asyncpg.Pool, postgres_server_url: str
) -> None:
    # Something of every kind on the topics: catalog, configuration, enrollments, an end, an
    # achievement, an exit.
    tenant, workflow = f"rebuild-{uuid.uuid4().hex[:6]}", "wf"
    auth = bearer(stack, tenant)
    await sender.send(
        cloud_event(
            "catalog.entity.changed",
            tenant,
            {"kind": "tag", "entity_id": "vip", "name": "VIP", "parent_id": None, "deleted": False},
        )
    )
    await api.post(
        f"/workflows/{workflow}/goals",
        json={"goal_type": "tag_added", "criteria": {"tag_id": "vip"}},
        headers=auth,
    )
    await eventually(
        lambda: api.post(f"/workflows/{workflow}/activate", headers=auth), lambda r: r.status_code == 200
    )
    for n in range(3):
        data = {"workflow_id": workflow, "enrollment_id": f"en{n}"}
        await sender.send(cloud_event("workflow.enrollment.started", tenant, data, f"c{n}"))
    await sender.send(cloud_event("contact.tag.added", tenant, {"tag_id": "vip", "tag_name": "VIP"}, "c0"))
    ended = {"workflow_id": workflow, "enrollment_id": "en1", "reason": "removed"}
    await sender.send(cloud_event("workflow.enrollment.ended", tenant, ended, "c1"))
    await eventually(
        lambda: api.get(f"/workflows/{workflow}/enrollments/en0", headers=auth),
        lambda r: r.status_code == 200 and r.json()["status"] == "completed_goal",
    )

    # Wait until the live projector has read everything now on its topics.
    target = await end_offsets(stack)

    async def tracking() -> dict[tuple[str, int], int]:
        found = await pool.fetch(
            "SELECT topic, partition, next_offset FROM projector_tracking WHERE projection = $1", PROJECTION
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in found}

    await eventually(
        tracking, lambda t: all(t.get(k, 0) >= v for k, v in target.items() if v), what="live catch-up"
    )

    name = f"rebuild_{uuid.uuid4().hex[:8]}"
    rebuilt_url = await create_database(postgres_server_url, name)
    seen: list[int] = []
    try:
        records = await rebuild(stack, rebuilt_url, progress=lambda done, total, _: seen.append(total))
        assert records == sum(target.values()) == seen[-1]
        rebuilt = await asyncpg.create_pool(rebuilt_url, min_size=1, max_size=2)
        try:
            tenants = [
                r["tenant_id"] for r in await rebuilt.fetch("SELECT DISTINCT tenant_id FROM enrollments")
            ]
            assert tenant in tenants
            for table in COMPARED:
                assert await rows(rebuilt, table, [tenant]), f"{table}: nothing to compare"
                assert await rows(rebuilt, table, tenants) == await rows(pool, table, tenants), table
        finally:
            await rebuilt.close()
    finally:
        await drop_database(postgres_server_url, name)


def test_rebuild_empties_every_table_the_projector_writes() -> None:
    assert set(COMPARED) <= set(READ_MODELS)


async def _journey(sender: EventSender, tenant: str, n: int, enrolled: datetime, achieved: datetime) -> None:
    """Enrollment n of workflow "wf" started, its goal achieved and exited; the achievement twice,
    the second time with another achieved_at (a re-emission: the same id)."""
    enrollment, contact = f"en{n}", f"c{n}"
    data = {"workflow_id": "wf", "enrollment_id": enrollment}
    await sender.send(cloud_event("workflow.enrollment.started", tenant, data, contact, enrolled))
    for at in (achieved, achieved + timedelta(minutes=5)):
        goal = GoalAchieved(
            id=ids.achievement_id(tenant, enrollment, "g"),
            workflow_id="wf",
            workflow_enrollment_id=enrollment,
            contact_id=contact,
            goal_config_id="g",
            goal_type="tag_added",
            achieved_at=at,
            trigger_event=TriggerEvent(id=f"src{n}", type="contact.tag.added", time=at, data={}),
            enrolled_at=enrolled,
        )
        event = make_event(
            Topic.GOAL_ACHIEVED, event_id=goal.id, tenant_id=tenant, time=at, subject=contact, data=goal
        )
        await sender.send(json.loads(encode_event(event)))
    exited = ExitGoal(
        workflow_id="wf",
        workflow_enrollment_id=enrollment,
        contact_id=contact,
        goal_config_ids=["g"],
        exited_at=achieved,
        enrolled_at=enrolled,
    )
    event = make_event(
        Topic.EXIT_GOAL,
        event_id=ids.exit_id(tenant, enrollment),
        tenant_id=tenant,
        time=achieved,
        subject=contact,
        data=exited,
    )
    await sender.send(json.loads(encode_event(event)))


async def _snapshot(db: asyncpg.Pool, tenant: str) -> dict[str, list[tuple[object, ...]]]:
    tables = {table: await rows(db, table, [tenant]) for table in COMPARED}
    audit = await db.fetch(
        "SELECT action, entity_id, after, achievement_id FROM audit_log WHERE tenant_id = $1 ORDER BY id",
        tenant,
    )
    return {**tables, "audit_log": [tuple(r.values()) for r in audit]}


async def test_a_rebuild_in_place_writes_nothing_twice_and_keeps_expired_months_out(
    topics: Settings, postgres_server_url: str
) -> None:
    """Rebuilt twice into the same database: the second run (in place, over the first one's
    read models and audit entries) leaves every table as the first left it."""
    own = topics.model_copy(update={"topic_prefix": f"inplace-{uuid.uuid4().hex[:6]}."})
    await create_topics(own)
    tenant, now = f"inplace-{uuid.uuid4().hex[:6]}", datetime.now(UTC)
    expired = now - timedelta(days=own.retention_days + 62)  # a month the retention has dropped
    sender = EventSender(own)
    await sender.start()
    try:
        await _journey(sender, tenant, 0, now - timedelta(days=3), now - timedelta(days=2))
        await _journey(sender, tenant, 1, expired - timedelta(hours=5), expired)
    finally:
        await sender.stop()

    name = f"rebuild_{uuid.uuid4().hex[:8]}"
    url = await create_database(postgres_server_url, name)
    try:
        await rebuild(own, url, progress=lambda *_: None)
        db = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            first = await _snapshot(db, tenant)
            await rebuild(own, url, progress=lambda *_: None)
            assert await _snapshot(db, tenant) == first
            # Both achievements counted once each, in the aggregates, in the dedup, in the audit log.
            assert first["workflow_goal_type_stats"] == [(tenant, "wf", "tag_added", 2)]
            assert len(first["achievement_ids"]) == 2
            assert [row[0] for row in first["audit_log"]] == ["goal.achieved"] * 2
            # The expired one is not back in the log (nor in its DEFAULT partition); the recent one is.
            logged = await db.fetch(
                "SELECT achieved_at, tableoid::regclass::text AS part FROM workflow_goal_achievements "
                "WHERE tenant_id = $1",
                tenant,
            )
            assert [r["achieved_at"] for r in logged] == [now - timedelta(days=2)]
            assert logged[0]["part"] != "workflow_goal_achievements_default"
        finally:
            await db.close()
    finally:
        await drop_database(postgres_server_url, name)
