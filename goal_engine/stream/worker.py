"""The stream worker's named steps; :func:`.app.create_app` wires them to Faust.

At-least-once, in this order per batch of contact events (why: a crash between
two steps must never lose an exit; :mod:`.batch` says why batches):

1. evaluate each event against the state as stored, or as the batch in flight
   or this batch left it (:func:`.steps.evaluate_events`);
2. publish the outcomes (:meth:`Worker.process`) and, in the background, wait
   until Kafka has them all;
3. then write each touched contact's new state to the table, its changelog
   (:meth:`.batch.ContactBatch.write`), and acknowledge the batch's records;
4. Faust commits the source offsets later, after flushing the producer.

A crash before 3 re-evaluates the batch on redelivery and re-publishes the same
deterministic ids; a crash after 3 finds the work done. A record read outside
its contact's partition is only re-keyed (step 2), and evaluated when it comes
back on ``goal_engine.contact-events`` (see :class:`Routing`).

Why steps 2-3 run in the background: waiting for Kafka's acks took ~20 % of a
batch (~40 ms of ~200 ms for 1,000 goal events in ``bench --burst``), time in
which the next batch can be evaluated. One batch at most is in flight: the next
is evaluated over its states (``ContactBatch.previous``), published after it
(the producer keeps the order within each partition), and written after it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import faust
from faust.serializers import codecs
from faust.types import EventT, StoreT

from goal_engine.contract.topics import contact_key
from goal_engine.core.config import Settings
from goal_engine.core.metrics import CONSUMER_LAG
from goal_engine.domain.evaluation import Clock
from goal_engine.stream import metrics, stored
from goal_engine.stream.batch import ChangelogRecord, ContactBatch
from goal_engine.stream.control import Control
from goal_engine.stream.expiry import ExpiryQueue
from goal_engine.stream.listeners import ListenerIndex
from goal_engine.stream.ownership import forget_other_partitions, reindex
from goal_engine.stream.routing import Routing
from goal_engine.stream.sending import BatchSender, Outgoing, Sent
from goal_engine.stream.steps import Evaluated, Rejected, SourceRecord, evaluate_events
from goal_engine.stream.topology import build_topology
from goal_engine.stream.workflow_configs import WorkflowConfigs

log = logging.getLogger(__name__)


#: Called with a batch's events once the batch is stored: they may be committed.
Done = Callable[[list[EventT]], None]


@dataclass(frozen=True)
class _InFlight:
    """A batch published, not yet stored: ``stored`` is steps 2-3 in the background."""

    batch: ContactBatch
    stored: asyncio.Future[None]


class Worker:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.index = ListenerIndex()
        self.expiry = ExpiryQueue()
        self.configs = WorkflowConfigs(settings, on_change=self.on_workflow_changed)
        self.topology = build_topology(app, settings, on_recover=self.on_recover)
        self.contacts = self.topology.contacts
        self.routing = Routing(app, self.topology, settings)
        self.sender = BatchSender(lambda: app.producer._ensure_producer())  # type: ignore[attr-defined]
        self._changelog = self.contacts.changelog_topic.get_topic_name()
        self._persists_offsets = not settings.table_store.startswith("memory:")  # memory's is a no-op
        self._output_names = {t: topic.get_topic_name() for t, topic in self.topology.outputs.items()}
        metrics.ARMED_LISTENERS.set_function(lambda: self.index.armed(self.configs))
        metrics.ACTIVE_ENROLLMENTS.set_function(self.index.active_enrollments)
        metrics.CONTACT_STATES.set_function(lambda: len(self.contacts))
        self._in_flight: _InFlight | None = None  # the batch published and not yet stored

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

    # -- evaluate: the steps of the module docstring ---------------------------------

    async def process(self, events: list[EventT], done: Done) -> None:
        """Steps 1 and 2 for this batch now; 3 once Kafka has its outcomes, then ``done(events)``.

        Returns when the batch before it is stored: at most one batch is in flight.
        """
        metrics.EVALUATE_BATCH.observe(len(events))
        previous = self._in_flight
        batch = ContactBatch(self.contacts.data, self.index, previous=previous.batch if previous else None)
        out = evaluate_events(  # 1
            batch, events, self.routing.expected_type, self.routing.at_home, self.configs.get, self.clock()
        )
        for rejected in out.rejected:
            self._log_dead_letter(*rejected)
        names = self._output_names
        outgoing = [Outgoing(names[r.topic], r.key, r.value) for r in batch.records]
        outgoing += [
            Outgoing(self.routing.contact_events, f.key, f.value, None, _ms(f.timestamp))
            for f in out.forwards
        ]
        sent = await self.sender.send(outgoing) if outgoing else []  # 2: behind the batch in flight
        if previous is not None:
            # Shielded: a worker stopping here still stores the batch before (its
            # outcomes are in Kafka); this one is read again after a restart.
            await asyncio.shield(previous.stored)
        stored = asyncio.ensure_future(self._store(batch, sent, out, events, done))
        stored.add_done_callback(_log_failure)
        self._in_flight = _InFlight(batch, stored)

    async def _store(
        self, batch: ContactBatch, sent: list[Sent], out: Evaluated, events: list[EventT], done: Done
    ) -> None:
        await asyncio.gather(*(s.ack for s in sent))  # 2: one wait for the whole batch
        await self._send_changelog(batch.write(self.clock()))  # 3
        count_batch_metrics(out)
        done(events)

    async def _send_changelog(self, records: list[ChangelogRecord]) -> None:
        """The table's changelog records, as Faust's table would send them (see :mod:`.batch`).

        Their acks are not awaited: Faust flushes the producer before it commits
        the offsets of the records that caused them. Each ack records the persisted
        offset, as Faust's table does (a rocksdb store recovers from there).
        """
        for record in records:
            self.expiry.schedule(record.key, record.expires_at)
        # The table's key serializer is JSON: keys come back from the changelog as str.
        sent = await self.sender.send(
            Outgoing(self._changelog, codecs.dumps("json", r.key), r.value, r.partition) for r in records
        )
        if self._persists_offsets:
            for s in sent:
                s.ack.add_done_callback(functools.partial(self._on_changelog_sent, s))

    def _on_changelog_sent(self, sent: Sent, _: object) -> None:
        if not sent.ack.cancelled() and sent.ack.exception() is None:
            tp = sent.ack.result().topic_partition
            cast(StoreT, self.contacts.data).set_persisted_offset(tp, sent.last_offset())

    def _log_dead_letter(self, msg: SourceRecord, verdict: Rejected) -> None:
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

    # -- control records: work that must happen in the contact's partition ------------

    async def send_controls(self, controls: Iterable[Control]) -> None:
        """Control records, as one batch with one wait for Kafka.

        A sweep after a bulk action, or a restart with a backlog of expiries,
        is thousands of them: sent one at a time through Faust's producer they
        took minutes of the event loop, in the middle of the live events.
        """
        topic = self.routing.contact_events
        outgoing = [
            Outgoing(topic, contact_key(c.tenant_id, c.contact_id).encode(), b"", headers=c.header())
            for c in controls
        ]
        if outgoing:
            await asyncio.gather(*(s.ack for s in await self.sender.send(outgoing)))

    async def on_workflow_changed(self, tenant_id: str, workflow_id: str) -> None:
        """Re-evaluate the kept events of the contacts waiting on this workflow."""
        contacts = (key[len(tenant_id) + 1 :] for key in self.index.waiting_for(tenant_id, workflow_id))
        await self.send_controls(Control("rescan", tenant_id, c, workflow_id) for c in contacts)

    async def sweep(self) -> None:
        """Ask each contact whose state has expired parts to forget them (R10: no leak)."""
        due = (stored.decode(self.contacts.data.get(key)) for key in self.expiry.pop_due(time.time()))
        await self.send_controls(Control("sweep", doc["tenant_id"], doc["contact_id"]) for doc in due if doc)

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


def _log_failure(stored: asyncio.Future[None]) -> None:
    # Raised again to the agent by the next batch; said here at once, in case none comes.
    if not stored.cancelled() and (exc := stored.exception()) is not None:
        log.error("storing a batch failed: its records stay unacknowledged", exc_info=exc)


def _ms(timestamp: float | None) -> int | None:
    return int(timestamp * 1000) if timestamp else None


def count_batch_metrics(out: Evaluated) -> None:
    """The batch's metrics, once per batch and label (off the per-record path)."""
    for event_type, n in out.consumed.items():
        metrics.EVENTS_CONSUMED.labels(event_type).inc(n)
    for goal_type, n in out.achieved.items():
        metrics.GOALS_ACHIEVED.labels(goal_type).inc(n)
    metrics.EXITS.inc(len(out.exit_appends))
    if out.kept_events_dropped:
        metrics.KEPT_EVENTS_DROPPED.inc(out.kept_events_dropped)
    for lag in out.event_lags:
        metrics.EVENT_TIME_LAG.observe(lag)
    now = time.time()
    for appended in out.exit_appends:
        metrics.EXIT_LATENCY.observe(max(0.0, now - appended))
