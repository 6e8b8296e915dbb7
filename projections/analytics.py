"""Goal analytics (R12) from the projector's rollups: never a scan of the whole log.

Without a window, totals are all time, from the all-time rollups (``workflow_stats``,
``workflow_goal_type_stats`` and the two ``*_time_to_goal_bins``): a few rows per
workflow, however long its history.

A window ``[from, to)`` may start and end at any instant (``to`` defaults to now). It
is counted exactly by cutting it into (:func:`segments`):

- whole days, from the daily rollups;
- the whole hours before the first and after the last whole day, from the hourly ones;
- the partial hours at both ends, from the rows themselves (``enrollments`` and the
  achievement log, which keep the seconds each was counted with), so the current
  hour counts up to ``to``.

A series has one bucket per interval (hour, day, ISO week; UTC) that meets the window,
zeros included, each counting only its part inside the window. Percentiles of time to
goal come from log-spaced histograms, within :data:`projections.histogram.RELATIVE_ERROR`;
averages from exact sums. Per goal type, time to goal runs from the enrollment to that
goal's achievement (in an ``all`` workflow, each goal's own moment).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg

from projections.histogram import RELATIVE_ERROR, histogram_percentiles
from projections.tally import PARTIAL_KINDS, Rollups, Tally, bucket_of

Interval = Literal["hour", "day", "week"]
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
MAX_SERIES_BUCKETS = 10_000
#: A window without ``from`` starts here (before anything a time check lets in).
BEGINNING = datetime(1, 1, 1, tzinfo=UTC)

_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
_STEP = {"hour": _HOUR, "day": _DAY, "week": timedelta(days=7)}


class SeriesTooLong(ValueError):
    """The series asked for would have more than MAX_SERIES_BUCKETS buckets."""


@dataclass(frozen=True)
class Window:
    start: datetime | None = None  # inclusive, any instant; None: from the beginning
    end: datetime | None = None  # exclusive, any instant; None: now
    interval: Interval | None = None  # when set, the answer has a series

    @property
    def all_time(self) -> bool:
        return self.start is None and self.end is None and self.interval is None


def rollups_key(window: Window, now: datetime) -> tuple[object, ...]:
    """What a window's :class:`Rollups` depend on besides the database: its interval and
    the spans of its whole days and hours (the same for every ``now`` of the same hour)."""
    cut = segments(window.start or BEGINNING, window.end or now, window.interval)
    return (window.interval, *(t for span in (cut.days, *cut.hours) for t in span))


def _ceil(t: datetime, unit: str) -> datetime:
    start = bucket_of(t, unit)
    return start if start == t else start + _STEP[unit]


Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class Segments:
    """A window cut into what each source answers exactly; empty spans are (t, t)."""

    days: Span  # whole days: the daily rollups
    hours: tuple[Span, Span]  # whole hours outside the whole days: the hourly rollups
    partial: tuple[Span, Span]  # partial hours at the ends: the rows

    @property
    def has_partial(self) -> bool:
        return any(a < b for a, b in self.partial)


def segments(start: datetime, end: datetime, interval: str | None) -> Segments:
    first_hour, last_hour = _ceil(start, "hour"), bucket_of(end, "hour")
    if first_hour >= last_hour:  # no whole hour inside
        return Segments((start, start), ((start, start),) * 2, ((start, end), (end, end)))
    partial = ((start, first_hour), (last_hour, end))
    first_day, last_day = _ceil(first_hour, "day"), bucket_of(last_hour, "day")
    if interval == "hour" or first_day >= last_day:
        return Segments((start, start), ((first_hour, last_hour), (end, end)), partial)
    return Segments((first_day, last_day), ((first_hour, first_day), (last_day, last_hour)), partial)


# Every read answers rows of one shape: (kind, start, goal_type, n1, n2, n3, f1, bins, counts,
# seconds), where kind says what the figures are:
#   k  n1 = 1 if the tenant has the workflow; goal_type the snapshot the statement read at
#      (pg_current_snapshot(): the read cache keeps the answer under it, cache.py)
#   a  activity: n1 enrolled, n2 achieved (exits), n3 timed exits, f1 their seconds
#   t  achievements of goal_type: n1
#   h  the exits' time-to-goal histogram: counts[i] exits in bin bins[i]
#   y  goal_type's: counts[i] achievements in bin bins[i], seconds[i] their seconds
# and start is the series bucket (NULL without a series). A histogram comes as arrays, not a
# row per bin (a workflow's histograms have hundreds of bins): one row of all time, or in a
# window one per whole day and one for the whole hours, added up by Tally.
_KNOWN = """
SELECT 'k'::text AS kind, NULL::timestamptz AS start, pg_current_snapshot()::text AS goal_type,
       (EXISTS (SELECT 1 FROM workflows WHERE tenant_id = $1 AND workflow_id = $2)
        OR EXISTS (SELECT 1 FROM workflow_stats WHERE tenant_id = $1 AND workflow_id = $2))::int::bigint
           AS n1,
       NULL::bigint AS n2, NULL::bigint AS n3, NULL::float8 AS f1,
       NULL::int[] AS bins, NULL::bigint[] AS counts, NULL::float8[] AS seconds
"""
_NO_FIGURES = "NULL, NULL, NULL, NULL"
_NO_ARRAYS = "NULL, NULL, NULL"

ALL_TIME_SQL = f"""
{_KNOWN}
UNION ALL
SELECT 'a', NULL, NULL, total_enrolled, goals_achieved, timed_exits, time_to_goal_seconds, {_NO_ARRAYS}
FROM workflow_stats WHERE tenant_id = $1 AND workflow_id = $2
UNION ALL
SELECT 't', NULL, goal_type, achieved, NULL, NULL, NULL, {_NO_ARRAYS}
FROM workflow_goal_type_stats WHERE tenant_id = $1 AND workflow_id = $2
UNION ALL
SELECT 'h', NULL, NULL, {_NO_FIGURES}, array_agg(bin), array_agg(exits), NULL
FROM workflow_time_to_goal_bins WHERE tenant_id = $1 AND workflow_id = $2
UNION ALL
SELECT 'y', NULL, goal_type, {_NO_FIGURES}, array_agg(bin), array_agg(achievements), array_agg(seconds)
FROM workflow_goal_type_time_to_goal_bins WHERE tenant_id = $1 AND workflow_id = $2 GROUP BY goal_type
"""


def _span(table: str, columns: str, lo: int, hi: int, at: str = "bucket", condition: str = "") -> str:
    """The rows of ``table`` (a rollup, or a log) whose ``at`` is in the span ``$lo``-``$hi``
    of the window's parameters (and ``condition``).

    The span is first checked on its own (``$lo < $hi``: no column in it, so PostgreSQL
    tests it once, before the scan, even in the generic plan the read pool uses). An
    empty span then reads no index at all: a window of whole days used to descend the
    four big hourly indexes twice each for nothing, a random page of each that is
    seldom cached (at 10M achievements, most of the window's reads from disk).
    """
    return (
        f"SELECT {columns} FROM {table} WHERE ${lo}::timestamptz < ${hi}::timestamptz"
        f" AND tenant_id = $1 AND workflow_id = $2{condition} AND {at} >= ${lo} AND {at} < ${hi}"
    )


#: A rollup's branch of WINDOW_SQL reads nothing when the database is as it was when the
#: rollups kept for this window were read ($14: their snapshot text; NULL when none is
#: kept). Like an empty span, it is tested once, before any scan (no column in it).
_CHANGED = " AND pg_current_snapshot()::text IS DISTINCT FROM $14::text"


def _rollup(table: str, columns: str, lo: int, hi: int) -> str:
    return _span(table, columns, lo, hi, condition=_CHANGED)


def _whole_hours(hourly: str, columns: str) -> str:
    """The rows of an hourly rollup in the window's whole hours ($6-$7 and $8-$9)."""
    return f"{_rollup(hourly, columns, 6, 7)} UNION ALL {_rollup(hourly, columns, 8, 9)}"


def _in_window(hourly: str, daily: str, columns: str) -> str:
    """The rows of one rollup in a window's whole days ($4-$5) and whole hours."""
    columns = f"bucket, {columns}"
    return f"({_rollup(daily, columns, 4, 5)} UNION ALL {_whole_hours(hourly, columns)}) AS r"


#: The hourly rollups a window reads for the whole hours at its ends (WINDOW_SQL below):
#: a window up to now reads them for today's hours and the hours at its start.
HOURLY_ROLLUPS = (
    "workflow_activity_hourly",
    "workflow_goal_type_hourly",
    "workflow_time_to_goal_histogram",
    "workflow_goal_type_time_to_goal_histogram",
)

# The partial hours ($10-$11 and $12-$13), row by row, as rows of kind e (an enrollment
# started), x (an exit on a goal) or g (an achievement), with start the instant (bucketed
# by Tally.add_rows) and f1 the time to goal. One branch per span, not an OR of both: each
# is then a plain range of its index, read index-only (migration 0010) where an OR would be
# a bitmap scan, which always visits the table; and an empty span is skipped before any read.
PARTIAL_SOURCES = (  # (columns, table, condition, its time column)
    (f"'e', enrolled_at, NULL, {_NO_FIGURES}, {_NO_ARRAYS}",
     "enrollments", " AND start_seen", "enrolled_at"),
    (f"'x', ended_at, NULL, NULL, NULL, NULL, time_to_goal_seconds, {_NO_ARRAYS}",
     "enrollments", " AND status = 'completed_goal'", "ended_at"),
    (f"'g', achieved_at, goal_type, NULL, NULL, NULL, time_to_goal_seconds, {_NO_ARRAYS}",
     "workflow_goal_achievements", "", "achieved_at"),
)  # fmt: skip
_PARTIAL = "\nUNION ALL\n".join(
    _span(table, columns, lo, hi, at, condition)
    for columns, table, condition, at in PARTIAL_SOURCES
    for lo, hi in ((10, 11), (12, 13))
)

# One statement, so one snapshot, for the whole window: its rollups and its partial hours.
# The series bucket is date_trunc($3: the interval, or NULL for none). A histogram comes
# as one row per whole day, its arrays as the daily rollup keeps them, and one row of the
# whole hours' bins summed: the API adds them up (Tally). Summed here instead (unnest,
# then GROUP BY bin), a 30-day window cost PostgreSQL ~1.1 ms more CPU than it costs
# Python to add ~750 bins per histogram.
WINDOW_SQL = f"""
{_KNOWN}
UNION ALL
SELECT 'a', date_trunc($3, bucket, 'UTC'), NULL, sum(enrolled)::bigint, sum(achieved)::bigint,
       sum(timed_exits)::bigint, sum(time_to_goal_seconds), {_NO_ARRAYS}
FROM {
    _in_window(
        "workflow_activity_hourly",
        "workflow_activity_daily",
        "enrolled, achieved, timed_exits, time_to_goal_seconds",
    )
}
GROUP BY 2
UNION ALL
SELECT 't', date_trunc($3, bucket, 'UTC'), goal_type, sum(achieved)::bigint, NULL, NULL, NULL, {_NO_ARRAYS}
FROM {_in_window("workflow_goal_type_hourly", "workflow_goal_type_daily", "goal_type, achieved")}
GROUP BY 2, 3
UNION ALL
{_rollup("workflow_time_to_goal_histogram_daily", f"'h', NULL, NULL, {_NO_FIGURES}, bins, exits, NULL", 4, 5)}
UNION ALL
SELECT 'h', NULL, NULL, {_NO_FIGURES}, array_agg(bin), array_agg(n), NULL FROM (
    SELECT bin, sum(exits)::bigint AS n
    FROM ({_whole_hours("workflow_time_to_goal_histogram", "bin, exits")}) AS r
    GROUP BY bin
) AS b
UNION ALL
{
    _rollup(
        "workflow_goal_type_time_to_goal_histogram_daily",
        f"'y', NULL, goal_type, {_NO_FIGURES}, bins, achievements, seconds",
        4,
        5,
    )
}
UNION ALL
SELECT 'y', NULL, goal_type, {_NO_FIGURES}, array_agg(bin), array_agg(n), array_agg(s) FROM (
    SELECT goal_type, bin, sum(achievements)::bigint AS n, sum(seconds) AS s
    FROM ({
    _whole_hours("workflow_goal_type_time_to_goal_histogram", "goal_type, bin, achievements, seconds")
}) AS r
    GROUP BY 1, 2
) AS b GROUP BY goal_type
UNION ALL
{_PARTIAL}
"""


def rate(part: int, whole: int) -> float:
    """Percent with one decimal; 0.0 when nothing is enrolled."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def _hours(total_seconds: float, count: int) -> float | None:
    return round(total_seconds / count / 3600, 2) if count else None


async def workflow_stats(
    pool: asyncpg.Pool,
    tenant_id: str,
    workflow_id: str,
    window: Window = Window(),
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The stats of one workflow; None when the tenant has no such workflow.

    Raises :class:`SeriesTooLong` when the series would exceed MAX_SERIES_BUCKETS.
    """
    return (await read_workflow_stats(pool, tenant_id, workflow_id, window, now))[0]


async def read_workflow_stats(
    pool: asyncpg.Pool,
    tenant_id: str,
    workflow_id: str,
    window: Window = Window(),
    now: datetime | None = None,
    kept: Rollups | None = None,
) -> tuple[dict[str, Any] | None, str, Rollups | None]:
    """:func:`workflow_stats`, the snapshot text its statement read at, and a window up to
    now's :class:`Rollups` (``kept`` itself when the database is still at its snapshot).
    ``kept`` must be this window's (:func:`rollups_key`, same tenant and workflow). The
    rollups are None for all time and for a window with an end: the read cache keeps their
    whole answer instead, and packing them cost a 30-day window ~7 % of the API's CPU.
    """
    start, end = window.start or BEGINNING, window.end or now or datetime.now(UTC)
    check_series(window, end)
    rollups = None
    if window.all_time:
        tally = Tally()
        tally.add_rollups(await pool.fetch(ALL_TIME_SQL, tenant_id, workflow_id))
    else:
        cut = segments(start, end, window.interval)
        spans = [t for span in (cut.days, *cut.hours, *cut.partial) for t in span]
        kept_at = kept.snapshot if kept else None
        rows = await pool.fetch(WINDOW_SQL, tenant_id, workflow_id, window.interval, *spans, kept_at)
        tally = Tally()
        tally.add_rollups(row for row in rows if row[0] not in PARTIAL_KINDS)
        # The same statement tested the same snapshot: equal, its rollups' branches read nothing.
        if kept and tally.snapshot == kept_at:
            rollups, tally = kept, kept.tally()
        elif window.end is None:
            rollups = Rollups.of(tally)
        tally.add_rows((row for row in rows if row[0] in PARTIAL_KINDS), window.interval)
    if not tally.known:
        return None, tally.snapshot, rollups
    series = _series(tally, start if window.start else None, end, window.interval) if window.interval else []
    return _answer(workflow_id, tally, series), tally.snapshot, rollups


def check_series(window: Window, now: datetime) -> None:
    """:class:`SeriesTooLong` if the window's series is known too long before any read
    (with ``from``; without it, the series starts at the first activity)."""
    if window.interval and window.start is not None:
        _check_length(window.start, window.end or now, window.interval)


def _check_length(start: datetime, end: datetime, interval: str) -> None:
    buckets = (bucket_of(end, interval) - bucket_of(start, interval)) / _STEP[interval] + 1
    if buckets > MAX_SERIES_BUCKETS:
        raise SeriesTooLong(
            f"the series would have {buckets:,.0f} buckets of one {interval}; at most "
            f"{MAX_SERIES_BUCKETS:,}: a shorter window or a longer interval"
        )


def _answer(workflow_id: str, tally: Tally, series: list[dict[str, Any]]) -> dict[str, Any]:
    enrolled, achieved, timed, seconds = (sum(a[i] for a in tally.activity.values()) for i in range(4))
    types: dict[str, int] = defaultdict(int)
    for (_, goal_type), n in tally.by_type.items():
        types[goal_type] += n
    return {
        "workflow_id": workflow_id,
        "total_enrolled": int(enrolled),
        "goals_achieved": int(achieved),
        "conversion_rate": rate(int(achieved), int(enrolled)),
        "avg_time_to_goal_hours": _hours(seconds, int(timed)),
        "time_to_goal_hours": _percentiles(tally.exit_bins),
        "by_goal_type": {
            goal_type: {
                "achieved": n,
                "conversion_rate": rate(n, int(enrolled)),
                **_goal_type_timing(
                    tally.type_counts.get(goal_type, {}), tally.type_seconds.get(goal_type, {})
                ),
            }
            for goal_type, n in sorted(types.items())
            if n
        },
        "series": series,
    }


def _series(tally: Tally, start: datetime | None, end: datetime, interval: str) -> list[dict[str, Any]]:
    """One bucket per interval from the one holding ``start`` (else the first with activity)
    to the one holding the last instant before ``end``, zeros included."""
    seen = [s for s in tally.activity if s is not None] + [s for s, _ in tally.by_type if s is not None]
    if start is None:
        if not seen:
            return []
        start = min(seen)
        _check_length(start, end, interval)
    types: dict[datetime, dict[str, int]] = defaultdict(dict)
    for (s, goal_type), n in tally.by_type.items():
        if s is not None:
            types[s][goal_type] = n
    out = []
    bucket, step = bucket_of(start, interval), _STEP[interval]
    while bucket < end:
        enrolled, achieved = (int(v) for v in tally.activity.get(bucket, (0, 0))[:2])
        out.append(
            {
                "start": bucket,
                "enrolled": enrolled,
                "achieved": achieved,
                "conversion_rate": rate(achieved, enrolled),
                "by_goal_type": types.get(bucket, {}),
            }
        )
        bucket += step
    return out


def _goal_type_timing(counts: dict[int, int], seconds: dict[int, float]) -> dict[str, Any]:
    """Average and percentiles of one goal type's time to goal, from its bins' counts and seconds."""
    return {
        "avg_time_to_goal_hours": _hours(sum(seconds.values()), sum(counts.values())),
        "time_to_goal_hours": _percentiles(counts),
    }


def _percentiles(histogram: dict[int, int]) -> dict[str, Any]:
    values = zip(PERCENTILES, histogram_percentiles(histogram, list(PERCENTILES.values())), strict=True)
    return {
        **{name: round(v / 3600, 4) if v is not None else None for name, v in values},
        "relative_error": round(RELATIVE_ERROR, 4),
    }


async def read_tenant_summary(pool: asyncpg.Pool, tenant_id: str) -> tuple[list[dict[str, Any]], str]:
    """Every workflow of the tenant with its all-time totals, best converting first, and the
    snapshot text it read at (one row even for no workflow)."""
    rows = await pool.fetch(
        """
        SELECT pg_current_snapshot()::text AS snapshot, s.workflow_id, s.total_enrolled,
               s.goals_achieved, s.timed_exits, s.time_to_goal_seconds
        FROM (VALUES (1)) AS one LEFT JOIN workflow_stats AS s ON s.tenant_id = $1
        """,
        tenant_id,
    )
    workflows = [
        {
            "workflow_id": r["workflow_id"],
            "total_enrolled": r["total_enrolled"],
            "goals_achieved": r["goals_achieved"],
            "conversion_rate": rate(r["goals_achieved"], r["total_enrolled"]),
            "avg_time_to_goal_hours": _hours(r["time_to_goal_seconds"], r["timed_exits"]),
        }
        for r in rows
        if r["workflow_id"] is not None
    ]
    ordered = sorted(workflows, key=lambda w: (-w["conversion_rate"], -w["goals_achieved"], w["workflow_id"]))
    return ordered, rows[0]["snapshot"]
