"""How a stats window is cut into what each source counts exactly (projections/analytics.py),
and the percentiles of its histograms."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from projections.analytics import Segments, bucket_of, segments
from projections.histogram import bin_value, percentiles

T0 = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(0, 90 * 24 * 3600 * 10**6).map(lambda us: T0 + timedelta(microseconds=us))
intervals = st.sampled_from([None, "hour", "day", "week"])


def spans(cut: Segments) -> list[tuple[datetime, datetime]]:
    return [s for s in (cut.days, *cut.hours, *cut.partial) if s[0] < s[1]]


@given(instants, st.integers(1, 40 * 24 * 3600 * 10**6), intervals)
def test_the_segments_tile_the_window_exactly(start: datetime, length: int, interval: str | None) -> None:
    end = start + timedelta(microseconds=length)
    cut = segments(start, end, interval)
    ordered = sorted(spans(cut))
    assert ordered[0][0] == start and ordered[-1][1] == end
    for (_, a_end), (b_start, _) in itertools.pairwise(ordered):
        assert a_end == b_start  # no gap, no overlap
    days, hours = cut.days, [h for h in cut.hours if h[0] < h[1]]
    if days[0] < days[1]:
        assert interval != "hour"  # an hourly series needs every hour apart
        assert bucket_of(days[0], "day") == days[0] and bucket_of(days[1], "day") == days[1]
    for a, b in hours:
        assert bucket_of(a, "hour") == a and bucket_of(b, "hour") == b
        assert b - a < timedelta(days=1) or not days[0] < days[1] or interval == "hour"
    for a, b in cut.partial:  # the rows: parts of at most two hours (one each side of an hour)
        assert b - a < timedelta(hours=2) or a == b


def test_buckets_are_utc_hours_days_and_iso_weeks() -> None:
    t = datetime(2026, 10, 8, 14, 35, 7, tzinfo=UTC)  # a Thursday
    assert bucket_of(t, "hour") == datetime(2026, 10, 8, 14, tzinfo=UTC)
    assert bucket_of(t, "day") == datetime(2026, 10, 8, tzinfo=UTC)
    assert bucket_of(t, "week") == datetime(2026, 10, 5, tzinfo=UTC)
    # An instant given with another offset falls in its UTC bucket (00:35 in Sydney is still the 8th).
    sydney = t.astimezone(timezone(timedelta(hours=10)))
    assert sydney.day == 9 and bucket_of(sydney, "day") == datetime(2026, 10, 8, tzinfo=UTC)


def test_a_window_inside_one_hour_is_all_rows() -> None:
    start = datetime(2026, 10, 8, 14, 10, tzinfo=UTC)
    cut = segments(start, start + timedelta(minutes=30), "day")
    assert spans(cut) == [(start, start + timedelta(minutes=30))] == [cut.partial[0]]


@given(
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 50)), max_size=40),
    st.lists(st.floats(0.001, 1.0), min_size=1, max_size=5),
)
def test_percentiles_in_one_pass_are_the_nearest_ranks(
    counts: list[tuple[int, int]], qs: list[float]
) -> None:
    """The stats' time-to-goal percentiles, all from one pass: each the bin of its nearest rank."""
    values = sorted(b for b, c in counts for _ in range(c))
    want = [bin_value(values[max(1, math.ceil(q * len(values))) - 1]) if values else None for q in qs]
    assert percentiles(counts, qs) == want
