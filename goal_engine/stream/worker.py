"""The stream worker's named steps; :func:`.app.create_app` wires them to Faust.

At-least-once, in this order per batch of contact events (why: a crash between
two steps must never lose an exit; :mod:`.batch` says why batches):

1. evaluate each event against the state as stored, or as the batch left it
   (:func:`.steps.evaluate_events`);
2. publish the outcomes and wait until Kafka has them all (:meth:`Worker.publish`);
3. write each touched contact's new state to the table, its changelog
   (:meth:`.batch.ContactBatch.write`);
4. Faust commits the source offsets later, after flushing the producer.

A crash before 3 re-evaluates the batch on redelivery and re-publishes the same
deterministic ids; a crash after 3 finds the work done.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import faust
from faust.types import EventT

from goal_engine.contract.topics import contact_key
from goal_engine.core.config import Settings
from goal_engine.core.metrics import CONSUMER_LAG
from goal_engine.domain.evaluation import Clock
from goal_engine.stream import metrics, stored
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.control import Control
from goal_engine.stream.expiry import ExpiryQueue
from goal_engine.stream.listeners import ListenerIndex
from goal_engine.stream.ownership import forget_other_partitions, reindex
from goal_engine.stream.records import Record
from goal_engine.stream.steps import Rejected, evaluate_events, triage
from goal_engine.stream.topology import build_topology
from goal_engine.stream.workflow_configs import WorkflowConfigs

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.index = ListenerIndex()
        self.expiry = ExpiryQueue()
        self.configs = WorkflowConfigs(settings, on_change=self.on_workflow_changed)
        self.topology = build_topology(app, settings, on_recover=self.on_recover)
        self.contacts = self.topology.contacts
        self._prefix_len = len(settings.topic_prefix)
        metrics.ARMED_LISTENERS.set_function(lambda: self.index.armed(self.configs))
        metrics.ACTIVE_ENROLLMENTS.set_function(self.index.active_enrollments)
        metrics.CONTACT_STATES.set_function(lambda: len(self.contacts))

    def clock(self) -> Clock:
        s = self.settings
        return Clock(
            now=datetime.now(UTC),
            grace=timedelta(seconds=s.grace_seconds),
            ended_retention=timedelta(seconds=s.ended_retention_seconds),
            max_kept_events=s.max_kept_events,
            max_kept_bytes=s.max_kept_event_bytes,
        )

    def ready(self) -> None:
        """The configurations are loaded: goal events can be evaluated."""
        metrics.READY.set(1)

    # -- ingest: source topics -> contact events ---------------------------------

    async def ingest(self, event: EventT) -> None:
        """Validate one source record and re-key it ``tenant:contact``, or dead-letter it."""
        msg = event.message
        verdict = triage(msg, expected_type=msg.topic[self._prefix_len :])
        if isinstance(verdict, Rejected):
            metrics.DEAD_LETTERS.labels(verdict.code).inc()
            log.warning(
                "dead-lettered a record",
                extra={
                    "topic": msg.topic,
                    "partition": msg.partition,
                    "offset": msg.offset,
                    "reason": verdict.reason,
                },
            )
            await self.publish([verdict.dead_letter], wait=False)
            return
        metrics.EVENTS_CONSUMED.labels(verdict.event.type).inc()
        await self.topology.contact_events.send(
            key=verdict.key,
            value=msg.value,
            timestamp=msg.timestamp,  # carries the source append time for the latency metric
        )

    # -- evaluate: the steps of the module docstring ---------------------------------

    async def evaluate_batch(self, events: list[EventT]) -> None:
        metrics.EVALUATE_BATCH.observe(len(events))
        batch = ContactBatch(self.contacts, self.index)
        exit_appends = evaluate_events(batch, events, self.configs.get, self.clock())  # 1
        await self.publish(batch.records, wait=True)  # 2
        for key, expires_at in batch.write(self.clock()):  # 3
            self.expiry.schedule(key, expires_at)
        now = time.time()
        for appended in exit_appends:
            metrics.EXIT_LATENCY.observe(max(0.0, now - appended))

    async def publish(self, records: list[Record], wait: bool) -> None:
        outputs = self.topology.outputs
        futures = [await outputs[r.topic].send(key=r.key, value=r.value) for r in records]
        if wait:
            for future in futures:
                await future

    # -- control records: work that must happen in the contact's partition ------------

    async def send_control(self, control: Control) -> None:
        key = contact_key(control.tenant_id, control.contact_id).encode()
        await self.topology.contact_events.send(key=key, value=b"", headers=control.header())

    async def on_workflow_changed(self, tenant_id: str, workflow_id: str) -> None:
        """Re-evaluate the kept events of the contacts waiting on this workflow."""
        for key in self.index.waiting_for(tenant_id, workflow_id):
            contact_id = key[len(tenant_id) + 1 :]
            await self.send_control(Control("rescan", tenant_id, contact_id, workflow_id))

    async def sweep(self) -> None:
        """Ask each contact whose state has expired parts to forget them (R10: no leak)."""
        for key in self.expiry.pop_due(time.time()):
            if doc := stored.decode(self.contacts.get(key)):
                await self.send_control(Control("sweep", doc["tenant_id"], doc["contact_id"]))

    # -- rebalance and operations ----------------------------------------------------

    async def on_recover(self) -> None:
        """After each rebalance: forget what moved away, then index what is ours."""
        changelog = self.contacts.changelog_topic.get_topic_name()
        owned = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == changelog}
        contact_events = self.topology.contact_events.get_topic_name()
        forgotten = forget_other_partitions(
            self.contacts.data, owned, lambda key: self.app.consumer.key_partition(contact_events, key)
        )
        reindex(self.contacts.data, self.index, self.expiry)
        log.info(
            "listener index rebuilt",
            extra={"active_enrollments": self.index.active_enrollments(), "forgotten_contacts": forgotten},
        )

    async def report_lag(self) -> None:
        """Consumer lag per partition this worker reads (source topics, contact events, changelog)."""
        consumer = self.app.consumer
        for tp in consumer.assignment():
            highwater, position = consumer.highwater(tp), await consumer.position(tp)
            if highwater is not None and position is not None:
                CONSUMER_LAG.labels("worker", tp.topic, str(tp.partition)).set(max(0, highwater - position))
