"""The running stack (worker, projector, API as real processes) for end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command, wait_until
from tests.conftest import RUN_ID
from tests.integration.helpers import EventSender, settings_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack(topics: Settings) -> Iterator[Settings]:
    settings = topics
    env = child_env(settings_env(settings))
    logs = REPO_ROOT / ".local" / "test-logs" / RUN_ID
    children = [
        ManagedProcess(n, goal_engine_command(n), env, logs / f"{n}.log")
        for n in ("worker", "projector", "api")
    ]
    for child in children:
        child.start()

    def ready() -> bool:
        for c in children:
            if c.exit_code is not None:
                raise RuntimeError(f"{c.name} exited with {c.exit_code}; see {c.log_path}")
        try:
            return httpx.get(f"http://127.0.0.1:{settings.api_port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=120, what="the stack's /readyz")
        yield settings
    finally:
        for child in reversed(children):
            child.stop()


@pytest.fixture
async def sender(topics: Settings) -> AsyncIterator[EventSender]:
    sender = EventSender(topics)
    await sender.start()
    yield sender
    await sender.stop()


@pytest.fixture
async def api(stack: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}/api/v1", timeout=10) as client:
        yield client
