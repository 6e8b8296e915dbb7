"""Topic specs: everything a rebuild replays is kept at least as long as the read models keep it."""

from __future__ import annotations

from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.kafka.admin import HISTORY_TOPICS, topic_specs
from projections.projector import VIEWS

DAY_MS = 24 * 3600 * 1000


def test_every_topic_the_projector_replays_keeps_the_history() -> None:
    settings = Settings(retention_days=400)
    specs = {s.topic: s.config for s in topic_specs(settings)}
    for topic in VIEWS:
        if specs[topic].get("cleanup.policy") == "compact":
            continue  # the configuration topics: each workflow's newest snapshot is kept forever
        retention = int(specs[topic]["retention.ms"])
        assert retention == -1 or retention >= (400 + 31) * DAY_MS, topic
    for topic in HISTORY_TOPICS:  # the published ones too: audit and dead-letter replay
        assert int(specs[topic]["retention.ms"]) == (400 + 31) * DAY_MS, topic
    # The goal sources only feed the live worker: they need not hold two years.
    assert int(specs[Topic.TAG_ADDED]["retention.ms"]) == 30 * DAY_MS


def test_the_worker_changelog_that_ensure_topics_creates_is_the_one_faust_writes() -> None:
    from goal_engine.kafka.admin import changelog_topic
    from goal_engine.stream.app import create_app

    settings = Settings(worker_id="goal-engine-x")
    app = create_app(settings)
    assert [t.changelog_topic.get_topic_name() for t in app.tables.values()] == [changelog_topic(settings)]


def test_min_insync_replicas_is_set_on_every_topic_only_when_configured() -> None:
    assert all("min.insync.replicas" not in s.config for s in topic_specs(Settings()))
    specs = topic_specs(Settings(topic_replication_factor=3, topic_min_insync_replicas=2))
    assert {s.config["min.insync.replicas"] for s in specs} == {"2"}
