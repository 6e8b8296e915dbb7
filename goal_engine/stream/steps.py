"""The worker's per-record decisions, free of Kafka: plain inputs, plain results.

- :func:`triage`: a source record is accepted (parsed, with the key of its
  contact) or rejected (its dead letter and the reason's code).
- :func:`evaluate_events`: step 1 of a batch (see :mod:`.batch`): every event
  evaluated in order against its contact's state, the outcomes queued.

Both guard each record: whatever one record does (invalid, forged, or a bug it
triggers), it costs a dead letter with the reason, never the batch or the agent.

:mod:`.worker` does the I/O around them; tests drive them with plain objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from faust.types import EventT

from goal_engine.contract.events import CloudEvent, InvalidEvent, parse_event
from goal_engine.contract.topics import CONTACT_SCOPED_TOPICS, contact_key
from goal_engine.domain.evaluation import Clock, ContactState, ForeignState, Outcome
from goal_engine.domain.workflow import WorkflowConfig
from goal_engine.stream import metrics
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.control import Control, InvalidControl, read_control
from goal_engine.stream.records import Record, dead_letter_record

log = logging.getLogger(__name__)

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
        return reject(record, exc.code, exc.reason)
    except Exception as exc:  # a bug one record triggers must not stop the agent
        return reject(record, "internal_error", _internal(exc))
    assert event.subject is not None  # parse_event guarantees it on contact-scoped types
    return Accepted(contact_key(event.tenantid, event.subject).encode(), event)


def reject(record: SourceRecord, code: str, reason: str) -> Rejected:
    letter = dead_letter_record(
        reason, record.topic, record.partition, record.offset, record.key, record.value
    )
    return Rejected(code, reason, letter)


def evaluate_events(
    batch: ContactBatch, events: Iterable[EventT], configs: ConfigLookup, clock: Clock
) -> list[float]:
    """Step 1 for each event, in order; returns the source append time of each exit.

    An event is either a control record (:mod:`.control`) or a contract event
    that ``ingest`` has validated. Anyone who can write to the internal topic
    can forge either, so each is checked again; a record that fails, here or
    in its evaluation, is dead-lettered and leaves its contact's state as it
    was (:meth:`.batch.ContactBatch.apply` evaluates on a copy).
    """
    exit_appends: list[float] = []
    for event in events:
        msg = event.message
        try:
            exit_appends += _evaluate_one(batch, event, configs, clock)
        except InvalidEvent as exc:
            batch.records.append(_rejected(msg, exc.code, exc.reason))
        except (InvalidControl, KeyMismatch, ForeignState) as exc:
            batch.records.append(_rejected(msg, _CODES[type(exc)], str(exc)))
        except Exception as exc:  # a bug one record triggers: the batch's other records go on
            log.exception("evaluating a contact event failed", extra={"offset": msg.offset})
            batch.records.append(_rejected(msg, "internal_error", _internal(exc)))
    return exit_appends


class KeyMismatch(ValueError):
    """A record keyed for another contact than its own (forged, or from a buggy producer)."""


_CODES: dict[type[Exception], str] = {
    InvalidControl: "invalid_control",
    KeyMismatch: "key_mismatch",
    ForeignState: "foreign_state",
}


def _rejected(msg: SourceRecord, code: str, reason: str) -> Record:
    """The dead letter of a contact event, counted and logged as ``ingest`` does its own."""
    metrics.DEAD_LETTERS.labels(code).inc()
    log.warning(
        "dead-lettered a contact event",
        extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset, "reason": reason},
    )
    return reject(msg, code, reason).dead_letter


def _evaluate_one(batch: ContactBatch, event: EventT, configs: ConfigLookup, clock: Clock) -> list[float]:
    msg = event.message
    control = read_control(msg.headers)
    if control is not None:
        _require_key(msg.key, control.tenant_id, control.contact_id)
        batch.apply(event, control.tenant_id, control.contact_id, _controlled(control, configs, clock))
        return []
    ce = parse_event(msg.value)
    assert ce.subject is not None
    if ce.type not in CONTACT_SCOPED_TOPICS:
        raise InvalidEvent("wrong_type", f"wrong type: {ce.type!r} is not a contact-scoped source type")
    # The key decides the partition, and so which worker holds the state: a record
    # keyed for another contact would write this contact's state in a second place.
    _require_key(msg.key, ce.tenantid, ce.subject)
    metrics.EVENT_TIME_LAG.observe(max(0.0, clock.now.timestamp() - ce.time.timestamp()))
    outcome = batch.apply(event, ce.tenantid, ce.subject, _handled(ce, configs, clock))
    for a in outcome.achievements:
        metrics.GOALS_ACHIEVED.labels(a.goal.goal_type.value).inc()
    metrics.EXITS.inc(len(outcome.exits))
    if outcome.dropped:
        metrics.KEPT_EVENTS_DROPPED.inc(outcome.dropped)
    return [msg.timestamp] * len(outcome.exits)


def _require_key(key: bytes | None, tenant_id: str, contact_id: str) -> None:
    if key != contact_key(tenant_id, contact_id).encode():
        raise KeyMismatch("key mismatch: the record's key is not its tenantid:subject")


def _internal(exc: Exception) -> str:
    return f"internal error: {type(exc).__name__}: {exc}"[:300]


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
