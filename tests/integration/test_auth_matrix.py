"""Every route of the app against another tenant, on the running stack (contract section 3).

The routes are enumerated from the app itself (``tests/api_routes.py``). Each route:
another tenant gets 404 for a resource it addresses (the owner gets 2xx for the same
request); a write that creates lands in the caller's own tenant; a tenant-wide list
never shows the other tenant's rows. Public routes (health, metrics, the API's own
description) answer without a token.

The 401 and 403 matrix needs no database: it runs in-process, in ``tests/api``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from goal_engine.core.config import Settings
from tests.api_routes import PROTECTED, PUBLIC, ROUTES, assert_error, call, route_id, rule_of
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually

pytestmark = pytest.mark.integration

# --- requests --------------------------------------------------------------------------


@pytest.fixture
async def client(stack: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=10) as client:
        yield client


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=route_id)
async def test_public_routes_need_no_token(client: httpx.AsyncClient, route: tuple[str, str]) -> None:
    assert route in ROUTES, f"{route_id(route)} is no longer served"
    response = await client.request(route[0], route[1])
    assert response.status_code == 200, response.text


# --- another tenant --------------------------------------------------------------------


@dataclass(frozen=True)
class Owned:
    """Tenant A's resources: a workflow with a goal, an enrollment in another workflow, a tag."""

    tenant: str
    workflow_id: str
    goal_id: str
    enrolled_workflow_id: str
    enrollment_id: str
    tag_id: str

    @property
    def marks(self) -> set[str]:
        """What names a row of A's in a tenant-wide answer."""
        return {self.workflow_id, self.enrolled_workflow_id, self.tag_id}

    def ids(self, route: tuple[str, str]) -> dict[str, str]:
        enrollment = "{enrollment_id}" in route[1]
        workflow = self.enrolled_workflow_id if enrollment else self.workflow_id
        return {"workflow_id": workflow, "goal_id": self.goal_id, "enrollment_id": self.enrollment_id}


@pytest.fixture(scope="module")
async def enrollment(stack: Settings) -> tuple[str, str, str, str]:
    """(tenant, workflow, enrollment, tag) projected once for the module: a trip through Kafka."""
    tenant, workflow, enrollment = f"a-{uuid.uuid4().hex[:8]}", f"wf-{uuid.uuid4().hex[:8]}", "en-a"
    tag = f"tag-{uuid.uuid4().hex[:8]}"
    sender = EventSender(stack)
    await sender.start()
    try:
        data = {"workflow_id": workflow, "enrollment_id": enrollment}
        await sender.send(cloud_event("workflow.enrollment.started", tenant, data, "contact-a"))
        entity = {"kind": "tag", "entity_id": tag, "name": "A's tag", "parent_id": None, "deleted": False}
        await sender.send(cloud_event("catalog.entity.changed", tenant, entity))
    finally:
        await sender.stop()
    base = f"http://127.0.0.1:{stack.api_port}/api/v1"
    async with httpx.AsyncClient(headers=bearer(stack, tenant)) as client:
        url = f"{base}/workflows/{workflow}/enrollments/{enrollment}"
        await eventually(lambda: client.get(url), lambda r: r.status_code == 200, what="the enrollment")
        await eventually(
            lambda: client.get(f"{base}/catalog"), lambda r: tag in r.text, what="the catalog entity"
        )
    return tenant, workflow, enrollment, tag


@pytest.fixture
async def owned(stack: Settings, client: httpx.AsyncClient, enrollment: tuple[str, str, str, str]) -> Owned:
    tenant, enrolled_workflow, enrollment_id, tag = enrollment
    workflow = f"wf-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        f"/api/v1/workflows/{workflow}/goals",
        json={"goal_type": "form_submitted", "criteria": {"form_id": "f-a"}},
        headers=bearer(stack, tenant, sub="alice"),
    )
    assert created.status_code == 201, created.text
    return Owned(tenant, workflow, created.json()["id"], enrolled_workflow, enrollment_id, tag)


@pytest.mark.parametrize("route", PROTECTED, ids=route_id)
async def test_another_tenant_cannot_reach_it(
    stack: Settings, client: httpx.AsyncClient, owned: Owned, route: tuple[str, str]
) -> None:
    rule = rule_of(route)
    mine = bearer(stack, owned.tenant, sub="alice")
    theirs = bearer(stack, f"b-{uuid.uuid4().hex[:8]}", sub="mallory")
    goals_before = (await client.get(f"/api/v1/workflows/{owned.workflow_id}/goals", headers=mine)).json()
    response = await call(client, route, theirs, **owned.ids(route))
    if rule.isolation == "addressed":
        assert_error(response, 404)
        # The same request with the owner's token succeeds: the 404 is the tenant's doing.
        assert (await call(client, route, mine, **owned.ids(route))).status_code == rule.ok
        return
    assert response.status_code == rule.ok, response.text
    if rule.isolation == "creates":
        # It wrote a workflow of the same id in the caller's tenant, and nothing of the owner's.
        goals_after = await client.get(f"/api/v1/workflows/{owned.workflow_id}/goals", headers=mine)
        assert goals_after.json() == goals_before
        audit = (await client.get("/api/v1/audit", headers=mine)).json()["entries"]
        assert {e["actor"] for e in audit} == {"alice"}
    elif rule.isolation == "tenant_wide":
        # The owner's answer names one of its rows (the audit log the configured workflow,
        # the stats the enrolled one, the catalog its tag); the other tenant's names none.
        own = (await call(client, route, mine)).text
        assert any(mark in own for mark in owned.marks)
        assert not any(mark in response.text for mark in owned.marks)
    else:
        assert response.json() == (await call(client, route, mine)).json()
