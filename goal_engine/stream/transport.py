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

Two more overrides are for speed, not correctness:

5. **One race per fetch, not per record.** Faust's fetcher hands each record to
   the conductor inside ``wait_first(callback(message), suspend_flow.wait())``,
   so that a rebalance can interrupt a delivery blocked on a full stream queue.
   That is four tasks and an ``asyncio.wait`` per record: ~53 us, an eighth of
   the worker's CPU per goal event. :meth:`_Consumer._drain_messages` races the
   delivery of a whole fetch against ``suspend_flow`` instead, with the same
   checks per record. A rebalance still interrupts it where it blocks, and an
   interrupted record is not marked read (Faust marked it read: one more way to
   skip a record, see 1).

6. **Busy partitions wait out a fetch of idle ones.** aiokafka keeps one fetch in
   flight per broker, and leaves out of it the partitions whose records the
   consumer has not taken yet. When every busy partition still has records
   waiting, the fetch asks only for idle ones (the worker reads 7 topics of 12
   partitions; a bulk tag fills one), and the broker holds it for the consumer's
   ``fetch_max_wait_ms``, which Faust sets to 1,500 ms. Meanwhile the busy
   partitions are not fetched at all. At 2,000 goal events/s that became a steady
   state (``bench --rate 2000``): the worker idle at ~40 % of a core, p50 1.25 s,
   every batch's records 1-1.6 s old when they arrived. Correction:
   :meth:`_ConsumerThread._create_worker_consumer` sets :data:`FETCH_MAX_WAIT_MS`
   (100 ms): p50 50-90 ms at the same rate. An idle worker sends ~10 empty fetches
   a second.

At least once: whatever is read twice is evaluated again, and its outcomes
carry the same deterministic ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

import aiokafka
import faust
from faust.transport.consumer import CONSUMER_FETCHING, RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.transports import TransportT
from mode import ServiceT

log = logging.getLogger(__name__)

#: The longest the broker holds a fetch with no new records (correction 6; Faust's: 1,500).
FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Correction 6: read by the fetcher, which the consumer creates when it starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

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

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Correction 5: Faust's fetch loop, one ``wait_first`` per fetch (see above).

        Otherwise Faust's own, step for step: stop when the consumer or the
        fetcher stops, skip records already read, record gaps, commit every
        ``broker_commit_every`` records (outside the race, so a rebalance never
        cancels a commit halfway), yield to the loop every 100 records.
        """
        consumer_should_stop, fetcher_should_stop = self._stopped.is_set, fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records = self.getmany(timeout=1.0)
                # Sometimes getmany returns at once, in a loop: let the loop run.
                await self.sleep(0)
                try:
                    # The fetch itself stays outside the race, as in Faust's loop; what is
                    # raced below only iterates records already in memory, and delivers them.
                    first = await anext(records, None) if not self.should_stop else None
                    more = first is not None
                    while more:
                        race = await self.wait_first(self._deliver(first, records), self.suspend_flow.wait())
                        if race.stopped or self.suspend_flow.is_set():
                            break  # stopped, or the flow suspended: the rest is read again
                        more = race.results[0]  # it stopped where a commit is due
                        if more:  # commit outside the race, then on with the rest of the fetch
                            self._n_acked = 0
                            await self.commit()
                            first = None
                finally:
                    await records.aclose()  # type: ignore[attr-defined]
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(
        self, first: tuple[TP, Message] | None, rest: AsyncIterator[tuple[TP, Message]]
    ) -> bool:
        """Hand records to the conductor until done (False) or a commit is due (True)."""
        if first is not None and await self._deliver_one(*first):
            return True
        async for tp, message in rest:
            if await self._deliver_one(tp, message):
                return True
        return False

    _since_yield = 0  # records delivered since the loop last ran

    async def _deliver_one(self, tp: TP, message: Message) -> bool:
        self._since_yield += 1
        if self._since_yield > 100:
            await asyncio.sleep(0)
            self._since_yield = 0
        offset, last_read = message.offset, self._read_offset[tp]
        if last_read is None or offset >= last_read:
            if offset - (last_read or 0) > 1 and last_read and self.app.topics.acks_enabled_for(tp.topic):
                await self._add_gap(tp, last_read + 1, offset)  # a gap in the offsets read
            await self.callback(message)
            self._read_offset[tp] = offset
        # else: read already (Faust logs it at its "dev" level)
        return self._commit_every is not None and self._n_acked >= self._commit_every

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
