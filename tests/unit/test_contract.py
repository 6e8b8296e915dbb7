"""The contract as code: envelope validation, reasons for bad input, schemas/ in step."""

from __future__ import annotations

import json

import pytest

from goal_engine import schemas_gen
from goal_engine.contract.events import MAX_EVENT_BYTES, InvalidEvent, parse_event
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
