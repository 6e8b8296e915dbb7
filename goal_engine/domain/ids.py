"""Deterministic ids: the same enrollment and goal always give the same id.

That is what makes the engine correct under at-least-once delivery: a
redelivered source event re-derives the same achievement id, and every
consumer (our projector included) drops what it has already seen.
"""

from __future__ import annotations

import uuid

# Fixed forever: changing it would re-number every achievement ever emitted.
_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b")


def achievement_id(tenant_id: str, enrollment_id: str, goal_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"achievement\x1f{tenant_id}\x1f{enrollment_id}\x1f{goal_id}"))


def exit_id(tenant_id: str, enrollment_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"exit\x1f{tenant_id}\x1f{enrollment_id}"))


def config_event_id(tenant_id: str, workflow_id: str, version: int) -> str:
    """The id of the configuration event that publishes a workflow's ``version``."""
    return str(uuid.uuid5(_NAMESPACE, f"config\x1f{tenant_id}\x1f{workflow_id}\x1f{version}"))
