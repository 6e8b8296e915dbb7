"""Stream workers as child processes of one test, on a deployment of their own.

:func:`isolated_deployment` is the session's broker with a topic prefix, consumer
group (Faust app id) and worker state of its own, so killing, restarting or
doubling its workers never disturbs the session ``stack`` nor another test. The
records are built with the contract models, as the other modules (and our outbox
relay) would produce them, by the benchmark's builder (``goal_engine/bench/events.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from goal_engine.bench.events import KafkaRecord, TagGoalWorkflow
from goal_engine.contract.topics import Topic
from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command
from goal_engine.domain import ids
from goal_engine.kafka.admin import create_topics, topic_partitions
from tests.conftest import RUN_ID
from tests.integration.helpers import eventually, read_topic, settings_env

SOURCE = "tests/worker-harness"
LOGS = REPO_ROOT / ".local" / "test-logs" / RUN_ID


# --- a deployment of its own ----------------------------------------------------------


async def isolated_deployment(base: Settings, name: str, **overrides: Any) -> Settings:
    """``base`` with its own topics (created here), consumer group and worker state."""
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    settings = base.model_copy(
        update={
            "topic_prefix": f"{base.topic_prefix}{run}.",
            "worker_id": f"{base.worker_id}-{run}",
            "state_dir": base.state_dir / run,
            **overrides,
        }
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    await create_topics(settings)
    return settings


class Worker:
    """One ``goal-engine worker`` process; ``start`` again after ``kill`` is a restart."""

    def __init__(self, settings: Settings, name: str, **overrides: Any) -> None:
        # Its own metrics port: two workers of one group may run side by side.
        self.settings = settings.model_copy(update={"worker_metrics_port": free_port(), **overrides})
        self.name = name
        env = child_env(settings_env(self.settings))
        log = LOGS / f"{settings.worker_id}-{name}.log"
        self.process = ManagedProcess(name, goal_engine_command("worker"), env, log)

    def start(self) -> None:
        self.process.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last commit, no producer flush."""
        self.process.kill()

    def stop(self) -> None:
        """SIGTERM, the worker's own shutdown (see test_worker_shutdown), then SIGKILL."""
        self.process.stop(timeout=20)

    async def metrics(self) -> dict[str, float]:
        """The worker's samples, summed over labels (empty while it does not answer)."""
        if (code := self.process.exit_code) is not None:
            raise AssertionError(f"worker {self.name} exited with {code}; see {self.process.log_path}")
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{self.settings.worker_metrics_port}/metrics")
        except httpx.HTTPError:
            return {}
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if not sample.name.endswith(("_bucket", "_created")):
                    values[sample.name] = values.get(sample.name, 0.0) + sample.value
        return values

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Until it has loaded the configurations and its evaluate agent has started."""
        await eventually(
            self.metrics,
            lambda m: m.get("goal_engine_ready") == 1,
            timeout=timeout,
            what=f"worker {self.name} to be ready",
        )

    async def hold_enrollments(self, producer: Producer, workflow: TagWorkflow, contacts: int) -> None:
        """Once ready, enroll contacts 0..N-1 in ``workflow``; wait until this worker holds them all."""
        await self.wait_ready()
        await producer.send([workflow.enrollment_started(i) for i in range(contacts)])
        await eventually(
            self.metrics,
            lambda m: m.get("goal_engine_active_enrollments") == contacts,
            what=f"all {contacts} enrollments in worker {self.name}'s table",
        )


# --- the records other modules would produce ------------------------------------------


@dataclass(frozen=True)
class TagWorkflow:
    """An active workflow whose one goal is a tag; contact ``i`` has enrollment ``<workflow>-en-<i>``."""

    tenant: str
    workflow_id: str
    tag_id: str

    @property
    def records(self) -> TagGoalWorkflow:
        return TagGoalWorkflow(
            self.tenant, self.workflow_id, self.tag_id, tag_name=self.tag_id, source=SOURCE
        )

    def contact(self, i: int) -> str:
        return f"c-{i}"

    def enrollment(self, i: int) -> str:
        return f"{self.workflow_id}-en-{i}"

    def exit_id(self, i: int) -> str:
        return ids.exit_id(self.tenant, self.enrollment(i))

    def activated(self, now: datetime) -> KafkaRecord:
        return self.records.activated(now, since=now - timedelta(minutes=1))

    def enrollment_started(self, i: int) -> KafkaRecord:
        return self.records.enrollment_started(self.contact(i), self.enrollment(i), datetime.now(UTC))

    def enrollment_ended(self, i: int) -> KafkaRecord:
        return self.records.enrollment_ended(self.contact(i), self.enrollment(i), datetime.now(UTC))

    def tag_added(self, i: int) -> KafkaRecord:
        return self.records.tag_added(self.contact(i), datetime.now(UTC))


class Producer:
    """Produces prepared (topic, key, value) records onto a deployment's topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    async def __aenter__(self) -> Producer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, records: Iterable[KafkaRecord]) -> None:
        """Send them all, in order per partition, and wait until Kafka has every one."""
        futures = [
            await self._producer.send(self.settings.topic(topic), key=key, value=value)
            for topic, key, value in records
        ]
        await asyncio.gather(*futures)

    async def stream(self, records: list[KafkaRecord], per_second: float) -> None:
        """Send them at a steady rate (in tens), as a stream of events that lasts a while."""
        for start in range(0, len(records), 10):
            await self.send(records[start : start + 10])
            await asyncio.sleep(10 / per_second)


# --- what came out --------------------------------------------------------------------


@dataclass(frozen=True)
class Exits:
    """The ``workflow.exit.goal`` topic, per enrollment: the ids and how many records."""

    ids_by_enrollment: dict[str, set[str]]
    records_by_id: Counter[str]

    @classmethod
    async def read(cls, settings: Settings) -> Exits:
        ids_by_enrollment: dict[str, set[str]] = {}
        records_by_id: Counter[str] = Counter()
        for record in await read_topic(settings, Topic.EXIT_GOAL, timeout=10):
            enrollment = record["data"]["workflow_enrollment_id"]
            ids_by_enrollment.setdefault(enrollment, set()).add(record["id"])
            records_by_id[record["id"]] += 1
        return cls(ids_by_enrollment, records_by_id)

    def __repr__(self) -> str:  # the failure message of an ``eventually``: short
        return f"Exits({len(self.ids_by_enrollment)} enrollments, {self.records} records)"

    @property
    def records(self) -> int:
        return sum(self.records_by_id.values())

    @property
    def duplicates(self) -> int:
        """Records beyond the first of each id: re-publications after a redelivery."""
        return self.records - len(self.records_by_id)

    def count(self, enrollment_ids: Iterable[str]) -> int:
        return sum(1 for e in enrollment_ids if e in self.ids_by_enrollment)


#: What the workers' group consumes in these tests (the other source topics stay empty).
CONSUMED = (Topic.ENROLLMENT_STARTED, Topic.ENROLLMENT_ENDED, Topic.TAG_ADDED, Topic.CONTACT_EVENTS)


async def uncommitted(settings: Settings, topics: Iterable[Topic] = CONSUMED) -> dict[str, int]:
    """Per topic, the records the workers' group has not committed yet (its lag)."""
    names = [settings.topic(t) for t in topics]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.worker_id)
        end = await consumer.end_offsets(await topic_partitions(settings, names))
    finally:
        await consumer.stop()
        await admin.close()
    lag = dict.fromkeys(names, 0)
    for tp, offset in end.items():
        done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
        lag[tp.topic] += offset - done
    return lag
