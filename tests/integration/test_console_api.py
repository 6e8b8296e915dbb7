"""What the console lists: the catalog search and the tenant's workflows, against the running stack."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from goal_engine.core.config import Settings
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually

pytestmark = pytest.mark.integration


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def entity(
    kind: str, entity_id: str, name: str, parent: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    return {"kind": kind, "entity_id": entity_id, "name": name, "parent_id": parent, "deleted": deleted}


async def test_catalog_search_by_kind_name_parent_and_pages(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender
) -> None:
    tenant = new_id("cat")
    auth = bearer(stack, tenant, "workflows:read")
    entities = [
        entity("tag", "tag-1", "Purchased"),
        entity("tag", "tag-2", "purchase_intent"),  # the _ of a search is a character, not a wildcard
        entity("tag", "tag-3", "Newsletter"),
        entity("tag", "tag-gone", "Purchased before", deleted=True),
        entity("pipeline", "pl-1", "Sales"),
        entity("pipeline_stage", "st-won", "Won", parent="pl-1"),
        entity("pipeline_stage", "st-lost", "Lost", parent="pl-2"),
    ]
    for e in entities:
        await sender.send(cloud_event("catalog.entity.changed", tenant, e))
    # Another tenant's entity of the same name is never in the answer.
    await sender.send(
        cloud_event("catalog.entity.changed", new_id("other"), entity("tag", "tag-x", "Purchased"))
    )

    async def ids(**query: Any) -> list[str]:
        response = await api.get("/catalog", params=query, headers=auth)
        assert response.status_code == 200, response.text
        return [e["entity_id"] for e in response.json()["entities"]]

    await eventually(lambda: ids(), lambda found: len(found) == 6, what="the projected catalog")
    assert await ids(kind="tag") == ["tag-3", "tag-1", "tag-2"]  # by name
    assert await ids(kind="tag", q="PURCH") == ["tag-1", "tag-2"]
    assert await ids(kind="tag", q="e_i") == ["tag-2"]
    assert await ids(kind="tag", q="tag-3") == ["tag-3"]  # the id matches too
    assert await ids(kind="pipeline_stage", parent_id="pl-1") == ["st-won"]

    first = (await api.get("/catalog", params={"kind": "tag", "limit": 2}, headers=auth)).json()
    assert [e["entity_id"] for e in first["entities"]] == ["tag-3", "tag-1"]
    rest = await api.get(
        "/catalog", params={"kind": "tag", "limit": 2, "cursor": first["next_cursor"]}, headers=auth
    )
    assert [e["entity_id"] for e in rest.json()["entities"]] == ["tag-2"]
    assert rest.json()["next_cursor"] is None

    assert (await api.get("/catalog", params={"kind": "planet"}, headers=auth)).status_code == 422
    assert (await api.get("/catalog", params={"cursor": "WzFd"}, headers=auth)).status_code == 422


async def test_workflows_list_with_status_and_conversion_sorted_searched_paged(
    stack: Settings, api: httpx.AsyncClient, sender: EventSender
) -> None:
    tenant = new_id("wfs")
    auth = bearer(stack, tenant)
    configured, enrolled = "alpha-configured", "beta-enrolled"
    created = await api.post(
        f"/workflows/{configured}/goals",
        json={"goal_type": "form_submitted", "criteria": {"form_id": "f-1"}},
        headers=auth,
    )
    assert created.status_code == 201
    await api.put(f"/workflows/{configured}/goal-settings", json={"logic": "all"}, headers=auth)
    for n in range(2):
        data = {"workflow_id": enrolled, "enrollment_id": f"en-{n}"}
        await sender.send(cloud_event("workflow.enrollment.started", tenant, data, f"c-{n}"))

    async def page(**query: Any) -> dict[str, Any]:
        response = await api.get("/workflows", params=query, headers=auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    listed = await eventually(
        lambda: page(),
        lambda p: any(w["total_enrolled"] == 2 for w in p["workflows"]),
        what="the enrollments",
    )
    assert listed["total"] == 2 and listed["next_offset"] is None
    assert listed["workflows"] == [
        {
            "workflow_id": configured,
            "status": "inactive",
            "logic": "all",
            "goals": 1,
            "total_enrolled": 0,
            "goals_achieved": 0,
            "conversion_rate": 0.0,
            "avg_time_to_goal_hours": None,
        },
        {
            "workflow_id": enrolled,
            "status": "inactive",
            "logic": "any",
            "goals": 0,
            "total_enrolled": 2,
            "goals_achieved": 0,
            "conversion_rate": 0.0,
            "avg_time_to_goal_hours": None,
        },
    ]
    by_enrolled = await page(sort="total_enrolled", order="desc")
    assert [w["workflow_id"] for w in by_enrolled["workflows"]] == [enrolled, configured]
    assert [w["workflow_id"] for w in (await page(q="BETA"))["workflows"]] == [enrolled]
    first = await page(limit=1)
    assert first["next_offset"] == 1 and first["total"] == 2
    second = await page(limit=1, offset=1)
    assert [w["workflow_id"] for w in second["workflows"]] == [enrolled] and second["next_offset"] is None
    assert (await page(offset=5))["total"] == 2  # past the end, still counted
    assert (await api.get("/workflows", params={"sort": "secret"}, headers=auth)).status_code == 422
    # PostgreSQL text holds no NUL: refused with a reason, never a 500 (found by the fuzzer).
    for path in ("/workflows", "/catalog"):
        refused = await api.get(path, params={"q": "a\x00b"}, headers=auth)
        assert refused.status_code == 422 and refused.json()["error"]["details"][0].startswith("query.q:")
    other = await api.get("/workflows", headers=bearer(stack, new_id("other")))
    assert other.json() == {"workflows": [], "total": 0, "next_offset": None}
