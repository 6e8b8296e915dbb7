"""Goal analytics (R12): per workflow, over any window, and across the tenant's workflows."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BeforeValidator

from goal_engine.api import reads
from goal_engine.api.cache import json_response
from goal_engine.api.deps import ReadCacheDep, Reader, ReadPoolDep, WorkflowId
from goal_engine.api.errors import ERROR_RESPONSES, NOT_FOUND
from goal_engine.api.schemas import Stats, TenantStats
from projections import analytics

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$")


def _rfc3339(value: object) -> object:
    # Pydantic alone would also take "0.5" (a Unix time) or a date without a time zone.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("an RFC 3339 date-time with a time zone offset, e.g. 2026-01-31T00:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
From = Annotated[
    Timestamp | None,
    Query(alias="from", description="window start, inclusive; any instant (default: the beginning)"),
]
To = Annotated[
    Timestamp | None,
    Query(
        description="window end, exclusive; any instant (default: now). The hour that contains it "
        "counts up to it: `to=now` includes the current hour so far"
    ),
]
Interval = Annotated[
    analytics.Interval | None,
    Query(
        description="adds a series: one bucket per UTC hour, day or ISO week (Monday) that meets "
        f"the window, zeros included, at most {analytics.MAX_SERIES_BUCKETS:,}"
    ),
]

WINDOWS = f"""
Without `from`, `to` and `interval`: all-time figures (everything recorded).

With any of them, the figures count what happened in **[from, to)**, exactly, to the
microsecond: `from` and `to` may be any instant (RFC 3339 with an offset), `to` is
exclusive and defaults to now, so `from=<24 h ago>&to=<now>` includes the current,
partial hour up to `to`; `from` defaults to the beginning. Enrollments count at their
start, goal exits and achievements at their time.

With `interval`, `series` has one bucket per UTC hour, day or ISO week (starting
Monday) from the one containing `from` (without `from`: the first with activity) to
the one containing the last instant before `to`, zeros included; each bucket's `start`
is its aligned start and it counts only its part inside the window, so the first and
last buckets may be partial. More than {analytics.MAX_SERIES_BUCKETS:,} buckets is a 422.

Percentiles of time to goal are within `relative_error` of the exact values; counts,
rates and averages are exact.
"""


@router.get(
    "/workflows/{workflow_id}/goals/stats", response_model=Stats, responses=NOT_FOUND, description=WINDOWS
)
async def goal_stats(
    workflow_id: WorkflowId,
    pool: ReadPoolDep,
    cache: ReadCacheDep,
    who: Reader,
    from_: From = None,
    to: To = None,
    interval: Interval = None,
) -> Response:
    """The spec's stats, all-time or over [from, to), with a series when ``interval`` is given."""
    return json_response(await reads.stats(pool, cache, who.tenant_id, workflow_id, from_, to, interval))


@router.get("/goals/stats", response_model=TenantStats)
async def tenant_stats(pool: ReadPoolDep, cache: ReadCacheDep, who: Reader) -> Response:
    """Every workflow of the tenant with its all-time conversion, best converting first."""
    return json_response(await reads.tenant_stats(pool, cache, who.tenant_id))
