"""A read's figures added up (:class:`Tally`), and a window's rollups kept compact (:class:`Rollups`).

The statements of ``analytics.py`` answer rows of one shape; a tally adds them up, by
series bucket and by histogram bin, and ``analytics`` makes the answer from it. Plain
Python: no I/O here.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.histogram import bin_of

#: The rows of a window's partial hours (analytics.WINDOW_SQL): row by row, not rollups.
PARTIAL_KINDS = frozenset("exg")


def bucket_of(t: datetime, interval: str) -> datetime:
    """The start of the UTC hour, day or ISO week (Monday) that contains ``t``."""
    hour = t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if interval == "hour":
        return hour
    day = hour.replace(hour=0)
    return day if interval == "day" else day - timedelta(days=day.weekday())


@dataclass
class Tally:
    """The figures of a window (or all time) as the rows of analytics' statements give them."""

    known: bool = False
    snapshot: str = ""  # what the statement read at
    activity: dict[datetime | None, list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0.0])
    )  # series bucket -> [enrolled, achieved, timed exits, seconds]
    by_type: dict[tuple[datetime | None, str], int] = field(default_factory=lambda: defaultdict(int))
    exit_bins: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # goal type -> bin -> achievements, and -> their seconds
    type_counts: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    type_seconds: dict[str, dict[int, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )

    def add_rollups(self, rows: Iterable[Sequence[Any]]) -> None:
        for kind, start, goal_type, n1, n2, n3, f1, bins, counts, seconds in rows:
            match kind:
                case "k":
                    self.known, self.snapshot = bool(n1), goal_type
                case "a":
                    a = self.activity[start]
                    a[0] += n1
                    a[1] += n2
                    a[2] += n3
                    a[3] += f1
                case "t":
                    self.by_type[(start, goal_type)] += n1
                case "h" if bins is not None:
                    _add(self.exit_bins, bins, counts)
                case "y":
                    _add(self.type_counts[goal_type], bins, counts)
                    _add(self.type_seconds[goal_type], bins, seconds)

    def add_rows(self, rows: Iterable[Sequence[Any]], interval: str | None) -> None:
        """The partial hours' rows (PARTIAL_KINDS), each counted in its series bucket."""
        for row in rows:
            kind, at, goal_type, seconds = row[0], row[1], row[2], row[6]
            start = bucket_of(at, interval) if interval else None
            match kind:
                case "e":
                    self.activity[start][0] += 1
                case "x":
                    a = self.activity[start]
                    a[1] += 1
                    if seconds is not None:
                        a[2] += 1
                        a[3] += seconds
                        self.exit_bins[bin_of(seconds)] += 1
                case "g":
                    self.by_type[(start, goal_type)] += 1
                    if seconds is not None:
                        b = bin_of(seconds)
                        self.type_counts[goal_type][b] += 1
                        self.type_seconds[goal_type][b] += seconds


def _add(into: dict[int, Any], bins: list[int], values: list[Any]) -> None:
    """Add a histogram's arrays to ``into`` (a defaultdict): by C code when it is empty (the
    first row of each histogram: its bins are unique, the tables' keys or GROUP BY bin),
    bin by bin otherwise (a window's other days)."""
    if not into:
        into.update(zip(bins, values, strict=True))
        return
    for b, v in zip(bins, values, strict=True):
        into[b] += v


#: A histogram kept: its bins, and for each bin its count (and for a goal type its seconds).
Packed = tuple["array[int]", "array[int]"]


def _pack(histogram: dict[int, int]) -> Packed:
    return array("i", histogram), array("q", histogram.values())


@dataclass(frozen=True)
class Rollups:
    """A window's figures from the rollups alone (its whole days and whole hours, without
    its partial hours), as a read at ``snapshot`` found them.

    A window up to now moves with the clock, but its whole days and hours change only at
    an hour's end: the API keeps them (``api/reads.py``) under ``analytics.rollups_key``,
    and a read given them back reads only the partial hours while the database is still
    at their snapshot (``analytics.WINDOW_SQL`` tests it, ``$14``). The histograms are
    kept as arrays: ~20 KB for a 30-day window of ~1,400 bins at 10M achievements, where
    the dicts of a tally take about five times that (and more objects for the collector).
    """

    known: bool
    snapshot: str
    activity: tuple[tuple[datetime | None, tuple[float, ...]], ...]
    by_type: tuple[tuple[tuple[datetime | None, str], int], ...]
    exit_bins: Packed
    type_bins: tuple[tuple[str, Packed, array[float]], ...]  # goal type, bins and counts, seconds

    @classmethod
    def of(cls, tally: Tally) -> Rollups:
        return cls(
            tally.known,
            tally.snapshot,
            tuple((start, tuple(a)) for start, a in tally.activity.items()),
            tuple(tally.by_type.items()),
            _pack(tally.exit_bins),
            tuple(
                (goal_type, _pack(counts), array("d", map(tally.type_seconds[goal_type].__getitem__, counts)))
                for goal_type, counts in tally.type_counts.items()
            ),
        )

    def tally(self) -> Tally:
        """A new tally of these figures (to add the partial hours to)."""
        out = Tally(self.known, self.snapshot)
        out.activity.update((start, list(a)) for start, a in self.activity)
        out.by_type.update(self.by_type)
        out.exit_bins.update(zip(*self.exit_bins, strict=True))
        for goal_type, (bins, counts), seconds in self.type_bins:
            out.type_counts[goal_type].update(zip(bins, counts, strict=True))
            out.type_seconds[goal_type].update(zip(bins, seconds, strict=True))
        return out

    def size(self) -> int:
        """About how many bytes it holds (the read cache's measure)."""
        arrays: list[array[Any]] = [*self.exit_bins]
        for _, packed, seconds in self.type_bins:
            arrays += [*packed, seconds]
        # A bucket's figures and a (bucket, goal type) count: ~200 bytes of objects each.
        return 200 * (len(self.activity) + len(self.by_type)) + sum(64 + a.itemsize * len(a) for a in arrays)
