"""Faust's Kafka consumer, corrected where it loses records around a rebalance.

Found by ``tests/integration/test_two_workers.py`` and the crash test (a worker
restarted with records waiting, faust-streaming#596): the group committed
offsets past records no agent ever saw. Three faults of faust-streaming 0.15.3
combine, and a fourth loses state in a broker failover; each correction below is
local to this module.

1. **Records dropped while the worker seeks** (faust-streaming#596). After a
   rebalance Faust's recovery resumes the stream partitions, *then* seeks them
   to the committed offsets (network round trips), *then* resumes flow control,
   which empties every stream's queue. Records fetched during the seek are
   dropped, but Faust has already counted them as read, so they are never
   fetched again. Correction: :meth:`_Consumer.perform_seek` stops the fetch
   loop and waits for a fetch in flight before it seeks, so the records read
   after that are the ones the seek asked for, and any dropped earlier are
   fetched again.
2. **Committing over a hole of one** (faust-streaming#606). Faust holds a commit
   back when the processed offsets do not start where the last commit ended,
   but only if more than one record is missing. Correction:
   :meth:`_Consumer._new_offset` holds it back for one too. A hole then stalls
   the partition's commits (its records are read again after a restart),
   instead of losing the record.
3. **No committed offset, no seek.** aiokafka's ``seek_to_committed`` seeks
   only where an offset above 0 is committed; elsewhere the fetch position stays
   after the dropped records. Correction: such a partition is read from its
   beginning, as ``consumer_auto_offset_reset="earliest"`` promises. (Reading
   committed offsets as empty, as aiokafka may right after a broker restart,
   ends the same way.)

4. **A topic without partitions in a failover's metadata** (found by `make chaos`,
   kill -9 of one of three brokers). While leaders move, a metadata response may
   list a topic with none of its partitions, and the consumer reports 0 of them.
   A table's first write checks that its changelog has as many partitions as its
   source topic; reading 0 it raised PartitionsMismatch after the batch's outcomes
   were published but before its state was stored, and the crashed agent's records
   were acknowledged: those enrollments were forgotten, their goals never exited.
   Correction: :meth:`_Consumer.topic_partitions` answers "not known" (None) for
   0, which the check takes as "cannot tell" rather than as a mismatch.

At least once: whatever is read twice is evaluated again, and its outcomes
carry the same deterministic ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import faust
from faust.transport.consumer import RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.transports import TransportT

log = logging.getLogger(__name__)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed_or_beginning)

    async def _seek_to_committed_or_beginning(self) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        committed: Mapping[TP, int] = await consumer.seek_to_committed()
        changelogs = self.app.tables.changelog_topics  # table recovery positions those itself
        uncommitted = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
        if uncommitted:
            log.info(
                "no committed offset: reading from the beginning",
                extra={"partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in uncommitted)},
            )
            # Not ``seek_to_beginning``: that waits for the fetch loop, up to a fetch's wait.
            for tp, offset in (await consumer.beginning_offsets(uncommitted)).items():
                consumer.seek(tp, offset)
        return committed


class _Consumer(faust_aiokafka.Consumer):
    _fetches_in_flight = 0
    _no_fetch_in_flight: asyncio.Event | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _fetch_idle(self) -> asyncio.Event:
        if self._no_fetch_in_flight is None:
            self._no_fetch_in_flight = asyncio.Event()
            self._no_fetch_in_flight.set()
        return self._no_fetch_in_flight

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> RecordMap:
        idle = self._fetch_idle()
        self._fetches_in_flight += 1
        idle.clear()
        try:
            return await super()._getmany(active_partitions, timeout)
        finally:
            self._fetches_in_flight -= 1
            if not self._fetches_in_flight:
                idle.set()

    async def perform_seek(self) -> None:
        """Correction 1: no record is read between here and the end of the seek.

        Every caller resumes the flow afterwards (recovery, once it has emptied
        the stream queues) or has stopped it itself (``getmany``).
        """
        self.stop_flow()
        # A batch fetched before the stop is dropped by ``getmany`` (it sees the
        # flow stopped) and fetched again from the position set below.
        await self._fetch_idle().wait()
        await super().perform_seek()

    def topic_partitions(self, topic: str) -> int | None:
        """Correction 4: no partitions in the metadata means unknown, not zero."""
        return super().topic_partitions(topic) or None

    def _new_offset(self, tp: TP) -> int | None:
        """Correction 2: never commit past a record that was not processed."""
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if acked and committed and min(acked) > committed:
            covered = any(gap.begin <= committed < gap.end for gap in self._gap[tp])
            if not covered:
                log.warning(
                    "holding back the commit: a record was not processed",
                    extra={"topic": tp.topic, "partition": tp.partition, "offset": committed},
                )
                return None
        return super()._new_offset(tp)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


#: How long a stopping worker waits for its tables' services (see ``App._stop_consumer``).
TABLES_STOP_TIMEOUT = 5.0


class App(faust.App):
    """``faust.App`` whose Kafka consumer carries the corrections above."""

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)

    async def _stop_consumer(self) -> None:
        """Faust's, with the tables' stop bounded.

        On SIGTERM, faust-streaming 0.15.3 stops the table manager and then
        waits, without a timeout, for every task of each table's service; the
        table's cleanup task is sometimes left cancelled but never run, so the
        worker hung there until killed (the supervisor's 20 s). Nothing waits
        on the tables' services after the agents have stopped: their writes are
        on the producer, which ``on_stop`` flushes next. So after
        :data:`TABLES_STOP_TIMEOUT` the shutdown goes on, the producer is
        flushed and the offsets committed, and the process exits.
        """
        consumer = self._consumer
        if consumer is None:
            return
        try:
            assignment = consumer.assignment()
        except faust.exceptions.ConsumerNotStarted:
            return
        if not assignment:
            return
        self.tables.on_partitions_revoked(assignment)
        consumer.stop_flow()
        self.flow_control.suspend()
        consumer.pause_partitions(assignment)
        self.flow_control.clear()
        await self._stop_fetcher()
        await self._consumer_wait_empty(consumer, self.log)
        try:
            await asyncio.wait_for(asyncio.shield(self.tables.stop()), TABLES_STOP_TIMEOUT)
        except TimeoutError:
            log.warning("tables did not stop within %.0f s; shutting down without them", TABLES_STOP_TIMEOUT)
