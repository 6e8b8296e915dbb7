"""R3-R11 on the real stack: every goal type, multiple goals, listeners, timing, bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from goal_engine.core.config import Settings
from goal_engine.domain import ids
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually, read_topic

pytestmark = pytest.mark.integration


@dataclass
class Workflow:
    """One tenant's workflow, configured through the API and driven through Kafka."""

    stack: Settings
    api: httpx.AsyncClient
    sender: EventSender
    tenant: str = field(default_factory=lambda: f"tenant-{uuid.uuid4().hex[:8]}")
    workflow_id: str = field(default_factory=lambda: f"wf-{uuid.uuid4().hex[:8]}")
    goal_ids: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.stack, self.tenant)

    async def catalog(self, kind: str, entity_id: str, parent_id: str | None = None) -> None:
        data = {
            "kind": kind,
            "entity_id": entity_id,
            "name": entity_id,
            "parent_id": parent_id,
            "deleted": False,
        }
        await self.sender.send(cloud_event("catalog.entity.changed", self.tenant, data))

    async def add_goal(self, goal_type: str, criteria: dict[str, Any]) -> str:
        response = await self.api.post(
            f"/workflows/{self.workflow_id}/goals",
            json={"goal_type": goal_type, "criteria": criteria},
            headers=self.auth,
        )
        assert response.status_code == 201, response.text
        self.goal_ids.append(response.json()["id"])
        return str(response.json()["id"])

    async def activate(self, logic: str = "any") -> None:
        url = f"/workflows/{self.workflow_id}"
        assert (
            await self.api.put(f"{url}/goal-settings", json={"logic": logic}, headers=self.auth)
        ).status_code == 200
        await eventually(
            lambda: self.api.post(f"{url}/activate", headers=self.auth),
            lambda r: r.status_code == 200,
            what="activation (once the projector has read the catalog)",
        )

    async def enroll(self, contact: str, enrollment: str, at: datetime | None = None) -> None:
        data = {"workflow_id": self.workflow_id, "enrollment_id": enrollment}
        await self.sender.send(cloud_event("workflow.enrollment.started", self.tenant, data, contact, at))

    async def emit(
        self, type_: str, contact: str, data: dict[str, Any], at: datetime | None = None
    ) -> dict[str, Any]:
        event = cloud_event(type_, self.tenant, data, contact, at)
        await self.sender.send(event)
        return event

    async def status(self, enrollment: str) -> str | None:
        response = await self.api.get(
            f"/workflows/{self.workflow_id}/enrollments/{enrollment}", headers=self.auth
        )
        return response.json()["status"] if response.status_code == 200 else None

    async def wait_status(self, enrollment: str, status: str) -> None:
        await eventually(
            lambda: self.status(enrollment), lambda s: s == status, what=f"{enrollment} -> {status}"
        )

    async def published(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in await read_topic(self.stack, type_) if e["tenantid"] == self.tenant]


@pytest.fixture
def workflow(stack: Settings, api: httpx.AsyncClient, sender: EventSender) -> Workflow:
    return Workflow(stack, api, sender)


def appointment(calendar: str, service: str | None) -> dict[str, Any]:
    return {
        "appointment_id": "a1",
        "calendar_id": calendar,
        "service_id": service,
        "starts_at": "2027-01-01T09:00:00Z",
    }


def payment(amount: str, *products: str) -> dict[str, Any]:
    return {"transaction_id": "tx", "amount": amount, "currency": "USD", "product_ids": list(products)}


def stage(pipeline: str, stage_id: str) -> dict[str, Any]:
    return {"pipeline_id": pipeline, "stage_id": stage_id, "previous_stage_id": None, "opportunity_id": "o1"}


# goal type, criteria, catalog entities it references, event type, a non-matching and a matching event
GOAL_CASES = [
    ("tag_added", {"tag_id": "vip"}, [("tag", "vip", None)], "contact.tag.added",
     {"tag_id": "other", "tag_name": "Other"}, {"tag_id": "vip", "tag_name": "VIP"}),
    ("purchase_made", {"product_id": "p1", "min_amount": "50.00"}, [("product", "p1", None)],
     "payment.completed", payment("49.99", "p1"), payment("50", "p0", "p1")),
    ("appointment_booked", {"calendar_id": "cal-1"}, [("calendar", "cal-1", None)], "appointment.booked",
     appointment("cal-2", None), appointment("cal-1", None)),
    ("form_submitted", {"form_id": "f1"}, [("form", "f1", None)], "form.submitted",
     {"form_id": "f2", "submission_id": "s1"}, {"form_id": "f1", "submission_id": "s2"}),
    ("pipeline_stage_reached", {"pipeline_id": "pl", "stage_id": "won"},
     [("pipeline", "pl", None), ("pipeline_stage", "won", "pl")], "pipeline.stage.changed",
     stage("pl", "lost"), stage("pl", "won")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("goal_type", "criteria", "entities", "event_type", "miss", "hit"),
    GOAL_CASES,
    ids=[c[0] for c in GOAL_CASES],
)
async def test_each_goal_type_exits_on_its_event(
    workflow: Workflow,
    goal_type: str,
    criteria: dict[str, Any],
    entities: list[tuple[str, str, str | None]],
    event_type: str,
    miss: dict[str, Any],
    hit: dict[str, Any],
) -> None:  # R3-R8
    for kind, entity_id, parent in entities:
        await workflow.catalog(kind, entity_id, parent)
    goal_id = await workflow.add_goal(goal_type, criteria)
    await workflow.activate()
    await workflow.enroll("c1", "en1")
    await workflow.emit(event_type, "c1", miss)
    trigger = await workflow.emit(event_type, "c1", hit)
    await workflow.wait_status("en1", "completed_goal")

    [achieved] = await workflow.published("workflow.goal.achieved")
    assert achieved["id"] == ids.achievement_id(workflow.tenant, "en1", goal_id)
    assert achieved["data"]["goal_type"] == goal_type
    # The log carries the trigger's details (tag, transaction, appointment, submission, transition).
    assert achieved["data"]["trigger_event"]["id"] == trigger["id"]
    assert achieved["data"]["trigger_event"]["data"] == trigger["data"]
    [exited] = await workflow.published("workflow.exit.goal")
    assert exited["data"]["goal_config_ids"] == [goal_id] and exited["data"]["status"] == "completed_goal"


async def test_all_logic_waits_for_every_goal(workflow: Workflow) -> None:  # R11
    await workflow.catalog("tag", "vip")
    await workflow.catalog("form", "f1")
    tag_goal = await workflow.add_goal("tag_added", {"tag_id": "vip"})
    form_goal = await workflow.add_goal("form_submitted", {"form_id": "f1"})
    await workflow.activate(logic="all")
    await workflow.enroll("c1", "en1")
    await workflow.emit("contact.tag.added", "c1", {"tag_id": "vip", "tag_name": "VIP"})
    await eventually(
        lambda: workflow.published("workflow.goal.achieved"), lambda a: len(a) == 1, what="1st goal"
    )
    assert await workflow.status("en1") == "active"
    await workflow.emit("form.submitted", "c1", {"form_id": "f1", "submission_id": "s"})
    await workflow.wait_status("en1", "completed_goal")
    [exited] = await workflow.published("workflow.exit.goal")
    assert exited["data"]["goal_config_ids"] == [tag_goal, form_goal]
    assert len(await workflow.published("workflow.goal.achieved")) == 2


async def test_ended_enrollment_is_disarmed(workflow: Workflow) -> None:  # R10
    await workflow.catalog("tag", "vip")
    await workflow.add_goal("tag_added", {"tag_id": "vip"})
    await workflow.activate()
    await workflow.enroll("c1", "en1")
    await workflow.emit(
        "workflow.enrollment.ended",
        "c1",
        {"workflow_id": workflow.workflow_id, "enrollment_id": "en1", "reason": "exited"},
    )
    # Topics are not ordered against each other: give the worker the end before the goal event.
    await workflow.wait_status("en1", "exited")
    await asyncio.sleep(1)
    await workflow.emit("contact.tag.added", "c1", {"tag_id": "vip", "tag_name": "VIP"})
    await workflow.enroll("c2", "en2")  # a later enrollment of the same workflow still exits
    await workflow.emit("contact.tag.added", "c2", {"tag_id": "vip", "tag_name": "VIP"})
    await workflow.wait_status("en2", "completed_goal")
    assert await workflow.status("en1") == "exited"
    assert [e["data"]["workflow_enrollment_id"] for e in await workflow.published("workflow.exit.goal")] == [
        "en2"
    ]


async def test_reordered_topics_still_count_within_grace(workflow: Workflow) -> None:  # timing rules
    await workflow.catalog("tag", "vip")
    await workflow.add_goal("tag_added", {"tag_id": "vip"})
    await workflow.activate()
    now = datetime.now(UTC)
    # One contact, so the worker sees these in this order. The goal event comes first:
    await workflow.emit("contact.tag.added", "c1", {"tag_id": "vip", "tag_name": "VIP"}, now)
    # an enrollment that started after it never counts it (no retroactive goals) ...
    await workflow.enroll("c1", "en-later", now + timedelta(seconds=1))
    # ... one that started before it does, though processed after it (grace window).
    await workflow.enroll("c1", "en-earlier", now - timedelta(seconds=1))
    await workflow.wait_status("en-earlier", "completed_goal")
    assert await workflow.status("en-later") == "active"
    exits = await workflow.published("workflow.exit.goal")
    assert [e["data"]["workflow_enrollment_id"] for e in exits] == ["en-earlier"]


async def test_poison_records_are_dead_lettered_between_good_ones(
    workflow: Workflow, stack: Settings, sender: EventSender
) -> None:
    await workflow.catalog("tag", "vip")
    await workflow.add_goal("tag_added", {"tag_id": "vip"})
    await workflow.activate()
    await workflow.enroll("c1", "en1")
    marker = uuid.uuid4().hex
    good = cloud_event("contact.tag.added", workflow.tenant, {"tag_id": "vip", "tag_name": "VIP"}, "c1")
    no_subject = {k: v for k, v in good.items() if k != "subject"}
    poison = {
        f"{marker}-json": b'{"specversion": "1.0", ' + marker.encode(),
        f"{marker}-subject": no_subject,
        f"{marker}-tenant": {**good, "tenantid": ""},
        f"{marker}-type": {**good, "type": "payment.completed"},
        f"{marker}-data": {**good, "data": {"tag_id": 42}},
        f"{marker}-big": {**good, "data": {"tag_id": "vip", "tag_name": "x" * 300_000}},
    }
    for name, value in poison.items():
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        await sender.send_raw("contact.tag.added", raw, key=name.encode())
    await sender.send(good)
    await workflow.wait_status("en1", "completed_goal")  # the stream went on

    letters = await eventually(
        lambda: read_topic(stack, "goal_engine.dead_letter"),
        lambda rs: len(_mine(rs, marker)) == len(poison),
        what="a dead letter per poison record",
    )
    reasons = {_key(r): r["data"]["reason"] for r in _mine(letters, marker)}
    assert reasons[f"{marker}-json"].startswith("malformed JSON")
    assert reasons[f"{marker}-subject"].startswith("missing subject")
    assert reasons[f"{marker}-tenant"].startswith("invalid envelope: tenantid")
    assert reasons[f"{marker}-type"].startswith("wrong type")
    assert reasons[f"{marker}-data"].startswith("invalid data for contact.tag.added")
    assert reasons[f"{marker}-big"].startswith("oversized record")
    letter = next(r for r in _mine(letters, marker) if _key(r) == f"{marker}-json")
    assert base64.b64decode(letter["data"]["value_b64"]) == poison[f"{marker}-json"]  # the original bytes
    assert letter["data"]["source_topic"] == stack.topic("contact.tag.added")
    async with httpx.AsyncClient() as client:
        scraped = (await client.get(f"http://127.0.0.1:{stack.worker_metrics_port}/metrics")).text
    for code in ("malformed_json", "missing_subject", "invalid_envelope"):
        assert f'goal_engine_dead_letters_total{{reason="{code}"}}' in scraped


def _key(letter: dict[str, Any]) -> str:
    key = letter["data"].get("key_b64")
    return base64.b64decode(key).decode() if key else ""


def _mine(letters: list[dict[str, Any]], marker: str) -> list[dict[str, Any]]:
    return [r for r in letters if _key(r).startswith(marker)]
