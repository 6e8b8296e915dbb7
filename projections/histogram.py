"""Log-spaced bins for time-to-goal percentiles, with a stated error bound.

Bin ``b`` holds durations in ``[2**(b/16), 2**((b+1)/16))`` seconds (durations
under a second fall in bin 0). A percentile is reported as the geometric middle
of its bin, so it is within ``2**(1/32) - 1`` (about 2.2 %) of the exact value
of a duration in that bin: relative error at most 2.2 %.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate

BINS_PER_DOUBLING = 16
RELATIVE_ERROR = 2 ** (1 / (2 * BINS_PER_DOUBLING)) - 1


def bin_of(seconds: float) -> int:
    return max(0, math.floor(BINS_PER_DOUBLING * math.log2(max(seconds, 1.0))))


def bin_value(b: int) -> float:
    """The geometric middle of bin ``b``, in seconds."""
    return float(2 ** ((b + 0.5) / BINS_PER_DOUBLING))


def percentiles(counts: Iterable[tuple[int, int]], qs: Sequence[float]) -> list[float | None]:
    """The ``qs`` quantiles (0 < q <= 1, nearest rank) of a histogram of (bin, count) pairs, in
    seconds; None for each when the histogram is empty."""
    histogram: dict[int, int] = defaultdict(int)
    for b, c in counts:
        if c > 0:
            histogram[b] += c
    return histogram_percentiles(histogram, qs)


def histogram_percentiles(histogram: Mapping[int, int], qs: Sequence[float]) -> list[float | None]:
    """The ``qs`` quantiles of a histogram of bin -> count (counts >= 0), in seconds.

    A histogram of the stats has hundreds of bins and is read on every request: the
    bins are sorted and their running totals summed by C code (sorted, accumulate), and
    each quantile is a bisection of those totals, not a Python loop over the bins.
    """
    bins = sorted(histogram)
    totals = list(accumulate(map(histogram.__getitem__, bins)))
    total = totals[-1] if totals else 0
    if total <= 0:
        return [None] * len(qs)
    # The first bin whose running total reaches the nearest rank (a zero bin never does first).
    return [bin_value(bins[bisect_left(totals, max(1, math.ceil(q * total)))]) for q in qs]


def percentile(counts: Iterable[tuple[int, int]], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of a histogram given as (bin, count) pairs, in seconds."""
    return percentiles(counts, [q])[0]
