"""The Faust stream worker: topics, the contact table and the agents.

Flow (each arrow one module)::

    5 source topics + enrollment topics
        --ingest-->  goal_engine.contact-events   (validated, keyed tenant:contact)
        --evaluate-> workflow.goal.achieved, workflow.exit.goal

``ingest`` re-keys every record ``{tenantid}:{subject}`` so the engine is
correct whatever key a producer used, and dead-letters what it cannot accept.
``evaluate`` owns a partition of the ``contacts`` table (one
:class:`~goal_engine.domain.evaluation.ContactState` per tenant and contact)
and calls the pure domain; this module only moves bytes. Control records
(:mod:`.control`) bring configuration changes and expiry into the contact's
partition, the only place its state may be written.

At-least-once, in this order per batch of events (why: a crash between two
steps must never lose an exit; :mod:`.batch` says why batches):
1. evaluate each event against the state as stored (or as the batch left it);
2. publish the outcomes and wait until Kafka has them all;
3. write each touched contact's new state to the table (its changelog);
4. Faust commits the source offsets later, after flushing the producer.
A crash before 3 re-evaluates the batch on redelivery and re-publishes the same
deterministic ids; a crash after 3 finds the work done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
from faust.types import EventT, TableT

from goal_engine.contract.events import CloudEvent, InvalidEvent, parse_event
from goal_engine.contract.topics import CONTACT_SCOPED_TOPICS, Topic, contact_key
from goal_engine.core.config import Settings
from goal_engine.core.metrics import CONSUMER_LAG
from goal_engine.domain.evaluation import Clock, ContactState, Outcome
from goal_engine.domain.workflow import WorkflowConfig
from goal_engine.stream import metrics, stored, transport
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.control import Control, read_control
from goal_engine.stream.expiry import ExpiryQueue
from goal_engine.stream.listeners import ListenerIndex
from goal_engine.stream.records import Record, dead_letter_record
from goal_engine.stream.workflow_configs import WorkflowConfigs

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    app = transport.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.table_store,
        datadir=str(settings.state_dir),
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        processing_guarantee="at_least_once",
        table_standby_replicas=0,
        # A killed worker is noticed only when its session expires: until then its
        # partitions wait, even for the same worker restarted.
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_seconds / 3),
    )
    index = ListenerIndex()
    expiry = ExpiryQueue()
    prefix_len = len(settings.topic_prefix)

    def clock() -> Clock:
        return Clock(
            now=datetime.now(UTC),
            grace=timedelta(seconds=settings.grace_seconds),
            ended_retention=timedelta(seconds=settings.ended_retention_seconds),
        )

    def raw_topic(topic: Topic, **kw: Any) -> faust.TopicT:
        return app.topic(settings.topic(topic), key_serializer="raw", value_serializer="raw", **kw)

    sources = app.topic(
        *(settings.topic(t) for t in CONTACT_SCOPED_TOPICS), key_serializer="raw", value_serializer="raw"
    )
    contact_events = raw_topic(Topic.CONTACT_EVENTS, partitions=settings.partitions)
    outputs = {t: raw_topic(t) for t in (Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL, Topic.DEAD_LETTER)}

    async def send_control(control: Control) -> None:
        key = contact_key(control.tenant_id, control.contact_id).encode()
        await contact_events.send(key=key, value=b"", headers=control.header())

    async def on_workflow_changed(tenant_id: str, workflow_id: str) -> None:
        for key in index.waiting_for(tenant_id, workflow_id):
            contact_id = key[len(tenant_id) + 1 :]
            await send_control(Control("rescan", tenant_id, contact_id, workflow_id))

    configs = WorkflowConfigs(settings, on_change=on_workflow_changed)

    async def rebuild_index() -> None:
        """After each rebalance: forget what moved away, then index what is ours."""
        owned = {
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == contacts.changelog_topic.get_topic_name()
        }
        forgotten = _forget_other_partitions(
            contacts, owned, lambda key: app.consumer.key_partition(contact_events.get_topic_name(), key)
        )
        documents = [(key, doc) for key, value in list(contacts.items()) if (doc := stored.decode(value))]
        index.rebuild(
            (key, ContactState.from_json(doc["tenant_id"], doc["contact_id"], doc)) for key, doc in documents
        )
        expiry.rebuild((key, doc.get("expires_at")) for key, doc in documents)
        log.info(
            "listener index rebuilt",
            extra={"active_enrollments": index.active_enrollments(), "forgotten_contacts": forgotten},
        )

    contacts = app.Table(
        "contacts",
        default=None,
        partitions=settings.partitions,
        # Keys JSON: they come back from the changelog as the same str they went in as.
        # Values raw: each is a JSON document as bytes (see stored.py for why).
        # (Faust picks the changelog's serializer from value_type: bytes is "raw".)
        value_type=bytes,
        schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="json", value_serializer="raw"),
        on_recover=rebuild_index,
    )
    metrics.ARMED_LISTENERS.set_function(lambda: index.armed(configs))
    metrics.ACTIVE_ENROLLMENTS.set_function(index.active_enrollments)
    metrics.CONTACT_STATES.set_function(lambda: len(contacts))

    async def publish(records: list[Record], wait: bool) -> None:
        futures = [await outputs[r.topic].send(key=r.key, value=r.value) for r in records]
        if wait:
            for future in futures:
                await future

    async def evaluate_batch(events: list[EventT]) -> None:
        """The steps of the module docstring for one batch (see :mod:`.batch`)."""
        metrics.EVALUATE_BATCH.observe(len(events))
        batch = ContactBatch(contacts, index)
        exit_appends: list[float] = []
        for event in events:
            msg = event.message
            control = read_control(msg.headers)
            if control is not None:
                batch.apply(
                    event, control.tenant_id, control.contact_id, _controlled(control, configs, clock())
                )
                continue
            ce = parse_event(msg.value)  # validated by ingest: cannot fail here
            assert ce.subject is not None
            metrics.EVENT_TIME_LAG.observe(max(0.0, time.time() - ce.time.timestamp()))
            outcome = batch.apply(event, ce.tenantid, ce.subject, _handled(ce, configs, clock()))
            for a in outcome.achievements:
                metrics.GOALS_ACHIEVED.labels(a.goal.goal_type.value).inc()
            metrics.EXITS.inc(len(outcome.exits))
            exit_appends += [msg.timestamp] * len(outcome.exits)
        await publish(batch.records, wait=True)
        for key, expires_at in batch.write(clock()):
            expiry.schedule(key, expires_at)
        now = time.time()
        for appended in exit_appends:
            metrics.EXIT_LATENCY.observe(max(0.0, now - appended))

    @app.task
    async def follow_configs() -> None:
        await configs.run()

    @app.timer(interval=settings.sweep_interval_seconds)
    async def sweep() -> None:
        """Ask each contact whose state has expired parts to forget them (R10: no leak)."""
        for key in expiry.pop_due(time.time()):
            if doc := stored.decode(contacts.get(key)):
                await send_control(Control("sweep", doc["tenant_id"], doc["contact_id"]))

    @app.timer(interval=5.0)
    async def report_lag() -> None:
        """Consumer lag per partition this worker reads (source topics, contact events, changelog)."""
        consumer = app.consumer
        for tp in consumer.assignment():
            highwater, position = consumer.highwater(tp), await consumer.position(tp)
            if highwater is not None and position is not None:
                CONSUMER_LAG.labels("worker", tp.topic, str(tp.partition)).set(max(0, highwater - position))

    @app.agent(sources, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                ce = parse_event(msg.value, expected_type=msg.topic[prefix_len:])
            except InvalidEvent as exc:
                reason = exc.reason
                metrics.DEAD_LETTERS.labels(exc.code).inc()
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
        # take_events is on faust.Stream, not on the StreamT interface.
        async for events in cast(faust.Stream, stream).take_events(
            settings.evaluate_batch_size, within=settings.evaluate_batch_wait_seconds
        ):
            await evaluate_batch(list(events))

    return app


def _forget_other_partitions(
    table: TableT, owned: set[int], partition_of: Callable[[bytes], int | None]
) -> int:
    """Drop from this worker's store (never from the changelog) the contacts it no longer owns.

    Faust's memory store keeps what the worker wrote for a partition after the
    partition moves to another worker; left there, that stale copy would be
    swept, counted and offered rescans here, and would come back to life if the
    partition returned after its changelog had compacted the deletions away.
    A contact's partition is its key's on ``goal_engine.contact-events``, which
    the table is co-partitioned with (``partition_of``: None while unknown).
    """
    stale = [key for key in list(table.data.keys()) if partition_of(key.encode()) not in (None, *owned)]
    for key in stale:
        del table.data[key]  # the store only: the changelog belongs to the new owner
    return len(stale)


def _lookup(configs: WorkflowConfigs, tenant_id: str) -> Callable[[str], WorkflowConfig | None]:
    return lambda workflow_id: configs.get(tenant_id, workflow_id)


def _handled(event: CloudEvent, configs: WorkflowConfigs, clock: Clock) -> Callable[[ContactState], Outcome]:
    return lambda state: state.handle(event, _lookup(configs, event.tenantid), clock)


def _controlled(
    control: Control, configs: WorkflowConfigs, clock: Clock
) -> Callable[[ContactState], Outcome]:
    def apply(state: ContactState) -> Outcome:
        if control.op == "rescan" and control.workflow_id is not None:
            return state.on_workflow_changed(control.workflow_id, _lookup(configs, control.tenant_id), clock)
        state.prune(clock)
        return Outcome()

    return apply
