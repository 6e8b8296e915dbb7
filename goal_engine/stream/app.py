"""The Faust stream worker: topics, the contact table and the two agents.

Flow (each arrow one module)::

    5 source topics + enrollment topics
        --ingest-->  goal_engine.contact-events   (validated, keyed tenant:contact)
        --evaluate-> workflow.goal.achieved, workflow.exit.goal

``ingest`` re-keys every record ``{tenantid}:{subject}`` so the engine is
correct whatever key a producer used, and dead-letters what it cannot accept.
``evaluate`` owns a partition of the ``contacts`` table (one
:class:`~goal_engine.domain.evaluation.ContactState` per tenant and contact)
and calls the pure domain; this module only moves bytes.

At-least-once, in this order per event (why: a crash between two steps must
never lose an exit):
1. evaluate against the state as stored;
2. publish the outcome and wait until Kafka has it;
3. write the new state to the table (its changelog);
4. Faust commits the source offset later, after flushing the producer.
A crash before 3 re-evaluates the event on redelivery and re-publishes the same
deterministic ids; a crash after 3 finds the work done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from goal_engine.contract.events import InvalidEvent, parse_event
from goal_engine.contract.topics import CONTACT_SCOPED_TOPICS, Topic, contact_key
from goal_engine.core.config import Settings
from goal_engine.domain.evaluation import ContactState
from goal_engine.stream import metrics
from goal_engine.stream.records import Record, dead_letter_record, outcome_records
from goal_engine.stream.workflow_configs import WorkflowConfigs

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.table_store,
        datadir=str(settings.state_dir),
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        processing_guarantee="at_least_once",
        table_standby_replicas=0,
    )
    configs = WorkflowConfigs(settings)
    grace = timedelta(seconds=settings.grace_seconds)
    prefix_len = len(settings.topic_prefix)

    def raw_topic(topic: Topic, **kw: Any) -> faust.TopicT:
        return app.topic(settings.topic(topic), key_serializer="raw", value_serializer="raw", **kw)

    sources = app.topic(
        *(settings.topic(t) for t in CONTACT_SCOPED_TOPICS), key_serializer="raw", value_serializer="raw"
    )
    contact_events = raw_topic(Topic.CONTACT_EVENTS, partitions=settings.partitions)
    outputs = {t: raw_topic(t) for t in (Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL, Topic.DEAD_LETTER)}
    contacts = app.Table(
        "contacts",
        default=None,
        partitions=settings.partitions,
        # JSON both ways: keys come back from the changelog as the same str they went in as.
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
    )

    async def publish(records: list[Record], wait: bool) -> None:
        futures = [await outputs[r.topic].send(key=r.key, value=r.value) for r in records]
        if wait:
            await asyncio.gather(*futures)

    @app.task
    async def follow_configs() -> None:
        await configs.run()

    @app.agent(sources, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                ce = parse_event(msg.value, expected_type=msg.topic[prefix_len:])
            except InvalidEvent as exc:
                reason = exc.reason
                metrics.DEAD_LETTERS.labels(reason.split(":", 1)[0]).inc()
                log.warning(
                    "dead-lettered a record",
                    extra={
                        "topic": msg.topic,
                        "partition": msg.partition,
                        "offset": msg.offset,
                        "reason": reason,
                    },
                )
                record = dead_letter_record(reason, msg.topic, msg.partition, msg.offset, msg.key, msg.value)
                await publish([record], wait=False)
                continue
            metrics.EVENTS_CONSUMED.labels(ce.type).inc()
            assert ce.subject is not None  # parse_event guarantees it on contact-scoped types
            await contact_events.send(
                key=contact_key(ce.tenantid, ce.subject).encode(),
                value=msg.value,
                timestamp=msg.timestamp,  # carries the source append time for the latency metric
            )

    @app.agent(contact_events, name="evaluate")
    async def evaluate(stream: faust.StreamT) -> None:
        await configs.ready.wait()
        metrics.READY.set(1)
        async for event in stream.events():
            ce = parse_event(event.message.value)  # validated by ingest: cannot fail here
            assert ce.subject is not None
            key = contact_key(ce.tenantid, ce.subject)
            state = ContactState.from_json(ce.tenantid, ce.subject, contacts.get(key))
            before = len(state.active_enrollments)

            def lookup(workflow_id: str, tenant: str = ce.tenantid) -> Any:
                return configs.get(tenant, workflow_id)

            outcome = state.handle(ce, lookup, datetime.now(UTC), grace)
            if outcome.achievements or outcome.exits:
                await publish(outcome_records(ce.tenantid, ce.subject, outcome), wait=True)
                for a in outcome.achievements:
                    metrics.GOALS_ACHIEVED.labels(a.goal.goal_type.value).inc()
                if outcome.exits:
                    metrics.EXITS.inc(len(outcome.exits))
                    metrics.EXIT_LATENCY.observe(max(0.0, time.time() - event.message.timestamp))
            if state.is_empty:
                contacts.pop(key, None)
            else:
                contacts[key] = state.to_json()
            metrics.ACTIVE_ENROLLMENTS.inc(len(state.active_enrollments) - before)

    return app
