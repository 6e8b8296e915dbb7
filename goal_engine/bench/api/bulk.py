"""A bulk load's indexes: dropped before it, built once after it.

Inserting N rows into a table with its indexes in place updates every index N times, a
random page each time; building an index after the load sorts the rows once. The seed
writes tens of millions of rows into empty tables (``seed.py``), so it drops their
indexes and primary keys first and builds them again, from the definitions the
migrations gave them (read back from the catalog, so a new migration's index is kept
too), after the last row.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# The indexes defined on the tables themselves (for a partitioned table: its partitioned
# indexes; each partition's index goes and comes back with its parent's), and the primary
# key or unique constraint an index backs, if any.
_INDEXES = """
SELECT quote_ident(t.relname) AS table_name, quote_ident(i.relname) AS index_name,
       pg_get_indexdef(i.oid) AS index_def,
       quote_ident(c.conname) AS constraint_name, pg_get_constraintdef(c.oid) AS constraint_def
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.conrelid = t.oid AND c.contype IN ('p', 'u')
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY($1::text[])
ORDER BY t.relname, i.relname
"""


@dataclass(frozen=True)
class Index:
    table: str  # quoted identifiers
    name: str
    definition: str  # CREATE INDEX ..., or the constraint's PRIMARY KEY (...) / UNIQUE (...)
    constraint: str | None  # the constraint's name when the index backs one

    def drop_sql(self) -> str:
        if self.constraint is not None:
            return f"ALTER TABLE {self.table} DROP CONSTRAINT {self.constraint}"
        return f"DROP INDEX {self.name}"

    def create_sql(self) -> str:
        if self.constraint is not None:
            return f"ALTER TABLE {self.table} ADD CONSTRAINT {self.constraint} {self.definition}"
        # A partitioned table's index reads "ON ONLY t": built that way it would stay invalid,
        # without its partitions' indexes.
        return self.definition.replace(" ON ONLY ", " ON ", 1)


async def table_indexes(conn: asyncpg.Connection, tables: list[str]) -> list[Index]:
    rows = await conn.fetch(_INDEXES, tables)
    return [
        Index(
            table=r["table_name"],
            name=r["index_name"],
            definition=r["constraint_def"] if r["constraint_name"] else r["index_def"],
            constraint=r["constraint_name"],
        )
        for r in rows
    ]


async def drop_indexes(conn: asyncpg.Connection, tables: list[str]) -> list[Index]:
    """Drop every index and primary key or unique constraint of ``tables``; what to build later.

    Refuses non-empty tables: the load must start from empty ones (a constraint built
    later would find no duplicate the load could not have made, but an index dropped
    under rows already there would be a quiet change of someone's database).
    """
    for table in tables:
        if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {table})"):
            raise RuntimeError(f"{table} is not empty: the bulk load drops the indexes of empty tables only")
    indexes = await table_indexes(conn, tables)
    for index in indexes:
        await conn.execute(index.drop_sql())
    return indexes
