"""Correction 4 of goal_engine/stream/transport.py: a failover's empty metadata is not a mismatch.

The end-to-end check is `make chaos` (kill -9 of a broker under load lost enrollments
without it); here only the decision: the consumer's partition count for a topic the
metadata lists without partitions, as Faust's table check then sees it.
"""

from __future__ import annotations

import pytest
from faust.exceptions import PartitionsMismatch
from faust.transport.drivers import aiokafka as faust_aiokafka

from goal_engine.stream import transport

SOURCE = "goal_engine.contact-events"


def _app(name: str) -> transport.App:
    return transport.App(name, broker="kafka://127.0.0.1:1", autodiscover=False, web_enabled=False)


@pytest.fixture
def metadata(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """What aiokafka's metadata snapshot says, per topic (0: listed without partitions)."""
    counts: dict[str, int] = {}
    monkeypatch.setattr(faust_aiokafka.Consumer, "topic_partitions", lambda self, topic: counts.get(topic))
    return counts


async def test_a_changelog_listed_without_partitions_does_not_fail_the_table_check(
    metadata: dict[str, int],
) -> None:
    app = _app("metadata-test")
    table = app.Table("contacts", partitions=6)
    metadata[SOURCE] = 6
    metadata[table.changelog_topic_name] = 0  # leaders moving: the topic has no partitions listed

    assert app.consumer.topic_partitions(table.changelog_topic_name) is None
    table._verify_source_topic_partitions(SOURCE)  # raised PartitionsMismatch before


async def test_a_real_mismatch_is_still_refused(metadata: dict[str, int]) -> None:
    app = _app("metadata-test-2")
    table = app.Table("contacts", partitions=6)
    metadata[SOURCE] = 6
    metadata[table.changelog_topic_name] = 3
    with pytest.raises(PartitionsMismatch):
        table._verify_source_topic_partitions(SOURCE)
