"""The worker's per-record decisions, free of Kafka: plain inputs, plain results.

- :func:`read_record`: THE place a record is parsed: accepted (the event and
  the key of its contact) or rejected (its dead letter and the reason's code);
- :func:`evaluate_events`: step 1 of a batch (see :mod:`.batch`): every record
  read once and, in order, evaluated against its contact's state (or, when it
  sits in another partition than its contact's, queued to be re-keyed), the
  outcomes and dead letters queued.

Both guard each record: whatever one record does (invalid, forged, or a bug it
triggers), it costs a dead letter with the reason, never the batch or the agent.

:mod:`.worker` does the I/O around them; tests drive them with plain objects.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from faust.types import EventT

from goal_engine.contract.events import CloudEvent, InvalidEvent, parse_event
from goal_engine.contract.topics import CONTACT_SCOPED_TOPICS, contact_key
from goal_engine.domain.evaluation import Clock, ContactState, ForeignState, Outcome
from goal_engine.domain.workflow import WorkflowConfig
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.control import Control, InvalidControl, read_control
from goal_engine.stream.records import Record, dead_letter_record

log = logging.getLogger(__name__)

#: A tenant's workflow configuration by (tenant_id, workflow_id); None when unknown.
ConfigLookup = Callable[[str, str], WorkflowConfig | None]
#: Whether a record read from its topic and partition may be evaluated here,
#: given its contact's key (see :class:`.routing.Routing`).
AtHome = Callable[["SourceRecord", bytes], bool]


class SourceRecord(Protocol):
    """What the steps read of a Kafka record (Faust's ``Message`` has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class PlainRecord:
    """A :class:`SourceRecord` (and the headers and timestamp the steps read) without Kafka:
    what the steps bench and the unit tests feed the steps."""

    value: bytes | None
    topic: str = "contact.tag.added"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: float = 1000.0


@dataclass
class PlainEvent:
    """Faust's Event as the steps read it: its message."""

    message: PlainRecord


@dataclass(frozen=True)
class Accepted:
    key: bytes  # "{tenantid}:{subject}": the contact's partition key
    event: CloudEvent


@dataclass(frozen=True)
class Rejected:
    code: str  # a fixed code, for the dead-letter counter's label
    reason: str
    dead_letter: Record


def read_record(record: SourceRecord, expected_type: str | None) -> Accepted | Rejected:
    """Parse one contact-scoped record, or say why not (R-contract: dead letters).

    ``expected_type``: the type its source topic carries; None on the
    re-keyed topic, which carries every contact-scoped type.
    """
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


@dataclass(frozen=True)
class Forward:
    """A record to re-key onto ``goal_engine.contact-events`` (it is not in its contact's partition)."""

    key: bytes
    value: bytes
    timestamp: float  # the source append time, for the latency metric


@dataclass
class Evaluated:
    """What step 1 of a batch leaves to the worker's I/O, and its metrics' counts."""

    forwards: list[Forward] = field(default_factory=list)
    rejected: list[tuple[SourceRecord, Rejected]] = field(default_factory=list)
    exit_appends: list[float] = field(default_factory=list)  # each exit's source append time
    consumed: Counter[str] = field(default_factory=Counter)  # events by type
    achieved: Counter[str] = field(default_factory=Counter)  # achievements by goal type
    event_lags: list[float] = field(default_factory=list)  # processing time - event time
    kept_events_dropped: int = 0  # kept goal events dropped by the per-contact cap


class KeyMismatch(ValueError):
    """A record keyed for another contact than its own (forged, or from a buggy producer)."""


_CODES: dict[type[Exception], str] = {
    InvalidControl: "invalid_control",
    KeyMismatch: "key_mismatch",
    ForeignState: "foreign_state",
}


def evaluate_events(
    batch: ContactBatch,
    events: Iterable[EventT],
    expected_type: Callable[[str], str | None],
    at_home: AtHome,
    configs: ConfigLookup,
    clock: Clock,
) -> Evaluated:
    """Step 1 for each record, in order: control, dead letter, re-key, or evaluation.

    ``expected_type(topic)``: see :func:`read_record`. Anyone who can write to
    the internal topic can forge a control record or a contact event, so each
    is checked again; a record that fails, here or in its evaluation, is
    dead-lettered and leaves its contact's state as it was
    (:meth:`.batch.ContactBatch.apply` evaluates on a copy).
    """
    out = Evaluated()
    now = clock.now.timestamp()
    for event in events:
        msg = event.message
        try:
            _step(out, batch, event, expected_type(msg.topic), at_home, configs, clock, now)
        except InvalidEvent as exc:
            _reject(out, batch, msg, exc.code, exc.reason)
        except (InvalidControl, KeyMismatch, ForeignState) as exc:
            _reject(out, batch, msg, _CODES[type(exc)], str(exc))
        except Exception as exc:  # a bug one record triggers: the batch's other records go on
            log.exception("evaluating a contact event failed", extra={"offset": msg.offset})
            _reject(out, batch, msg, "internal_error", _internal(exc))
    return out


def _step(
    out: Evaluated,
    batch: ContactBatch,
    event: EventT,
    expected: str | None,
    at_home: AtHome,
    configs: ConfigLookup,
    clock: Clock,
    now: float,
) -> None:
    msg = event.message
    control = read_control(msg.headers)
    if control is not None:
        _require_key(msg.key, control.tenant_id, control.contact_id)
        batch.apply(event, control.tenant_id, control.contact_id, _controlled(control, configs, clock))
        return
    verdict = read_record(msg, expected)
    if isinstance(verdict, Rejected):
        out.rejected.append((msg, verdict))
        batch.records.append(verdict.dead_letter)
        return
    ce = verdict.event
    if expected is None:  # the internal re-keyed topic: only the worker writes it
        if ce.type not in CONTACT_SCOPED_TOPICS:
            raise InvalidEvent("wrong_type", f"wrong type: {ce.type!r} is not a contact-scoped source type")
        # The key decides the partition, and so which worker holds the state: a record
        # keyed for another contact would write this contact's state in a second place.
        _require_key(msg.key, ce.tenantid, ce.subject or "")
    elif not at_home(msg, verdict.key):
        out.forwards.append(Forward(verdict.key, msg.value or b"", msg.timestamp))
        return
    assert ce.subject is not None
    outcome = batch.apply(event, ce.tenantid, ce.subject, _handled(ce, configs, clock))
    out.consumed[ce.type] += 1
    out.event_lags.append(max(0.0, now - ce.time.timestamp()))
    for a in outcome.achievements:
        out.achieved[a.goal.goal_type.value] += 1
    out.exit_appends += [msg.timestamp] * len(outcome.exits)
    out.kept_events_dropped += outcome.dropped


def _reject(out: Evaluated, batch: ContactBatch, msg: SourceRecord, code: str, reason: str) -> None:
    rejected = reject(msg, code, reason)
    out.rejected.append((msg, rejected))
    batch.records.append(rejected.dead_letter)


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
