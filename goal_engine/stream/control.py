"""Control records the worker sends itself on ``goal_engine.contact-events``.

Some work must happen in the contact's partition (the only place its state
may be written), but starts elsewhere: a configuration change (re-evaluate the
contact's kept events, rule 2 of :mod:`goal_engine.domain.evaluation`) or the
sweeper (forget what has expired). Such a record has an empty value and says
what to do in a header, so no consumer can mistake it for a contract event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HEADER = "goal-engine-control"


@dataclass(frozen=True)
class Control:
    op: str  # "rescan" or "sweep"
    tenant_id: str
    contact_id: str
    workflow_id: str | None = None

    def header(self) -> list[tuple[str, bytes]]:
        return [(HEADER, json.dumps(self.__dict__).encode())]


def read_control(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Control | None:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == HEADER:
            return Control(**json.loads(value))
    return None
