"""Control records the worker sends itself on ``goal_engine.contact-events``.

Some work must happen in the contact's partition (the only place its state
may be written), but starts elsewhere: a configuration change (re-evaluate the
contact's kept events, rule 2 of :mod:`goal_engine.domain.evaluation`) or the
sweeper (forget what has expired). Such a record has an empty value and says
what to do in a header, so no consumer can mistake it for a contract event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

from goal_engine.contract.events import ID_PATTERN, TENANT_ID_PATTERN

HEADER = "goal-engine-control"
OPS = ("rescan", "sweep")


class InvalidControl(ValueError):
    """A control header the worker did not write (forged, or from another version)."""


@dataclass(frozen=True)
class Control:
    op: str  # "rescan" or "sweep"
    tenant_id: str
    contact_id: str
    workflow_id: str | None = None

    def header(self) -> list[tuple[str, bytes]]:
        return [(HEADER, json.dumps(self.__dict__).encode())]


def read_control(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Control | None:
    """The control a record's headers carry, None if none; :class:`InvalidControl` if malformed.

    Anyone who can write to the topic can forge a header, so each field is
    checked as strictly as a contract event's.
    """
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == HEADER:
            return _parse(value)
    return None


_FIELDS = {f.name for f in fields(Control)}
_RULES = {
    "tenant_id": re.compile(TENANT_ID_PATTERN),
    "contact_id": re.compile(ID_PATTERN),
    "workflow_id": re.compile(ID_PATTERN),
}


def _parse(value: bytes | None) -> Control:
    try:
        raw = json.loads(value or b"")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidControl("invalid control header: not JSON") from None
    if not isinstance(raw, dict) or set(raw) - _FIELDS or raw.get("op") not in OPS:
        raise InvalidControl(f"invalid control header: expected {sorted(_FIELDS)} with op in {OPS}")
    for name, rule in _RULES.items():
        field_value = raw.get(name)
        optional = name == "workflow_id" and raw["op"] == "sweep"
        if field_value is None and optional:
            continue
        if not isinstance(field_value, str) or len(field_value) > 200 or not rule.fullmatch(field_value):
            raise InvalidControl(f"invalid control header: bad {name}")
    return Control(**raw)
