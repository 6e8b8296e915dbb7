"""Opaque cursors for newest-first pages: the position of the last row a page held."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import Query

from goal_engine.configuration.store import Unprocessable

Limit = Annotated[int, Query(ge=1, le=500, description="rows per page")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]


def encode_cursor(*position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode()


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise Unprocessable(["cursor: not a cursor this API returned"]) from None
    if not isinstance(position, list):
        raise Unprocessable(["cursor: not a cursor this API returned"])
    return position
