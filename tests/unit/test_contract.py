"""The contract as code: envelope validation, reasons for bad input, schemas/ in step."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from goal_engine import schemas_gen
from goal_engine.contract.events import (
    MAX_EVENT_BYTES,
    MAX_NESTING,
    InvalidEvent,
    nesting_depth,
    parse_event,
    parse_typed_event,
)
from goal_engine.core.security import InvalidToken, mint_token, verify_token

SECRET = "unit-test-secret-of-at-least-32-bytes"

GOOD = {
    "specversion": "1.0",
    "id": "ev-1",
    "source": "crm",
    "type": "contact.tag.added",
    "time": "2026-01-01T10:00:00+02:00",
    "tenantid": "t1",
    "subject": "c1",
    "data": {"tag_id": "tag-1", "tag_name": "Purchased", "extra": "ignored"},
    "unknownattr": "ignored",
}


def raw(**changes: object) -> bytes:
    event = {**GOOD, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


def test_a_valid_event_parses_and_ignores_unknown_fields() -> None:
    event = parse_event(raw(), "contact.tag.added")
    assert event.typed_data().tag_name == "Purchased"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "not a JSON object"),
        (raw(specversion="0.3"), "invalid envelope: specversion"),
        (raw(tenantid=""), "invalid envelope: tenantid"),
        (raw(tenantid=None), "invalid envelope: tenantid"),
        (raw(time="yesterday"), "invalid envelope: time"),
        (raw(time="2026-01-01T10:00:00"), "invalid envelope: time"),  # no offset
        (raw(subject=None), "missing subject"),
        (raw(type="contact.tag.removed"), "wrong type"),
        (raw(data={"tag_id": "x"}), "invalid data for contact.tag.added: tag_name"),
        (raw(data={"tag_id": 5, "tag_name": "x"}), "tag_id"),
        (b" " * (MAX_EVENT_BYTES + 1), "oversized record"),
        (raw(subject="c\x001"), "NUL"),
        (raw(data={**GOOD["data"], "note": "a\x00b"}), "NUL"),  # even in an ignored field
        (raw(tenantid="t\n1"), "invalid envelope: tenantid"),
        (None, "tombstone"),
    ],
)
def test_bad_input_is_refused_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        parse_event(value, "contact.tag.added")
    assert reason in err.value.reason


def nested(levels: int) -> bytes:
    """The good event with an ignored data field nested ``levels`` deep in all.

    Written as text: the json module cannot even encode 5000 levels.
    """
    inner = levels - 2  # the envelope and data objects are the first two levels
    return raw(data={**GOOD["data"], "deep": "DEEP"}).replace(b'"DEEP"', b"[" * inner + b"1" + b"]" * inner)


@pytest.mark.parametrize(
    ("value", "code", "reason"),
    [
        # ':' in a tenant id would make tenant "a" contact "b:c" and tenant "a:b" contact "c"
        # one key, "a:b:c" (issue 10, item 3).
        (raw(tenantid="a:b"), "invalid_envelope", "tenantid: must be non-empty, without ':'"),
        (raw(tenantid="t\x7f"), "invalid_envelope", "tenantid"),
        (raw(datacontenttype="x" * 1000), "invalid_envelope", "datacontenttype"),  # kept with the event
        (nested(256), "too_deep", "256 levels"),
        (nested(339), "too_deep", "339 levels"),
        (nested(5000), "too_deep", "5000 levels"),
        (b"[" * 100_000, "too_deep", "100000 levels"),
        (raw(data={**GOOD["data"], "note": "\ud800"}), "invalid_characters", "lone surrogate"),
        (raw(data={**GOOD["data"], "\udfff": 1}), "invalid_characters", "lone surrogate"),
        (raw(time="0001-01-01T00:00:00+01:00"), "time_out_of_range", "time out of range"),
        (raw(time="1969-12-31T23:59:59Z"), "time_out_of_range", "time out of range"),
        (raw(time="9999-12-31T23:59:00Z"), "time_out_of_range", "time out of range"),
        (raw(time="2026-01-03T10:00:00Z"), "time_out_of_range", "time out of range"),  # > now + 1 day
        (
            raw(
                type="appointment.booked",
                data={"appointment_id": "a", "calendar_id": "c", "starts_at": "9999-12-31T23:59:00Z"},
            ),
            "time_out_of_range",
            "data.starts_at out of range",
        ),
    ],
)
def test_hostile_input_is_refused_with_a_reason(value: bytes, code: str, reason: str) -> None:
    """Records that once passed validation and then crashed the worker or the projector."""
    with pytest.raises(InvalidEvent) as err:
        parse_event(value, now=NOW)
    assert (err.value.code, reason in err.value.reason) == (code, True), err.value.reason


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_what_looks_hostile_but_is_not_is_accepted() -> None:
    ok = [
        nested(MAX_NESTING),
        raw(data={**GOOD["data"], "note": "[[[[{{{{" * 100}),  # brackets in a string do not nest
        raw(data={**GOOD["data"], "note": "\U0001f600 \ud83d\ude00"}),  # pairs are characters
        raw(time="1970-01-01T00:00:00Z"),
        raw(time="2026-01-02T11:59:00Z"),  # within the clock skew allowed
        raw(subject="b:c"),  # a contact id may hold ':' (the tenant id cannot)
    ]
    for value in ok:
        parse_event(value, now=NOW)


def test_the_nesting_depth_ignores_strings_and_needs_no_recursion() -> None:
    assert nesting_depth(b'{"a": "[[[[\\"[[", "b": [[1], {"c": []}]}') == 4
    assert nesting_depth(b"[" * 1_000_000) == 1_000_000


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="unknown event type"):
        parse_event(raw(type="contact.tag.removed"))


def test_amounts_are_decimals_never_floats() -> None:
    data = {"transaction_id": "t", "amount": "0.30", "currency": "USD", "product_ids": []}
    event = parse_event(raw(type="payment.completed", data=data))
    assert str(event.typed_data().amount) == "0.30"
    with pytest.raises(InvalidEvent):
        parse_event(raw(type="payment.completed", data={**data, "amount": "Infinity"}))


def test_schemas_directory_matches_the_models() -> None:
    assert schemas_gen.drift() == [], "run: goal-engine schemas"


def test_schemas_drift_is_detected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schemas_gen.write(tmp_path)
    (tmp_path / "contact.tag.added.schema.json").write_text("{}")
    (tmp_path / "stray.schema.json").write_text("{}")
    assert schemas_gen.drift(tmp_path) == ["contact.tag.added.schema.json", "stray.schema.json"]


def test_tokens_pin_the_algorithm_and_require_expiry() -> None:
    token = mint_token(SECRET, tenant_id="t1", subject="u", scopes=["workflows:read"], ttl_seconds=60)
    principal = verify_token(SECRET, token)
    assert (principal.tenant_id, principal.scopes) == ("t1", frozenset({"workflows:read"}))
    with pytest.raises(InvalidToken):
        verify_token(SECRET + "x", token)
    expired = mint_token(SECRET, tenant_id="t1", subject="u", scopes=[], ttl_seconds=-10)
    with pytest.raises(InvalidToken):
        verify_token(SECRET, expired)
    import jwt

    unsigned = jwt.encode({"sub": "u", "tenant_id": "t1", "exp": 2**40}, key=None, algorithm="none")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, unsigned)


GOOD_TEXT = raw()


@pytest.mark.parametrize(
    "value",
    [
        GOOD_TEXT.replace(b'"Purchased"', b'"Purc\xed\xa0\x80hased"'),  # a raw surrogate, no escape
        GOOD_TEXT.decode().encode("utf-16"),
        GOOD_TEXT.decode().encode("utf-16-le"),
        GOOD_TEXT.replace(b'"Purchased"', b'"Purc\x00hased"'),  # a raw NUL
    ],
)
def test_only_strict_utf8_json_is_read(value: bytes) -> None:
    # The fast paths of parse_event look for escapes in the raw bytes: nothing may get
    # around them by another encoding.
    with pytest.raises(InvalidEvent, match="malformed JSON"):
        parse_event(value, now=NOW)


def _achievement_and_exit() -> list[tuple[str, dict[str, object]]]:
    from goal_engine.bench.projector import achievement

    records = achievement(0, "t1", "wf-1", random.Random(1), NOW).records
    return [(topic.value, json.loads(value)) for topic, _, value in records]


@pytest.mark.parametrize(
    ("type_", "path"),
    [
        ("workflow.goal.achieved", "achieved_at"),
        ("workflow.goal.achieved", "enrolled_at"),
        ("workflow.goal.achieved", "trigger_event.time"),  # in a nested model
        ("workflow.exit.goal", "exited_at"),
        ("workflow.exit.goal", "enrolled_at"),
    ],
)
def test_every_time_in_the_data_is_bounded_nested_ones_too(type_: str, path: str) -> None:
    """The walk for datetimes visits only the fields whose schema can hold one: it must
    still find every one of them, however deep."""
    event = dict(_achievement_and_exit())[type_]
    assert parse_typed_event(json.dumps(event).encode(), type_, now=NOW)[1] is not None
    target = event["data"]
    *parents, leaf = path.split(".")
    for name in parents:
        target = target[name]  # type: ignore[index]
    target[leaf] = "9999-12-31T23:59:00Z"  # type: ignore[index]
    with pytest.raises(InvalidEvent) as err:
        parse_event(json.dumps(event).encode(), type_, now=NOW)
    assert f"data.{path} out of range" in err.value.reason


def test_parse_typed_event_validates_data_once_as_typed_data_would() -> None:
    for type_, event in _achievement_and_exit():
        parsed, data = parse_typed_event(json.dumps(event).encode(), type_, now=NOW)
        assert data == parsed.typed_data()
