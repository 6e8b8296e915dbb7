"""The rules a workflow's goal configuration obeys (R1, R2, R13), as pure functions.

The store (``goal_engine/configuration/store.py``) reads what a rule needs (the
workflow's goals, the catalog entries they reference), calls these, and persists
what they allow. The rules:

- at most :data:`MAX_GOALS_PER_WORKFLOW` goals per workflow (422);
- no two goals of one type with the same criteria (409), compared as the matcher
  compares them: ``min_amount`` "50" is "50.00", ``tag_name`` "VIP" is "vip";
- R13, on activation for every goal, and on creating or changing a goal of an
  already active workflow for that goal (it is armed at once): valid criteria,
  every referenced entity present in the tenant's catalog (422 listing every
  violation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from goal_engine.domain.goals import (
    CASE_INSENSITIVE_FIELDS,
    GOAL_TYPES,
    MAX_GOALS_PER_WORKFLOW,
    CatalogRef,
    GoalType,
    InvalidCriteria,
    canonical_criteria,
    parse_criteria,
)


class Unprocessable(Exception):
    """The change breaks a rule; ``errors`` lists every violation (a 422)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class Conflict(Exception):
    """The workflow already has this goal (a 409)."""


class ConfiguredGoal(Protocol):
    @property
    def id(self) -> str | None: ...
    @property
    def goal_type(self) -> str: ...
    @property
    def criteria(self) -> Any: ...


@dataclass(frozen=True)
class GoalDraft:
    """A goal as a change would leave it; ``id`` None while it is being created."""

    goal_type: str
    criteria: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    parent_id: str | None  # a stage's pipeline


#: (kind, entity_id) -> the tenant's live (not deleted) entry, or None.
CatalogLookup = Callable[[str, str], CatalogEntry | None]


def canonical(goal_type: str, criteria: Any) -> dict[str, Any]:
    """The criteria as stored (:func:`canonical_criteria`); 422 when they do not fit the type."""
    try:
        return canonical_criteria(goal_type, criteria)
    except InvalidCriteria as exc:
        raise Unprocessable(exc.errors) from None


def duplicate_key(goal_type: str, criteria: Any) -> tuple[str, frozenset[tuple[str, Any]]]:
    """What two goals must share to be the same goal: equal keys, a 409."""
    try:
        parsed = parse_criteria(goal_type, criteria).model_dump(exclude_defaults=True)
    except InvalidCriteria:  # a stored goal from before a rule tightened: compared as written
        parsed = dict(criteria) if isinstance(criteria, dict) else {"": repr(criteria)}
    return goal_type, frozenset((name, _comparable(name, value)) for name, value in parsed.items())


def _comparable(name: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.normalize()  # 50 == 50.00, and so are their keys
    if name in CASE_INSENSITIVE_FIELDS and isinstance(value, str):
        return value.casefold()
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def catalog_refs(goals: Iterable[ConfiguredGoal]) -> list[CatalogRef]:
    """Every catalog entity the goals' (valid) criteria reference: what a lookup must cover."""
    refs: list[CatalogRef] = []
    for goal in goals:
        try:
            criteria = parse_criteria(goal.goal_type, goal.criteria)
        except InvalidCriteria:
            continue  # reported by goal_violations
        refs += GOAL_TYPES[GoalType(goal.goal_type)].references(criteria)
    return refs


def goal_violations(goal: ConfiguredGoal, catalog: CatalogLookup) -> list[str]:
    """Why ``goal`` may not be armed (R13), empty when it may."""
    where = f"goal {goal.id} ({goal.goal_type})" if goal.id else f"goal ({goal.goal_type})"
    try:
        criteria = parse_criteria(goal.goal_type, goal.criteria)
    except InvalidCriteria as exc:
        return [f"{where}: invalid criteria: {error}" for error in exc.errors]
    violations = []
    for ref in GOAL_TYPES[GoalType(goal.goal_type)].references(criteria):
        entry = catalog(ref.kind, ref.entity_id)
        if entry is None:
            violations.append(f"{where}: {ref.field} {ref.entity_id!r}: no such {ref.kind} in the catalog")
        elif ref.parent_id is not None and entry.parent_id != ref.parent_id:
            violations.append(
                f"{where}: {ref.field} {ref.entity_id!r} is not a stage of pipeline {ref.parent_id!r}"
            )
    return violations


def activation_violations(goals: Sequence[ConfiguredGoal], catalog: CatalogLookup) -> list[str]:
    """Every reason a workflow with ``goals`` may not be activated (R13), empty when it may."""
    return [violation for goal in goals for violation in goal_violations(goal, catalog)]


def check_goal(
    others: Sequence[ConfiguredGoal],
    goal: GoalDraft,
    *,
    creating: bool,
    armed: bool,
    catalog: CatalogLookup,
) -> None:
    """May the workflow, holding ``others`` besides it, have ``goal``? Raises if not.

    ``armed``: the goal listens for events as soon as it is stored (the workflow is
    active, the goal too), so R13 applies now, not only at the next activation.
    """
    if creating and len(others) >= MAX_GOALS_PER_WORKFLOW:
        raise Unprocessable([f"a workflow has at most {MAX_GOALS_PER_WORKFLOW} goals"])
    key = duplicate_key(goal.goal_type, goal.criteria)
    if any(duplicate_key(g.goal_type, g.criteria) == key for g in others):
        raise Conflict("the workflow already has a goal of this type with these criteria")
    if armed and (violations := goal_violations(goal, catalog)):
        raise Unprocessable(violations)
