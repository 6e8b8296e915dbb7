"""The FastAPI application: routers, error shape, body limit, metrics, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from goal_engine.api.deps import reject_unknown_query_parameters
from goal_engine.api.errors import error_response, install_error_handlers
from goal_engine.api.routes import analytics, audit, catalog, goal_types, goals, health, workflows
from goal_engine.configuration.outbox import OutboxRelay
from goal_engine.console import console_app
from goal_engine.core.config import Settings

API_PREFIX = "/api/v1"

REQUESTS = Counter("goal_engine_api_requests_total", "API requests", ["route", "method", "status"])
LATENCY = Histogram("goal_engine_api_request_seconds", "API request latency", ["route", "method"])


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = await asyncpg.create_pool(settings.database_url_asyncpg, min_size=2, max_size=10)
        app.state.relay = OutboxRelay(settings, app.state.pool)
        stop = asyncio.Event()
        relay_task = asyncio.create_task(app.state.relay.run(stop))
        try:
            yield
        finally:
            stop.set()
            app.state.relay.wake()
            await relay_task
            await app.state.pool.close()

    app = FastAPI(
        title="goal-engine",
        version="1.0.0",
        description=(
            "Workflow goal tracking: configure the goals that exit a contact from an automation "
            "workflow, activate them, and read conversion analytics. All routes need a bearer JWT "
            "(HS256) with `tenant_id` and `scope` (`workflows:read`, `workflows:write`)."
        ),
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    install_error_handlers(app)
    routers = (goals.router, workflows.router, workflows.collection_router, analytics.router,
               goal_types.router, audit.router, catalog.router)  # fmt: skip
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.mount("/console", console_app(), name="console")

    @app.middleware("http")
    async def limit_and_measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            response: Response = error_response(
                413, f"the body may be at most {settings.max_body_bytes} bytes"
            )
        else:
            response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        return response

    return app
