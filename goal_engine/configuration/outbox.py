"""The outbox relay: publishes configuration events to Kafka, in order, exactly as stored.

Steps of one round (the order is what makes it safe):
1. hold the relay advisory lock, so one relay runs per database whatever the
   number of API processes (per-workflow order needs a single publisher);
2. read the oldest unpublished rows, in id order;
3. send each and wait for Kafka's ack; stop at the first failure, so a later
   change never overtakes an earlier one;
4. mark the sent rows published.
A crash between 3 and 4 re-sends those rows: consumers are idempotent (every
configuration event carries a versioned snapshot and a stable id).
Kafka down: the API keeps accepting changes; the relay retries with backoff.
PostgreSQL down or restarted: the relay reconnects (and re-takes the lock) with
backoff; until a round succeeds again ``healthy`` is false and /readyz says 503.

Order across API processes: only the advisory lock's holder publishes, and each
workflow's changes are serialised by its row lock, so their outbox ids follow
their commit order. A relay that loses the lock (its connection died) may have
sent rows it could not mark; the next holder re-sends them first, in id order:
a duplicate of an older version, never a newer version ahead of an older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import Gauge

from goal_engine.core.config import Settings
from goal_engine.kafka.producer import make_producer

log = logging.getLogger(__name__)

# livesum: with several API processes (multiprocess mode) the holder's backlog, the others' 0.
OUTBOX_BACKLOG = Gauge(
    "goal_engine_outbox_backlog",
    "Configuration events not yet published to Kafka",
    multiprocess_mode="livesum",
)
_LOCK_ID = 0x60A1E  # advisory lock key of the relay
_MIN_BACKOFF, _MAX_BACKOFF = 0.1, 5.0

CHANNEL = "goal_engine_outbox"


class OutboxRelay:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self._settings = settings
        self._pool = pool
        self._wakeup = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self.connected = False
        #: The last round (or stand-by check) succeeded; with the task alive, what /readyz reports.
        self.healthy = False

    def wake(self, *_: object) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop``; any failure (Kafka, PostgreSQL, a restart of either) is retried."""
        backoff = _MIN_BACKOFF
        while not stop.is_set():
            try:
                await self._serve(stop)
            except Exception as exc:  # the lock connection itself failed: get a new one
                self.healthy = False
                log.warning("outbox relay lost its database connection; reconnecting",
                            extra={"error": repr(exc), "in_s": backoff})  # fmt: skip
                await self._close_producer()
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            else:
                backoff = _MIN_BACKOFF
        await self._close_producer()

    async def _serve(self, stop: asyncio.Event) -> None:
        """Rounds on one connection, which holds the advisory lock while this relay is the one."""
        backoff = _MIN_BACKOFF
        async with self._pool.acquire() as lock_conn:
            await lock_conn.add_listener(CHANNEL, self.wake)
            try:
                while not stop.is_set():
                    # Outside the try below: a dead connection ends _serve, and run reconnects.
                    if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID):
                        self.healthy = True  # standing by: another relay holds it
                        OUTBOX_BACKLOG.set(0)  # and reports the backlog: sum() over the APIs stays exact
                        await self._sleep(stop, 2.0)
                        continue
                    self._wakeup.clear()  # before reading: a NOTIFY during the round is kept
                    try:
                        sent = await self.relay_once()
                        self.healthy, backoff = True, _MIN_BACKOFF
                        if not sent:
                            await self._sleep(stop, 1.0)
                    except Exception as exc:  # Kafka or the database is down: retry, never die
                        self.healthy = False
                        log.warning(
                            "outbox relay failed; retrying", extra={"error": repr(exc), "in_s": backoff}
                        )
                        await self._close_producer()
                        await self._sleep(stop, backoff)
                        backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                with contextlib.suppress(Exception):
                    await lock_conn.execute("SELECT pg_advisory_unlock_all()")
                    await lock_conn.remove_listener(CHANNEL, self.wake)

    async def relay_once(self, limit: int = 500) -> int:
        """Publish the oldest unpublished rows; returns how many were sent."""
        # Counted, not the batch's length: the gauge shows the whole backlog, Kafka up or down.
        OUTBOX_BACKLOG.set(
            await self._pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        )
        rows = await self._pool.fetch(
            "SELECT id, topic, key, value FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1", limit
        )
        if not rows:
            return 0
        producer = await self._ensure_producer()
        sent: list[int] = []
        try:
            for row in rows:
                await producer.send_and_wait(
                    self._settings.topic(row["topic"]), value=bytes(row["value"]), key=row["key"].encode()
                )
                sent.append(row["id"])
        finally:
            if sent:
                await self._pool.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", sent
                )
                OUTBOX_BACKLOG.dec(len(sent))
        return len(sent)

    async def kafka_reachable(self) -> bool:
        try:
            await asyncio.wait_for(self._ensure_producer(), 3.0)
            return True
        except Exception:
            return False

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is None:
                producer = make_producer(self._settings, client_id="goal-engine-outbox")
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
                self.connected = True
            return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waits = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
