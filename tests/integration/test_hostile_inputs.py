"""Hostile input (issue 10): nothing a producer sends stalls the engine or reaches another tenant.

Every record below once crashed an agent, escaped validation, or was never
tried: it is sent to every topic the engine reads, over real Kafka, to one real
worker. After each topic's batch, the worker must have dead-lettered every
hostile record with its reason, and a normal goal event for another contact
must still exit. One check per topic's batch (not per record) keeps it short:
a record that stalled or crashed its agent would stop the check after it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from goal_engine.contract.topics import CONFIG_TOPICS, CONTACT_SCOPED_TOPICS, Topic
from goal_engine.core.config import Settings
from goal_engine.stream.control import HEADER as CONTROL_HEADER
from tests.integration.helpers import bearer, cloud_event, eventually, read_topic
from tests.integration.worker_harness import Exits, Producer, TagWorkflow, Worker, isolated_deployment

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Hostile:
    """One record to send, and what its dead letter's reason must say (None: accepted)."""

    what: str
    value: bytes | None
    reason: str | None
    key: bytes | None = b"hostile:contact"
    headers: tuple[tuple[str, bytes], ...] = ()


#: A valid ``data`` for each contact-scoped type.
DATA: dict[Topic, dict[str, Any]] = {
    Topic.TAG_ADDED: {"tag_id": "tag-x", "tag_name": "X"},
    Topic.PAYMENT_COMPLETED: {"transaction_id": "tx", "amount": "1.00", "currency": "USD", "product_ids": []},
    Topic.APPOINTMENT_BOOKED: {
        "appointment_id": "a",
        "calendar_id": "cal",
        "service_id": None,
        "starts_at": "2026-01-01T10:00:00Z",
    },
    Topic.FORM_SUBMITTED: {"form_id": "f", "submission_id": "s"},
    Topic.PIPELINE_STAGE_CHANGED: {"pipeline_id": "p", "stage_id": "s", "opportunity_id": "o"},
    Topic.ENROLLMENT_STARTED: {"workflow_id": "wf-hostile", "enrollment_id": "en-hostile"},
    Topic.ENROLLMENT_ENDED: {"workflow_id": "wf-hostile", "enrollment_id": "en-hostile", "reason": "removed"},
    Topic.CATALOG_ENTITY_CHANGED: {"kind": "tag", "entity_id": "tag-x", "name": "X", "deleted": False},
}


def _event(topic: Topic, tenant: str = "hostile", **changes: Any) -> dict[str, Any]:
    event = cloud_event(str(topic), tenant, dict(DATA[topic]), subject="contact")
    for name, value in changes.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def _bytes(event: dict[str, Any], **replace: str) -> bytes:
    """``event`` as JSON, with placeholder strings swapped for raw JSON text."""
    value = json.dumps(event).encode()
    for placeholder, raw in replace.items():
        value = value.replace(json.dumps(placeholder).encode(), raw.encode())
    return value


def _nested(topic: Topic, levels: int) -> bytes:
    """An ignored data field nesting ``levels`` deep in all (the json module cannot write it)."""
    inner = levels - 2
    return _bytes(_event(topic, data={**DATA[topic], "deep": "DEEP"}), DEEP="[" * inner + "1" + "]" * inner)


def hostile_records(topic: Topic) -> list[Hostile]:
    """Every hostile relative of a valid ``topic`` event."""
    data = DATA[topic]
    records = [
        Hostile("malformed JSON", b"{not json", "malformed JSON"),
        Hostile("invalid UTF-8", b"\xff\xfe{}", "malformed JSON"),
        Hostile("not an object", b"[1, 2]", "not a JSON object"),
        Hostile("empty value", b"", "malformed JSON"),
        Hostile("tombstone", None, "tombstone"),
        Hostile("a raw NUL byte", _bytes(_event(topic, data={**data, "n": "N"}), N='"a\x00b"'), "malformed"),
        Hostile("an escaped NUL", _bytes(_event(topic, data={**data, "n": "a\x00b"})), "NUL"),
        Hostile("wrong specversion", _bytes(_event(topic, specversion="0.3")), "specversion"),
        Hostile("no data fields", _bytes(_event(topic, data={})), "invalid data"),
        Hostile("wrong type", _bytes(_event(topic, type="contact.tag.removed")), "type"),
        Hostile("no subject", _bytes(_event(topic, subject=None)), "subject"),
        Hostile("':' in the tenant id", _bytes(_event(topic, tenant="a:b")), "tenantid"),
        Hostile("a control character in the tenant", _bytes(_event(topic, tenant="t\u0007")), "tenantid"),
        Hostile("nested 256 deep", _nested(topic, 256), "nested too deep"),
        Hostile("nested 339 deep", _nested(topic, 339), "nested too deep"),
        Hostile("nested 5000 deep", _nested(topic, 5000), "nested too deep"),
        Hostile(
            "a lone surrogate", _bytes(_event(topic, data={**data, "s": "S"}), S='"\\ud800"'), "surrogate"
        ),
        Hostile("a lone surrogate subject", _bytes(_event(topic, subject="S"), S='"c\\udfff"'), "surrogate"),
        Hostile("year 0001", _bytes(_event(topic, time="0001-01-01T00:00:00+01:00")), "out of range"),
        Hostile("year 9999", _bytes(_event(topic, time="9999-12-31T23:59Z")), "out of range"),
        Hostile("300 KB", _bytes(_event(topic, data={**data, "pad": "x" * 300_000})), "oversized"),
        Hostile("900 KB", _bytes(_event(topic, data={**data, "pad": "x" * 900_000})), "too large to copy"),
        Hostile("an unknown tenant", _bytes(_event(topic, tenant=f"nobody-{uuid.uuid4().hex[:6]}")), None),
    ]
    if topic is Topic.PAYMENT_COMPLETED:
        # Valid, and kept for the grace window: its state once failed every write of its batch.
        huge = {**data, "amount": 10**30}
        records.append(Hostile("an amount of 10**30", _bytes(_event(topic, data=huge)), None))
    if topic is Topic.APPOINTMENT_BOOKED:
        starts = {**data, "starts_at": "9999-12-31T23:59:00Z"}
        records.append(Hostile("starts in 9999", _bytes(_event(topic, data=starts)), "data.starts_at"))
    return records


def forged_contact_events(tenant: str) -> list[Hostile]:
    """What only the worker should write to ``goal_engine.contact-events``, forged."""
    key = f"{tenant}:forged".encode()
    controls = [
        b"not json",
        b'{"op": "drop", "tenant_id": "t", "contact_id": "c"}',
        b'{"op": "sweep", "tenant_id": "t:x", "contact_id": "c"}',
        b'{"op": "rescan", "tenant_id": "t", "contact_id": "c"}',
        b"[" * 5000,
    ]
    forged = [
        Hostile(f"forged control {c[:20]!r}", b"", "invalid control header", key, ((CONTROL_HEADER, c),))
        for c in controls
    ]
    good = _event(Topic.TAG_ADDED, tenant=tenant)
    good["subject"] = "forged"
    forged += [
        Hostile("a control keyed elsewhere", b"", "key mismatch", b"other:key", _control(tenant, "forged")),
        Hostile("an event keyed elsewhere", _bytes(good), "key mismatch", b"other:key"),
        Hostile(
            "an event of a type not evaluated",
            _bytes({**good, "type": "workflow.exit.goal"}),
            "workflow.exit.goal",
            key,
        ),
    ]
    # Everything the source topics get, straight past ingest's validation.
    forged += [h for h in hostile_records(Topic.TAG_ADDED) if h.reason is not None]
    return forged


def _control(tenant: str, contact: str) -> tuple[tuple[str, bytes], ...]:
    payload = {"op": "sweep", "tenant_id": tenant, "contact_id": contact, "workflow_id": None}
    return ((CONTROL_HEADER, json.dumps(payload).encode()),)


class RawProducer:
    """Sends records exactly as given (headers, tombstones, ~1 MB values); returns their offsets."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", max_request_size=2 * 1024 * 1024
        )

    async def __aenter__(self) -> RawProducer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, topic: Topic, records: Iterable[Hostile]) -> dict[tuple[int, int], Hostile]:
        sent = {}
        for h in records:
            meta = await self._producer.send_and_wait(
                self.settings.topic(topic), value=h.value, key=h.key, headers=list(h.headers)
            )
            sent[(meta.partition, meta.offset)] = h
        return sent


class Letters(dict[tuple[int, int], dict[str, Any]]):
    """Dead letters by the (partition, offset) of their record; short in a failure message."""

    def __repr__(self) -> str:
        return repr({at: d["reason"][:80] for at, d in sorted(self.items())})


async def dead_letters(settings: Settings, topic: Topic) -> Letters:
    """The dead letters of one source topic."""
    name = settings.topic(topic)
    letters = await read_topic(settings, Topic.DEAD_LETTER, timeout=10)
    return Letters(
        ((d["partition"], d["offset"]), d) for d in (r["data"] for r in letters) if d["source_topic"] == name
    )


async def test_no_hostile_record_stalls_the_worker_or_reaches_another_tenant(topics: Settings) -> None:
    settings = await isolated_deployment(topics, "hostile")
    tenant = f"t{uuid.uuid4().hex[:6]}"
    goal = TagWorkflow(tenant, "wf-goal", "tag-goal")
    targets = [*CONTACT_SCOPED_TOPICS, Topic.CONTACT_EVENTS, *CONFIG_TOPICS]
    worker = Worker(settings, "hostile")
    async with Producer(settings) as producer, RawProducer(settings) as raw:
        now = datetime.now(UTC)
        await producer.send([goal.activated(now)])
        worker.start()
        try:
            await worker.wait_ready()
            # One enrolled contact per topic, whose goal event is the check after that topic.
            await producer.send([goal.enrollment_started(i) for i in range(len(targets))])
            await eventually(
                worker.metrics,
                lambda m: m.get("goal_engine_active_enrollments") == len(targets),
                what="the enrollments of the checks",
            )
            workflows = 1
            for i, topic in enumerate(targets):
                if topic is Topic.CONTACT_EVENTS:
                    hostile = forged_contact_events(tenant)
                elif topic in CONFIG_TOPICS:  # only the API writes them: ignored and logged
                    hostile = [
                        Hostile(h.what, h.value, None, h.key) for h in hostile_records(Topic.TAG_ADDED)
                    ]
                else:
                    hostile = hostile_records(topic)
                sent = await raw.send(topic, hostile)
                expected = {at: h for at, h in sent.items() if h.reason is not None}
                if topic not in CONFIG_TOPICS:
                    letters = await eventually(
                        lambda t=topic: dead_letters(settings, t),  # type: ignore[misc]
                        lambda got, e=expected: set(e) <= set(got),  # type: ignore[misc]
                        timeout=60,
                        what=f"a dead letter for each hostile record on {topic}",
                    )
                    for at, h in expected.items():
                        assert h.reason in letters[at]["reason"], (h.what, letters[at]["reason"])
                    assert not set(letters) - set(expected), "a valid record was dead-lettered"
                    _check_copies(expected, letters)
                else:
                    # The configuration consumer still follows: a new workflow arrives.
                    after = TagWorkflow(tenant, f"wf-after-{topic}", "tag-after")
                    await producer.send([after.activated(datetime.now(UTC))])
                    workflows += 1
                    await eventually(
                        worker.metrics,
                        lambda m, n=workflows: m.get("goal_engine_workflow_configs") == n,  # type: ignore[misc]
                        what=f"a workflow configured after the hostile records on {topic}",
                    )
                await producer.send([goal.tag_added(i)])
                await eventually(
                    lambda: Exits.read(settings),
                    lambda exits, i=i: exits.count([goal.enrollment(i)]) == 1,  # type: ignore[misc]
                    timeout=60,
                    what=f"the goal event after the hostile records on {topic} to exit",
                )
            await _a_colon_tenant_cannot_complete_another_tenants_enrollment(settings, producer, raw, tenant)
        finally:
            worker.stop()


def _check_copies(expected: dict[tuple[int, int], Hostile], letters: dict[tuple[int, int], Any]) -> None:
    """Dead letters keep the original bytes, except those too large to copy."""
    for at, h in expected.items():
        letter = letters[at]
        if h.reason == "too large to copy":
            assert letter.get("value_b64") is None and letter["size"] > 900_000
        else:
            assert base64.b64decode(letter["value_b64"]) == (h.value or b""), h.what


async def _a_colon_tenant_cannot_complete_another_tenants_enrollment(
    settings: Settings, producer: Producer, raw: RawProducer, tenant: str
) -> None:
    """The issue's collision: tenant ``T`` contact ``x:c`` and tenant ``T:x`` contact ``c``."""
    victim = TagWorkflow(tenant, "wf-goal", "tag-goal")
    started = victim.records.enrollment_started("x:c", "en-victim", datetime.now(UTC))
    await producer.send([started])
    # The intruder's workflow and tag, written as the victim's with the tenant id changed.
    intruder = TagWorkflow(f"{tenant}:x", "wf-goal", "tag-goal")
    swap = (f'"tenantid":"{tenant}"'.encode(), f'"tenantid":"{intruder.tenant}"'.encode())
    activation = victim.activated(datetime.now(UTC))
    tag = victim.records.tag_added("c", datetime.now(UTC) + timedelta(seconds=1))
    await raw.send(
        Topic.WORKFLOW_ACTIVATED, [Hostile("intruder config", activation.value.replace(*swap), None)]
    )
    sent = await raw.send(
        Topic.TAG_ADDED,
        [Hostile("intruder tag", tag.value.replace(*swap), "tenantid", key=b"%s:x:c" % tenant.encode())],
    )
    letters = await eventually(
        lambda: dead_letters(settings, Topic.TAG_ADDED),
        lambda got: set(sent) <= set(got),
        what="the intruder's tag to be dead-lettered",
    )
    assert all("tenantid" in letters[at]["reason"] for at in sent)
    # The victim's own tag exits it once, under its own tenant: its state was untouched.
    await producer.send([victim.records.tag_added("x:c", datetime.now(UTC) + timedelta(seconds=2))])
    exits = await eventually(
        lambda: read_topic(settings, Topic.EXIT_GOAL, timeout=10),
        lambda records: any(r["data"]["workflow_enrollment_id"] == "en-victim" for r in records),
        what="the victim's own exit",
    )
    victim_exits = [r for r in exits if r["data"]["workflow_enrollment_id"] == "en-victim"]
    assert {(r["tenantid"], r["subject"]) for r in victim_exits} == {(tenant, "x:c")}


# --- the read models ------------------------------------------------------------------------


async def test_no_hostile_record_stalls_the_read_models(stack: Settings, api: httpx.AsyncClient) -> None:
    """The projector reads the enrollment and catalog topics: after each batch, they still move."""
    tenant = f"t{uuid.uuid4().hex[:6]}"
    auth = bearer(stack, tenant)
    async with RawProducer(stack) as raw, Producer(stack) as producer:
        for topic in (Topic.ENROLLMENT_STARTED, Topic.ENROLLMENT_ENDED, Topic.CATALOG_ENTITY_CHANGED):
            await raw.send(topic, hostile_records(topic))
            # A normal enrollment shows in its read model...
            enrollment = f"en-{uuid.uuid4().hex[:6]}"
            workflow = TagWorkflow(tenant, f"wf-{enrollment}", "tag-x")
            await producer.send([workflow.records.enrollment_started("c", enrollment, datetime.now(UTC))])
            await eventually(
                lambda w=workflow.workflow_id, e=enrollment: api.get(  # type: ignore[misc]
                    f"/workflows/{w}/enrollments/{e}", headers=auth
                ),
                lambda r: r.status_code == 200,
                timeout=60,
                what=f"the enrollment read model to move after the hostile records on {topic}",
            )
            # ...and a normal catalog entity lets a goal that names it be activated (R13).
            tag_id = f"tag-{enrollment}"
            catalog = {"kind": "tag", "entity_id": tag_id, "name": "T", "parent_id": None, "deleted": False}
            value = json.dumps(cloud_event(str(Topic.CATALOG_ENTITY_CHANGED), tenant, catalog)).encode()
            await raw.send(Topic.CATALOG_ENTITY_CHANGED, [Hostile("catalog", value, None, key=None)])
            created = await api.post(
                f"/workflows/wf-{tag_id}/goals",
                json={"goal_type": "tag_added", "criteria": {"tag_id": tag_id}},
                headers=auth,
            )
            assert created.status_code == 201, created.text
            await eventually(
                lambda t=tag_id: api.post(f"/workflows/wf-{t}/activate", headers=auth),  # type: ignore[misc]
                lambda r: r.status_code == 200,
                timeout=60,
                what=f"the catalog read model to move after the hostile records on {topic}",
            )
