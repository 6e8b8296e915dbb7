"""What the integration tests share: sending contract events, tokens, polling."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from goal_engine.contract.topics import Topic, contact_key
from goal_engine.core.config import Settings
from goal_engine.kafka.admin import topic_partitions
from tests.tokens import bearer

__all__ = ["bearer"]  # re-exported: the integration tests take their tokens from here too

T = TypeVar("T")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process use exactly these settings."""
    return {
        f"GOAL_ENGINE_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }


def cloud_event(
    type_: str,
    tenant: str,
    data: dict[str, Any],
    subject: str | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "tests",
        "type": type_,
        "time": (time or datetime.now(UTC)).isoformat(),
        "tenantid": tenant,
        "data": data,
    }
    if subject is not None:
        event["subject"] = subject
    return event


class EventSender:
    """Produces records the way other modules do (or deliberately not)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, event: dict[str, Any], key: bytes | None = None) -> None:
        if key is None and "subject" in event:
            key = contact_key(event["tenantid"], event["subject"]).encode()
        await self.send_raw(event["type"], json.dumps(event).encode(), key)

    async def send_raw(self, type_: str, value: bytes, key: bytes | None = None) -> None:
        await self._producer.send_and_wait(self.settings.topic(type_), value=value, key=key)


async def read_topic(settings: Settings, type_: str, timeout: float = 3.0) -> list[dict[str, Any]]:
    """Every record now on a topic (all partitions, from the beginning)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await topic_partitions(settings, [settings.topic(type_)])
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        end = await consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= end[tp] for tp in tps):
                break
            batch = await consumer.getmany(timeout_ms=200)
            out += [json.loads(r.value) for rs in batch.values() for r in rs]
        return out
    finally:
        await consumer.stop()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    timeout: float = 30.0,
    what: str = "the condition",
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` every ``interval`` s until ``check`` holds; the last value is in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class Record:
    """A consumed Kafka record, in the shape aiokafka hands it to the projector."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


class ProjectorTopics:
    """Records on this test's own topic names, with offsets counted per partition."""

    def __init__(self) -> None:
        self.prefix = f"proj-{uuid.uuid4().hex[:8]}."
        self._next: dict[tuple[str, int], int] = {}

    def record(
        self, topic: Topic, value: bytes | None, partition: int = 0, offset: int | None = None
    ) -> Record:
        name = self.prefix + topic
        if offset is None:
            offset = self._next.get((name, partition), 0)
        self._next[(name, partition)] = offset + 1
        return Record(name, partition, offset, value)
