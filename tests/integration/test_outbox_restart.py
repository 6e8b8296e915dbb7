"""The outbox relay across a PostgreSQL restart, with two API processes (issue 10, item 9).

A PostgreSQL server of this test's own (the session's shared one is not
disturbed), two API processes on it, the session's Kafka broker under a topic
prefix of this test's own. Changes go through both APIs before and after the
server restarts. Then: nothing is left unpublished, each workflow's versions
reach Kafka in order (a re-send after the restart is a duplicate of an older
one, never a newer one first), and each API's /readyz was 503 while the server
was down and 200 again after.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.postgres import LocalPostgres, create_database, drop_database
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command, wait_until
from goal_engine.kafka.admin import create_topics
from projections.migrate import upgrade
from tests.conftest import RUN_ID
from tests.integration.helpers import bearer, eventually, read_topic, settings_env

pytestmark = pytest.mark.integration

WORKFLOWS = ("wf-a", "wf-b", "wf-c")
ROUNDS = 4  # changes per workflow per phase, alternating between the two APIs


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    data = REPO_ROOT / ".local" / f"test-pg-restart-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    pg = LocalPostgres(data, port=free_port())
    pg.start()
    yield pg
    pg.stop()
    shutil.rmtree(data, ignore_errors=True)
    data.with_name(data.name + ".log").unlink(missing_ok=True)


@pytest.fixture
def two_apis(settings: Settings, own_postgres: LocalPostgres) -> Iterator[list[Settings]]:
    url = asyncio.run(create_database(own_postgres.url, "goal_engine"))
    upgrade(url)
    base = settings.model_copy(
        update={
            "database_url": url,
            "ready_check_peers": False,
            "topic_prefix": f"restart-{uuid.uuid4().hex[:6]}.",
        }
    )
    asyncio.run(create_topics(base))
    apis = [base.model_copy(update={"api_port": free_port()}) for _ in range(2)]
    logs = REPO_ROOT / ".local" / "test-logs" / RUN_ID
    children = [
        ManagedProcess(
            f"api-{i}", goal_engine_command("api"), child_env(settings_env(s)), logs / f"api-restart-{i}.log"
        )
        for i, s in enumerate(apis)
    ]
    for child in children:
        child.start()
    try:
        for s in apis:
            wait_until(lambda s=s: ready(s) == 200, timeout=90, what=f"the API on port {s.api_port}")
        yield apis
    finally:
        for child in children:
            child.stop()


def ready(settings: Settings) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{settings.api_port}/readyz", timeout=3).status_code
    except httpx.HTTPError:
        return 0


async def change_settings(apis: list[Settings], tenant: str, first_round: int) -> None:
    """ROUNDS logic changes per workflow (each a new version), through both APIs in turn."""
    async with httpx.AsyncClient(timeout=15) as client:
        for n in range(first_round, first_round + ROUNDS):
            for i, workflow in enumerate(WORKFLOWS):
                api = apis[(n + i) % 2]
                url = f"http://127.0.0.1:{api.api_port}/api/v1/workflows/{workflow}/goal-settings"
                body = {"logic": "all" if n % 2 else "any"}
                await put_until_stored(client, url, body, bearer(api, tenant))


async def put_until_stored(
    client: httpx.AsyncClient, url: str, body: dict[str, str], headers: dict[str, str]
) -> None:
    # Right after the restart a pooled connection may still be a dead one (a 503, nothing stored).
    await eventually(
        lambda: client.put(url, json=body, headers=headers),
        lambda r: r.status_code == 200,
        timeout=60,
        what=f"PUT {url}",
    )


async def test_a_postgres_restart_under_two_relays_loses_nothing_and_keeps_order(
    two_apis: list[Settings], own_postgres: LocalPostgres
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    await change_settings(two_apis, tenant, 0)

    own_postgres.stop()
    for api in two_apis:
        await eventually(
            lambda api=api: asyncio.to_thread(ready, api), lambda s: s == 503, what="/readyz 503"
        )
        # A read while the database is away: a 503 that says why, never a 500.
        async with httpx.AsyncClient(timeout=15) as client:
            stats = await client.get(
                f"http://127.0.0.1:{api.api_port}/api/v1/workflows/{WORKFLOWS[0]}/goals/stats",
                headers=bearer(api, tenant),
            )
        assert stats.status_code == 503, stats.text
        assert stats.json()["error"]["code"] == "unavailable" and stats.json()["error"]["details"]
        assert stats.headers["retry-after"]
    own_postgres.start()
    for api in two_apis:
        await eventually(
            lambda api=api: asyncio.to_thread(ready, api), lambda s: s == 200, timeout=90, what="/readyz 200"
        )

    await change_settings(two_apis, tenant, ROUNDS)

    async def unpublished() -> int:
        conn = await asyncpg.connect(two_apis[0].database_url_asyncpg)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        finally:
            await conn.close()

    await eventually(unpublished, lambda n: n == 0, timeout=60, what="the relay to publish everything")
    events = [e for e in await read_topic(two_apis[0], "workflow.goal.configured") if e["tenantid"] == tenant]
    for workflow in WORKFLOWS:
        seen: list[int] = []
        for event in events:
            version = event["data"]["workflow"]["version"]
            if event["data"]["workflow"]["workflow_id"] == workflow and version not in seen:
                seen.append(version)
        assert seen == list(range(1, 2 * ROUNDS + 1)), f"{workflow}: versions first seen in order {seen}"
    # The relay's backlog gauge followed: every API that relayed reports it drained.
    for api in two_apis:
        metrics = (await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{api.api_port}/metrics")).text
        assert "goal_engine_outbox_backlog 0.0" in metrics


async def test_readiness_follows_the_relay_task(settings: Settings, postgres_server_url: str) -> None:
    """In process: /readyz is 503 once the relay task has ended, 200 while it runs and succeeds."""
    from goal_engine.api.main import create_app
    from goal_engine.configuration.outbox import OutboxRelay

    name = f"relay_ready_{uuid.uuid4().hex[:8]}"
    url = await create_database(postgres_server_url, name)
    await asyncio.to_thread(upgrade, url)
    own = settings.model_copy(update={"database_url": url, "ready_check_peers": False})
    app = create_app(own)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    relay = OutboxRelay(own, pool)
    app.state.settings, app.state.pool, app.state.relay = own, pool, relay
    stop = asyncio.Event()
    app.state.relay_task = asyncio.create_task(relay.run(stop))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            ready = await eventually(
                lambda: client.get("/readyz"), lambda r: r.status_code == 200, what="200"
            )
            assert ready.json()["checks"]["outbox_relay"] is True
            stop.set()
            relay.wake()
            await app.state.relay_task
            dead = await client.get("/readyz")
            assert dead.status_code == 503 and dead.json()["checks"]["outbox_relay"] is False
    finally:
        stop.set()
        await relay._close_producer()  # the readiness check's own, opened after the task ended
        await pool.close()
        await drop_database(postgres_server_url, name)
