"""The API's outer layer, driven as raw ASGI (issue 10, items 2 and 4).

No server and no database: the body limit and the metrics answer before any
route touches either, which is exactly what is under test. Bodies come as the
server hands them over, chunk by chunk, with or without a Content-Length.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from goal_engine.api.main import create_app
from goal_engine.api.middleware import DRAIN_BYTES, KNOWN_METHODS
from goal_engine.core.config import Settings
from tests.api_routes import app_routes

LIMIT = 64 * 1024
CHUNK = 16 * 1024
GOALS = "/api/v1/workflows/wf-1/goals"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    settings = Settings(jwt_secret="unit-test-secret-of-at-least-32-bytes", max_body_bytes=LIMIT)
    app = create_app(settings)
    # What the lifespan would set; no route here gets as far as using the pool.
    app.state.settings, app.state.pool = settings, None
    app.state.read_pool = None
    return app


@dataclass
class Exchange:
    status: int = 0
    body: bytes = b""
    pulled: int = 0  # body bytes the app asked for
    pulled_when_answered: int = -1  # ... when it sent its answer's status
    headers: dict[str, str] = field(default_factory=dict)


async def request(
    app: FastAPI,
    method: str,
    path: str,
    chunks: Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Exchange:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
    }
    out = Exchange()
    chunks = chunks or iter(())
    pending = next(chunks, None)

    async def receive() -> dict[str, Any]:
        nonlocal pending
        if pending is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        chunk, pending = pending, next(chunks, None)
        out.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": pending is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status, out.pulled_when_answered = message["status"], out.pulled
            out.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            out.body += message.get("body", b"")

    await app(scope, receive, send)
    return out


def stream(total: int) -> Iterator[bytes]:
    for _ in range(total // CHUNK):
        yield b"x" * CHUNK


async def test_a_chunked_body_past_the_limit_is_413_without_reading_the_rest(app: FastAPI) -> None:
    # 64 MiB offered, no Content-Length, no token: refused once the limit is crossed.
    out = await request(app, "POST", GOALS, stream(64 * 1024 * 1024), {"transfer-encoding": "chunked"})
    assert out.status == 413, out.body
    assert b"payload_too_large" in out.body and str(LIMIT).encode() in out.body
    assert out.pulled_when_answered <= LIMIT + CHUNK
    # Then a bounded drain, read and dropped, so the client is not reset before it reads the 413.
    assert out.pulled <= LIMIT + CHUNK + DRAIN_BYTES


async def test_a_body_lying_about_its_length_is_counted_too(app: FastAPI) -> None:
    out = await request(app, "POST", GOALS, stream(4 * 1024 * 1024), {"content-length": "10"})
    assert out.status == 413 and out.pulled_when_answered <= LIMIT + CHUNK


@pytest.mark.parametrize("length", [str(LIMIT + 1), "10" * 20, "-1", "1e9", "abc"])
async def test_a_declared_length_past_the_limit_or_not_a_number_is_413_before_a_byte(
    app: FastAPI, length: str
) -> None:
    out = await request(app, "POST", GOALS, stream(LIMIT * 2), {"content-length": length})
    assert out.status == 413 and out.pulled_when_answered == 0


async def test_a_body_within_the_limit_reaches_authentication(app: FastAPI) -> None:
    out = await request(app, "POST", GOALS, iter([b'{"goal_type": "tag_added",', b' "criteria": {}}']))
    assert out.status == 401, out.body
    exact = await request(app, "POST", GOALS, stream(LIMIT), {"transfer-encoding": "chunked"})
    assert exact.status == 401 and exact.pulled == LIMIT


def series(name: str) -> set[tuple[tuple[str, str], ...]]:
    return {
        tuple(sorted(s.labels.items()))
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == name
    }


async def test_odd_methods_and_random_paths_mint_no_new_series(app: FastAPI) -> None:
    rng = random.Random(10)
    templates = {path for _, path in app_routes()} | {"unmatched"}
    for _ in range(300):
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))
        path = "/" + "/".join(
            "".join(rng.choices(string.ascii_letters + string.digits + "-_.~%", k=rng.randint(1, 12)))
            for _ in range(rng.randint(1, 5))
        )
        out = await request(app, method, path)
        assert 400 <= out.status < 500, (method, path, out.body)
        id_path = f"/api/v1/workflows/wf-{rng.getrandbits(64):x}/goals"
        assert (await request(app, rng.choice(["GET", "PUT", "BREW", "get"]), id_path)).status in (401, 405)
    labels = series("goal_engine_api_requests_total")
    methods = {dict(s)["method"] for s in labels}
    routes = {dict(s)["route"] for s in labels}
    assert methods <= KNOWN_METHODS | {"other"}, methods
    assert routes <= templates, routes - templates
    assert "/api/v1/workflows/{workflow_id}/goals" in routes
    assert len(series("goal_engine_api_request_seconds_count")) <= len(templates) * (len(KNOWN_METHODS) + 1)
