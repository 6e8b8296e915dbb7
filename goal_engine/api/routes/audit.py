"""The tenant's audit log: every configuration change and every achievement (security constraint)."""

from __future__ import annotations

from fastapi import APIRouter

from goal_engine.api.deps import PoolDep, Reader
from goal_engine.api.errors import ERROR_RESPONSES
from goal_engine.api.pagination import Cursor, Limit, decode_cursor, encode_cursor
from goal_engine.api.schemas import AuditEntry, AuditPage
from goal_engine.configuration.store import Unprocessable
from projections import queries

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)


@router.get("/audit", response_model=AuditPage)
async def audit_log(pool: PoolDep, who: Reader, limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
    """Who changed what and when (before and after), and every achievement, newest first."""
    position = decode_cursor(cursor)
    if position is not None and not (len(position) == 1 and isinstance(position[0], int)):
        raise Unprocessable(["cursor: not a cursor this API returned"])
    rows = await queries.audit_entries(pool, who.tenant_id, limit, position[0] if position else None)
    return AuditPage(
        entries=[AuditEntry.model_validate(r) for r in rows],
        next_cursor=encode_cursor(rows[-1]["id"]) if len(rows) == limit else None,
    )
