"""The records the benchmark produces, built with the contract models (as other modules would).

Tenant ``t`` has one active workflow (``bench-wf``) with one tag goal (``bench-tag``);
contact ``i`` belongs to tenant ``i % tenants`` and has one enrollment, ``en-<i>``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from goal_engine.contract.events import (
    EnrollmentStarted,
    GoalConfig,
    TagAdded,
    WorkflowSnapshot,
    WorkflowStatusChanged,
    encode_event,
    make_event,
)
from goal_engine.contract.topics import Topic, contact_key, workflow_key
from goal_engine.domain import ids
from goal_engine.domain.goals import GoalType, canonical_criteria

SOURCE = "goal-engine/bench"
WORKFLOW_ID = "bench-wf"
TAG_ID = "bench-tag"
TAG_NAME = "Benchmark"


@dataclass(frozen=True)
class KafkaRecord:
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Population:
    """Who is enrolled where: contact ``i`` -> its tenant, contact id and enrollment id."""

    tenants: int

    def tenant(self, i: int) -> str:
        return f"bench-t{i % self.tenants}"

    @staticmethod
    def contact(i: int) -> str:
        return f"c-{i}"

    @staticmethod
    def enrollment(i: int) -> str:
        return f"en-{i}"

    def workflow_activated(self, tenant_index: int, now: datetime) -> KafkaRecord:
        """``workflow.activated`` for the tenant's workflow, as the outbox relay would publish it
        (``configuration/store.py``: ``set_status`` then ``_enqueue``), keyed ``tenant:workflow``.

        Activated an hour ago: an event counts only if it is not older than the activation.
        """
        tenant = self.tenant(tenant_index)
        activated = now - timedelta(hours=1)
        goal = GoalConfig(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"goal-engine-bench/{tenant}/{WORKFLOW_ID}")),
            workflow_id=WORKFLOW_ID,
            goal_type=GoalType.TAG_ADDED.value,
            criteria=canonical_criteria(GoalType.TAG_ADDED, {"tag_id": TAG_ID}),
            created_at=activated,
            updated_at=activated,
        )
        # A fresh topic prefix every run: version 1 is always the newest the worker has seen.
        snapshot = WorkflowSnapshot(
            workflow_id=WORKFLOW_ID, version=1, status="active", activated_at=activated, goals=[goal]
        )
        event = make_event(
            Topic.WORKFLOW_ACTIVATED,
            event_id=ids.config_event_id(tenant, WORKFLOW_ID, snapshot.version),
            tenant_id=tenant,
            time=now,
            data=WorkflowStatusChanged(workflow_id=WORKFLOW_ID, workflow=snapshot),
            source=SOURCE,
        )
        return KafkaRecord(workflow_key(tenant, WORKFLOW_ID).encode(), encode_event(event))

    def enrollment_started(self, i: int, now: datetime) -> KafkaRecord:
        data = EnrollmentStarted(workflow_id=WORKFLOW_ID, enrollment_id=self.enrollment(i))
        return self._contact_event(Topic.ENROLLMENT_STARTED, i, now, data)

    def tag_added(self, i: int, now: datetime) -> KafkaRecord:
        data = TagAdded(tag_id=TAG_ID, tag_name=TAG_NAME)
        return self._contact_event(Topic.TAG_ADDED, i, now, data)

    def _contact_event(
        self, topic: Topic, i: int, now: datetime, data: EnrollmentStarted | TagAdded
    ) -> KafkaRecord:
        tenant, contact = self.tenant(i), self.contact(i)
        event = make_event(
            topic,
            event_id=str(uuid.uuid4()),
            tenant_id=tenant,
            time=now,
            data=data,
            subject=contact,
            source=SOURCE,
        )
        return KafkaRecord(contact_key(tenant, contact).encode(), encode_event(event))


def utcnow() -> datetime:
    return datetime.now(UTC)
