"""What a worker holds after a rebalance: only its own partitions' contacts, indexed.

Faust's memory store keeps what the worker wrote for a partition after the
partition moves to another worker; left there, that stale copy would be
swept, counted and offered rescans here, and would come back to life if the
partition returned after its changelog had compacted the deletions away.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

from goal_engine.domain.evaluation import ContactState
from goal_engine.stream import stored
from goal_engine.stream.expiry import ExpiryQueue
from goal_engine.stream.listeners import ListenerIndex


def forget_other_partitions(
    store: MutableMapping[str, bytes], owned: set[int], partition_of: Callable[[bytes], int | None]
) -> int:
    """Drop from this worker's store (never from the changelog) the contacts it no longer owns.

    A contact's partition is its key's on ``goal_engine.contact-events``, which
    the table is co-partitioned with (``partition_of``: None while unknown).
    Returns how many were dropped.
    """
    stale = [key for key in list(store.keys()) if partition_of(key.encode()) not in (None, *owned)]
    for key in stale:
        del store[key]  # the store only: the changelog belongs to the new owner
    return len(stale)


def reindex(store: MutableMapping[str, bytes], index: ListenerIndex, expiry: ExpiryQueue) -> None:
    """Rebuild the listener index and the expiry queue from the stored contacts."""
    documents = [(key, doc) for key, value in list(store.items()) if (doc := stored.decode(value))]
    index.rebuild(
        (key, ContactState.from_json(doc["tenant_id"], doc["contact_id"], doc)) for key, doc in documents
    )
    expiry.rebuild((key, doc.get("expires_at")) for key, doc in documents)
