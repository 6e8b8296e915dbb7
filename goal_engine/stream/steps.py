"""The worker's per-record decisions, free of Kafka: plain inputs, plain results.

- :func:`triage`: a source record is accepted (parsed, with the key of its
  contact) or rejected (its dead letter and the reason's code).
- :func:`evaluate_events`: step 1 of a batch (see :mod:`.batch`): every event
  evaluated in order against its contact's state, the outcomes queued.

:mod:`.worker` does the I/O around them; tests drive them with plain objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from faust.types import EventT

from goal_engine.contract.events import CloudEvent, InvalidEvent, parse_event
from goal_engine.contract.topics import contact_key
from goal_engine.domain.evaluation import Clock, ContactState, Outcome
from goal_engine.domain.workflow import WorkflowConfig
from goal_engine.stream import metrics
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.control import Control, read_control
from goal_engine.stream.records import Record, dead_letter_record

#: A tenant's workflow configuration by (tenant_id, workflow_id); None when unknown.
ConfigLookup = Callable[[str, str], WorkflowConfig | None]


class SourceRecord(Protocol):
    """What :func:`triage` reads of a Kafka record (Faust's ``Message`` has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Accepted:
    key: bytes  # "{tenantid}:{subject}": the contact's partition key
    event: CloudEvent


@dataclass(frozen=True)
class Rejected:
    code: str  # a fixed code, for the dead-letter counter's label
    reason: str
    dead_letter: Record


def triage(record: SourceRecord, expected_type: str) -> Accepted | Rejected:
    """Accept a contact-scoped source record, or say why not (R-contract: dead letters)."""
    try:
        event = parse_event(record.value, expected_type=expected_type)
    except InvalidEvent as exc:
        letter = dead_letter_record(
            exc.reason, record.topic, record.partition, record.offset, record.key, record.value
        )
        return Rejected(exc.code, exc.reason, letter)
    assert event.subject is not None  # parse_event guarantees it on contact-scoped types
    return Accepted(contact_key(event.tenantid, event.subject).encode(), event)


def evaluate_events(
    batch: ContactBatch, events: Iterable[EventT], configs: ConfigLookup, clock: Clock
) -> list[float]:
    """Step 1 for each event, in order; returns the source append time of each exit.

    An event is either a control record (:mod:`.control`) or a contract event
    that ``ingest`` has already validated.
    """
    exit_appends: list[float] = []
    for event in events:
        msg = event.message
        control = read_control(msg.headers)
        if control is not None:
            batch.apply(event, control.tenant_id, control.contact_id, _controlled(control, configs, clock))
            continue
        ce = parse_event(msg.value)  # validated by ingest: cannot fail here
        assert ce.subject is not None
        metrics.EVENT_TIME_LAG.observe(max(0.0, clock.now.timestamp() - ce.time.timestamp()))
        outcome = batch.apply(event, ce.tenantid, ce.subject, _handled(ce, configs, clock))
        for a in outcome.achievements:
            metrics.GOALS_ACHIEVED.labels(a.goal.goal_type.value).inc()
        metrics.EXITS.inc(len(outcome.exits))
        exit_appends += [msg.timestamp] * len(outcome.exits)
    return exit_appends


def _tenant_lookup(configs: ConfigLookup, tenant_id: str) -> Callable[[str], WorkflowConfig | None]:
    return lambda workflow_id: configs(tenant_id, workflow_id)


def _handled(event: CloudEvent, configs: ConfigLookup, clock: Clock) -> Callable[[ContactState], Outcome]:
    return lambda state: state.handle(event, _tenant_lookup(configs, event.tenantid), clock)


def _controlled(control: Control, configs: ConfigLookup, clock: Clock) -> Callable[[ContactState], Outcome]:
    def apply(state: ContactState) -> Outcome:
        if control.op == "rescan" and control.workflow_id is not None:
            return state.on_workflow_changed(
                control.workflow_id, _tenant_lookup(configs, control.tenant_id), clock
            )
        state.prune(clock)  # "sweep": forget what has expired
        return Outcome()

    return apply
