"""Liveness, readiness of the whole stack, and the API's own metrics."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from goal_engine.api.workers import metrics_registry

router = APIRouter(tags=["operations"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """200 only when the database, Kafka, the outbox relay and every peer process are up."""
    state = request.app.state
    checks: dict[str, bool] = {}
    try:
        checks["postgres"] = await asyncio.wait_for(state.pool.fetchval("SELECT true"), 2.0) is True
    except Exception:
        checks["postgres"] = False
    checks["kafka"] = state.relay.connected or await state.relay.kafka_reachable()
    # A relay that died or keeps failing leaves configuration changes unpublished.
    checks["outbox_relay"] = not state.relay_task.done() and state.relay.healthy
    async with httpx.AsyncClient(timeout=1.0) as client:
        for name, url in state.settings.peer_ready_urls.items():
            try:
                body = (await client.get(url)).text
                checks[name] = any(line.strip() == "goal_engine_ready 1.0" for line in body.splitlines())
            except httpx.HTTPError:
                checks[name] = False
    ok = all(checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)
