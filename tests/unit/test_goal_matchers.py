"""R2-R7: one table per goal type, match and no match, boundaries included."""

from __future__ import annotations

from typing import Any

import pytest

from goal_engine.domain.goals import GOAL_TYPES, GoalType, InvalidCriteria, canonical_criteria, parse_criteria
from tests.unit import factories as f


def matches(goal_type: str, criteria: dict[str, Any], ev: Any) -> bool:
    spec = GOAL_TYPES[GoalType(goal_type)]
    assert spec.source == ev.type
    return spec.matches(parse_criteria(goal_type, criteria), ev.typed_data())


def test_the_five_goal_types_of_the_spec() -> None:  # R2
    assert {t.value for t in GOAL_TYPES} == {
        "tag_added",
        "purchase_made",
        "appointment_booked",
        "form_submitted",
        "pipeline_stage_reached",
    }


@pytest.mark.parametrize(
    ("criteria", "ev", "expected"),
    [
        ({"tag_id": "tag-1"}, f.tag(tag_id="tag-1"), True),
        ({"tag_id": "tag-1"}, f.tag(tag_id="tag-2"), False),
        ({"tag_name": "purchased"}, f.tag(name="PURCHASED"), True),  # case-insensitive
        ({"tag_name": "straße"}, f.tag(name="STRASSE"), True),  # casefold, not lower
        ({"tag_name": "Purchased"}, f.tag(name="Purchased later"), False),
        ({"tag_id": "tag-1", "tag_name": "VIP"}, f.tag(tag_id="tag-1", name="Purchased"), False),
        ({"tag_id": "tag-1", "tag_name": "vip"}, f.tag(tag_id="tag-1", name="VIP"), True),
    ],
)
def test_tag_added(criteria: dict[str, Any], ev: Any, expected: bool) -> None:  # R3
    assert matches("tag_added", criteria, ev) is expected


@pytest.mark.parametrize(
    ("criteria", "ev", "expected"),
    [
        ({"any_purchase": True}, f.payment(amount="0.01"), True),
        ({"product_id": "p1"}, f.payment(products=("p0", "p1")), True),
        ({"product_id": "p1"}, f.payment(products=("p2",)), False),
        ({"product_id": "p1"}, f.payment(products=()), False),
        ({"min_amount": "49.99"}, f.payment(amount="49.99"), True),  # equal counts
        ({"min_amount": "49.99"}, f.payment(amount="49.989"), False),
        ({"min_amount": "0.3"}, f.payment(amount="0.30"), True),  # decimals, not floats
        ({"min_amount": "100", "currency": "EUR"}, f.payment(amount="150", currency="USD"), False),
        ({"min_amount": "100", "currency": "EUR"}, f.payment(amount="150", currency="EUR"), True),
        ({"product_id": "p1", "min_amount": "10"}, f.payment(amount="9.99", products=("p1",)), False),
        ({"product_id": "p1", "min_amount": "10"}, f.payment(amount="10", products=("p1",)), True),
    ],
)
def test_purchase_made(criteria: dict[str, Any], ev: Any, expected: bool) -> None:  # R4
    assert matches("purchase_made", criteria, ev) is expected


def _appointment(calendar: str = "cal-1", service: str | None = "svc-1") -> Any:
    data = {
        "appointment_id": "a1",
        "calendar_id": calendar,
        "service_id": service,
        "starts_at": "2026-02-01T10:00:00+01:00",
    }
    return f.event("appointment.booked", data)


@pytest.mark.parametrize(
    ("criteria", "ev", "expected"),
    [
        ({"any_appointment": True}, _appointment(service=None), True),
        ({"calendar_id": "cal-1"}, _appointment(), True),
        ({"calendar_id": "cal-1"}, _appointment(calendar="cal-2"), False),
        ({"service_id": "svc-1"}, _appointment(service=None), False),
        ({"calendar_id": "cal-1", "service_id": "svc-2"}, _appointment(), False),
        ({"calendar_id": "cal-1", "service_id": "svc-1"}, _appointment(), True),
    ],
)
def test_appointment_booked(criteria: dict[str, Any], ev: Any, expected: bool) -> None:  # R5
    assert matches("appointment_booked", criteria, ev) is expected


@pytest.mark.parametrize(("form", "expected"), [("form-1", True), ("form-2", False)])
def test_form_submitted(form: str, expected: bool) -> None:  # R6
    ev = f.event("form.submitted", {"form_id": form, "submission_id": "s1"})
    assert matches("form_submitted", {"form_id": "form-1"}, ev) is expected


@pytest.mark.parametrize(
    ("pipeline", "stage", "expected"),
    [("pl-1", "st-won", True), ("pl-1", "st-lost", False), ("pl-2", "st-won", False)],
)
def test_pipeline_stage_reached(pipeline: str, stage: str, expected: bool) -> None:  # R7
    data = {"pipeline_id": pipeline, "stage_id": stage, "previous_stage_id": None, "opportunity_id": "o1"}
    ev = f.event("pipeline.stage.changed", data)
    assert matches("pipeline_stage_reached", {"pipeline_id": "pl-1", "stage_id": "st-won"}, ev) is expected


@pytest.mark.parametrize(
    ("goal_type", "criteria", "problem"),
    [
        ("tag_added", {}, "at least one goal criterion"),
        ("tag_added", {"tag_colour": "red"}, "Extra inputs"),
        ("purchase_made", {"any_purchase": False}, "any_purchase"),
        ("purchase_made", {"min_amount": "lots"}, "min_amount"),
        ("purchase_made", {"min_amount": "NaN"}, "min_amount"),
        ("purchase_made", {"currency": "EUR", "any_purchase": True}, "needs it"),
        ("appointment_booked", {"any_appointment": "maybe"}, "any_appointment"),
        ("form_submitted", {"form_id": 42}, "form_id"),
        ("pipeline_stage_reached", {"pipeline_id": "pl-1"}, "stage_id"),
        ("birthday", {"x": 1}, "unknown goal type"),
    ],
)
def test_invalid_criteria_are_refused_with_a_reason(
    goal_type: str, criteria: Any, problem: str
) -> None:  # R13
    with pytest.raises(InvalidCriteria) as err:
        parse_criteria(goal_type, criteria)
    assert problem in str(err.value)


def test_canonical_criteria_make_spelling_irrelevant() -> None:
    a = canonical_criteria("purchase_made", {"min_amount": "10.0", "any_purchase": False})
    b = canonical_criteria("purchase_made", {"min_amount": 10.0})
    assert a == b == {"min_amount": "10.0"}
