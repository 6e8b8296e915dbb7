"""The worker's steps without a broker: reading a record, one batch's evaluation, ownership."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from goal_engine.contract.events import (
    CloudEvent,
    WorkflowSnapshot,
    WorkflowStatusChanged,
    encode_event,
    make_event,
    parse_event,
)
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.domain.evaluation import Clock, ContactState
from goal_engine.domain.workflow import WorkflowConfig
from goal_engine.stream import steps, stored
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.control import Control
from goal_engine.stream.expiry import ExpiryQueue
from goal_engine.stream.listeners import ListenerIndex
from goal_engine.stream.ownership import forget_other_partitions, reindex
from goal_engine.stream.steps import (
    Accepted,
    Evaluated,
    Forward,
    Rejected,
    evaluate_events,
    read_record,
)
from goal_engine.stream.steps import PlainEvent as Event  # Faust's Event and Message, without Kafka
from goal_engine.stream.steps import PlainRecord as Message
from goal_engine.stream.worker import count_batch_metrics
from goal_engine.stream.workflow_configs import WorkflowConfigs
from tests.unit.factories import at, goal, payment, started, tag, workflow


def keyed(ce: CloudEvent, **kw: Any) -> Event:
    """A contact event as ``ingest`` sends it: keyed by its tenant and contact."""
    return Event(Message(encode_event(ce), key=f"{ce.tenantid}:{ce.subject}".encode(), **kw))


def clock(seconds: float = 5) -> Clock:
    return Clock(now=at(seconds), grace=timedelta(seconds=60), ended_retention=timedelta(hours=1))


def configs_of(*configs: tuple[str, WorkflowConfig]):  # type: ignore[no-untyped-def]
    table = {(tenant, c.workflow_id): c for tenant, c in configs}
    return lambda tenant_id, workflow_id: table.get((tenant_id, workflow_id))


def evaluate(  # type: ignore[no-untyped-def]
    batch: ContactBatch,
    events: list[Event],
    configs,
    clock: Clock,
    home: bool = True,
    source: bool = False,
) -> Evaluated:
    """Step 1 as the worker runs it, on ``goal_engine.contact-events`` (keys checked), or with
    ``source`` on the source topics (each carries its own type); at home unless ``home`` is False."""
    expected_type = (lambda topic: topic) if source else (lambda topic: None)
    return evaluate_events(batch, events, expected_type, lambda record, key: home, configs, clock)


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
        keyed(started(time=at(1)), topic="workflow.enrollment.started"),
        keyed(tag(time=at(2)), timestamp=1234.5),
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


def test_a_batch_evaluated_while_the_one_before_is_in_flight_reads_its_states() -> None:
    # The worker evaluates batch 2 while batch 1's acks are awaited, before batch 1 is written.
    table: dict[str, bytes] = {}
    index = ListenerIndex()
    lookup = configs_of(("t1", TAG_GOAL))
    first = ContactBatch(table, index)
    evaluate(first, [keyed(started(time=at(1)), topic="workflow.enrollment.started")], lookup, clock())
    second = ContactBatch(table, index, previous=first)
    assert evaluate(second, [keyed(tag(time=at(2)), timestamp=99.0)], lookup, clock()).exit_appends == [99.0]
    assert table == {}, "neither is written yet"
    first.write(clock())
    assert index.active_enrollments() == 1
    second.write(clock())
    assert index.active_enrollments() == 0
    # Both written: the batch after them reads the table, where the enrollment has exited.
    third = ContactBatch(table, index, previous=second)
    assert evaluate(third, [keyed(tag(time=at(3)))], lookup, clock()).exit_appends == []
    # Without the batch in flight, the tag finds no enrollment: what ``previous`` prevents.
    alone = ContactBatch({}, ListenerIndex())
    assert evaluate(alone, [keyed(tag(time=at(2)))], lookup, clock()).exit_appends == []


def test_a_contact_twice_in_a_batch_sees_its_own_earlier_change() -> None:
    table: dict[str, bytes] = {}
    other_tenant = workflow(goal("tag_added", {"tag_id": "tag-1"}), activated_at=at(-60))
    events = [
        keyed(started(time=at(1))),
        keyed(started(time=at(1), tenant="t2")),
        keyed(tag(time=at(2))),
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
    evaluate(batch, [keyed(tag(time=at(1)))], configs_of(), clock(1))
    batch.write(clock(1))
    assert "t1:c1" in table

    sweep = Event(Message(b"", key=b"t1:c1", headers=Control("sweep", "t1", "c1").header()))
    later = Clock(now=at(600), grace=timedelta(seconds=60), ended_retention=timedelta(hours=1))
    batch = ContactBatch(table, index)
    evaluate(batch, [sweep], configs_of(), later)
    batch.write(later)
    assert table == {}


def test_ownership_forgets_other_partitions_and_reindexes_the_rest() -> None:
    table: dict[str, bytes] = {}
    index = ListenerIndex()
    events = [keyed(started(subject=c, time=at(1))) for c in ("a", "b", "c")]
    batch = ContactBatch(table, index)
    evaluate(batch, events, configs_of(("t1", TAG_GOAL)), clock())
    batch.write(clock())
    partitions = {b"t1:a": 0, b"t1:b": 1, b"t1:c": None}  # None: not yet known, kept

    forgotten = forget_other_partitions(table, {0}, partitions.get)
    assert forgotten == 1 and set(table) == {"t1:a", "t1:c"}
    fresh = ListenerIndex()
    reindex(table, fresh, ExpiryQueue())
    assert fresh.active_enrollments() == 2


# --- hostile records (issue 10) ---------------------------------------------------------


def _as_tenant(ce: CloudEvent, tenant: str) -> bytes:
    """``ce`` encoded with a tenant id the models would refuse to build."""
    return encode_event(ce).replace(f'"tenantid":"{ce.tenantid}"'.encode(), f'"tenantid":"{tenant}"'.encode())


def _dead_letters(batch: ContactBatch) -> list[dict[str, Any]]:
    return [json.loads(r.value)["data"] for r in batch.records if r.topic is Topic.DEAD_LETTER]


def test_a_colon_in_a_tenant_id_cannot_reach_another_tenants_contact() -> None:
    # Tenant "a" contact "b:c" and tenant "a:b" contact "c" once shared the key "a:b:c":
    # the second tenant's form completed the first tenant's enrollment.
    table: dict[str, bytes] = {}
    lookup = configs_of(("a", TAG_GOAL), ("a:b", TAG_GOAL))
    batch = ContactBatch(table, ListenerIndex())
    evaluate(batch, [keyed(started(tenant="a", subject="b:c", time=at(1)))], lookup, clock())
    batch.write(clock())
    before = dict(table)
    intruder = _as_tenant(tag(tenant="ab", subject="c", time=at(2)), "a:b")

    verdict = read_record(Message(intruder, key=b"a:b:c"), "contact.tag.added")
    assert isinstance(verdict, Rejected) and "tenantid" in verdict.reason

    # Forged straight onto the internal topic: a dead letter, and tenant a's state as it was.
    batch = ContactBatch(table, ListenerIndex())
    evaluate(batch, [Event(Message(intruder, key=b"a:b:c"))], lookup, clock())
    assert [d["reason"][:17] for d in _dead_letters(batch)] == ["invalid envelope:"]
    assert [r.topic for r in batch.records] == [Topic.DEAD_LETTER]
    batch.write(clock())
    assert table == before


def test_a_state_stored_for_another_tenant_is_never_evaluated_nor_rewritten() -> None:
    # A state written under the ambiguous key before ':' was refused in tenant ids.
    other = ContactState("a:b", "c")
    other.handle(started(time=at(1)), lambda _: TAG_GOAL, clock())
    table = {"a:b:c": stored.encode(other, clock())[0]}
    before = dict(table)
    batch = ContactBatch(table, ListenerIndex())
    evaluate(batch, [keyed(tag(tenant="a", subject="b:c", time=at(2)))], configs_of(("a", TAG_GOAL)), clock())
    assert [d["reason"][:13] for d in _dead_letters(batch)] == ["foreign state"]
    batch.write(clock())
    assert table == before


def test_a_failure_halfway_through_a_contact_leaves_its_state_as_it_was() -> None:
    # Two enrollments; the first exits, then looking up the second's workflow fails.
    second = workflow(goal("tag_added", {"tag_id": "tag-1"}), activated_at=at(-60), workflow_id="wf2")

    def lookup(tenant_id: str, workflow_id: str) -> WorkflowConfig | None:
        if workflow_id == "wf2" and calls.append(workflow_id) is None and len(calls) > 1:
            raise RuntimeError("a bug")
        return {"wf1": TAG_GOAL, "wf2": second}[workflow_id]

    calls: list[str] = []
    table: dict[str, bytes] = {}
    events = [
        keyed(started(time=at(1))),
        keyed(started(workflow_id="wf2", enrollment_id="en2", time=at(1))),
        keyed(tag(time=at(2)), offset=7),
        keyed(tag(subject="c2", time=at(2))),  # another contact's event, after the failure
    ]
    batch = ContactBatch(table, ListenerIndex())
    evaluate(batch, events, lookup, clock())
    assert [d["offset"] for d in _dead_letters(batch)] == [7]
    assert "internal error: RuntimeError" in _dead_letters(batch)[0]["reason"]
    assert [r.topic for r in batch.records] == [Topic.DEAD_LETTER], "no exit without its state"
    batch.write(clock())
    state = stored.load("t1", "c1", table["t1:c1"])
    assert [e.status for e in state.enrollments.values()] == ["active", "active"]
    assert "t1:c2" in table, "the batch's other records went on"


FORGED_CONTROLS = [
    b"not json",
    b'{"op": "drop-table", "tenant_id": "t1", "contact_id": "c1"}',
    b'{"op": "sweep", "tenant_id": "t1", "contact_id": "c1", "extra": 1}',
    b'{"op": "sweep", "tenant_id": "t:1", "contact_id": "c1"}',
    b'{"op": "sweep", "tenant_id": "t1", "contact_id": 5}',
    b'{"op": "rescan", "tenant_id": "t1", "contact_id": "c1"}',  # a rescan of no workflow
    b'{"op": "sweep", "tenant_id": "t1\\n", "contact_id": "c1"}',
    b"[" * 5000,
]


def test_forged_and_invalid_contact_events_are_dead_lettered_and_the_batch_goes_on() -> None:
    good = keyed(started(subject="c2", time=at(1))), keyed(tag(subject="c2", time=at(2)))
    hostile = [
        Event(Message(b"", key=b"t1:c1", headers=[("goal-engine-control", h)])) for h in FORGED_CONTROLS
    ]
    hostile += [
        Event(Message(b"", key=b"t2:c9", headers=Control("sweep", "t1", "c1").header())),  # keyed elsewhere
        Event(Message(b"{not json", key=b"t1:c1")),
        Event(Message(encode_event(tag(time=at(2))), key=b"t1:someone-else")),
        Event(Message(encode_event(tag(time=at(2))), key=None)),
        Event(Message(b'{"specversion": "1.0"}', key=b"t1:c1")),
    ]
    achieved = tag(subject="c1", time=at(2)).model_copy(update={"type": "workflow.goal.achieved"})
    hostile.append(keyed(achieved))  # a contact-scoped type, but not one the worker evaluates
    batch = ContactBatch({}, ListenerIndex())
    evaluate(batch, [*hostile, *good], configs_of(("t1", TAG_GOAL)), clock())
    letters = _dead_letters(batch)
    assert len(letters) == len(hostile) and all(d["reason"] for d in letters)
    assert [r.topic for r in batch.records][len(hostile) :] == [Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL]


def test_a_kept_payment_past_64_bits_is_stored_and_read_back() -> None:
    """Its amount, a valid decimal, once failed every write of its batch (orjson writes no
    more than 64 bits): the worker stopped on one record."""
    amount = 10**30
    value = encode_event(payment(time=at(2))).replace(b'"amount":"49.99"', b'"amount":%d' % amount)
    table: dict[str, bytes] = {}
    batch = ContactBatch(table, ListenerIndex())
    events = [
        keyed(started(time=at(1)), topic="workflow.enrollment.started"),
        Event(Message(value, key=b"t1:c1")),
    ]
    assert evaluate(batch, events, configs_of(), clock()).rejected == []
    batch.write(clock())
    state = stored.load("t1", "c1", table["t1:c1"])
    assert [e.data["amount"] for _, e in state.recent] == [amount]


def test_triage_dead_letters_whatever_a_record_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a record nested ~340 deep once did to ingest's handler, before the depth check.
    def recurse(*args: object, **kw: object) -> CloudEvent:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(steps, "parse_event", recurse)
    verdict = read_record(Message(encode_event(tag()), offset=3), "contact.tag.added")
    assert isinstance(verdict, Rejected) and verdict.code == "internal_error"
    assert "RecursionError" in verdict.reason
    assert json.loads(verdict.dead_letter.value)["data"]["offset"] == 3


def test_a_record_too_large_to_copy_is_dead_lettered_by_reference() -> None:
    value = b"x" * (800 * 1024)
    verdict = read_record(
        Message(value, topic="form.submitted", partition=1, offset=9, key=b"k"), "form.submitted"
    )
    assert isinstance(verdict, Rejected) and verdict.code == "oversized"
    letter = json.loads(verdict.dead_letter.value)["data"]
    assert len(verdict.dead_letter.value) < 10_000 and letter["value_b64"] is None
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == ("form.submitted", 1, 9)
    assert letter["size"] == len(value) + 1 and "too large to copy" in letter["reason"]
    small = read_record(Message(b"x" * 300_000, key=b"k"), "contact.tag.added")
    assert isinstance(small, Rejected) and json.loads(small.dead_letter.value)["data"]["value_b64"]


def test_configuration_keys_cannot_collide_across_tenants() -> None:
    # Tenant "a" workflow "b:c" and tenant "a:b" workflow "c" once shared one key, "a:b:c".
    def activated(tenant: str, workflow_id: str, version: int) -> bytes:
        snapshot = WorkflowSnapshot(workflow_id=workflow_id, version=version, status="active")
        data = WorkflowStatusChanged(workflow_id=workflow_id, workflow=snapshot)
        event = make_event(
            Topic.WORKFLOW_ACTIVATED, event_id=f"e{version}", tenant_id="ab", time=at(0), data=data
        )
        return _as_tenant(event, tenant)

    configs = WorkflowConfigs(Settings.model_construct())  # no Kafka: records applied by hand
    assert configs.apply_record(activated("a", "b:c", 1)) == ("a", "b:c")
    assert configs.apply_record(activated("a:b", "c", 2)) is None  # refused, not a newer version of a's
    assert configs.get("a", "b:c") is not None and configs.get("a", "b:c").version == 1  # type: ignore[union-attr]
    assert len(configs) == 1


def test_the_bound_on_kept_events_shows_in_a_metric() -> None:
    before = REGISTRY.get_sample_value("goal_engine_kept_events_dropped_total") or 0.0
    bounded = Clock(now=at(5), grace=timedelta(seconds=60), max_kept_events=2)
    events = [keyed(tag(subject="c-capped", tag_id=f"tag-{i}", time=at(1))) for i in range(5)]
    out = evaluate(ContactBatch({}, ListenerIndex()), events, configs_of(), bounded)
    assert out.kept_events_dropped == 3
    count_batch_metrics(out)  # as the worker does, once per batch
    assert REGISTRY.get_sample_value("goal_engine_kept_events_dropped_total") == before + 3


def test_a_record_outside_its_contacts_partition_is_re_keyed_not_evaluated() -> None:
    table: dict[str, bytes] = {}
    value = encode_event(started(time=at(1), subject="c-7", tenant="acme"))
    batch = ContactBatch(table, ListenerIndex())
    record = Event(Message(value, topic="workflow.enrollment.started", timestamp=99.0))
    out = evaluate(batch, [record], configs_of(("acme", TAG_GOAL)), clock(), home=False, source=True)
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
    out = evaluate(batch, events, configs_of(("t1", TAG_GOAL)), clock(), source=True)
    assert [r.topic for r in batch.records] == [Topic.DEAD_LETTER, Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL]
    assert [m.offset for m, _ in out.rejected] == [7]
    assert len(out.exit_appends) == 1
