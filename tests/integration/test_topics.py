"""`goal-engine topics` on the real broker: retention and compaction, read back; re-runs repair drift."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from goal_engine.contract.topics import CONFIG_TOPICS, Topic
from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.kafka.admin import HISTORY_TOPICS, TopicChange, changelog_topic, ensure_topics
from tests.integration.helpers import eventually, settings_env

pytestmark = pytest.mark.integration

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


#: Kafka's UNKNOWN_TOPIC_OR_PARTITION: a topic just created may not be known yet to the
#: broker that answers (a fresh clone's `make test` once met it right after the create).
_UNKNOWN_TOPIC = 3


async def effective(admin: AIOKafkaAdminClient, name: str) -> dict[str, str]:
    """Every config of a topic as the broker applies it (overrides and defaults alike)."""

    async def describe() -> tuple[int, list[tuple[str, str]]]:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        [(error_code, _, _, _, entries)] = response.resources
        return error_code, entries

    error_code, entries = await eventually(
        describe, lambda r: r[0] != _UNKNOWN_TOPIC, timeout=10, what=f"{name} to be known"
    )
    assert error_code == 0
    return {entry[0]: entry[1] for entry in entries}


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings)}
    command = [sys.executable, "-m", "goal_engine.cli", "topics", *args]
    return subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


async def test_topics_keep_history_and_a_rerun_restores_drift(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient
) -> None:
    prefix = f"topics-{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, partitions=1, worker_id=f"{prefix}worker"
    )
    # The worker's changelog is created with the rest, before any worker could race Faust to it.
    names = [settings.topic(t) for t in Topic] + [changelog_topic(settings)]
    try:
        created = await ensure_topics(settings)
        assert [c.topic for c in created if c.created] == names

        # Read back: history for two years (plus the month the log may keep beyond it).
        history_ms = (730 + 31) * DAY_MS
        for topic in Topic:
            config = await effective(admin, settings.topic(topic))
            if topic in HISTORY_TOPICS:
                assert int(config["retention.ms"]) == history_ms >= 730 * DAY_MS, topic
            if topic in CONFIG_TOPICS:
                assert (config["cleanup.policy"], config["min.compaction.lag.ms"]) == ("compact", str(DAY_MS))
            else:
                assert config["cleanup.policy"] == "delete", topic
        assert (await effective(admin, settings.topic(Topic.CATALOG_ENTITY_CHANGED)))["retention.ms"] == "-1"
        assert {Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL, Topic.DEAD_LETTER} <= set(HISTORY_TOPICS)
        assert (await effective(admin, changelog_topic(settings)))["cleanup.policy"] == "compact"

        # Drift: someone shortens the achievements' retention and sets an unrelated override.
        achieved = settings.topic(Topic.GOAL_ACHIEVED)
        drift = {"retention.ms": str(3600 * 1000), "max.message.bytes": "2000000"}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, achieved, drift)])

        check = cli(settings, "--check")
        assert check.returncode == 1, check.stderr
        assert f"{achieved}: retention.ms 3600000 -> {history_ms} (would be altered)" in check.stdout
        assert (await effective(admin, achieved))["retention.ms"] == "3600000", "--check changed it"

        fix = cli(settings)
        assert fix.returncode == 0, fix.stderr
        assert f"{achieved}: retention.ms 3600000 -> {history_ms} (altered)" in fix.stdout
        assert "15 of 16 topic(s) already as specified" in fix.stdout
        config = await effective(admin, achieved)
        assert config["retention.ms"] == str(history_ms)
        assert config["max.message.bytes"] == "2000000", "an override we do not manage was dropped"

        assert await ensure_topics(settings) == []  # idempotent

        # The setting drives it: a shorter history alters exactly the history topics.
        shorter = settings.model_copy(update={"retention_days": 365})
        changes = await ensure_topics(shorter)
        want = str((365 + 31) * DAY_MS)
        assert changes == [
            TopicChange(settings.topic(t), altered={"retention.ms": (str(history_ms), want)})
            for t in Topic
            if t in HISTORY_TOPICS
        ]
        assert (await effective(admin, settings.topic(Topic.EXIT_GOAL)))["retention.ms"] == want
    finally:
        await admin.delete_topics(names)
