"""The HTTP API against the running stack: auth, tenant isolation, R1, R2, R11, R13.

What is refused before the database (tokens, scopes, request validation) is tested
in-process, in tests/api."""

from __future__ import annotations

import uuid

import httpx
import pytest

from goal_engine.core.config import Settings
from goal_engine.core.security import mint_token
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually

pytestmark = pytest.mark.integration

TAG_GOAL = {"goal_type": "tag_added", "criteria": {"tag_id": "tag-1"}}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_tokens_and_scopes(stack: Settings, api: httpx.AsyncClient) -> None:
    wf = new_id("wf")
    assert (await api.get(f"/workflows/{wf}/goals")).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    response = await api.get(f"/workflows/{wf}/goals", headers=bad)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    forged = mint_token(
        "another-secret-of-at-least-32-bytes!",
        tenant_id="t",
        subject="u",
        scopes=["workflows:read"],
        ttl_seconds=60,
    )
    assert (await api.get("/goal-types", headers={"Authorization": f"Bearer {forged}"})).status_code == 401
    expired = mint_token(
        stack.jwt_secret, tenant_id="t", subject="u", scopes=["workflows:read"], ttl_seconds=-60
    )
    assert (await api.get("/goal-types", headers={"Authorization": f"Bearer {expired}"})).status_code == 401
    reader = bearer(stack, "t", "workflows:read")
    response = await api.post(f"/workflows/{wf}/goals", json=TAG_GOAL, headers=reader)
    assert response.status_code == 403 and "workflows:write" in response.json()["error"]["message"]
    writer = bearer(stack, "t", "workflows:write")
    assert (await api.get("/goal-types", headers=writer)).status_code == 403


async def test_goal_lifecycle_and_limits(stack: Settings, api: httpx.AsyncClient) -> None:  # R1, R11
    wf, auth = new_id("wf"), bearer(stack, new_id("tenant"))
    created = await api.post(f"/workflows/{wf}/goals", json=TAG_GOAL, headers=auth)
    assert created.status_code == 201
    goal = created.json()
    assert goal["is_active"] is True and goal["criteria"] == {"tag_id": "tag-1"}

    duplicate = await api.post(
        f"/workflows/{wf}/goals", json={**TAG_GOAL, "criteria": {" tag_id": "x"}}, headers=auth
    )
    assert duplicate.status_code == 422  # unknown criterion key
    same = await api.post(f"/workflows/{wf}/goals", json=TAG_GOAL, headers=auth)
    assert same.status_code == 409
    for criteria in ({"form_id": "f1"}, {"form_id": "f2"}):
        assert (
            await api.post(
                f"/workflows/{wf}/goals",
                json={"goal_type": "form_submitted", "criteria": criteria},
                headers=auth,
            )
        ).status_code == 201
    fourth = await api.post(
        f"/workflows/{wf}/goals",
        json={"goal_type": "form_submitted", "criteria": {"form_id": "f3"}},
        headers=auth,
    )
    assert fourth.status_code == 422 and "at most 3" in fourth.json()["error"]["details"][0]

    patched = await api.patch(f"/workflows/{wf}/goals/{goal['id']}", json={"is_active": False}, headers=auth)
    assert patched.status_code == 200 and patched.json()["is_active"] is False
    settings = await api.put(f"/workflows/{wf}/goal-settings", json={"logic": "all"}, headers=auth)
    assert settings.json() == {"workflow_id": wf, "logic": "all"}
    assert (await api.delete(f"/workflows/{wf}/goals/{goal['id']}", headers=auth)).status_code == 204
    assert (await api.delete(f"/workflows/{wf}/goals/{goal['id']}", headers=auth)).status_code == 404
    assert (await api.get(f"/workflows/{wf}/goals", headers=auth)).json()["total"] == 2


async def test_activation_lists_every_violation(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender
) -> None:  # R9, R13
    tenant, wf = new_id("tenant"), new_id("wf")
    auth = bearer(stack, tenant)
    goals = [
        {"goal_type": "tag_added", "criteria": {"tag_id": "tag-missing"}},
        {"goal_type": "pipeline_stage_reached", "criteria": {"pipeline_id": "pl-1", "stage_id": "st-1"}},
    ]
    for goal in goals:
        assert (await api.post(f"/workflows/{wf}/goals", json=goal, headers=auth)).status_code == 201
    # The pipeline exists; its stage belongs to another pipeline.
    for entity in (
        {"kind": "pipeline", "entity_id": "pl-1", "parent_id": None},
        {"kind": "pipeline_stage", "entity_id": "st-1", "parent_id": "pl-9"},
    ):
        await sender.send(
            cloud_event("catalog.entity.changed", tenant, {**entity, "name": "n", "deleted": False})
        )

    def has_two(r: httpx.Response) -> bool:  # once the projector has read both catalog events
        return r.status_code == 422 and "not a stage of pipeline" in " ".join(r.json()["error"]["details"])

    refused = await eventually(
        lambda: api.post(f"/workflows/{wf}/activate", headers=auth),
        has_two,
        what="activation refused for the tag and the stage",
    )
    details = " | ".join(refused.json()["error"]["details"])
    assert len(refused.json()["error"]["details"]) == 2
    assert "tag-missing" in details and "not a stage of pipeline 'pl-1'" in details
    deactivated = await api.post(f"/workflows/{wf}/deactivate", headers=auth)
    assert deactivated.json() == {"workflow_id": wf, "status": "inactive"}


async def test_another_tenant_sees_nothing(stack: Settings, api: httpx.AsyncClient) -> None:
    wf, mine, theirs = new_id("wf"), bearer(stack, new_id("a")), bearer(stack, new_id("b"))
    goal = (await api.post(f"/workflows/{wf}/goals", json=TAG_GOAL, headers=mine)).json()
    assert (await api.get(f"/workflows/{wf}/goals", headers=theirs)).status_code == 404
    assert (
        await api.patch(f"/workflows/{wf}/goals/{goal['id']}", json={"is_active": False}, headers=theirs)
    ).status_code == 404
    assert (await api.delete(f"/workflows/{wf}/goals/{goal['id']}", headers=theirs)).status_code == 404
    assert (await api.get(f"/workflows/{wf}/goals/stats", headers=theirs)).status_code == 404
    assert (await api.get(f"/workflows/{wf}/goals", headers=mine)).json()["total"] == 1


async def test_goal_types_describe_their_criteria(stack: Settings, api: httpx.AsyncClient) -> None:  # R1, R2
    body = (await api.get("/goal-types", headers=bearer(stack, "t", "workflows:read"))).json()
    by_type = {t["goal_type"]: t for t in body["goal_types"]}
    assert set(by_type) == {
        "tag_added",
        "purchase_made",
        "appointment_booked",
        "form_submitted",
        "pipeline_stage_reached",
    }
    assert by_type["form_submitted"]["criteria_schema"]["required"] == ["form_id"]
    assert by_type["purchase_made"]["source_event"] == "payment.completed"


@pytest.mark.parametrize("workflow_id", ["'; DROP TABLE workflow_goals; --", "ünïcødé-🚀", "a" * 200])
async def test_hostile_ids_are_just_ids(stack: Settings, api: httpx.AsyncClient, workflow_id: str) -> None:
    auth = bearer(stack, "hostile")
    created = await api.post(f"/workflows/{workflow_id}/goals", json=TAG_GOAL, headers=auth)
    assert created.status_code in (201, 409)
    listed = await api.get(f"/workflows/{workflow_id}/goals", headers=auth)
    assert listed.status_code == 200 and listed.json()["total"] == 1


async def test_audit_log_pages_newest_first(stack: Settings, api: httpx.AsyncClient) -> None:
    wf, auth = new_id("wf"), bearer(stack, new_id("tenant"), sub="alice")
    goal = (await api.post(f"/workflows/{wf}/goals", json=TAG_GOAL, headers=auth)).json()
    for active in (False, True, False):
        await api.patch(f"/workflows/{wf}/goals/{goal['id']}", json={"is_active": active}, headers=auth)
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/audit", params=params, headers=auth)).json()
        seen += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["action"] for e in seen] == ["goal.updated"] * 3 + ["goal.created"]
    assert {e["actor"] for e in seen} == {"alice"}
    assert [e["after"]["is_active"] for e in seen[:3]] == [False, True, False]
    bad = await api.get("/audit", params={"cursor": "not-a-cursor"}, headers=auth)
    assert bad.status_code == 422
