"""The enrollment state machine (R8, R10).

``active`` is the only state in which goals are evaluated; every other state
is terminal and nothing moves an enrollment out of it::

    active --goal met--------------> completed_goal
    active --enrollment.ended------> completed | exited | removed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"
    REMOVED = "removed"
    COMPLETED_GOAL = "completed_goal"


class IllegalTransition(RuntimeError):
    pass


@dataclass
class Enrollment:
    workflow_id: str
    enrollment_id: str
    enrolled_at: datetime | None  # None: ended before its start reached us
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE
    met_goals: dict[str, datetime] = field(default_factory=dict)  # goal id -> achieved at
    ended_at: datetime | None = None  # event time: when it ended (or exited on a goal)
    # Processing time the worker saw it end: retention counts from here, not from
    # ``ended_at``, so a lagging worker does not forget an end it has just seen.
    ended_seen_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.status is EnrollmentStatus.ACTIVE

    def record_goal(self, goal_id: str, at: datetime) -> None:
        self._require_active("record a goal")
        self.met_goals.setdefault(goal_id, at)

    def complete_goal(self, at: datetime, *, seen_at: datetime) -> None:
        self._require_active("exit on a goal")
        self.status = EnrollmentStatus.COMPLETED_GOAL
        self.ended_at, self.ended_seen_at = at, seen_at

    def end(self, reason: str, at: datetime, *, seen_at: datetime) -> None:
        self._require_active(f"end ({reason})")
        self.status = EnrollmentStatus(reason)
        self.ended_at, self.ended_seen_at = at, seen_at

    def copy(self) -> Enrollment:
        return Enrollment(
            workflow_id=self.workflow_id,
            enrollment_id=self.enrollment_id,
            enrolled_at=self.enrolled_at,
            status=self.status,
            met_goals=dict(self.met_goals),
            ended_at=self.ended_at,
            ended_seen_at=self.ended_seen_at,
        )

    @property
    def retained_from(self) -> datetime | None:
        """Processing time from which an ended enrollment's retention counts (None: active).

        States stored before ``ended_seen_at`` existed fall back to the event time.
        """
        return self.ended_seen_at or self.ended_at

    def _require_active(self, what: str) -> None:
        if not self.is_active:
            raise IllegalTransition(f"cannot {what}: enrollment {self.enrollment_id} is {self.status}")

    # Plain-JSON form for the worker's tables.
    def to_json(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "enrollment_id": self.enrollment_id,
            "enrolled_at": _iso(self.enrolled_at),
            "status": str(self.status),
            "met_goals": {g: at.isoformat() for g, at in self.met_goals.items()},
            "ended_at": _iso(self.ended_at),
            "ended_seen_at": _iso(self.ended_seen_at),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Enrollment:
        return cls(
            workflow_id=raw["workflow_id"],
            enrollment_id=raw["enrollment_id"],
            enrolled_at=_dt(raw.get("enrolled_at")),
            status=EnrollmentStatus(raw["status"]),
            met_goals={g: datetime.fromisoformat(at) for g, at in raw.get("met_goals", {}).items()},
            ended_at=_dt(raw.get("ended_at")),
            ended_seen_at=_dt(raw.get("ended_seen_at")),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
