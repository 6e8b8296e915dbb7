"""Goal evaluation for one contact (R3-R8, R10, R11): pure, no I/O.

The stream worker keeps one :class:`ContactState` per (tenant, contact) and
hands it every contact-scoped event; the state answers with the achievements
and exits to publish. An event therefore costs O(that contact's enrollments).

Timing rules (contract section 2):
1. An event counts for a goal only if its ``time`` is not before the
   enrollment's time, the workflow's activation, nor the goal's last change
   (no retroactive goals; a change applies to events after it).
2. Topics are not ordered against each other, so a goal event may be
   processed before the enrollment it belongs to, or before the activation or
   goal change that arms it reaches the worker. Goal events are therefore kept
   for ``grace`` (processing time) and evaluated again when such an
   enrollment or configuration arrives; rule 1 still applies to them.
3. An ended enrollment is remembered for ``ended_retention`` (processing
   time, from when the worker saw it end) so that a duplicated or late
   ``enrollment.started`` cannot arm it again; after that the state holds
   nothing for it. Processing time, not the event's: after an outage, a
   lagging worker sees an ``ended`` hours after it happened, and its late
   ``started`` may come right after.
4. Kept goal events are bounded: only what the matchers need of each is kept
   (the contract's data fields, not a producer's extras), and at most
   ``max_kept_events`` of them, ``max_kept_bytes`` in all, per contact; past
   either, the oldest are forgotten early and counted (:attr:`Outcome.dropped`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from goal_engine.contract import jsontext
from goal_engine.contract.events import DATA_MODELS, CloudEvent
from goal_engine.contract.topics import GOAL_SOURCE_TOPICS, Topic
from goal_engine.domain import ids
from goal_engine.domain.enrollment import Enrollment
from goal_engine.domain.goals import GOAL_TYPES
from goal_engine.domain.workflow import Goal, WorkflowConfig

WorkflowLookup = Callable[[str], WorkflowConfig | None]


class ForeignState(ValueError):
    """A stored state that belongs to another tenant or contact than the event's.

    Keys are unambiguous (no ':' in tenant ids), so this means a state written
    under an ambiguous key before that rule, or a bug: never evaluate or rewrite it.
    """


@dataclass(frozen=True)
class Clock:
    """Processing time and the windows measured in it."""

    now: datetime
    grace: timedelta = timedelta(seconds=60)
    ended_retention: timedelta = timedelta(hours=1)
    # The bounds of rule 4 (they travel with the windows they bound).
    max_kept_events: int = 20
    max_kept_bytes: int = 256 * 1024


@dataclass(frozen=True)
class Achievement:
    id: str
    workflow_id: str
    enrollment_id: str
    goal: Goal
    achieved_at: datetime
    trigger: CloudEvent
    enrolled_at: datetime


@dataclass(frozen=True)
class GoalExit:
    id: str
    workflow_id: str
    enrollment_id: str
    goal_ids: tuple[str, ...]
    exited_at: datetime
    enrolled_at: datetime | None


@dataclass
class Outcome:
    achievements: list[Achievement] = field(default_factory=list)
    exits: list[GoalExit] = field(default_factory=list)
    dropped: int = 0  # kept events forgotten early at the contact's bound (rule 4)

    def extend(self, other: Outcome) -> None:
        self.achievements += other.achievements
        self.exits += other.exits

    def __bool__(self) -> bool:
        return bool(self.achievements or self.exits)


@dataclass
class ContactState:
    tenant_id: str
    contact_id: str
    enrollments: dict[str, Enrollment] = field(default_factory=dict)
    # (processing time it arrived, the goal event as kept: rule 4), in arrival order
    recent: list[tuple[datetime, CloudEvent]] = field(default_factory=list)
    # Encoded size of each kept event by id, computed once (not stored).
    _sizes: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    # --- the worker's entry points ------------------------------------------------

    def handle(self, event: CloudEvent, workflows: WorkflowLookup, clock: Clock) -> Outcome:
        """Apply one contact-scoped event of any type."""
        self.prune(clock)
        match Topic(event.type):
            case Topic.ENROLLMENT_STARTED:
                data = event.typed_data()
                return self._start(data.workflow_id, data.enrollment_id, event.time, workflows, clock)
            case Topic.ENROLLMENT_ENDED:
                data = event.typed_data()
                self._end(data.workflow_id, data.enrollment_id, data.reason, event.time, clock)
                return Outcome()
            case t if t in GOAL_SOURCE_TOPICS:
                dropped = 0
                if clock.grace > timedelta(0) and all(e.id != event.id for _, e in self.recent):
                    self.recent.append((clock.now, _as_kept(event)))
                    dropped = self._bound_kept(clock)
                outcome = self._evaluate_all(self.active_enrollments, [event], workflows, clock)
                outcome.dropped = dropped
                return outcome
            case _:
                raise ValueError(f"not a contact-scoped event type: {event.type}")

    def on_workflow_changed(self, workflow_id: str, workflows: WorkflowLookup, clock: Clock) -> Outcome:
        """A workflow's configuration reached the worker: kept events may now count (rule 2)."""
        self.prune(clock)
        enrollments = [e for e in self.active_enrollments if e.workflow_id == workflow_id]
        return self._evaluate_all(enrollments, self._recent_events(), workflows, clock)

    def prune(self, clock: Clock) -> None:
        """Forget kept events past the grace window and ended enrollments past retention."""
        self.recent = [(at, e) for at, e in self.recent if clock.now - at <= clock.grace]
        for key, enrollment in list(self.enrollments.items()):
            retained_from = enrollment.retained_from
            if retained_from is not None and clock.now - retained_from > clock.ended_retention:
                del self.enrollments[key]

    def _bound_kept(self, clock: Clock) -> int:
        """Forget the oldest kept events past the bounds of rule 4; how many were forgotten."""
        sizes = [self._size(e) for _, e in self.recent]
        total, dropped = sum(sizes), 0
        while self.recent and (len(self.recent) > clock.max_kept_events or total > clock.max_kept_bytes):
            _, oldest = self.recent.pop(0)
            total -= sizes.pop(0)
            self._sizes.pop(oldest.id, None)
            dropped += 1
        return dropped

    def _size(self, event: CloudEvent) -> int:
        """A kept event's size: its data as stored (compact JSON), and the most its envelope can take."""
        if (size := self._sizes.get(event.id)) is None:
            size = self._sizes[event.id] = _ENVELOPE_BYTES + len(jsontext.dumps(event.data))
        return size

    def copy(self) -> ContactState:
        """A copy to evaluate on: what a failed evaluation changed never reaches the original."""
        enrollments = {k: e.copy() for k, e in self.enrollments.items()}
        return ContactState(
            self.tenant_id, self.contact_id, enrollments, list(self.recent), dict(self._sizes)
        )

    # --- queries --------------------------------------------------------------------

    @property
    def active_enrollments(self) -> list[Enrollment]:
        return [e for e in self.enrollments.values() if e.is_active]

    @property
    def is_empty(self) -> bool:
        return not self.enrollments and not self.recent

    def next_expiry(self, clock: Clock) -> datetime | None:
        """When :meth:`prune` will next have something to forget (None: never by itself)."""
        times = [at + clock.grace for at, _ in self.recent]
        times += [
            e.retained_from + clock.ended_retention
            for e in self.enrollments.values()
            if e.retained_from is not None
        ]
        return min(times, default=None)

    # --- transitions ----------------------------------------------------------------

    def _start(
        self, workflow_id: str, enrollment_id: str, at: datetime, workflows: WorkflowLookup, clock: Clock
    ) -> Outcome:
        if enrollment_id in self.enrollments:
            return Outcome()  # a duplicate, or it ended before its start reached us
        enrollment = Enrollment(workflow_id, enrollment_id, enrolled_at=at)
        self.enrollments[enrollment_id] = enrollment
        return self._evaluate_all([enrollment], self._recent_events(), workflows, clock)

    def _end(self, workflow_id: str, enrollment_id: str, reason: str, at: datetime, clock: Clock) -> None:
        enrollment = self.enrollments.get(enrollment_id)
        if enrollment is None:
            # Ended before its start was processed: remember it, so the late
            # start does not arm goals for an enrollment that is already over.
            enrollment = Enrollment(workflow_id, enrollment_id, enrolled_at=None)
            self.enrollments[enrollment_id] = enrollment
        if enrollment.is_active:
            enrollment.end(reason, at, seen_at=clock.now)

    def _recent_events(self) -> list[CloudEvent]:
        return sorted((e for _, e in self.recent), key=lambda e: e.time)

    def _evaluate_all(
        self,
        enrollments: Iterable[Enrollment],
        events: list[CloudEvent],
        workflows: WorkflowLookup,
        clock: Clock,
    ) -> Outcome:
        outcome = Outcome()
        for enrollment in enrollments:
            workflow = workflows(enrollment.workflow_id)
            for event in events:
                outcome.extend(self._evaluate(enrollment, workflow, event, clock))
        return outcome

    def _evaluate(
        self, enrollment: Enrollment, workflow: WorkflowConfig | None, event: CloudEvent, clock: Clock
    ) -> Outcome:
        outcome = Outcome()
        if not enrollment.is_active or workflow is None or enrollment.enrolled_at is None:
            return outcome
        if event.time < enrollment.enrolled_at:
            return outcome  # rule 1: no retroactive goals
        data = None
        for goal in workflow.armed_goals:
            spec = GOAL_TYPES[goal.goal_type]
            if goal.id in enrollment.met_goals or spec.source != event.type:
                continue
            if event.time < workflow.armed_since(goal):
                continue  # rule 1: the goal was not armed yet when it happened
            data = data if data is not None else event.typed_data()
            if not spec.matches(goal.criteria, data):
                continue
            enrollment.record_goal(goal.id, event.time)
            outcome.achievements.append(
                Achievement(
                    id=ids.achievement_id(self.tenant_id, enrollment.enrollment_id, goal.id),
                    workflow_id=enrollment.workflow_id,
                    enrollment_id=enrollment.enrollment_id,
                    goal=goal,
                    achieved_at=event.time,
                    trigger=event,
                    enrolled_at=enrollment.enrolled_at,
                )
            )
        if outcome.achievements and workflow.is_satisfied(enrollment.met_goals):
            armed = {g.id for g in workflow.armed_goals}
            enrollment.complete_goal(event.time, seen_at=clock.now)
            outcome.exits.append(
                GoalExit(
                    id=ids.exit_id(self.tenant_id, enrollment.enrollment_id),
                    workflow_id=enrollment.workflow_id,
                    enrollment_id=enrollment.enrollment_id,
                    goal_ids=tuple(g for g in enrollment.met_goals if g in armed),
                    exited_at=event.time,
                    enrolled_at=enrollment.enrolled_at,
                )
            )
        return outcome

    # --- plain-JSON form for the worker's tables ---------------------------------------

    def to_json(self, clock: Clock) -> dict[str, Any]:
        expiry = self.next_expiry(clock)
        return {
            "enrollments": [e.to_json() for e in self.enrollments.values()],
            "recent": [[at.isoformat(), e.model_dump(mode="json")] for at, e in self.recent],
            # Read alone by the worker's sweeper, so it need not parse the whole state.
            "expires_at": expiry.timestamp() if expiry is not None else None,
        }

    @classmethod
    def from_json(cls, tenant_id: str, contact_id: str, raw: dict[str, Any] | None) -> ContactState:
        state = cls(tenant_id, contact_id)
        owner = (raw.get("tenant_id", tenant_id), raw.get("contact_id", contact_id)) if raw else None
        if owner is not None and owner != (tenant_id, contact_id):
            raise ForeignState(
                "foreign state: the state stored under this key belongs to another tenant or contact"
            )
        if raw:
            for e in raw.get("enrollments", []):
                enrollment = Enrollment.from_json(e)
                state.enrollments[enrollment.enrollment_id] = enrollment
            state.recent = [
                (datetime.fromisoformat(at), CloudEvent.model_validate(e)) for at, e in raw.get("recent", [])
            ]
        return state


#: The most a kept event's envelope takes as JSON (its ids and names are bounded).
_ENVELOPE_BYTES = 1600


def _as_kept(event: CloudEvent) -> CloudEvent:
    """What the matchers need of a goal event (rule 4): the contract's data fields only.

    A producer's extra fields (up to the 256 KiB a record may hold) are dropped; an
    achievement met later by a kept event carries these fields as its trigger's data.
    (``parse_event`` has validated them: they are kept as they came.)
    """
    fields = DATA_MODELS[Topic(event.type)].model_fields
    if all(name in fields for name in event.data):
        return event
    return event.model_copy(update={"data": {k: v for k, v in event.data.items() if k in fields}})
