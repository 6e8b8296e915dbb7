"""The in-process API tier: the app over ``httpx.ASGITransport``, no Kafka, no PostgreSQL.

What a request is refused for before it reaches the database (authentication, scopes,
validation of the path, query and body, the body limit) is tested here, in seconds. The
app's lifespan does not run (ASGITransport sends no lifespan events): its state gets the
settings and, for the pool, :class:`NoDatabase`, so a test that reaches the database
fails loudly instead of passing by accident; such a test belongs in tests/integration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NoReturn

import httpx
import pytest

from goal_engine.api.main import create_app
from goal_engine.core.config import Settings
from tests.tokens import TEST_SECRET


class NoDatabase:
    def __getattr__(self, name: str) -> NoReturn:
        raise AssertionError(f"the in-process tier has no database (pool.{name}): see tests/integration")


@pytest.fixture(scope="session")
def api_settings() -> Settings:
    return Settings(jwt_secret=TEST_SECRET, log_format="text")


@pytest.fixture(scope="session")
async def asgi(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app itself (no socket), at the server's root."""
    app = create_app(api_settings)
    app.state.settings = api_settings
    app.state.pool = app.state.read_pool = NoDatabase()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client
