"""Goal analytics (R12): per workflow, over any window, and across the tenant's workflows."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BeforeValidator

from goal_engine.api.deps import PoolDep, Reader, WorkflowId
from goal_engine.api.errors import ERROR_RESPONSES, NOT_FOUND
from goal_engine.api.schemas import Stats, TenantStats, WorkflowSummary
from goal_engine.configuration.store import NotFound, Unprocessable
from projections import analytics

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$")


def _rfc3339(value: object) -> object:
    # Pydantic alone would also take "0.5" (a Unix time) or a date without a time zone.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("an RFC 3339 date-time with a time zone offset, e.g. 2026-01-31T00:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
From = Annotated[Timestamp | None, Query(alias="from", description="window start (inclusive), whole hours")]
To = Annotated[Timestamp | None, Query(description="window end (exclusive), whole hours")]
Interval = Annotated[
    analytics.Interval | None, Query(description="adds a series with one bucket per interval")
]


@router.get("/workflows/{workflow_id}/goals/stats", response_model=Stats, responses=NOT_FOUND)
async def goal_stats(
    workflow_id: WorkflowId,
    pool: PoolDep,
    who: Reader,
    from_: From = None,
    to: To = None,
    interval: Interval = None,
) -> Stats:
    """The spec's stats, all-time or over [from, to), with a series when ``interval`` is given."""
    if from_ is not None and to is not None and from_ >= to:
        raise Unprocessable(["from must be before to"])
    window = analytics.Window(from_, to, interval)
    stats = await analytics.workflow_stats(pool, who.tenant_id, workflow_id, window)
    if stats is None:
        raise NotFound("workflow not found")
    return Stats.model_validate(stats)


@router.get("/goals/stats", response_model=TenantStats)
async def tenant_stats(pool: PoolDep, who: Reader) -> TenantStats:
    """Every workflow of the tenant with its all-time conversion, best converting first."""
    workflows = await analytics.tenant_summary(pool, who.tenant_id)
    return TenantStats(workflows=[WorkflowSummary.model_validate(w) for w in workflows], total=len(workflows))
