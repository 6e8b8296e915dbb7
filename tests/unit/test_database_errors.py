"""What counts as PostgreSQL being unavailable (retried by the projector, a 503 at the API)
and what is the statement's or the record's own fault (parked, or a 4xx/500)."""

from __future__ import annotations

import asyncpg
import pytest

from projections.projector import is_transient


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        # A pooled connection still consuming the server's FATAL when it was handed out
        # (the projector died of it in a PostgreSQL shutdown under load).
        asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    ],
)
def test_an_outage_is_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.DataError("invalid input syntax"),
        ValueError("a bug of ours"),
    ],
)
def test_a_statement_or_record_fault_is_not(exc: Exception) -> None:
    assert not is_transient(exc)
