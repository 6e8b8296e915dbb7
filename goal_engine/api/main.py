"""The FastAPI application: routers, error shape, body limit, metrics, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
from fastapi import Depends, FastAPI

from goal_engine.api.cache import ReadCache
from goal_engine.api.deps import reject_unknown_query_parameters
from goal_engine.api.errors import install_error_handlers
from goal_engine.api.fastpath import FastReads
from goal_engine.api.middleware import LimitAndMeasure
from goal_engine.api.routes import analytics, audit, catalog, goal_types, goals, health, workflows
from goal_engine.api.workers import forget_this_process
from goal_engine.configuration.outbox import OutboxRelay
from goal_engine.console import console_app
from goal_engine.core.config import Settings
from goal_engine.core.security import VerifiedTokens, require_strong_secret, token_policy

API_PREFIX = "/api/v1"


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The read pool's reset: nothing (see create_read_pool)."""


async def create_read_pool(database_url: str) -> asyncpg.Pool:
    """The read routes' pool.

    Their statements change no session state (no SET, lock, LISTEN or cursor kept), so
    their connections skip the reset query, a round trip per release; an open
    transaction is still rolled back by asyncpg before it runs. And they are planned
    once per connection: PostgreSQL would otherwise plan each execution of the same
    prepared statement again (its custom plans), ~0.4-0.6 ms of its CPU per read, for the
    same plan; the achievements page (every monthly partition) and the windows the
    most. A plan never changes an answer.
    """
    return await asyncpg.create_pool(
        database_url,
        min_size=2,
        max_size=10,
        reset=_keep_session,
        server_settings={"plan_cache_mode": "force_generic_plan"},
    )


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``; :class:`WeakSecret` if its JWT secret must not be used."""
    require_strong_secret(settings.jwt_secret)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = await asyncpg.create_pool(settings.database_url_asyncpg, min_size=2, max_size=10)
        app.state.read_pool = await create_read_pool(settings.database_url_asyncpg)
        app.state.relay = OutboxRelay(settings, app.state.pool)
        stop = asyncio.Event()
        relay_task = app.state.relay_task = asyncio.create_task(app.state.relay.run(stop))
        try:
            yield
        finally:
            stop.set()
            app.state.relay.wake()
            await relay_task
            await app.state.read_pool.close()
            await app.state.pool.close()
            forget_this_process()

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
    app.state.read_cache = ReadCache(settings.api_read_cache_mib * 1024 * 1024)
    app.state.tokens = VerifiedTokens(settings.jwt_secret, token_policy(settings))
    install_error_handlers(app)
    routers = (goals.router, workflows.router, workflows.collection_router, analytics.router,
               goal_types.router, audit.router, catalog.router)  # fmt: skip
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.mount("/console", console_app(), name="console")

    app.add_middleware(FastReads, state=app.state)  # inside the metrics: its answers are counted
    app.add_middleware(LimitAndMeasure, max_body_bytes=settings.max_body_bytes, routes=app.router.routes)
    return app
