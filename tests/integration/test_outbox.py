"""The configuration write path: nothing lost while Kafka is down, nothing published on rollback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from goal_engine.configuration.store import Actor, create_goal
from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.devstack.kafka import KafkaBroker
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.postgres import create_database, drop_database
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command, wait_until
from goal_engine.kafka.admin import create_topics
from projections.migrate import upgrade
from tests.conftest import RUN_ID
from tests.integration.helpers import bearer, eventually, read_topic, settings_env

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own, so stopping it disturbs no other test."""
    broker = KafkaBroker(tmp_path / "kafka", port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_database(postgres_server_url: str) -> Iterator[str]:
    """A database of this test's own: the session stack's relay must not publish its outbox."""
    name = f"outbox_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_database(postgres_server_url, name))
    upgrade(url)
    yield url
    asyncio.run(drop_database(postgres_server_url, name))


@pytest.fixture
async def own_pool(own_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(own_database, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
def api_on_own_broker(settings: Settings, own_broker: KafkaBroker, own_database: str) -> Iterator[Settings]:
    api_settings = settings.model_copy(
        update={
            "database_url": own_database,
            "kafka_bootstrap": own_broker.bootstrap,
            "api_port": free_port(),
            "ready_check_peers": False,
            "topic_prefix": f"outbox-{uuid.uuid4().hex[:6]}.",
        }
    )
    asyncio.run(create_topics(api_settings))
    log = REPO_ROOT / ".local" / "test-logs" / RUN_ID / "api-outbox.log"
    api = ManagedProcess("api", goal_engine_command("api"), child_env(settings_env(api_settings)), log)
    api.start()
    url = f"http://127.0.0.1:{api_settings.api_port}/readyz"
    wait_until(lambda: _status(url) == 200, timeout=60, what="the API on its own broker")
    yield api_settings
    api.stop()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


async def unpublished(pool: asyncpg.Pool, tenant: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND published_at IS NULL", tenant
        )
    )


async def test_changes_made_while_kafka_is_down_reach_it_when_it_is_back(
    api_on_own_broker: Settings, own_broker: KafkaBroker, own_pool: asyncpg.Pool
) -> None:
    pool = own_pool
    settings, tenant, workflow = api_on_own_broker, f"t-{uuid.uuid4().hex[:6]}", "wf-outbox"
    own_broker.stop()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}/api/v1", timeout=10) as api:
        auth = bearer(settings, tenant)
        for form in ("f1", "f2"):
            body = {"goal_type": "form_submitted", "criteria": {"form_id": form}}
            assert (
                await api.post(f"/workflows/{workflow}/goals", json=body, headers=auth)
            ).status_code == 201
        assert (
            await api.put(f"/workflows/{workflow}/goal-settings", json={"logic": "all"}, headers=auth)
        ).status_code == 200
    assert await unpublished(pool, tenant) == 3  # accepted, stored, waiting for Kafka

    own_broker.start()
    await eventually(
        lambda: unpublished(pool, tenant), lambda n: n == 0, timeout=60, what="the relay to catch up"
    )
    events = [e for e in await read_topic(settings, "workflow.goal.configured") if e["tenantid"] == tenant]
    # In order, each with the whole workflow as it was after that change.
    assert [e["data"]["operation"] for e in events] == ["created", "created", "settings_updated"]
    assert [e["data"]["workflow"]["version"] for e in events] == [1, 2, 3]
    assert [len(e["data"]["workflow"]["goals"]) for e in events] == [1, 2, 2]
    assert events[-1]["data"]["workflow"]["logic"] == "all"


async def test_a_rolled_back_change_publishes_nothing(pool: asyncpg.Pool) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"

    class Abort(Exception):
        pass

    async with pool.acquire() as conn:
        with pytest.raises(Abort):
            async with conn.transaction():
                # The same connection's transaction: create_goal's own nests inside it.
                single = _SingleConnectionPool(conn)
                await create_goal(single, Actor(tenant, "u"), "wf", "form_submitted", {"form_id": "f"})  # type: ignore[arg-type]
                assert await unpublished(pool, tenant) == 0  # not visible outside the transaction
                raise Abort
    assert await unpublished(pool, tenant) == 0
    assert await pool.fetchval("SELECT count(*) FROM workflow_goals WHERE tenant_id = $1", tenant) == 0


class _SingleConnectionPool:
    """Hands out one connection, so a store function runs inside the test's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def acquire(self) -> _SingleConnectionPool:
        return self

    async def __aenter__(self) -> asyncpg.Connection:
        return self._conn

    async def __aexit__(self, *_: object) -> None:
        return None
