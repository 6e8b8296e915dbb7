"""Goal listeners held by this worker (R9, R10): what is armed, and who is waiting.

A listener is an (active enrollment, armed goal not yet met) pair. They are
not objects to register and unregister: they follow from the contact table
and the workflow configurations, so they cannot leak. This index only keeps
the counts that make the ``goal_engine_armed_listeners`` gauge exact at every
moment without scanning the table, and the contacts whose kept events must be
evaluated again when a workflow's configuration changes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from goal_engine.domain.evaluation import ContactState
from goal_engine.stream.workflow_configs import WorkflowConfigs

WorkflowKey = tuple[str, str]  # (tenant, workflow)
#: What the index needs of one contact: per active enrollment, its workflow and met goals,
#: and whether the contact keeps goal events for the grace window.
Summary = tuple[tuple[tuple[str, frozenset[str]], ...], bool]


def summarize(state: ContactState | None) -> Summary:
    if state is None:
        return (), False
    enrollments = tuple((e.workflow_id, frozenset(e.met_goals)) for e in state.active_enrollments)
    return enrollments, bool(state.recent)


class ListenerIndex:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._active: Counter[WorkflowKey] = Counter()  # active enrollments per workflow
        self._met: dict[WorkflowKey, Counter[str]] = defaultdict(
            Counter
        )  # goal -> active enrollments that met it
        self._waiting: dict[WorkflowKey, set[str]] = defaultdict(set)  # contact keys with kept events

    def update(self, key: str, tenant_id: str, before: Summary, after: Summary) -> None:
        if before == after:
            return
        self._apply(key, tenant_id, before, -1)
        self._apply(key, tenant_id, after, +1)

    def rebuild(self, states: Iterable[tuple[str, ContactState]]) -> None:
        self._reset()
        for key, state in states:
            self._apply(key, state.tenant_id, summarize(state), +1)

    def waiting_for(self, tenant_id: str, workflow_id: str) -> list[str]:
        return sorted(self._waiting.get((tenant_id, workflow_id), ()))

    def active_enrollments(self) -> int:
        return sum(self._active.values())

    def armed(self, configs: WorkflowConfigs) -> int:
        total = 0
        for (tenant, workflow), count in self._active.items():
            config = configs.get(tenant, workflow)
            if config is None or not count:
                continue
            armed = [g.id for g in config.armed_goals]
            met = self._met.get((tenant, workflow), Counter())
            total += count * len(armed) - sum(met[g] for g in armed)
        return total

    def _apply(self, key: str, tenant_id: str, summary: Summary, sign: int) -> None:
        enrollments, waiting = summary
        for workflow_id, met in enrollments:
            wk = (tenant_id, workflow_id)
            self._active[wk] += sign
            for goal_id in met:
                self._met[wk][goal_id] += sign
            if waiting and sign > 0:
                self._waiting[wk].add(key)
            elif sign < 0:
                self._waiting[wk].discard(key)
            if not self._active[wk]:
                # Nothing active left: drop the entries, so the index itself cannot grow without bound.
                del self._active[wk]
                self._met.pop(wk, None)
                self._waiting.pop(wk, None)
