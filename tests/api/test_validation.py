"""Request validation, in-process: every refusal that needs no database is a 4xx with a reason."""

from __future__ import annotations

import uuid

import httpx
import pytest

from goal_engine.core.config import Settings
from tests.api_routes import openapi_document
from tests.tokens import bearer

API = "/api/v1"
TAG_GOAL = {"goal_type": "tag_added", "criteria": {"tag_id": "tag-1"}}
STATS = f"{API}/workflows/wf/goals/stats"


def details(response: httpx.Response) -> str:
    return " ".join(map(str, response.json()["error"]["details"]))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"goal_type": "birthday", "criteria": {"x": 1}}, "goal_type"),
        ({"goal_type": "tag_added", "criteria": {}}, "at least one goal criterion"),
        ({"goal_type": "tag_added"}, "criteria"),
        ({"goal_type": "purchase_made", "criteria": {"min_amount": "a lot"}}, "min_amount"),
        ({"goal_type": "pipeline_stage_reached", "criteria": {"pipeline_id": "p"}}, "stage_id"),
        ({"goal_type": "form_submitted", "criteria": {"form_id": ["not", "a", "string"]}}, "form_id"),
    ],
)
async def test_bad_goals_get_422_with_a_reason(
    api_settings: Settings, asgi: httpx.AsyncClient, body: dict[str, object], problem: str
) -> None:  # R13
    response = await asgi.post(f"{API}/workflows/wf/goals", json=body, headers=bearer(api_settings, "t"))
    assert response.status_code == 422, response.text
    assert problem in details(response)


@pytest.mark.parametrize(
    ("workflow_id", "criteria"),
    [
        ("%00null", {"tag_id": "t"}),  # NUL in the path
        ("wf", {"tag_id": "t\u0000"}),  # NUL in the body
        ("wf", {"tag_name": "a\u0000b"}),
        ("wf", {"tag_id": "line\nbreak"}),
        ("a" * 201, {"tag_id": "t"}),
    ],
)
async def test_unstorable_input_gets_422_never_500(
    api_settings: Settings, asgi: httpx.AsyncClient, workflow_id: str, criteria: dict[str, str]
) -> None:
    body = {"goal_type": "tag_added", "criteria": criteria}
    url = f"{API}/workflows/{workflow_id}/goals"
    response = await asgi.post(url, json=body, headers=bearer(api_settings, "hostile"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]


async def test_bad_bodies_get_4xx_with_a_reason(api_settings: Settings, asgi: httpx.AsyncClient) -> None:
    auth = {**bearer(api_settings, "t"), "Content-Type": "application/json"}
    url = f"{API}/workflows/wf-{uuid.uuid4().hex[:8]}/goals"
    invalid_json = await asgi.post(url, content=b'{"goal_type": ', headers=auth)
    assert invalid_json.status_code == 422 and invalid_json.json()["error"]["details"]
    too_big = b'{"x": "' + b"a" * (api_settings.max_body_bytes + 1) + b'"}'
    huge = await asgi.post(url, content=too_big, headers=auth)
    assert huge.status_code == 413
    too_long_id = await asgi.get(f"{API}/workflows/{'w' * 201}/goals", headers=auth)
    assert too_long_id.status_code == 422


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"from": "2026-10-02T00:00:00"}, "time zone"),  # no offset
        ({"from": "0.5"}, "RFC 3339"),  # a Unix time is no RFC 3339 date-time
        ({"to": "yesterday"}, "RFC 3339"),
        ({"from": "2026-10-02T00:00:00Z", "to": "2026-10-01T00:00:00Z"}, "from must be before to"),
        ({"from": "2026-10-02T00:00:00Z", "to": "2026-10-02T00:00:00Z"}, "from must be before to"),
        ({"interval": "month"}, "interval"),
        ({"intervall": "day"}, "intervall"),  # a misspelt filter never answers something else
        (
            {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "interval": "hour"},
            "at most 10,000",
        ),
    ],
)
async def test_bad_stats_windows_get_422_with_a_reason(
    api_settings: Settings, asgi: httpx.AsyncClient, params: dict[str, str], problem: str
) -> None:
    response = await asgi.get(STATS, params=params, headers=bearer(api_settings, "t"))
    assert response.status_code == 422, response.text
    assert problem in details(response) or problem in response.json()["error"]["message"], response.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"{API}/workflows/wf/goals/achievements", {"cursor": "not-a-cursor"}),
        (f"{API}/workflows/wf/goals/achievements", {"limit": "0"}),
        (f"{API}/workflows/wf/goals/achievements", {"limit": "100000"}),
        (f"{API}/audit", {"cursor": "not-a-cursor"}),
        (f"{API}/audit", {"limit": "-1"}),
    ],
)
async def test_bad_pages_get_422(
    api_settings: Settings, asgi: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await asgi.get(path, params=params, headers=bearer(api_settings, "t"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]


@pytest.mark.parametrize(
    "query",
    [
        # FastAPI validates only the last of repeated values: the first would slip through.
        "parent_id=%1Bnot-an-id&parent_id=pipe-1",
        "interval=day&interval=hour",
        "intervall=day",
    ],
)
async def test_repeated_or_unknown_query_parameters_get_422(
    api_settings: Settings, asgi: httpx.AsyncClient, query: str
) -> None:
    path = f"{API}/catalog" if query.startswith("parent_id") else STATS
    response = await asgi.get(f"{path}?{query}", headers=bearer(api_settings, "t"))
    assert response.status_code == 422, response.text
    assert "more than once" in details(response) or "unknown query parameter" in details(response)


def test_the_stats_route_documents_its_windows() -> None:
    """The window semantics are in the OpenAPI description, where a client's author reads them."""
    operation = openapi_document()["paths"]["/api/v1/workflows/{workflow_id}/goals/stats"]["get"]
    text = " ".join(operation["description"].split())
    for phrase in ("[from, to)", "current, partial hour", "zeros included", "ISO week"):
        assert phrase in text, phrase
    params = {p["name"]: p["description"] for p in operation["parameters"]}
    assert "exclusive" in params["to"] and "any instant" in params["from"]
