"""Log-spaced bins for time-to-goal percentiles, with a stated error bound.

Bin ``b`` holds durations in ``[2**(b/16), 2**((b+1)/16))`` seconds (durations
under a second fall in bin 0). A percentile is reported as the geometric middle
of its bin, so it is within ``2**(1/32) - 1`` (about 2.2 %) of the exact value
of a duration in that bin: relative error at most 2.2 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

BINS_PER_DOUBLING = 16
RELATIVE_ERROR = 2 ** (1 / (2 * BINS_PER_DOUBLING)) - 1


def bin_of(seconds: float) -> int:
    return max(0, math.floor(BINS_PER_DOUBLING * math.log2(max(seconds, 1.0))))


def bin_value(b: int) -> float:
    """The geometric middle of bin ``b``, in seconds."""
    return float(2 ** ((b + 0.5) / BINS_PER_DOUBLING))


def percentiles(counts: Iterable[tuple[int, int]], qs: Sequence[float]) -> list[float | None]:
    """The ``qs`` quantiles (0 < q <= 1, nearest rank) of a histogram of (bin, count) pairs, in
    seconds, in one pass over the sorted bins; None for each when the histogram is empty."""
    ordered = sorted((b, c) for b, c in counts if c > 0)
    total = sum(c for _, c in ordered)
    if not total:
        return [None] * len(qs)
    ranks = sorted((max(1, math.ceil(q * total)), i) for i, q in enumerate(qs))
    out: list[float | None] = [bin_value(ordered[-1][0])] * len(qs)
    pending, seen = iter(ranks), 0
    rank, i = next(pending)
    for b, c in ordered:
        seen += c
        while seen >= rank:
            out[i] = bin_value(b)
            try:
                rank, i = next(pending)
            except StopIteration:
                return out
    return out


def percentile(counts: Iterable[tuple[int, int]], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of a histogram given as (bin, count) pairs, in seconds."""
    return percentiles(counts, [q])[0]
