"""The records the benchmark produces, built with the contract models (as other modules would).

:class:`TagGoalWorkflow` builds one tenant's active workflow with a tag goal and its contacts'
events; the worker tests' harness (``tests/integration/worker_harness.py``) uses it too.
For the benchmark, tenant ``t`` has one active workflow (``bench-wf``) with one tag goal
(``bench-tag``); contact ``i`` belongs to tenant ``i % tenants`` and has one enrollment, ``en-<i>``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from goal_engine.contract.events import (
    EnrollmentEnded,
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


class KafkaRecord(NamedTuple):
    """One record to produce; unpacks as ``topic, key, value``."""

    topic: Topic
    key: bytes
    value: bytes


@dataclass(frozen=True)
class TagGoalWorkflow:
    """A tenant's workflow whose one goal is tag ``tag_id``, and the records around it."""

    tenant: str
    workflow_id: str
    tag_id: str
    tag_name: str
    source: str

    def activated(self, now: datetime, since: datetime) -> KafkaRecord:
        """``workflow.activated`` as the outbox relay publishes it (``configuration/store.py``:
        ``set_status`` then ``_enqueue``): the whole snapshot, keyed ``tenant:workflow``.

        Activated at ``since``: an event counts only if it is not older than the activation.
        """
        goal = GoalConfig(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.source}/{self.tenant}/{self.workflow_id}")),
            workflow_id=self.workflow_id,
            goal_type=GoalType.TAG_ADDED.value,
            criteria=canonical_criteria(GoalType.TAG_ADDED, {"tag_id": self.tag_id}),
            created_at=since,
            updated_at=since,
        )
        # Callers use a fresh topic prefix each run: version 1 is the newest the worker sees.
        snapshot = WorkflowSnapshot(
            workflow_id=self.workflow_id, version=1, status="active", activated_at=since, goals=[goal]
        )
        event = make_event(
            Topic.WORKFLOW_ACTIVATED,
            event_id=ids.config_event_id(self.tenant, self.workflow_id, snapshot.version),
            tenant_id=self.tenant,
            time=now,
            data=WorkflowStatusChanged(workflow_id=self.workflow_id, workflow=snapshot),
            source=self.source,
        )
        key = workflow_key(self.tenant, self.workflow_id).encode()
        return KafkaRecord(Topic.WORKFLOW_ACTIVATED, key, encode_event(event))

    def enrollment_started(self, contact: str, enrollment_id: str, now: datetime) -> KafkaRecord:
        data = EnrollmentStarted(workflow_id=self.workflow_id, enrollment_id=enrollment_id)
        return self._contact_event(Topic.ENROLLMENT_STARTED, contact, now, data)

    def enrollment_ended(self, contact: str, enrollment_id: str, now: datetime) -> KafkaRecord:
        data = EnrollmentEnded(workflow_id=self.workflow_id, enrollment_id=enrollment_id, reason="completed")
        return self._contact_event(Topic.ENROLLMENT_ENDED, contact, now, data)

    def tag_added(self, contact: str, now: datetime) -> KafkaRecord:
        data = TagAdded(tag_id=self.tag_id, tag_name=self.tag_name)
        return self._contact_event(Topic.TAG_ADDED, contact, now, data)

    def _contact_event(
        self, topic: Topic, contact: str, now: datetime, data: EnrollmentStarted | EnrollmentEnded | TagAdded
    ) -> KafkaRecord:
        event = make_event(
            topic,
            event_id=str(uuid.uuid4()),
            tenant_id=self.tenant,
            time=now,
            data=data,
            subject=contact,
            source=self.source,
        )
        return KafkaRecord(topic, contact_key(self.tenant, contact).encode(), encode_event(event))


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

    def workflow(self, i: int) -> TagGoalWorkflow:
        """The workflow of contact ``i``'s tenant (or of tenant ``i``, for ``i < tenants``)."""
        return TagGoalWorkflow(self.tenant(i), WORKFLOW_ID, TAG_ID, TAG_NAME, SOURCE)

    def workflow_activated(self, tenant_index: int, now: datetime) -> KafkaRecord:
        return self.workflow(tenant_index).activated(now, since=now - timedelta(hours=1))

    def enrollment_started(self, i: int, now: datetime) -> KafkaRecord:
        return self.workflow(i).enrollment_started(self.contact(i), self.enrollment(i), now)

    def tag_added(self, i: int, now: datetime) -> KafkaRecord:
        return self.workflow(i).tag_added(self.contact(i), now)


def utcnow() -> datetime:
    return datetime.now(UTC)
