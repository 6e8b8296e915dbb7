"""The tenant's catalog (tags, forms, pipelines and stages, products, calendars, services).

What a goal may reference (R13), searchable, so an editor can offer pickers
instead of asking for ids.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from goal_engine.api.deps import PoolDep, Reader, Search
from goal_engine.api.errors import ERROR_RESPONSES
from goal_engine.api.pagination import Cursor, Limit, decode_cursor, encode_cursor
from goal_engine.api.schemas import CatalogEntity, CatalogPage
from goal_engine.configuration.store import Unprocessable
from goal_engine.contract.events import ID_PATTERN
from goal_engine.domain.goals import CatalogKind
from projections import queries

router = APIRouter(tags=["catalog"], responses=ERROR_RESPONSES)

Parent = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=ID_PATTERN, description="only the stages of this pipeline"),
]


@router.get("/catalog", response_model=CatalogPage)
async def catalog(
    pool: PoolDep,
    who: Reader,
    kind: CatalogKind | None = None,
    q: Search = None,
    parent_id: Parent = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CatalogPage:
    """Entities the catalog holds (deleted ones left out), by name."""
    position = decode_cursor(cursor)
    if position is not None and not (len(position) == 3 and all(isinstance(p, str) for p in position)):
        raise Unprocessable(["cursor: not a cursor this API returned"])
    rows = await queries.catalog_entities(
        pool,
        who.tenant_id,
        kind=kind,
        q=q,
        parent_id=parent_id,
        limit=limit,
        after=(position[0], position[1], position[2]) if position else None,
    )
    last = rows[-1] if len(rows) == limit else None
    return CatalogPage(
        entities=[CatalogEntity.model_validate(r) for r in rows],
        next_cursor=encode_cursor(last["name"], last["kind"], last["entity_id"]) if last else None,
    )
