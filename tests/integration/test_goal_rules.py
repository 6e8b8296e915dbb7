"""The configuration rules through the real API (issue 10, items 5 and 12).

R13 holds however a goal gets armed: activating a workflow, and creating or
changing a goal of a workflow that is already active. Duplicates are found
however the client spelt the criteria.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from goal_engine.core.config import Settings
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually

pytestmark = pytest.mark.integration


async def post_goal(
    api: httpx.AsyncClient, auth: dict[str, str], workflow: str, goal_type: str, criteria: dict[str, Any]
) -> httpx.Response:
    body = {"goal_type": goal_type, "criteria": criteria}
    return await api.post(f"/workflows/{workflow}/goals", json=body, headers=auth)


async def test_a_goal_added_or_changed_on_an_active_workflow_passes_r13(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender
) -> None:
    tenant, workflow = f"r13-{uuid.uuid4().hex[:8]}", f"wf-{uuid.uuid4().hex[:8]}"
    auth = bearer(stack, tenant)
    tag = {"kind": "tag", "entity_id": "tag-known", "name": "Known", "parent_id": None, "deleted": False}
    await sender.send(cloud_event("catalog.entity.changed", tenant, tag))
    created = await post_goal(api, auth, workflow, "tag_added", {"tag_id": "tag-known"})
    assert created.status_code == 201, created.text
    await eventually(
        lambda: api.post(f"/workflows/{workflow}/activate", headers=auth),
        lambda r: r.status_code == 200,
        what="activation (once the projector has read the catalog)",
    )

    # Active: a goal naming entities the catalog lacks would be armed at once.
    refused = await post_goal(
        api, auth, workflow, "appointment_booked", {"calendar_id": "cal-x", "service_id": "svc-x"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"] == [
        "goal (appointment_booked): calendar_id 'cal-x': no such calendar in the catalog",
        "goal (appointment_booked): service_id 'svc-x': no such service in the catalog",
    ]
    goal_id = created.json()["id"]
    changed = await api.patch(
        f"/workflows/{workflow}/goals/{goal_id}", json={"criteria": {"tag_id": "tag-gone"}}, headers=auth
    )
    assert changed.status_code == 422, changed.text
    assert "tag_id 'tag-gone': no such tag in the catalog" in changed.json()["error"]["details"][0]
    goals = (await api.get(f"/workflows/{workflow}/goals", headers=auth)).json()["goals"]
    assert [g["criteria"] for g in goals] == [{"tag_id": "tag-known"}]  # nothing of either was stored

    # Switched off, the goal is not armed: the change waits for the next activation's check.
    parked = await api.patch(
        f"/workflows/{workflow}/goals/{goal_id}",
        json={"criteria": {"tag_id": "tag-gone"}, "is_active": False},
        headers=auth,
    )
    assert parked.status_code == 200, parked.text
    again = await api.post(f"/workflows/{workflow}/activate", headers=auth)
    assert again.status_code == 422 and "tag-gone" in again.json()["error"]["details"][0]


@pytest.mark.parametrize(
    ("goal_type", "first", "second"),
    [
        ("purchase_made", {"min_amount": "50"}, {"min_amount": "50.00"}),
        ("purchase_made", {"min_amount": 50, "currency": "EUR"}, {"min_amount": "50.0", "currency": "EUR"}),
        ("tag_added", {"tag_name": "VIP"}, {"tag_name": "vip"}),
    ],
)
async def test_criteria_spelt_differently_are_one_goal(
    stack: Settings, api: httpx.AsyncClient, goal_type: str, first: dict[str, Any], second: dict[str, Any]
) -> None:
    auth, workflow = bearer(stack, f"dup-{uuid.uuid4().hex[:8]}"), "wf-dup"
    assert (await post_goal(api, auth, workflow, goal_type, first)).status_code == 201
    duplicate = await post_goal(api, auth, workflow, goal_type, second)
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["error"]["code"] == "conflict"
