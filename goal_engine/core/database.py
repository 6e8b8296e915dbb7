"""What counts as PostgreSQL being unavailable, for every process that uses it.

A failure of the connection or the server, not of the statement or the record:
the projector retries it with backoff (never parks a record for it), and the
API answers 503 with the reason (never a 500).
"""

from __future__ import annotations

import asyncpg

UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,
    asyncpg.InterfaceError,  # the connection is closed (e.g. a pooled one the server dropped)
    # A pooled connection caught between the server's FATAL and its close: asyncpg is
    # still consuming the error ("cannot switch to state 15; another operation (2) is in
    # progress"). Seen in a PostgreSQL shutdown under load; the pool drops it on release.
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # admin shutdown, cannot connect now (starting up)
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.InsufficientResourcesError,  # disk full, too many connections
)
