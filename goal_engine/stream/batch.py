"""One batch of contact events: evaluate all, publish all, then write the states.

Why batches: the worker must not write a contact's new state before Kafka
holds the exits that state implies (a crash in between would lose them). Done
per event, that is one round trip to the broker per exit (2-3 ms), which capped
a worker at ~225 goal events/s. Per batch it is one wait for many exits, in
the same order of steps:

1. every event of the batch is evaluated in turn against the state as stored,
   or as the batch left it (a contact may appear twice in a batch);
2. the caller publishes all outcomes and waits until Kafka has them all;
3. :meth:`ContactBatch.write` stores each touched contact's final state once
   and returns the table's changelog records, which the caller sends.

A crash before 3 re-evaluates the whole batch on redelivery and re-publishes
the same deterministic ids; nothing of it was acknowledged to Faust.

One batch may be in flight (published, its acks awaited, not yet written) while
the next is evaluated: the next reads each contact's state as the batch in
flight left it (``previous``), and is written only after it (see
:class:`~.worker.Worker`).

Why the changelog records are the caller's: a write through the Faust table's
mapping queues one changelog message in Faust's producer buffer, which sends
them one at a time and stalls the stream when more than 100 wait ("producer
buffer full"); at 2,000 events/s that buffer, not the work, was the ceiling.
The records are the same (key JSON, value the raw bytes, the contact's
partition), so Faust's recovery reads them as ever.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import NamedTuple

from faust.types import EventT

from goal_engine.contract.topics import contact_key
from goal_engine.domain.evaluation import Clock, ContactState, Outcome
from goal_engine.stream import stored
from goal_engine.stream.listeners import ListenerIndex, Summary, summarize
from goal_engine.stream.records import Record, outcome_records


class ChangelogRecord(NamedTuple):
    partition: int  # the contact's: the partition of the event that changed it
    key: str
    value: bytes | None  # None: a tombstone (the contact has no state left)
    expires_at: float | None  # when the state next has something to forget


@dataclass
class _Touched:
    state: ContactState
    before: Summary
    event: EventT  # the last event that changed it: its partition is the contact's


@dataclass
class ContactBatch:
    table: MutableMapping[str, bytes]  # the table's store (see :mod:`.stored`), written in step 3
    index: ListenerIndex
    previous: ContactBatch | None = None  # the batch in flight, not yet in the table
    records: list[Record] = field(default_factory=list)
    _touched: dict[str, _Touched] = field(default_factory=dict)

    def apply(
        self, event: EventT, tenant_id: str, contact_id: str, change: Callable[[ContactState], Outcome]
    ) -> Outcome:
        """Step 1 for one event: evaluate, and queue the records to publish."""
        key = contact_key(tenant_id, contact_id)
        touched = self._touched.get(key)
        if touched is None:
            state = self._state(key, tenant_id, contact_id)
            touched = self._touched[key] = _Touched(state, summarize(state), event)
        # On a copy: if the change or the encoding of its outcome fails halfway, the
        # record is dead-lettered and the state stays as the previous event left it.
        state = touched.state.copy()
        outcome = change(state)
        records = outcome_records(tenant_id, contact_id, outcome) if outcome else []
        touched.state, touched.event = state, event
        self.records += records
        return outcome

    def _state(self, key: str, tenant_id: str, contact_id: str) -> ContactState:
        """The contact's state before this batch: as the batch in flight left it, or as stored."""
        if self.previous is not None and (in_flight := self.previous._touched.get(key)) is not None:
            return in_flight.state  # never changed in place: apply changes a copy
        return stored.load(tenant_id, contact_id, self.table.get(key))

    def write(self, clock: Clock) -> list[ChangelogRecord]:
        """Step 3: store each touched contact once; returns its changelog record."""
        written = []
        for key, touched in self._touched.items():
            state = touched.state
            value: bytes | None = None
            expires_at = None
            if state.is_empty:
                self.table.pop(key, None)
            else:
                value, expires_at = stored.encode(state, clock)
                self.table[key] = value
            self.index.update(key, state.tenant_id, touched.before, summarize(state))
            written.append(ChangelogRecord(touched.event.message.partition, key, value, expires_at))
        self.previous = None  # written: the batch after this one reads the table
        return written
