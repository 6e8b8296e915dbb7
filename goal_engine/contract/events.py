"""The CloudEvents 1.0 envelope and the ``data`` of every event type.

These models *are* the contract of section 1: ``schemas/`` is generated from
them (``goal-engine schemas``) and a test fails when the two drift apart.
Unknown extra attributes and data fields are ignored, as the contract says.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from goal_engine.contract.topics import Topic

#: An identifier from another module: any non-empty string without control
#: characters, bounded so a hostile producer cannot blow up state or rows.
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Id = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=ID_PATTERN)]
#: A tenant id: an id without ':' either, so ``tenant:contact`` and
#: ``tenant:workflow`` keys split one way only (the rule the API applies to tokens).
TENANT_ID_PATTERN = r"^[^\x00-\x1f\x7f:]+$"
TENANT_ID_MAX_LENGTH = 200
TenantId = Annotated[
    str, StringConstraints(min_length=1, max_length=TENANT_ID_MAX_LENGTH, pattern=TENANT_ID_PATTERN)
]
#: A display name: anything but NUL, which PostgreSQL cannot store in TEXT or JSONB.
NAME_PATTERN = r"^[^\x00]*$"
Name = Annotated[str, StringConstraints(max_length=500, pattern=NAME_PATTERN)]

#: Largest record value the engine accepts; larger ones are dead-lettered.
MAX_EVENT_BYTES = 256 * 1024
#: Deepest nesting of arrays and objects an event may have. Contract events are
#: 3-4 levels deep; the libraries that copy, store and encode an event recurse
#: (pydantic gives up at ~255 levels, the json module at ~1000).
MAX_NESTING = 64
#: The window of times an event may carry. Before 1970 or in the far future, a
#: time is a producer's bug, and it overflows the date arithmetic of the worker
#: (retention), the projector (PostgreSQL's range) and the partitions.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
#: How far ahead of our clock an event's ``time`` may be (producers' clock skew).
MAX_CLOCK_SKEW = timedelta(days=1)
#: How far ahead a time inside ``data`` may be (an appointment booked ahead, say).
MAX_DATA_FUTURE = timedelta(days=3660)


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- consumed, contact-scoped -------------------------------------------------


class TagAdded(_Data):
    tag_id: Id
    tag_name: Name


class PaymentCompleted(_Data):
    transaction_id: Id
    amount: Decimal = Field(allow_inf_nan=False, description='decimal as a string, e.g. "49.99"')
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    product_ids: list[Id] = Field(max_length=1000)


class AppointmentBooked(_Data):
    appointment_id: Id
    calendar_id: Id
    service_id: Id | None = None
    starts_at: AwareDatetime


class FormSubmitted(_Data):
    form_id: Id
    submission_id: Id


class PipelineStageChanged(_Data):
    pipeline_id: Id
    stage_id: Id
    previous_stage_id: Id | None = None
    opportunity_id: Id


class EnrollmentStarted(_Data):
    workflow_id: Id
    enrollment_id: Id


class EnrollmentEnded(_Data):
    workflow_id: Id
    enrollment_id: Id
    reason: Literal["completed", "exited", "removed"]


# --- consumed, reference data -------------------------------------------------


class CatalogEntityChanged(_Data):
    kind: Literal["tag", "form", "pipeline", "pipeline_stage", "product", "calendar", "service"]
    entity_id: Id
    name: Name
    parent_id: Id | None = None
    deleted: bool = False


# --- published ----------------------------------------------------------------

GoalTypeName = Literal[
    "tag_added", "purchase_made", "appointment_booked", "form_submitted", "pipeline_stage_reached"
]
WorkflowLogic = Literal["any", "all"]


class GoalConfig(_Data):
    id: Id
    workflow_id: Id
    goal_type: GoalTypeName
    criteria: dict[str, Any]
    is_active: bool = True
    created_at: AwareDatetime
    updated_at: AwareDatetime


class WorkflowSnapshot(_Data):
    """The whole configuration of one workflow after a change.

    Every configuration event carries it, so the worker replaces its state
    wholesale and a reordered or repeated event is harmless: ``version``
    only grows, and an older snapshot is ignored.
    """

    workflow_id: Id
    version: int = Field(ge=1)
    status: Literal["active", "inactive"]
    logic: WorkflowLogic = "any"
    activated_at: AwareDatetime | None = None
    goals: list[GoalConfig] = Field(default_factory=list, max_length=3)


class GoalConfigured(_Data):
    """``workflow.goal.configured``: the goal after a create, update or delete.

    ``operation`` ``settings_updated`` is our extension for ``PUT goal-settings``:
    no single goal changed, so ``goal`` is null and only the snapshot matters.
    """

    operation: Literal["created", "updated", "deleted", "settings_updated"]
    goal: GoalConfig | None
    workflow: WorkflowSnapshot


class WorkflowStatusChanged(_Data):
    """``workflow.activated`` / ``workflow.deactivated``."""

    workflow_id: Id
    workflow: WorkflowSnapshot


class TriggerEvent(_Data):
    id: str
    type: str
    time: datetime
    data: dict[str, Any]


class GoalAchieved(_Data):
    """``workflow.goal.achieved``: the spec's GoalAchievement."""

    id: str
    workflow_id: Id
    workflow_enrollment_id: Id
    contact_id: Id
    goal_config_id: Id
    goal_type: GoalTypeName
    achieved_at: AwareDatetime
    trigger_event: TriggerEvent
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Beyond the spec: lets the projector time the goal (achieved_at - enrolled_at)
    # even when it reads the achievement before the enrollment's start.
    enrolled_at: AwareDatetime | None = None


class ExitGoal(_Data):
    """``workflow.exit.goal``: the enrollment leaves its workflow on a goal."""

    workflow_id: Id
    workflow_enrollment_id: Id
    contact_id: Id
    status: Literal["completed_goal"] = "completed_goal"
    goal_config_ids: list[Id]
    exited_at: AwareDatetime
    enrolled_at: AwareDatetime | None = None


class DeadLetter(_Data):
    """``goal_engine.dead_letter``: a record the engine could not accept.

    The original bytes are copied unless the record is too large to copy
    within Kafka's 1 MB producer limit: then ``value_b64`` (and ``key_b64``)
    are null and the letter refers to the record by topic, partition and
    offset, with its ``size``.
    """

    reason: str
    source_topic: str
    partition: int
    offset: int
    size: int | None = Field(None, description="bytes of the record's key and value")
    key_b64: str | None
    value_b64: str | None


#: The ``data`` model of every event type of the contract.
DATA_MODELS: dict[Topic, type[_Data]] = {
    Topic.TAG_ADDED: TagAdded,
    Topic.PAYMENT_COMPLETED: PaymentCompleted,
    Topic.APPOINTMENT_BOOKED: AppointmentBooked,
    Topic.FORM_SUBMITTED: FormSubmitted,
    Topic.PIPELINE_STAGE_CHANGED: PipelineStageChanged,
    Topic.ENROLLMENT_STARTED: EnrollmentStarted,
    Topic.ENROLLMENT_ENDED: EnrollmentEnded,
    Topic.CATALOG_ENTITY_CHANGED: CatalogEntityChanged,
    Topic.GOAL_CONFIGURED: GoalConfigured,
    Topic.WORKFLOW_ACTIVATED: WorkflowStatusChanged,
    Topic.WORKFLOW_DEACTIVATED: WorkflowStatusChanged,
    Topic.GOAL_ACHIEVED: GoalAchieved,
    Topic.EXIT_GOAL: ExitGoal,
    Topic.DEAD_LETTER: DeadLetter,
}

CONTACT_SCOPED_TYPES = frozenset(
    {
        Topic.TAG_ADDED,
        Topic.PAYMENT_COMPLETED,
        Topic.APPOINTMENT_BOOKED,
        Topic.FORM_SUBMITTED,
        Topic.PIPELINE_STAGE_CHANGED,
        Topic.ENROLLMENT_STARTED,
        Topic.ENROLLMENT_ENDED,
        Topic.GOAL_ACHIEVED,
        Topic.EXIT_GOAL,
    }
)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"]
    id: Id
    source: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    time: AwareDatetime = Field(description="RFC 3339 with offset: when it happened")
    tenantid: TenantId
    subject: Id | None = Field(default=None, description="the contact id")
    datacontenttype: Annotated[str, StringConstraints(max_length=200)] | None = "application/json"
    data: dict[str, Any]

    def typed_data(self) -> Any:
        """``data`` as the model of this event's type (validated at parse time)."""
        return DATA_MODELS[Topic(self.type)].model_validate(self.data)


class InvalidEvent(ValueError):
    """A record that is not a valid event of its topic.

    ``reason`` says why, for the people who fix the producer; ``code`` is one
    of a fixed few words, for metric labels (a reason can hold anything).
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def parse_event(
    value: bytes | None, expected_type: str | None = None, now: datetime | None = None
) -> CloudEvent:
    """Parse and validate one record value, or raise :class:`InvalidEvent`.

    The reason is short and names the first problem, so a dead letter tells
    the producing team what to fix. ``now`` (default: the clock) bounds how
    far ahead an event's times may be.
    """
    return parse_typed_event(value, expected_type, now)[0]


def parse_typed_event(
    value: bytes | None, expected_type: str | None = None, now: datetime | None = None
) -> tuple[CloudEvent, Any]:
    """:func:`parse_event`, and the event's ``data`` as the model of its type: the one
    validation ``parse_event`` makes (``event.typed_data()`` would validate it again)."""
    if value is None:
        raise InvalidEvent("empty", "empty record (tombstone)")
    if len(value) > MAX_EVENT_BYTES:
        raise InvalidEvent("oversized", f"oversized record: {len(value)} bytes > {MAX_EVENT_BYTES}")
    # Before decoding: json.loads itself recurses, and gives up past ~1000 levels.
    # (Counting the brackets first is cheap, and enough for nearly every record.)
    openings = value.count(b"[") + value.count(b"{")
    if openings > MAX_NESTING and (depth := nesting_depth(value)) > MAX_NESTING:
        raise InvalidEvent("too_deep", f"nested too deep: {depth} levels > {MAX_NESTING}")
    try:
        # Strict UTF-8 (json.loads would also take UTF-16 or raw surrogates from bytes).
        raw = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidEvent("malformed_json", f"malformed JSON: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise InvalidEvent("malformed_json", f"malformed JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidEvent("not_an_object", "malformed event: the value is not a JSON object")
    if _MAYBE_BAD_CHARACTER.search(value) and (bad := _bad_character(raw)) is not None:
        # Unknown fields travel on (trigger_event.data): one NUL would stall the read
        # models, and a lone surrogate cannot be encoded as UTF-8 by anyone downstream.
        raise InvalidEvent("invalid_characters", f"invalid characters: {bad} in the event")
    try:
        event = CloudEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent("invalid_envelope", f"invalid envelope: {_first_error(exc)}") from None
    if expected_type is not None and event.type != expected_type:
        raise InvalidEvent("wrong_type", f"wrong type: {event.type!r} on the topic of {expected_type!r}")
    try:
        topic = Topic(event.type)
    except ValueError:
        raise InvalidEvent("unknown_type", f"unknown event type {event.type!r}") from None
    if topic in CONTACT_SCOPED_TYPES and not event.subject:
        raise InvalidEvent("missing_subject", f"missing subject (the contact id) on {event.type}")
    try:
        data = DATA_MODELS[topic].model_validate(event.data)
    except ValidationError as exc:
        raise InvalidEvent("invalid_data", f"invalid data for {event.type}: {_first_error(exc)}") from None
    now = now or datetime.now(UTC)
    _check_time("time", event.time, now + MAX_CLOCK_SKEW)
    for where, value_time in _data_times(data):
        _check_time(f"data.{where}", value_time, now + MAX_DATA_FUTURE)
    return event, data


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(value: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest, without recursing.

    Strings are cut out first (a bracket in a string does not nest), then only
    the brackets are left to count: a few per ordinary event.
    """
    brackets = _STRING.sub(b"", value).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for b in brackets:
        depth += 1 if b in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
#: In strict UTF-8 JSON text a NUL or a lone surrogate can only be written as an
#: escape (raw, the decoder refuses it): without such an escape, nothing to look for.
_MAYBE_BAD_CHARACTER = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _bad_character(raw: Any) -> str | None:
    """The first NUL or lone surrogate in any key or string of a decoded event."""
    stack = [raw]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack += value.keys()
            stack += value.values()
        elif isinstance(value, list):
            stack += value
        elif isinstance(value, str) and (found := _BAD_CHARACTER.search(value)):
            return "a NUL (\\u0000)" if found.group() == "\x00" else "a lone surrogate"
    return None


def _data_times(model: BaseModel, where: str = "") -> list[tuple[str, datetime]]:
    """Every datetime of a validated ``data`` model, nested models included."""
    found: list[tuple[str, datetime]] = []
    for name in _timed_fields(type(model)):
        value = getattr(model, name)
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for i, item in items:
            path = f"{where}{name}" if i is None else f"{where}{name}.{i}"
            if isinstance(item, datetime):
                found.append((path, item))
            elif isinstance(item, BaseModel):
                found += _data_times(item, f"{path}.")
    return found


@cache
def _timed_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` that can hold a datetime once validated, in their order: those
    whose schema has a date-time or a nested model (walked in turn). Any other field holds
    what JSON decodes to (``Any`` included), never a datetime or a model."""
    properties = model.model_json_schema()["properties"]
    return tuple(
        name
        for name, field in model.model_fields.items()
        if re.search(r'"date-time"|"\$ref"', json.dumps(properties[field.alias or name]))
    )


def _check_time(where: str, value: datetime, latest: datetime) -> None:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # trigger_event.time
    if not EARLIEST_TIME <= aware <= latest:
        raise InvalidEvent(
            "time_out_of_range",
            f"{where} out of range: {value.isoformat()} is not between "
            f"{EARLIEST_TIME.isoformat()} and {latest.isoformat(timespec='seconds')}",
        )


#: What a pattern refuses, in words (pydantic's message only quotes the pattern).
_PATTERN_RULES = {
    TENANT_ID_PATTERN: "must be non-empty, without ':' or control characters",
    ID_PATTERN: "must be non-empty, without control characters",
    NAME_PATTERN: "must not contain NUL",
}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    pattern = str(err.get("ctx", {}).get("pattern")) if err["type"] == "string_pattern_mismatch" else ""
    return f"{where}: {_PATTERN_RULES.get(pattern, err['msg'])}"[:300]


def make_event(
    topic: Topic,
    *,
    event_id: str,
    tenant_id: str,
    time: datetime,
    data: _Data,
    subject: str | None = None,
    source: str = "goal-engine",
) -> CloudEvent:
    """Build an event the engine publishes; ``data`` is serialised in JSON mode."""
    return CloudEvent(
        specversion="1.0",
        id=event_id,
        source=source,
        type=str(topic),
        time=time,
        tenantid=tenant_id,
        subject=subject,
        data=data.model_dump(mode="json"),
    )


def encode_event(event: CloudEvent) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()
