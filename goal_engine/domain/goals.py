"""Goal types and their criteria (R1, R2, R13): what a goal *is*.

Each goal type is one entry of :data:`GOAL_TYPES`: its criteria model (what the
workflow editor renders and the API validates), the event type that can meet
it, a matcher, and the catalog references its criteria make. A sixth goal
type is one more entry here; nothing else branches on the goal type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from goal_engine.contract.events import (
    ID_PATTERN,
    NAME_PATTERN,
    AppointmentBooked,
    FormSubmitted,
    PaymentCompleted,
    PipelineStageChanged,
    TagAdded,
)
from goal_engine.contract.topics import Topic

CriteriaId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=ID_PATTERN)
]

#: Business constraint of the spec: at most three goals per workflow.
MAX_GOALS_PER_WORKFLOW = 3


class GoalType(StrEnum):
    TAG_ADDED = "tag_added"
    PURCHASE_MADE = "purchase_made"
    APPOINTMENT_BOOKED = "appointment_booked"
    FORM_SUBMITTED = "form_submitted"
    PIPELINE_STAGE_REACHED = "pipeline_stage_reached"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # An example on the enum's own schema, which the OpenAPI document shares by reference.
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["examples"] = [cls.TAG_ADDED.value]
        return schema


def _field(title: str, catalog: CatalogKind | None = None, parent: str | None = None) -> Any:
    """A criterion's title and, for a reference, the catalog kind it names (``x-catalog``).

    The console renders a form from this JSON Schema: a titled input, and a
    catalog picker for a reference (a stage's picker filtered by its ``x-catalog-parent``).
    """
    extra: dict[str, Any] = {}
    if catalog is not None:
        extra["x-catalog"] = catalog
    if parent is not None:
        extra["x-catalog-parent"] = parent
    return Field(title=title, json_schema_extra=extra or None)


class _Criteria(BaseModel):
    # Unknown keys are an error here (not ignored as in events): a typo in a
    # goal would otherwise silently widen it to "any".
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class TagAddedCriteria(_Criteria):
    tag_id: Annotated[CriteriaId | None, _field("Tag", "tag")] = None
    tag_name: Annotated[
        Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NAME_PATTERN)] | None,
        _field("Tag name (any case)"),
    ] = None

    @model_validator(mode="after")
    def _one_given(self) -> TagAddedCriteria:
        if self.tag_id is None and self.tag_name is None:
            raise ValueError("tag_added needs tag_id and/or tag_name")
        return self


class PurchaseMadeCriteria(_Criteria):
    any_purchase: Annotated[bool, _field("Any purchase")] = False
    product_id: Annotated[CriteriaId | None, _field("Product", "product")] = None
    min_amount: Annotated[
        Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None, _field("Minimum amount")
    ] = None
    currency: Annotated[
        Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None, _field("Currency (of the minimum)")
    ] = None

    @model_validator(mode="after")
    def _one_given(self) -> PurchaseMadeCriteria:
        if not self.any_purchase and self.product_id is None and self.min_amount is None:
            raise ValueError("purchase_made needs any_purchase: true, product_id or min_amount")
        if self.currency is not None and self.min_amount is None:
            raise ValueError("currency applies to min_amount and needs it")
        return self


class AppointmentBookedCriteria(_Criteria):
    any_appointment: Annotated[bool, _field("Any appointment")] = False
    calendar_id: Annotated[CriteriaId | None, _field("Calendar", "calendar")] = None
    service_id: Annotated[CriteriaId | None, _field("Service", "service")] = None

    @model_validator(mode="after")
    def _one_given(self) -> AppointmentBookedCriteria:
        if not self.any_appointment and self.calendar_id is None and self.service_id is None:
            raise ValueError("appointment_booked needs any_appointment: true, calendar_id or service_id")
        return self


class FormSubmittedCriteria(_Criteria):
    form_id: Annotated[CriteriaId, _field("Form", "form")]


class PipelineStageReachedCriteria(_Criteria):
    pipeline_id: Annotated[CriteriaId, _field("Pipeline", "pipeline")]
    stage_id: Annotated[CriteriaId, _field("Stage", "pipeline_stage", parent="pipeline_id")]


# --- matchers: pure functions of (criteria, event data) ------------------------


#: Criteria compared without regard to case, by the matchers and by the duplicate rule alike.
CASE_INSENSITIVE_FIELDS = frozenset({"tag_name"})


def _match_tag(c: TagAddedCriteria, d: TagAdded) -> bool:
    if c.tag_id is not None and c.tag_id != d.tag_id:
        return False
    # casefold, not lower: "Straße" and "STRASSE" are the same tag name.
    return c.tag_name is None or c.tag_name.casefold() == d.tag_name.casefold()


def _match_purchase(c: PurchaseMadeCriteria, d: PaymentCompleted) -> bool:
    if c.any_purchase:
        return True
    if c.product_id is not None and c.product_id not in d.product_ids:
        return False
    if c.min_amount is not None:
        if c.currency is not None and c.currency != d.currency:
            return False
        if d.amount < c.min_amount:  # Decimal against Decimal: never floats
            return False
    return True


def _match_appointment(c: AppointmentBookedCriteria, d: AppointmentBooked) -> bool:
    if c.any_appointment:
        return True
    if c.calendar_id is not None and c.calendar_id != d.calendar_id:
        return False
    return c.service_id is None or c.service_id == d.service_id


def _match_form(c: FormSubmittedCriteria, d: FormSubmitted) -> bool:
    return c.form_id == d.form_id


def _match_stage(c: PipelineStageReachedCriteria, d: PipelineStageChanged) -> bool:
    return c.pipeline_id == d.pipeline_id and c.stage_id == d.stage_id


# --- catalog references (R13: "references non-existent entities") --------------

CatalogKind = Literal["tag", "form", "pipeline", "pipeline_stage", "product", "calendar", "service"]


@dataclass(frozen=True)
class CatalogRef:
    """An entity a goal's criteria point at, which the tenant's catalog must hold."""

    kind: CatalogKind
    entity_id: str
    field: str
    parent_id: str | None = None  # the pipeline a stage must belong to


def _refs(criteria: Any, fields: dict[str, CatalogKind]) -> Iterator[CatalogRef]:
    for field, kind in fields.items():
        value = getattr(criteria, field)
        if value is not None:
            yield CatalogRef(kind, value, field)


def _stage_refs(c: PipelineStageReachedCriteria) -> Iterator[CatalogRef]:
    yield CatalogRef("pipeline", c.pipeline_id, "pipeline_id")
    yield CatalogRef("pipeline_stage", c.stage_id, "stage_id", parent_id=c.pipeline_id)


@dataclass(frozen=True)
class GoalTypeSpec:
    goal_type: GoalType
    title: str
    source: Topic  # the event type that can meet this goal
    criteria_model: type[_Criteria]
    matches: Callable[[Any, Any], bool]
    references: Callable[[Any], Iterator[CatalogRef]]


GOAL_TYPES: dict[GoalType, GoalTypeSpec] = {
    spec.goal_type: spec
    for spec in (
        GoalTypeSpec(
            GoalType.TAG_ADDED,
            "Contact receives a specific tag",
            Topic.TAG_ADDED,
            TagAddedCriteria,
            _match_tag,
            lambda c: _refs(c, {"tag_id": "tag"}),
        ),
        GoalTypeSpec(
            GoalType.PURCHASE_MADE,
            "Contact completes a purchase transaction",
            Topic.PAYMENT_COMPLETED,
            PurchaseMadeCriteria,
            _match_purchase,
            lambda c: _refs(c, {"product_id": "product"}),
        ),
        GoalTypeSpec(
            GoalType.APPOINTMENT_BOOKED,
            "Contact books an appointment",
            Topic.APPOINTMENT_BOOKED,
            AppointmentBookedCriteria,
            _match_appointment,
            lambda c: _refs(c, {"calendar_id": "calendar", "service_id": "service"}),
        ),
        GoalTypeSpec(
            GoalType.FORM_SUBMITTED,
            "Contact submits a specific form",
            Topic.FORM_SUBMITTED,
            FormSubmittedCriteria,
            _match_form,
            lambda c: _refs(c, {"form_id": "form"}),
        ),
        GoalTypeSpec(
            GoalType.PIPELINE_STAGE_REACHED,
            "Contact reaches a specific pipeline stage",
            Topic.PIPELINE_STAGE_CHANGED,
            PipelineStageReachedCriteria,
            _match_stage,
            _stage_refs,
        ),
    )
}

#: Which goal types a source event type can meet.
GOAL_TYPES_BY_SOURCE: dict[str, tuple[GoalType, ...]] = {}
for _spec in GOAL_TYPES.values():
    GOAL_TYPES_BY_SOURCE.setdefault(str(_spec.source), ())
    GOAL_TYPES_BY_SOURCE[str(_spec.source)] += (_spec.goal_type,)


class InvalidCriteria(ValueError):
    """Criteria that do not fit their goal type; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def parse_criteria(goal_type: GoalType | str, criteria: Any) -> _Criteria:
    """Validate ``criteria`` for ``goal_type``, or raise :class:`InvalidCriteria`."""
    try:
        spec = GOAL_TYPES[GoalType(goal_type)]
    except ValueError:
        raise InvalidCriteria([f"unknown goal type {goal_type!r}"]) from None
    if not isinstance(criteria, dict) or not criteria:
        raise InvalidCriteria([f"{spec.goal_type}: at least one goal criterion is required"])
    try:
        return spec.criteria_model.model_validate(criteria)
    except ValidationError as exc:
        raise InvalidCriteria(
            [
                f"{spec.goal_type}: " + (".".join(map(str, e["loc"])) + ": " if e["loc"] else "") + e["msg"]
                for e in exc.errors(include_url=False, include_input=False)
            ]
        ) from None


def canonical_criteria(goal_type: GoalType | str, criteria: Any) -> dict[str, Any]:
    """Criteria in one normal form (defaults dropped, decimals as strings).

    Two goals are duplicates (409) exactly when their type and canonical
    criteria are equal, however the client spelled them.
    """
    return parse_criteria(goal_type, criteria).model_dump(mode="json", exclude_defaults=True)


def criteria_json_schema(goal_type: GoalType) -> dict[str, Any]:
    return GOAL_TYPES[goal_type].criteria_model.model_json_schema()
