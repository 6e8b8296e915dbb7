"""goal-engine projections rebuild: the read models from the Kafka log equal the live ones."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from goal_engine.core.config import Settings
from goal_engine.devstack.postgres import create_database, drop_database
from goal_engine.kafka.admin import topic_partitions
from projections.projector import PROJECTION, VIEWS
from projections.rebuild import rebuild
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually

pytestmark = pytest.mark.integration

# Table -> the columns compared (everything but bookkeeping times).
COMPARED = {
    "enrollments": ("tenant_id", "enrollment_id", "workflow_id", "contact_id", "status", "start_seen",
                    "enrolled_at", "ended_at", "goal_config_ids"),
    "workflow_goal_achievements": ("tenant_id", "id", "workflow_id", "workflow_enrollment_id", "contact_id",
                                   "goal_config_id", "goal_type", "achieved_at", "trigger_event", "metadata"),
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
