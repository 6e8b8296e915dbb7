"""The worker's steps without a broker: triage, one batch's evaluation, ownership."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from goal_engine.contract.events import encode_event, parse_event
from goal_engine.contract.topics import Topic
from goal_engine.domain.evaluation import Clock
from goal_engine.domain.workflow import WorkflowConfig
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.control import Control
from goal_engine.stream.expiry import ExpiryQueue
from goal_engine.stream.listeners import ListenerIndex
from goal_engine.stream.ownership import forget_other_partitions, reindex
from goal_engine.stream.steps import Accepted, Evaluated, Forward, Rejected, evaluate_events, read_record
from tests.unit.factories import at, goal, started, tag, workflow


@dataclass
class Message:  # the parts of Faust's Message the steps read
    value: bytes
    topic: str = "contact.tag.added"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: float = 1000.0


@dataclass
class Event:  # Faust's Event: a message (and weak-referenceable, as a table write needs)
    message: Message


def clock(seconds: float = 5) -> Clock:
    return Clock(now=at(seconds), grace=timedelta(seconds=60), ended_retention=timedelta(hours=1))


def configs_of(*configs: tuple[str, WorkflowConfig]):  # type: ignore[no-untyped-def]
    table = {(tenant, c.workflow_id): c for tenant, c in configs}
    return lambda tenant_id, workflow_id: table.get((tenant_id, workflow_id))


def evaluate(batch: ContactBatch, events: list[Event], configs, clock: Clock, home: bool = True) -> Evaluated:  # type: ignore[no-untyped-def]
    """Step 1 as the worker runs it: records typed by their topic, at home unless ``home`` is False."""
    return evaluate_events(batch, events, lambda topic: None, lambda record, key: home, configs, clock)


TAG_GOAL = workflow(goal("tag_added", {"tag_id": "tag-1"}), activated_at=at(-60))


def test_read_record_accepts_and_keys_by_tenant_and_contact() -> None:
    verdict = read_record(Message(encode_event(tag(subject="c-9", tenant="acme"))), "contact.tag.added")
    assert isinstance(verdict, Accepted)
    assert verdict.key == b"acme:c-9"
    assert verdict.event.subject == "c-9"


def test_read_record_rejects_with_a_dead_letter_that_keeps_the_bytes() -> None:
    record = Message(b"{not json", topic="form.submitted", partition=2, offset=41, key=b"k")
    verdict = read_record(record, "form.submitted")
    assert isinstance(verdict, Rejected)
    assert verdict.code and verdict.reason
    letter = parse_event(verdict.dead_letter.value)
    assert verdict.dead_letter.topic is Topic.DEAD_LETTER
    assert letter.id == "form.submitted/2/41"
    assert letter.data["offset"] == 41 and letter.data["reason"] == verdict.reason


def test_read_record_rejects_a_type_that_is_not_its_topics() -> None:
    verdict = read_record(Message(encode_event(tag())), "form.submitted")
    assert isinstance(verdict, Rejected)


def test_a_batch_exits_on_the_goal_and_a_redelivery_publishes_the_same_ids() -> None:
    table: dict[str, bytes] = {}
    index = ListenerIndex()
    events = [
        Event(Message(encode_event(started(time=at(1))), topic="workflow.enrollment.started")),
        Event(Message(encode_event(tag(time=at(2))), timestamp=1234.5)),
    ]
    lookup = configs_of(("t1", TAG_GOAL))

    batch = ContactBatch(table, index)
    assert evaluate(batch, events, lookup, clock()).exit_appends == [1234.5]
    topics = [r.topic for r in batch.records]
    assert topics == [Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL]
    assert table == {}, "nothing is written before the caller has published (step 3)"
    batch.write(clock())
    assert set(table) == {"t1:c1"}
    assert index.active_enrollments() == 0

    # Redelivered before the write (a crash between steps 2 and 3): the same records.
    replay = ContactBatch({}, ListenerIndex())
    evaluate(replay, events, lookup, clock())
    assert replay.records == batch.records
    # Redelivered after the write: the enrollment has exited, nothing more is published.
    again = ContactBatch(table, index)
    assert evaluate(again, events[1:], lookup, clock()).exit_appends == []
    assert again.records == []


def test_a_contact_twice_in_a_batch_sees_its_own_earlier_change() -> None:
    table: dict[str, bytes] = {}
    other_tenant = workflow(goal("tag_added", {"tag_id": "tag-1"}), activated_at=at(-60))
    events = [
        Event(Message(encode_event(started(time=at(1))))),
        Event(Message(encode_event(started(time=at(1), tenant="t2")))),
        Event(Message(encode_event(tag(time=at(2))))),
    ]
    batch = ContactBatch(table, ListenerIndex())
    evaluate(batch, events, configs_of(("t1", TAG_GOAL), ("t2", other_tenant)), clock())
    # Only t1's contact exits: t2's enrollment is another tenant's, whatever its ids.
    exits = [json.loads(r.value) for r in batch.records if r.topic is Topic.EXIT_GOAL]
    assert [e["tenantid"] for e in exits] == ["t1"]
    batch.write(clock())
    assert set(table) == {"t1:c1", "t2:c1"}


def test_a_sweep_control_forgets_what_has_expired() -> None:
    table: dict[str, bytes] = {}
    index = ListenerIndex()
    batch = ContactBatch(table, index)
    # A goal event with no enrollment is kept for the grace window, then forgotten.
    evaluate(batch, [Event(Message(encode_event(tag(time=at(1)))))], configs_of(), clock(1))
    batch.write(clock(1))
    assert "t1:c1" in table

    sweep = Event(Message(b"", headers=Control("sweep", "t1", "c1").header()))
    later = Clock(now=at(600), grace=timedelta(seconds=60), ended_retention=timedelta(hours=1))
    batch = ContactBatch(table, index)
    evaluate(batch, [sweep], configs_of(), later)
    batch.write(later)
    assert table == {}


def test_ownership_forgets_other_partitions_and_reindexes_the_rest() -> None:
    table: dict[str, bytes] = {}
    index = ListenerIndex()
    events = [Event(Message(encode_event(started(subject=c, time=at(1))))) for c in ("a", "b", "c")]
    batch = ContactBatch(table, index)
    evaluate(batch, events, configs_of(("t1", TAG_GOAL)), clock())
    batch.write(clock())
    partitions = {b"t1:a": 0, b"t1:b": 1, b"t1:c": None}  # None: not yet known, kept

    forgotten = forget_other_partitions(table, {0}, partitions.get)
    assert forgotten == 1 and set(table) == {"t1:a", "t1:c"}
    fresh = ListenerIndex()
    reindex(table, fresh, ExpiryQueue())
    assert fresh.active_enrollments() == 2


def test_a_record_outside_its_contacts_partition_is_re_keyed_not_evaluated() -> None:
    table: dict[str, bytes] = {}
    value = encode_event(started(time=at(1), subject="c-7", tenant="acme"))
    batch = ContactBatch(table, ListenerIndex())
    out = evaluate(
        batch, [Event(Message(value, timestamp=99.0))], configs_of(("acme", TAG_GOAL)), clock(), home=False
    )
    assert out.forwards == [Forward(b"acme:c-7", value, 99.0)]
    assert batch.records == [] and out.consumed == {}
    batch.write(clock())
    assert table == {}, "its state is written where it comes back, in its contact's partition"


def test_a_poison_record_inside_a_batch_costs_its_dead_letter_only() -> None:
    table: dict[str, bytes] = {}
    events = [
        Event(Message(encode_event(started(subject="a", time=at(1))), topic="workflow.enrollment.started")),
        Event(Message(b'{"specversion": "1.0"', offset=7)),
        Event(Message(encode_event(tag(subject="a", time=at(2))))),
    ]
    batch = ContactBatch(table, ListenerIndex())
    out = evaluate(batch, events, configs_of(("t1", TAG_GOAL)), clock())
    assert [r.topic for r in batch.records] == [Topic.DEAD_LETTER, Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL]
    assert [m.offset for m, _ in out.rejected] == [7]
    assert len(out.exit_appends) == 1
