"""Topic names of the external contract (contract.md section 1), and ours.

Every name is the CloudEvents ``type`` of the records on it; the optional
prefix (``GOAL_ENGINE_TOPIC_PREFIX``) is applied by :func:`topic_name` and
nowhere else, so no module builds a topic name by hand.
"""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    # Consumed, contact-scoped (subject = contact id)
    TAG_ADDED = "contact.tag.added"
    PAYMENT_COMPLETED = "payment.completed"
    APPOINTMENT_BOOKED = "appointment.booked"
    FORM_SUBMITTED = "form.submitted"
    PIPELINE_STAGE_CHANGED = "pipeline.stage.changed"
    ENROLLMENT_STARTED = "workflow.enrollment.started"
    ENROLLMENT_ENDED = "workflow.enrollment.ended"
    # Consumed, reference data
    CATALOG_ENTITY_CHANGED = "catalog.entity.changed"
    # Published by the API (configuration)
    GOAL_CONFIGURED = "workflow.goal.configured"
    WORKFLOW_ACTIVATED = "workflow.activated"
    WORKFLOW_DEACTIVATED = "workflow.deactivated"
    # Published by the stream worker
    GOAL_ACHIEVED = "workflow.goal.achieved"
    EXIT_GOAL = "workflow.exit.goal"
    DEAD_LETTER = "goal_engine.dead_letter"
    # Internal: every contact-scoped record re-keyed "{tenantid}:{subject}", so
    # the worker is correct whatever key a producer used (contract section 1).
    CONTACT_EVENTS = "goal_engine.contact-events"


#: The five goal sources: a goal can only be met by a record on one of these.
GOAL_SOURCE_TOPICS: tuple[Topic, ...] = (
    Topic.TAG_ADDED,
    Topic.PAYMENT_COMPLETED,
    Topic.APPOINTMENT_BOOKED,
    Topic.FORM_SUBMITTED,
    Topic.PIPELINE_STAGE_CHANGED,
)
#: Everything the worker re-keys by contact.
CONTACT_SCOPED_TOPICS: tuple[Topic, ...] = (
    *GOAL_SOURCE_TOPICS,
    Topic.ENROLLMENT_STARTED,
    Topic.ENROLLMENT_ENDED,
)
#: Configuration published by the API and folded into the worker's state.
CONFIG_TOPICS: tuple[Topic, ...] = (
    Topic.GOAL_CONFIGURED,
    Topic.WORKFLOW_ACTIVATED,
    Topic.WORKFLOW_DEACTIVATED,
)


def topic_name(topic: Topic | str, prefix: str = "") -> str:
    """The name on the broker: the contract's name behind the deployment prefix."""
    return f"{prefix}{topic}"


def contact_key(tenant_id: str, contact_id: str) -> str:
    """Record key for contact-scoped records, as the contract asks producers to use."""
    return f"{tenant_id}:{contact_id}"


def workflow_key(tenant_id: str, workflow_id: str) -> str:
    """Record key for workflow configuration: keeps one workflow's changes in order."""
    return f"{tenant_id}:{workflow_id}"
