"""The walking skeleton end to end: API -> Kafka -> worker -> Kafka -> projector -> PostgreSQL -> API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from goal_engine.core.config import Settings
from goal_engine.domain import ids
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually, read_topic

pytestmark = pytest.mark.integration


async def worker_knows_workflows(settings: Settings, count: int) -> None:
    async def gauge() -> float:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{settings.worker_metrics_port}/metrics")).text
        values = [
            float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("goal_engine_workflow_configs ")
        ]
        return values[0] if values else 0.0

    await eventually(gauge, lambda v: v >= count, what="the worker to hold the workflow configuration")


async def test_tag_goal_exits_the_enrollment_and_shows_in_stats(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender
) -> None:
    tenant, workflow, contact, enrollment = (f"{p}-{uuid.uuid4().hex[:6]}" for p in ("acme", "wf", "c", "en"))
    auth = bearer(stack, tenant)
    # The catalog holds the tag (R13: activation refuses references it does not hold).
    catalog = {"kind": "tag", "entity_id": "tag-42", "name": "Purchased", "parent_id": None, "deleted": False}
    await sender.send(cloud_event("catalog.entity.changed", tenant, catalog))

    created = await api.post(
        f"/workflows/{workflow}/goals",
        json={"goal_type": "tag_added", "criteria": {"tag_id": "tag-42", "tag_name": "Purchased"}},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    goal = created.json()
    listed = (await api.get(f"/workflows/{workflow}/goals", headers=auth)).json()
    assert listed["total"] == 1 and listed["goals"][0]["id"] == goal["id"]

    activated = await eventually(
        lambda: api.post(f"/workflows/{workflow}/activate", headers=auth),
        lambda r: r.status_code == 200,
        what="activation (once the catalog is projected)",
    )
    assert activated.json() == {"workflow_id": workflow, "status": "active"}
    await worker_knows_workflows(stack, 1)

    enrolled_at = datetime.now(UTC)
    started = {"workflow_id": workflow, "enrollment_id": enrollment}
    await sender.send(cloud_event("workflow.enrollment.started", tenant, started, contact, enrolled_at))
    tag = cloud_event(
        "contact.tag.added",
        tenant,
        {"tag_id": "tag-42", "tag_name": "purchased"},
        contact,
        enrolled_at + timedelta(milliseconds=5),
    )
    await sender.send(tag)

    status = await eventually(
        lambda: api.get(f"/workflows/{workflow}/enrollments/{enrollment}", headers=auth),
        lambda r: r.status_code == 200 and r.json()["status"] == "completed_goal",
        what="the enrollment to complete on its goal",
    )
    assert status.json()["goal_config_ids"] == [goal["id"]]

    # A redelivered source event (same id) never counts twice.
    await sender.send(tag)
    stats = await eventually(
        lambda: api.get(f"/workflows/{workflow}/goals/stats", headers=auth),
        lambda r: r.status_code == 200 and r.json()["goals_achieved"] == 1,
        what="the stats to show the achievement",
    )
    body = stats.json()
    assert body["total_enrolled"] == 1
    assert body["conversion_rate"] == 100.0
    assert body["avg_time_to_goal_hours"] is not None and body["avg_time_to_goal_hours"] < 0.01
    # One goal, one achievement: its goal type's timing is the workflow's.
    by_type = body["by_goal_type"]
    assert list(by_type) == ["tag_added"]
    assert (by_type["tag_added"]["achieved"], by_type["tag_added"]["conversion_rate"]) == (1, 100.0)
    assert by_type["tag_added"]["avg_time_to_goal_hours"] == body["avg_time_to_goal_hours"]
    assert by_type["tag_added"]["time_to_goal_hours"] == body["time_to_goal_hours"]

    exits = [e for e in await read_topic(stack, "workflow.exit.goal") if e["tenantid"] == tenant]
    assert {e["id"] for e in exits} == {ids.exit_id(tenant, enrollment)}
    assert exits[0]["data"]["status"] == "completed_goal"
    achieved = [e for e in await read_topic(stack, "workflow.goal.achieved") if e["tenantid"] == tenant]
    assert {e["id"] for e in achieved} == {ids.achievement_id(tenant, enrollment, goal["id"])}
    assert achieved[0]["data"]["trigger_event"]["id"] == tag["id"]
    assert datetime.fromisoformat(achieved[0]["data"]["enrolled_at"]) == enrolled_at

    # The achievement log and the audit log say what happened, who did it, and why.
    log = (await api.get(f"/workflows/{workflow}/goals/achievements", headers=auth)).json()
    assert [a["trigger_event"]["id"] for a in log["achievements"]] == [tag["id"]]
    assert log["next_cursor"] is None
    audit = await eventually(
        lambda: api.get("/audit", headers=auth),
        lambda r: any(e["action"] == "goal.achieved" for e in r.json()["entries"]),
        what="the achievement in the audit log",
    )
    entries = audit.json()["entries"]
    assert [e["action"] for e in entries] == ["goal.achieved", "workflow.activated", "goal.created"]
    assert entries[2]["actor"] == "tester" and entries[2]["before"] is None
    assert entries[2]["after"]["criteria"] == {"tag_id": "tag-42", "tag_name": "Purchased"}
    assert entries[1]["before"] == {"status": "inactive"} and entries[1]["after"] == {"status": "active"}

    # Another tenant sees none of it.
    other = bearer(stack, "someone-else")
    assert (
        await api.get(f"/workflows/{workflow}/enrollments/{enrollment}", headers=other)
    ).status_code == 404
    assert (await api.get(f"/workflows/{workflow}/goals/stats", headers=other)).status_code == 404
    assert (await api.get("/audit", headers=other)).json()["entries"] == []
    assert (await api.get(f"/workflows/{workflow}/goals/achievements", headers=other)).status_code == 404


async def test_a_poison_record_is_dead_lettered_and_the_stream_goes_on(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender
) -> None:
    await sender.send_raw("contact.tag.added", b'{"not": "an event"', key=b"whatever")
    dead = await eventually(
        lambda: read_topic(stack, "goal_engine.dead_letter"),
        lambda records: any(r["data"]["reason"].startswith("malformed JSON") for r in records),
        what="a dead letter",
    )
    letter = next(r for r in dead if r["data"]["reason"].startswith("malformed JSON"))
    assert letter["data"]["source_topic"] == stack.topic("contact.tag.added")
