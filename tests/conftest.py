"""Session fixtures: a real Kafka broker and a real PostgreSQL, isolated per run.

- Kafka: GOAL_ENGINE_TEST_KAFKA_BOOTSTRAP names a broker, else one is started
  (KRaft, from the Maven Central download) on a free loopback port.
- PostgreSQL: GOAL_ENGINE_TEST_DATABASE_URL names a server, else the embedded
  one is started on a free port.
Each run gets its own topic prefix, consumer groups and a fresh database, so
runs never see each other's data, and a broker or server can be shared.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.devstack.ports import free_port

RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if bootstrap := os.environ.get("GOAL_ENGINE_TEST_KAFKA_BOOTSTRAP"):
        yield bootstrap
        return
    from goal_engine.devstack.kafka import KafkaBroker

    with KafkaBroker(tmp_path_factory.mktemp("kafka"), port=free_port()) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("GOAL_ENGINE_TEST_DATABASE_URL"):
        yield url
        return
    from goal_engine.devstack.postgres import LocalPostgres

    with LocalPostgres(REPO_ROOT / ".local" / f"test-pg-{RUN_ID}", port=free_port()) as pg:
        yield pg.url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    from goal_engine.devstack.postgres import create_database, drop_database
    from projections.migrate import upgrade

    name = f"goal_engine_test_{RUN_ID}"
    url = asyncio.run(create_database(postgres_server_url, name))
    upgrade(url)
    yield url
    asyncio.run(drop_database(postgres_server_url, name))


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One isolated deployment: its own topic prefix, groups, ports and state."""
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test-{RUN_ID}.",
        partitions=3,
        database_url=database_url,
        worker_id=f"goal-engine-test-{RUN_ID}",
        projector_group=f"goal-engine-projector-test-{RUN_ID}",
        state_dir=Path(tmp_path_factory.mktemp("worker-state")),
        api_port=free_port(),
        worker_metrics_port=free_port(),
        projector_metrics_port=free_port(),
        jwt_secret="integration-test-secret-at-least-32-bytes",
        # Short windows, so expiry and the no-leak guarantee are observable in a test.
        grace_seconds=10,
        ended_retention_seconds=3,
        sweep_interval_seconds=1,
        log_format="text",
    )


@pytest.fixture(scope="session")
def topics(settings: Settings) -> Settings:
    from goal_engine.kafka.admin import create_topics

    asyncio.run(create_topics(settings))
    return settings


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[object]:
    import asyncpg

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()
