"""A seeded database kept for the next run of the same seed (``--reuse-seed``).

Its name holds the seed's parameters and a digest of everything that decides its rows:
the seed's own code (``seed.py``, ``bulk.py``) and the migrations. A run with the same
parameters and the same code finds it and skips the seed; any change to them names
another database, so a kept one is never read with a schema or rules it was not
seeded with. The seed marks its database complete last (a table holding its result and
its span): a database without the mark (a seed that was interrupted) is dropped and
seeded again. The brute-force check still runs against whatever is reused.

Kept databases stay until dropped by hand: ``DROP DATABASE goal_engine_apibench_kept_...``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime
from pathlib import Path

import asyncpg

from goal_engine.bench.api import bulk, seed
from goal_engine.bench.api.seed import SeedResult
from projections.migrate import MIGRATIONS

PREFIX = "goal_engine_apibench_kept_"
_MARK = "bench_api_seed"  # one row: the seed's result and its span


def _digest() -> str:
    sources = [Path(seed.__file__), Path(bulk.__file__), *sorted((MIGRATIONS / "versions").glob("*.py"))]
    h = hashlib.sha256()
    for path in sources:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:8]


def kept_name(achievements: int, tenants: int, workflows_per_tenant: int, months: int) -> str:
    """The database of this seed: e.g. ``goal_engine_apibench_kept_1000000_100x10_13m_1a2b3c4d``."""
    return f"{PREFIX}{achievements}_{tenants}x{workflows_per_tenant}_{months}m_{_digest()}"


@dataclasses.dataclass(frozen=True)
class Kept:
    result: SeedResult
    start: datetime  # the seed's span, which the check and the load's windows are drawn from
    end: datetime


async def read_mark(conn: asyncpg.Connection) -> Kept | None:
    """The mark of a complete seed in the database of ``conn``; None if it has none."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", _MARK):
        return None
    row = await conn.fetchrow(f"SELECT result, span_start, span_end FROM {_MARK}")
    if row is None:
        return None
    fields = {f.name for f in dataclasses.fields(SeedResult)}
    stored = {k: v for k, v in json.loads(row["result"]).items() if k in fields}
    return Kept(SeedResult(**{**stored, "reused": True}), row["span_start"], row["span_end"])


async def write_mark(conn: asyncpg.Connection, result: SeedResult, start: datetime, end: datetime) -> None:
    """Mark the seed complete: the last thing it writes."""
    await conn.execute(
        f"CREATE TABLE {_MARK} (result jsonb NOT NULL, span_start timestamptz NOT NULL, "
        "span_end timestamptz NOT NULL)"
    )
    await conn.execute(
        f"INSERT INTO {_MARK} VALUES ($1, $2, $3)", json.dumps(dataclasses.asdict(result)), start, end
    )
