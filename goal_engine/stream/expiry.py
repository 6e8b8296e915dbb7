"""When each contact's state next has something to forget, without scanning the table.

The sweeper used to read every stored contact each interval (37 ms at 100,000
contacts, seconds at millions, all of it blocking the event loop). This queue
holds one due time per contact with an expiry, in a heap: the sweep pops only
what is due. Times superseded by a later write stay in the heap and are skipped
when popped, so a write costs O(log n) and no search.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class ExpiryQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}  # the current due time of each key

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: str, expires_at: float | None) -> None:
        """Record ``key``'s next expiry (None: nothing to forget, or the state is gone)."""
        if expires_at is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == expires_at:
            return
        self._due[key] = expires_at
        heapq.heappush(self._heap, (expires_at, key))

    def pop_due(self, now: float) -> list[str]:
        """Keys whose expiry has come, each once; they leave the queue until scheduled again."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            if self._due.get(key) == at:
                del self._due[key]
                due.append(key)
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._compact()
        return due

    def rebuild(self, items: Iterable[tuple[str, float | None]]) -> None:
        self._due = {key: at for key, at in items if at is not None}
        self._compact()

    def _compact(self) -> None:
        """Drop superseded entries, so the heap stays proportional to the keys."""
        self._heap = [(at, key) for key, at in self._due.items()]
        heapq.heapify(self._heap)
