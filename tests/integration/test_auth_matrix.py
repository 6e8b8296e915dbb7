"""Every route of the app against every way a caller can be wrong (contract section 3).

The routes are enumerated from the app itself, so a new endpoint is a new set
of test ids, and it fails until ``tests/api_routes.py`` says which scope it
needs and what another tenant must see. Each route, each case:

- 401: no token, a bad signature, a tampered payload, expired, ``alg: none``,
  another algorithm (HS256 is pinned), a required claim missing, a tenant id or
  subject with control characters (or ``:``), a lifetime past the maximum;
- 403: a token with the other scope only, or with none;
- another tenant: 404 for a resource it addresses (the owner gets 2xx for the
  same request); a write that creates lands in the caller's own tenant; a
  tenant-wide list never shows the other tenant's rows.

Public routes (health, metrics, the API's own description) answer without a token.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from goal_engine.core.config import Settings
from goal_engine.core.security import READ, WRITE, mint_token
from tests.api_routes import CONTRACT, PUBLIC, Rule, app_routes
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually

pytestmark = [
    pytest.mark.integration,
    # "alg HS512" signs with the deployment's (HS256-sized) secret on purpose.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

ROUTES = app_routes()
PROTECTED = [r for r in ROUTES if r not in PUBLIC]


def route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


def rule_of(route: tuple[str, str]) -> Rule:
    if route not in CONTRACT:
        pytest.fail(f"{route_id(route)} is not in CONTRACT: say which scope it needs and how it isolates")
    return CONTRACT[route]


def test_every_route_is_classified() -> None:
    assert set(PROTECTED) == set(CONTRACT), "CONTRACT lists a route the app does not serve"
    assert {r for r in ROUTES if r in PUBLIC} == PUBLIC


# --- tokens ----------------------------------------------------------------------------


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {"sub": "mallory", "tenant_id": "victim", "scope": f"{READ} {WRITE}", "exp": time.time() + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _tampered(secret: str) -> str:
    """A genuine token of tenant "mine" whose payload now says "victim", signature kept."""
    header, _, signature = mint_token(
        secret, tenant_id="mine", subject="mallory", scopes=[READ, WRITE], ttl_seconds=600
    ).split(".")
    return f"{header}.{_b64(_claims())}.{signature}"


BAD_TOKENS = {
    "no token": lambda secret: None,
    "not a JWT": lambda secret: "not-a-jwt",
    "other secret": lambda secret: jwt.encode(_claims(), "another-secret-of-at-least-32-bytes!", "HS256"),
    "tampered payload": _tampered,
    # Past the deployment's clock leeway (10 s by default).
    "expired": lambda secret: jwt.encode(_claims(exp=time.time() - 60), secret, "HS256"),
    "alg none": lambda secret: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
    "alg HS512": lambda secret: jwt.encode(_claims(), secret, "HS512"),
    "no exp": lambda secret: jwt.encode(_claims(exp=None), secret, "HS256"),
    "no tenant_id": lambda secret: jwt.encode(_claims(tenant_id=None), secret, "HS256"),
    "empty tenant_id": lambda secret: jwt.encode(_claims(tenant_id=""), secret, "HS256"),
    # Keys join tenant and contact with ":" (and asyncpg refuses NUL): a 401, never a 500 or a collision.
    "tenant_id with a NUL": lambda secret: jwt.encode(_claims(tenant_id="vic\x00tim"), secret, "HS256"),
    "tenant_id with a newline": lambda secret: jwt.encode(_claims(tenant_id="vic\ntim"), secret, "HS256"),
    "tenant_id with a colon": lambda secret: jwt.encode(_claims(tenant_id="a:b"), secret, "HS256"),
    "sub with a NUL": lambda secret: jwt.encode(_claims(sub="mal\x00lory"), secret, "HS256"),
    "a year-long token": lambda secret: jwt.encode(
        _claims(iat=int(time.time()), exp=time.time() + 365 * 86400), secret, "HS256"
    ),
}


# --- requests --------------------------------------------------------------------------


@pytest.fixture
async def client(stack: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=10) as client:
        yield client


async def call(
    client: httpx.AsyncClient,
    route: tuple[str, str],
    headers: dict[str, str],
    **ids: str,
) -> httpx.Response:
    method, template = route
    values = {"workflow_id": "wf-1", "goal_id": str(uuid.uuid4()), "enrollment_id": "en-1", **ids}
    path = template.format(**{k: v for k, v in values.items() if f"{{{k}}}" in template})
    body = CONTRACT[route].body if route in CONTRACT else None
    return await client.request(method, path, json=body, headers=headers)


CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == CODES[status]


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=route_id)
async def test_public_routes_need_no_token(client: httpx.AsyncClient, route: tuple[str, str]) -> None:
    assert route in ROUTES, f"{route_id(route)} is no longer served"
    response = await client.request(route[0], route[1])
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("token", BAD_TOKENS, ids=str)
@pytest.mark.parametrize("route", PROTECTED, ids=route_id)
async def test_no_valid_token_is_401(
    stack: Settings, client: httpx.AsyncClient, route: tuple[str, str], token: str
) -> None:
    rule_of(route)
    value = BAD_TOKENS[token](stack.jwt_secret)
    response = await call(client, route, {"Authorization": f"Bearer {value}"} if value else {})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("scopes", ["other scope", "no scope"])
@pytest.mark.parametrize("route", PROTECTED, ids=route_id)
async def test_a_missing_scope_is_403(
    stack: Settings, client: httpx.AsyncClient, route: tuple[str, str], scopes: str
) -> None:
    needed = rule_of(route).scope
    if scopes == "other scope":
        headers = bearer(stack, "tenant-403", *({READ, WRITE} - {needed}))
    else:
        token = jwt.encode(_claims(scope="", tenant_id="tenant-403"), stack.jwt_secret, "HS256")
        headers = {"Authorization": f"Bearer {token}"}
    response = await call(client, route, headers)
    assert_error(response, 403)
    assert needed in response.json()["error"]["message"]


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
