"""The configuration rules without a database (issue 10, items 5 and 12; R1, R2, R13)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from goal_engine.domain.configuration import (
    CatalogEntry,
    Conflict,
    GoalDraft,
    Unprocessable,
    activation_violations,
    canonical,
    catalog_refs,
    check_goal,
    duplicate_key,
)
from goal_engine.domain.goals import MAX_GOALS_PER_WORKFLOW

CATALOG = {
    ("tag", "tag-1"): CatalogEntry(None),
    ("pipeline", "p-1"): CatalogEntry(None),
    ("pipeline_stage", "s-1"): CatalogEntry("p-1"),
    ("pipeline_stage", "s-other"): CatalogEntry("p-2"),
}


def lookup(kind: str, entity_id: str) -> CatalogEntry | None:
    return CATALOG.get((kind, entity_id))


def goal(goal_type: str, criteria: dict[str, Any], id_: str | None = None) -> GoalDraft:
    return GoalDraft(goal_type, canonical(goal_type, criteria), id_)


def add(others: list[GoalDraft], new: GoalDraft, *, armed: bool = False) -> None:
    check_goal(others, new, creating=True, armed=armed, catalog=lookup)


def test_a_fourth_goal_is_422() -> None:
    three = [goal("form_submitted", {"form_id": f"f{i}"}, f"g{i}") for i in range(MAX_GOALS_PER_WORKFLOW)]
    with pytest.raises(Unprocessable, match="at most 3 goals"):
        add(three, goal("form_submitted", {"form_id": "f9"}))
    # Changing one of three is not adding a fourth.
    check_goal(
        three[1:],
        goal("form_submitted", {"form_id": "f9"}, "g0"),
        creating=False,
        armed=False,
        catalog=lookup,
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"min_amount": "50"}, {"min_amount": "50.00"}),
        ({"min_amount": 50}, {"min_amount": "5E+1"}),
        ({"min_amount": "0"}, {"min_amount": "0.000"}),
        ({"min_amount": "50", "currency": "EUR"}, {"currency": "EUR", "min_amount": 50.0}),
    ],
)
def test_amounts_spelt_differently_are_the_same_goal(first: dict[str, Any], second: dict[str, Any]) -> None:
    with pytest.raises(Conflict):
        add([goal("purchase_made", first, "g1")], goal("purchase_made", second))


@pytest.mark.parametrize(("first", "second"), [("VIP", "vip"), ("Straße", "STRASSE"), ("ViP", "vIp")])
def test_tag_names_differing_in_case_are_the_same_goal(first: str, second: str) -> None:
    with pytest.raises(Conflict):
        add([goal("tag_added", {"tag_name": first}, "g1")], goal("tag_added", {"tag_name": second}))


def test_different_criteria_and_ids_compared_exactly_are_different_goals() -> None:
    existing = [
        goal("purchase_made", {"min_amount": "50"}, "g1"),
        goal("tag_added", {"tag_id": "Tag-1"}, "g2"),
    ]
    add(existing, goal("purchase_made", {"min_amount": "50.01"}))
    add(existing, goal("purchase_made", {"min_amount": "50", "currency": "EUR"}))
    add(existing, goal("tag_added", {"tag_id": "tag-1"}))  # ids are case-sensitive
    add(existing, goal("tag_added", {"tag_name": "tag-1"}))


@given(
    amount=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    zeros=st.integers(min_value=0, max_value=6),
)
def test_an_amount_and_its_trailing_zeros_have_one_key(amount: Decimal, zeros: int) -> None:
    padded = f"{amount:f}" + ("" if "." in f"{amount:f}" or zeros == 0 else ".") + "0" * zeros
    assert duplicate_key("purchase_made", {"min_amount": f"{amount:f}"}) == duplicate_key(
        "purchase_made", {"min_amount": padded}
    )


@given(
    name=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x24F), min_size=1, max_size=40),
    respell=st.sampled_from([str.upper, str.lower, str.swapcase, str.title, str.casefold]),
)
def test_tag_names_are_one_goal_exactly_when_they_fold_to_one_name(name: str, respell: Any) -> None:
    other = respell(name)
    same = duplicate_key("tag_added", {"tag_name": name}) == duplicate_key("tag_added", {"tag_name": other})
    assert same == (name.casefold() == other.casefold())


def test_an_armed_goal_must_reference_what_the_catalog_holds() -> None:
    missing = goal("tag_added", {"tag_id": "nope"})
    add([], missing, armed=False)  # inactive workflow: checked at activation
    with pytest.raises(Unprocessable) as err:
        add([], missing, armed=True)
    assert err.value.errors == ["goal (tag_added): tag_id 'nope': no such tag in the catalog"]
    add([], goal("tag_added", {"tag_id": "tag-1"}), armed=True)


def test_every_violation_of_a_goal_is_listed() -> None:
    booked = goal("appointment_booked", {"calendar_id": "c-x", "service_id": "s-x"}, "g1")
    with pytest.raises(Unprocessable) as err:
        check_goal([], booked, creating=False, armed=True, catalog=lookup)
    assert err.value.errors == [
        "goal g1 (appointment_booked): calendar_id 'c-x': no such calendar in the catalog",
        "goal g1 (appointment_booked): service_id 's-x': no such service in the catalog",
    ]


def test_activation_lists_the_violations_of_every_goal() -> None:
    goals = [
        goal("pipeline_stage_reached", {"pipeline_id": "p-1", "stage_id": "s-other"}, "g1"),
        goal("tag_added", {"tag_id": "tag-1"}, "g2"),
        GoalDraft("form_submitted", {"form_id": "f", "extra": 1}, "g3"),  # stored before a rule tightened
        goal("form_submitted", {"form_id": "f-missing"}, "g4"),
    ]
    violations = activation_violations(goals, lookup)
    assert (
        violations[0]
        == "goal g1 (pipeline_stage_reached): stage_id 's-other' is not a stage of pipeline 'p-1'"
    )
    assert violations[1].startswith("goal g3 (form_submitted): invalid criteria: ")
    assert violations[2] == "goal g4 (form_submitted): form_id 'f-missing': no such form in the catalog"
    assert len(violations) == 3
    assert activation_violations(goals[1:2], lookup) == []


def test_the_lookup_covers_exactly_the_references() -> None:
    refs = catalog_refs(
        [goal("pipeline_stage_reached", {"pipeline_id": "p", "stage_id": "s"}), GoalDraft("x", {})]
    )
    assert [(r.kind, r.entity_id) for r in refs] == [("pipeline", "p"), ("pipeline_stage", "s")]


def test_criteria_that_do_not_fit_are_422_with_every_problem() -> None:
    with pytest.raises(Unprocessable) as err:
        canonical("purchase_made", {"currency": "eur", "min_amount": -1})
    assert len(err.value.errors) == 2
