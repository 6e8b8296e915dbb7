"""The read routes' answers, kept exact: each with the database snapshot it was read at.

``pg_current_snapshot()`` names the set of committed transactions (the next transaction
id and the ones still in progress): its text changes whenever any writing transaction
ends, whoever wrote — the projector's batch (its tracking row commits with its read
models), ``projections rebuild``, retention, the configuration store. A request that
reads the same snapshot text as a kept answer therefore sees the database that answer
was computed from, and gets it as bytes: one statement that reads no table, instead of
the route's reads, its model and its JSON. Any other snapshot is a miss.

An answer is kept under the snapshot text its read's first statement returns with its
rows (that statement's own snapshot), so it is never older than the text it is kept
under, and a miss costs no statement more than the read. Answers that depend on the
clock (a window whose ``to`` is now) and errors are never kept, but such a window's
whole days and hours are (``analytics.Rollups``): their read tests the kept snapshot in
its own statement and then reads only the partial hours. Keys always hold the caller's tenant.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import Response
from prometheus_client import Counter

SNAPSHOT_SQL = "SELECT pg_current_snapshot()::text"

LOOKUPS = Counter(
    "goal_engine_api_read_cache_total",
    "Read-route answers by where they came from: hit (kept, same snapshot), miss (read and kept), "
    "uncached (never kept: the answer depends on the clock, or the cache is off); route "
    "window-rollups: the whole days and hours of windows up to now, hit (kept: only the "
    "partial hours read) or miss (read and kept)",
    ["route", "result"],
)


#: A route's read: its answer as JSON bytes, and the snapshot text its first statement read at.
Read = Callable[[], Awaitable[tuple[bytes, str]]]


class ReadCache:
    """At most ``max_bytes`` of answers (and of a window's rollups: :meth:`kept`), the least
    recently used dropped first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[str, Any, int]] = OrderedDict()  # snapshot, value, bytes
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    async def answer(self, pool: asyncpg.Pool, route: str, key: Hashable, read: Read) -> bytes:
        """The kept answer of ``key`` if the database is as it was read at, else ``read()``'s.

        ``read`` gives the answer and the snapshot text its first statement read at (in
        the same statement: a miss costs no statement of its own), and the answer is
        kept under that text. With nothing kept for ``key``, it is read at once.
        """
        if not self.enabled:
            body, _ = await read()
            LOOKUPS.labels(route, "uncached").inc()
            return body
        if (kept := self._entries.get(key)) is not None:
            snapshot: str = await pool.fetchval(SNAPSHOT_SQL)
            if kept[0] == snapshot and key in self._entries:  # not dropped meanwhile
                self._entries.move_to_end(key)
                LOOKUPS.labels(route, "hit").inc()
                answer: bytes = kept[1]
                return answer
        body, snapshot = await read()  # raises for an error answer: nothing is kept
        LOOKUPS.labels(route, "miss").inc()
        self.keep(key, snapshot, body, len(body))
        return body

    def kept(self, key: Hashable) -> Any:
        """The value kept under ``key`` whatever its snapshot (None: nothing), for a caller
        that checks the snapshot in its own read (a window's rollups: ``reads.py``)."""
        if (kept := self._entries.get(key)) is None:
            return None
        self._entries.move_to_end(key)
        return kept[1]

    def keep(self, key: Hashable, snapshot: str, value: Any, size: int) -> None:
        """Keep ``value`` (about ``size`` bytes) under ``key``, as read at ``snapshot``."""
        if size > self.max_bytes:
            return
        if (old := self._entries.pop(key, None)) is not None:
            self._bytes -= old[2]
        self._entries[key] = (snapshot, value, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped


# The keys of the cached routes (reads.py, for the routes and their fast path: fastpath.py).
def stats_key(
    tenant: str, workflow_id: str, start: datetime | None, end: datetime | None, interval: str | None
) -> Hashable:
    return ("stats", tenant, workflow_id, start, end, interval)


def window_rollups_key(tenant: str, workflow_id: str, rollups: tuple[object, ...]) -> Hashable:
    """A window up to now's rollups (``analytics.rollups_key``: its interval and spans)."""
    return ("window-rollups", tenant, workflow_id, *rollups)


def tenant_stats_key(tenant: str) -> Hashable:
    return ("tenant-stats", tenant)


def achievements_key(
    tenant: str, workflow_id: str, limit: int, position: tuple[datetime, str] | None
) -> Hashable:
    return ("achievements", tenant, workflow_id, limit, position)


def json_response(body: bytes) -> Response:
    """``body`` as it is: already the route's response model as JSON (FastAPI would validate
    and encode a returned model a second time)."""
    return Response(body, media_type="application/json")
