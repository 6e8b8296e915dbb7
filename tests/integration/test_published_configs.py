"""The configuration as published to the engine, folded by the projector, and ``live`` in the API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import httpx
import pytest

from goal_engine.contract import events
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.domain import ids
from projections import queries
from projections.projector import Projector
from tests.integration.helpers import EventSender, ProjectorTopics, bearer, cloud_event, eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def config_event(
    tenant: str, workflow: str, version: int, status: Literal["active", "inactive"] = "inactive"
) -> tuple[Topic, bytes]:
    """The event the API publishes for ``version``: version n has n - 1 form goals, up to 3."""
    at = T0 + timedelta(minutes=version)
    goals = [
        events.GoalConfig(
            id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"{tenant}/{workflow}/{n}")),
            workflow_id=workflow,
            goal_type="form_submitted",
            criteria={"form_id": f"form-{n}"},
            created_at=at,
            updated_at=at,
        )
        for n in range(min(version - 1, 3))
    ]
    snapshot = events.WorkflowSnapshot(
        workflow_id=workflow,
        version=version,
        status=status,
        logic="all" if version % 2 else "any",
        activated_at=at if status == "active" else None,
        goals=goals,
    )
    data: events.GoalConfigured | events.WorkflowStatusChanged
    if status == "active":
        topic = Topic.WORKFLOW_ACTIVATED
        data = events.WorkflowStatusChanged(workflow_id=workflow, workflow=snapshot)
    else:
        topic = Topic.GOAL_CONFIGURED
        data = events.GoalConfigured(operation="settings_updated", goal=None, workflow=snapshot)
    event_id = ids.config_event_id(tenant, workflow, version)
    event = events.make_event(topic, event_id=event_id, tenant_id=tenant, time=at, data=data, source="tests")
    return topic, events.encode_event(event)


async def published(pool: asyncpg.Pool, tenant: str, workflow: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT * FROM published_workflow_configs WHERE tenant_id = $1 AND workflow_id = $2",
        tenant,
        workflow,
    )
    assert row is not None, f"nothing published for {tenant}/{workflow}"
    return row


async def test_the_newest_version_wins_whatever_the_order(pool: asyncpg.Pool) -> None:
    tenant, workflow, topics = f"t-{uuid.uuid4().hex[:6]}", "wf", ProjectorTopics()
    projector = Projector(pool, topics.prefix)
    # Reordered (v2 before v1), repeated (v3), older ones last (a replay): only v3 may stand.
    order: list[tuple[int, Literal["active", "inactive"]]] = [
        (2, "inactive"),
        (1, "inactive"),
        (3, "active"),
        (3, "active"),
        (2, "inactive"),
        (1, "inactive"),
    ]
    for version, status in order:
        topic, value = config_event(tenant, workflow, version, status)
        await projector.process_batch([topics.record(topic, value)])
    row = await published(pool, tenant, workflow)
    assert (row["version"], row["status"], row["logic"]) == (3, "active", "all")
    assert row["event_id"] == ids.config_event_id(tenant, workflow, 3)
    assert row["event_type"] == "workflow.activated" and row["published_at"] == T0 + timedelta(minutes=3)
    assert [g["criteria"] for g in json.loads(row["goals"])] == [{"form_id": "form-0"}, {"form_id": "form-1"}]

    # Another tenant's workflow of the same id is its own row.
    other = f"o-{uuid.uuid4().hex[:6]}"
    topic, value = config_event(other, workflow, 1)
    await projector.process_batch([topics.record(topic, value, partition=1)])
    assert (await published(pool, other, workflow))["version"] == 1
    assert (await published(pool, tenant, workflow))["version"] == 3


async def test_live_says_whether_the_engine_has_the_latest_change(pool: asyncpg.Pool) -> None:
    tenant, workflow, topics = f"t-{uuid.uuid4().hex[:6]}", "wf", ProjectorTopics()
    projector = Projector(pool, topics.prefix)
    # The API's write model is at version 2 (as after two changes), nothing published yet.
    await pool.execute(
        "INSERT INTO workflows (tenant_id, workflow_id, version) VALUES ($1, $2, 2)", tenant, workflow
    )
    state = await queries.workflow_publication(pool, tenant, workflow)
    assert state is not None
    assert (state["version"], state["published_version"], state["live"]) == (2, None, False)
    for version, live in ((1, False), (2, True)):
        topic, value = config_event(tenant, workflow, version)
        await projector.process_batch([topics.record(topic, value)])
        state = await queries.workflow_publication(pool, tenant, workflow)
        assert state is not None and (state["published_version"], state["live"]) == (version, live)
    assert await queries.workflow_publication(pool, f"x-{tenant}", workflow) is None


async def test_the_api_reports_live_once_kafka_has_the_change(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender, pool: asyncpg.Pool
) -> None:
    tenant, workflow = f"t-{uuid.uuid4().hex[:6]}", f"wf-{uuid.uuid4().hex[:6]}"
    auth, url = bearer(stack, tenant), f"/workflows/{workflow}"
    entity = {"kind": "form", "entity_id": "form-a", "name": "Signup", "parent_id": None, "deleted": False}
    await sender.send(cloud_event("catalog.entity.changed", tenant, entity))
    goal = {"goal_type": "form_submitted", "criteria": {"form_id": "form-a"}}
    assert (await api.post(f"{url}/goals", json=goal, headers=auth)).status_code == 201
    assert (await api.put(f"{url}/goal-settings", json={"logic": "all"}, headers=auth)).status_code == 200
    await eventually(
        lambda: api.post(f"{url}/activate", headers=auth), lambda r: r.status_code == 200, what="activation"
    )

    def live_at(version: int) -> Any:
        return lambda r: r.json()["version"] == version and r.json()["live"] is True

    state = await eventually(
        lambda: api.get(f"{url}/goal-settings", headers=auth), live_at(3), what="version 3 live"
    )
    assert state.json() | {"published_at": None} == {
        "workflow_id": workflow,
        "logic": "all",
        "status": "active",
        "version": 3,
        "published_version": 3,
        "published_at": None,
        "live": True,
    }
    row = await published(pool, tenant, workflow)
    listed = (await api.get(f"{url}/goals", headers=auth)).json()["goals"]
    assert json.loads(row["goals"]) == listed  # what the engine runs is what was set

    assert (await api.post(f"{url}/deactivate", headers=auth)).status_code == 200
    await eventually(lambda: api.get(f"{url}/goal-settings", headers=auth), live_at(4), what="version 4")
    assert (await published(pool, tenant, workflow))["status"] == "inactive"
    other = await api.get(f"{url}/goal-settings", headers=bearer(stack, f"x-{tenant}"))
    assert other.status_code == 404
