"""The steady goal load of the fault suite and what it checks.

Contact ``i`` enrolls in its tenant's workflow and, in the same batch, gets the workflow's
goal tag: every enrollment whose two records Kafka acknowledged must exit exactly once.
The producer retries a batch until Kafka acknowledges it (as a source module would), so a
fault may duplicate source events but never drop one: duplicates must change nothing.
:class:`ExitWatcher` reads ``workflow.exit.goal`` as it grows, and notes when each exit
arrived; :func:`brute_force` re-reads the topics from the start to count what the stats
must say.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from goal_engine.bench.events import KafkaRecord, TagGoalWorkflow
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.kafka.admin import topic_partitions
from tests.chaos.cluster import Cluster

log = logging.getLogger("tests.chaos")

WORKFLOW_ID = "chaos-wf"
TAG_ID = "chaos-tag"


def workflows(run: str, tenants: int) -> list[TagGoalWorkflow]:
    return [
        TagGoalWorkflow(f"chaos-{run}-t{t}", WORKFLOW_ID, TAG_ID, "Chaos", "tests/chaos")
        for t in range(tenants)
    ]


@dataclass
class GoalLoad:
    """``rate`` contacts a second, in batches every ``tick`` s, while :meth:`resume`-d."""

    settings: Settings
    run: str
    rate: float = 20.0
    tenants: int = 2
    tick: float = 0.25
    sent_at: dict[str, float] = field(default_factory=dict)  # enrollment id -> monotonic ack time
    tenant_of: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    _running: asyncio.Event = field(default_factory=asyncio.Event)
    _next: int = 0

    def __post_init__(self) -> None:
        self.workflows = workflows(self.run, self.tenants)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=15000,
            client_id="chaos-load",
        )

    async def start(self) -> None:
        await self._producer.start()
        now = datetime.now(UTC)
        await self._send([w.activated(now, since=now - timedelta(minutes=5)) for w in self.workflows])

    async def stop(self) -> None:
        await self._producer.stop()

    def resume(self) -> None:
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    async def run_forever(self) -> None:
        per_tick = max(1, round(self.rate * self.tick))
        while True:
            await self._running.wait()
            started = time.monotonic()
            batch, enrollments = [], []
            for _ in range(per_tick):
                i = self._next
                self._next += 1
                workflow = self.workflows[i % self.tenants]
                contact, enrollment = f"c-{i}", f"{self.run}-en-{i}"
                now = datetime.now(UTC)
                batch += [
                    workflow.enrollment_started(contact, enrollment, now),
                    workflow.tag_added(contact, now + timedelta(milliseconds=1)),
                ]
                enrollments.append((enrollment, workflow.tenant))
            await self._send(batch)
            acked = time.monotonic()
            for enrollment, tenant in enrollments:
                self.sent_at[enrollment] = acked
                self.tenant_of[enrollment] = tenant
            await asyncio.sleep(max(0.0, self.tick - (time.monotonic() - started)))

    async def _send(self, records: list[KafkaRecord]) -> None:
        """Until Kafka acknowledged every record (in order per partition: one batch at a time)."""
        while True:
            try:
                futures = [
                    await self._producer.send(self.settings.topic(t), key=k, value=v) for t, k, v in records
                ]
                await asyncio.gather(*futures)
                return
            except KafkaError as exc:
                self.retries += 1
                log.info("load: send failed (%r), retrying the batch", exc)
                await asyncio.sleep(0.5)


@dataclass
class ExitWatcher:
    """Every ``workflow.exit.goal`` record, as it arrives."""

    settings: Settings
    ids_by_enrollment: dict[str, set[str]] = field(default_factory=dict)
    first_at: dict[str, float] = field(default_factory=dict)  # enrollment id -> monotonic arrival
    records_by_id: Counter[str] = field(default_factory=Counter)

    async def run_forever(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False, client_id="chaos-exits"
        )
        await consumer.start()
        try:
            partitions = await topic_partitions(self.settings, [self.settings.topic(Topic.EXIT_GOAL)])
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.monotonic()
                for records in batch.values():
                    for record in records:
                        event = json.loads(record.value or b"{}")
                        enrollment = event["data"]["workflow_enrollment_id"]
                        self.ids_by_enrollment.setdefault(enrollment, set()).add(event["id"])
                        self.first_at.setdefault(enrollment, now)
                        self.records_by_id[event["id"]] += 1
        finally:
            await consumer.stop()

    def missing(self, expected: dict[str, float]) -> list[str]:
        return [e for e in expected if e not in self.ids_by_enrollment]

    def duplicated(self, expected: dict[str, float]) -> list[str]:
        """Enrollments with more than one distinct exit id (a second exit, not a redelivery)."""
        return [e for e in expected if len(self.ids_by_enrollment.get(e, ())) > 1]

    @property
    def redelivered(self) -> int:
        """Records beyond the first of each id: re-publications of the same exit (harmless)."""
        return sum(self.records_by_id.values()) - len(self.records_by_id)


async def read_all(settings: Settings, topic: Topic) -> list[dict[str, object]]:
    """Every record of ``topic`` from the start to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions: list[TopicPartition] = await topic_partitions(settings, [settings.topic(topic)])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        out: list[dict[str, object]] = []
        while True:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(p >= end[tp] for p, tp in zip(positions, partitions, strict=True)):
                return out
            batch = await consumer.getmany(timeout_ms=1000)
            out += [json.loads(r.value or b"{}") for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()


async def brute_force(settings: Settings, tenants: list[str]) -> dict[str, tuple[int, int]]:
    """Per tenant: (distinct enrollments started, distinct enrollments exited), from the topics."""
    started: dict[str, set[object]] = {t: set() for t in tenants}
    exited: dict[str, set[object]] = {t: set() for t in tenants}
    for event in await read_all(settings, Topic.ENROLLMENT_STARTED):
        if event.get("tenantid") in started:
            started[str(event["tenantid"])].add(event["data"]["enrollment_id"])  # type: ignore[index]
    for event in await read_all(settings, Topic.EXIT_GOAL):
        if event.get("tenantid") in exited:
            exited[str(event["tenantid"])].add(event["data"]["workflow_enrollment_id"])  # type: ignore[index]
    return {t: (len(started[t]), len(exited[t])) for t in tenants}


@dataclass
class Chaos:
    """What a fault test gets: the cluster, the load on it, and the exits it produced."""

    cluster: Cluster
    load: GoalLoad
    exits: ExitWatcher
