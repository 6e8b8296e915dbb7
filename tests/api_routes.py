"""What the contract (section 3) says about each route, for the tests that walk every route.

``tests/integration/test_auth_matrix.py`` checks the app's behaviour against it,
``tests/unit/test_openapi.py`` the OpenAPI document; both fail on a route of
the app that is not listed here, so a new endpoint must be classified first.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import fastapi.routing
import httpx

from goal_engine.api.main import create_app
from goal_engine.core.config import Settings
from goal_engine.core.security import READ, WRITE

#: What another tenant's token gets: "addressed" 404 (the route names a workflow, goal or
#: enrollment that must exist); "creates" its own workflow of that id; "tenant_wide" its own
#: rows only; "global" the same answer as anyone.
Isolation = Literal["addressed", "creates", "tenant_wide", "global"]


@dataclass(frozen=True)
class Rule:
    scope: str
    isolation: Isolation
    body: dict[str, Any] | None = None  # a valid request body, when the route takes one
    ok: int = 200
    conflict: bool = False  # may answer 409 (a duplicate goal)


WF = "/api/v1/workflows/{workflow_id}"
TAG_GOAL = {"goal_type": "tag_added", "criteria": {"tag_id": "t"}}
CONTRACT: dict[tuple[str, str], Rule] = {
    ("POST", f"{WF}/goals"): Rule(WRITE, "creates", TAG_GOAL, 201, conflict=True),
    ("GET", f"{WF}/goals"): Rule(READ, "addressed"),
    ("PATCH", f"{WF}/goals/{{goal_id}}"): Rule(WRITE, "addressed", {"is_active": False}, conflict=True),
    ("DELETE", f"{WF}/goals/{{goal_id}}"): Rule(WRITE, "addressed", ok=204),
    ("PUT", f"{WF}/goal-settings"): Rule(WRITE, "creates", {"logic": "all"}),
    ("GET", f"{WF}/goal-settings"): Rule(READ, "addressed"),
    # Activation creates the workflow for the caller's tenant (README, Decisions).
    ("POST", f"{WF}/activate"): Rule(WRITE, "creates"),
    ("POST", f"{WF}/deactivate"): Rule(WRITE, "addressed"),
    ("GET", f"{WF}/goals/stats"): Rule(READ, "addressed"),
    ("GET", f"{WF}/goals/achievements"): Rule(READ, "addressed"),
    ("GET", f"{WF}/enrollments/{{enrollment_id}}"): Rule(READ, "addressed"),
    # Not in the contract's table; ours (README, HTTP API).
    ("GET", "/api/v1/goal-types"): Rule(READ, "global"),
    ("GET", "/api/v1/goals/stats"): Rule(READ, "tenant_wide"),
    ("GET", "/api/v1/audit"): Rule(READ, "tenant_wide"),
    # What the console lists (README, The goal console).
    ("GET", "/api/v1/workflows"): Rule(READ, "tenant_wide"),
    ("GET", "/api/v1/catalog"): Rule(READ, "tenant_wide"),
}
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    # The API's own description: what a client generator fetches before it has a token.
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}


#: The app refuses to be built without a strong secret; nothing is signed with this one.
APP_SETTINGS = Settings(jwt_secret="tests-api-routes-secret-of-32-bytes-or-more")


def app_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, path parameters without their converter."""
    app = create_app(APP_SETTINGS)
    # FastAPI >= 0.160 keeps included routers as nodes; older versions list the routes flat.
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(iterate(app.routes)) if iterate else app.routes
    found = set()
    for route in routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        found |= {(method, path) for method in getattr(route, "methods", None) or () if method != "HEAD"}
    return sorted(found)


def openapi_document() -> dict[str, Any]:
    return create_app(APP_SETTINGS).openapi()


ROUTES = app_routes()
PROTECTED = [r for r in ROUTES if r not in PUBLIC]


def route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


def rule_of(route: tuple[str, str]) -> Rule:
    import pytest

    if route not in CONTRACT:
        pytest.fail(f"{route_id(route)} is not in CONTRACT: say which scope it needs and how it isolates")
    return CONTRACT[route]


async def call(
    client: httpx.AsyncClient,
    route: tuple[str, str],
    headers: dict[str, str],
    **ids: str,
) -> httpx.Response:
    """One request of ``route`` with placeholder ids (or ``ids``) and its valid body, if any."""
    method, template = route
    values = {"workflow_id": "wf-1", "goal_id": str(uuid.uuid4()), "enrollment_id": "en-1", **ids}
    path = template.format(**{k: v for k, v in values.items() if f"{{{k}}}" in template})
    body = CONTRACT[route].body if route in CONTRACT else None
    return await client.request(method, path, json=body, headers=headers)


CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "payload_too_large"}


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == CODES[status]
