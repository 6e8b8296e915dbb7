"""The OpenAPI document: an example on every schema, valid against it; every error documented.

A client generator and a workflow editor read this document, not our code: each
component schema must show a real body, each example must be one the schema
accepts (and, for goals, one the API accepts), and each operation must say
which errors it answers, all in the one error shape.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from goal_engine.api.schemas import CRITERIA_EXAMPLES, GOAL_CREATE_EXAMPLES
from goal_engine.domain.goals import GoalType, canonical_criteria
from tests.api_routes import CONTRACT, openapi_document

DOCUMENT = openapi_document()
COMPONENTS = DOCUMENT["components"]["schemas"]
OPERATIONS = {
    (method.upper(), path): operation
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
}
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


def validate(schema: dict[str, Any], example: Any) -> list[str]:
    """Why ``example`` does not fit ``schema`` (empty when it does), refs resolved in the document."""
    validator = jsonschema_rs.Draft202012Validator(
        {**schema, "components": DOCUMENT["components"]}, validate_formats=True
    )
    return [error.message for error in validator.iter_errors(example)]


def op_id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


def test_the_validator_can_fail() -> None:
    # Guards the guard: a wrong example must be reported, refs and formats included.
    assert validate({"$ref": "#/components/schemas/GoalOut"}, {"id": "g"})
    assert validate({"type": "string", "format": "date-time"}, "yesterday")


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_every_component_schema_has_a_valid_example(name: str) -> None:
    schema = COMPONENTS[name]
    examples = schema.get("examples") or ([schema["example"]] if "example" in schema else [])
    assert examples, f"{name} has no example"
    for example in examples:
        assert validate(schema, example) == [], f"{name}: {example!r}"


@pytest.mark.parametrize("key", sorted(OPERATIONS), ids=op_id)
def test_every_operation_documents_its_errors(key: tuple[str, str]) -> None:
    operation, rule = OPERATIONS[key], CONTRACT[key]
    assert operation.get("security") == [{"HTTPBearer": []}], "every documented operation needs the token"
    expected = {"401", "403", "422"}
    if rule.isolation == "addressed":
        expected.add("404")
    if rule.conflict:
        expected.add("409")
    errors = {status: r for status, r in operation["responses"].items() if status.startswith("4")}
    assert expected <= set(errors)
    assert ("409" in errors) == rule.conflict, "409 only where a duplicate is possible"
    for status, response in errors.items():
        media = response["content"]["application/json"]
        assert media["schema"] == ERROR_BODY, status
        assert validate(ERROR_BODY, media["example"]) == [], status
        assert response["description"] not in ("", "Successful Response")


@pytest.mark.parametrize("key", sorted(OPERATIONS), ids=op_id)
def test_every_example_of_an_operation_fits_its_schema(key: tuple[str, str]) -> None:
    operation = OPERATIONS[key]
    bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
    for body in bodies:
        for media in body.get("content", {}).values():
            examples = [e["value"] for e in media.get("examples", {}).values()]
            examples += [media["example"]] if "example" in media else []
            for example in examples:
                assert validate(media["schema"], example) == [], example


def test_the_goal_examples_are_goals_the_api_accepts() -> None:
    assert set(CRITERIA_EXAMPLES) == set(GoalType), "one example per goal type"
    media = OPERATIONS["POST", "/api/v1/workflows/{workflow_id}/goals"]["requestBody"]["content"]
    assert media["application/json"]["examples"] == GOAL_CREATE_EXAMPLES
    for example in GOAL_CREATE_EXAMPLES.values():
        body = example["value"]
        assert canonical_criteria(body["goal_type"], body["criteria"])  # raises when refused
