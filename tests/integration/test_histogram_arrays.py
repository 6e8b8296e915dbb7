"""The daily histograms as arrays (migration 0009): the merge functions, and the migration's
conversion both ways, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import asyncpg
import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st

from goal_engine.devstack.postgres import create_database, drop_database
from projections.migrate import alembic_config

pytestmark = pytest.mark.integration

# A histogram as the projector keeps it: bin -> figure, bins in the projector's range.
histograms = st.dictionaries(st.integers(0, 500), st.integers(1, 10**12), max_size=40)


def _arrays(histogram: dict[int, int]) -> tuple[list[int], list[int]]:
    bins = sorted(histogram)
    return bins, [histogram[b] for b in bins]


@settings(max_examples=60, deadline=None)
@given(histograms, histograms)
def test_histogram_add_sums_two_histograms_bin_by_bin(
    database_url: str, row: dict[int, int], batch: dict[int, int]
) -> None:
    async def merged() -> asyncpg.Record:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchrow(
                """
                SELECT histogram_bins($1::int[], $3::int[]) AS bins,
                       histogram_add($1::int[], $2::bigint[], $3::int[], $4::bigint[]) AS counts,
                       histogram_add($1::int[], $2::float8[], $3::int[], $4::float8[]) AS seconds
                """,
                *_arrays(row),
                *_arrays(batch),
            )
        finally:
            await conn.close()

    result = asyncio.run(merged())
    expected = Counter(row) + Counter(batch)
    assert (result["bins"], result["counts"]) == _arrays(dict(expected))
    assert result["seconds"] == [float(n) for n in _arrays(dict(expected))[1]]


DAY = datetime(2026, 11, 20, tzinfo=UTC)
OLD_EXITS = [("t1", "wf", DAY, 3, 2), ("t1", "wf", DAY, 40, 5), ("t1", "wf", DAY.replace(day=21), 3, 1)]
OLD_TYPES = [("t1", "wf", "tag_added", DAY, 7, 4, 30.5), ("t1", "wf", "tag_added", DAY, 2, 1, 1.25),
             ("t1", "wf", "purchase_made", DAY, 7, 2, 12.0)]  # fmt: skip


EXITS, TYPES = "workflow_time_to_goal_histogram_daily", "workflow_goal_type_time_to_goal_histogram_daily"


Rows = list[tuple[object, ...]]


async def _fetch(url: str, query: str, rows: Rows | None = None) -> Rows:
    """``query``'s rows, or with ``rows``: the statement run once per row."""
    conn = await asyncpg.connect(url)
    try:
        if rows is not None:
            await conn.executemany(query, rows)
            return []
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


def test_migration_0009_turns_daily_rows_into_arrays_and_back(postgres_server_url: str) -> None:
    name = f"goal_engine_0009_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_database(postgres_server_url, name))
    config = alembic_config(url)
    try:
        command.upgrade(config, "0008")
        asyncio.run(_fetch(url, f"INSERT INTO {EXITS} VALUES ($1, $2, $3, $4, $5)", OLD_EXITS))
        asyncio.run(_fetch(url, f"INSERT INTO {TYPES} VALUES ($1, $2, $3, $4, $5, $6, $7)", OLD_TYPES))

        command.upgrade(config, "0009")
        assert asyncio.run(_fetch(url, f"SELECT * FROM {EXITS} ORDER BY bucket")) == [
            ("t1", "wf", DAY, [3, 40], [2, 5]),
            ("t1", "wf", DAY.replace(day=21), [3], [1]),
        ]
        assert asyncio.run(_fetch(url, f"SELECT * FROM {TYPES} ORDER BY goal_type")) == [
            ("t1", "wf", DAY, "purchase_made", [7], [2], [12.0]),
            ("t1", "wf", DAY, "tag_added", [2, 7], [1, 4], [1.25, 30.5]),
        ]

        command.downgrade(config, "0008")
        assert asyncio.run(_fetch(url, f"SELECT * FROM {EXITS} ORDER BY bucket, bin")) == sorted(
            OLD_EXITS, key=lambda r: (r[2], r[3])
        )
        assert asyncio.run(_fetch(url, f"SELECT * FROM {TYPES} ORDER BY goal_type, bin")) == sorted(
            OLD_TYPES, key=lambda r: (r[2], r[4])
        )
    finally:
        asyncio.run(drop_database(postgres_server_url, name))
