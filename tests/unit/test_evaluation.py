"""R3-R11 in the pure domain: the enrollment state machine and goal evaluation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goal_engine.contract.events import CloudEvent
from goal_engine.domain import ids
from goal_engine.domain.enrollment import Enrollment, EnrollmentStatus, IllegalTransition
from goal_engine.domain.evaluation import Clock, ContactState
from goal_engine.domain.workflow import WorkflowConfig
from tests.unit import factories as f

GRACE = timedelta(seconds=60)
NOW = f.at(0)

TAG_GOAL = f.goal("tag_added", {"tag_name": "Purchased"}, "g-tag")
BUY_GOAL = f.goal("purchase_made", {"min_amount": "100"}, "g-buy")


def run(state: ContactState, wf: WorkflowConfig | None, *events, now=NOW):  # type: ignore[no-untyped-def]
    outcomes = [state.handle(e, lambda _id: wf, Clock(now, GRACE)) for e in events]
    return [a for o in outcomes for a in o.achievements], [x for o in outcomes for x in o.exits]


def new_state() -> ContactState:
    return ContactState("t1", "c1")


def test_tag_goal_exits_the_enrollment_with_deterministic_ids() -> None:  # R3, R8
    state = new_state()
    achievements, exits = run(state, f.workflow(TAG_GOAL), f.started(time=f.at(0)), f.tag(time=f.at(5)))
    assert [a.id for a in achievements] == [ids.achievement_id("t1", "en1", "g-tag")]
    assert achievements[0].achieved_at == f.at(5)
    assert [(x.id, x.goal_ids, x.enrolled_at) for x in exits] == [
        (ids.exit_id("t1", "en1"), ("g-tag",), f.at(0))
    ]
    assert state.enrollments["en1"].status is EnrollmentStatus.COMPLETED_GOAL


def test_nothing_is_evaluated_after_a_goal_exit() -> None:  # R8
    state = new_state()
    run(state, f.workflow(TAG_GOAL), f.started(time=f.at(0)), f.tag(time=f.at(5)))
    assert run(state, f.workflow(TAG_GOAL), f.tag(time=f.at(6))) == ([], [])


def test_a_non_matching_event_changes_nothing() -> None:
    state = new_state()
    assert run(state, f.workflow(TAG_GOAL), f.started(), f.tag(name="Other", time=f.at(1))) == ([], [])
    assert state.enrollments["en1"].is_active


def test_no_retroactive_goals() -> None:  # constraint: not evaluated retroactively
    state = new_state()
    assert run(state, f.workflow(TAG_GOAL), f.started(time=f.at(10)), f.tag(time=f.at(9))) == ([], [])


def test_an_event_before_activation_does_not_count() -> None:
    state = new_state()
    wf = f.workflow(TAG_GOAL, activated_at=f.at(20))
    assert run(state, wf, f.started(time=f.at(0)), f.tag(time=f.at(10))) == ([], [])


def test_an_event_processed_before_its_enrollment_counts_within_grace() -> None:
    state = new_state()
    _, exits = run(state, f.workflow(TAG_GOAL), f.tag(time=f.at(5)), f.started(time=f.at(1)), now=f.at(30))
    assert len(exits) == 1


def test_an_event_processed_before_its_enrollment_expires_after_grace() -> None:
    state = new_state()
    wf = f.workflow(TAG_GOAL)
    state.handle(f.tag(time=f.at(5)), lambda _: wf, Clock(f.at(0), GRACE))
    outcome = state.handle(f.started(time=f.at(1)), lambda _: wf, Clock(f.at(61), GRACE))
    assert outcome.exits == []


def test_the_grace_buffer_still_refuses_retroactive_events() -> None:
    state = new_state()
    assert run(state, f.workflow(TAG_GOAL), f.tag(time=f.at(0)), f.started(time=f.at(1))) == ([], [])


def test_inactive_workflow_or_goal_never_counts() -> None:  # R9, R10
    inactive_wf = f.workflow(TAG_GOAL, active=False)
    assert run(new_state(), inactive_wf, f.started(), f.tag(time=f.at(1))) == ([], [])
    inactive_goal = f.workflow(f.goal("tag_added", {"tag_name": "Purchased"}, "g", active=False))
    assert run(new_state(), inactive_goal, f.started(), f.tag(time=f.at(1))) == ([], [])


def test_ended_enrollment_is_disarmed() -> None:  # R10
    state = new_state()
    run(state, f.workflow(TAG_GOAL), f.started(), f.ended("exited", time=f.at(1)))
    assert state.enrollments["en1"].status is EnrollmentStatus.EXITED
    assert run(state, f.workflow(TAG_GOAL), f.tag(time=f.at(2))) == ([], [])


def test_an_end_processed_before_its_start_keeps_the_enrollment_ended() -> None:
    state = new_state()
    run(state, f.workflow(TAG_GOAL), f.ended("removed", time=f.at(3)), f.started(time=f.at(0)))
    assert run(state, f.workflow(TAG_GOAL), f.tag(time=f.at(4))) == ([], [])


def test_duplicate_start_does_not_reset_progress() -> None:
    state = new_state()
    wf = f.workflow(TAG_GOAL, BUY_GOAL, logic="all")
    run(state, wf, f.started(time=f.at(0)), f.tag(time=f.at(1)), f.started(time=f.at(0)))
    assert set(state.enrollments["en1"].met_goals) == {"g-tag"}


def test_all_logic_records_each_goal_then_exits_once() -> None:  # R11
    state = new_state()
    wf = f.workflow(TAG_GOAL, BUY_GOAL, logic="all")
    a1, x1 = run(state, wf, f.started(), f.tag(time=f.at(1)))
    assert [a.goal.id for a in a1] == ["g-tag"] and x1 == []
    a2, x2 = run(state, wf, f.payment(amount="150", time=f.at(2)))
    assert [a.goal.id for a in a2] == ["g-buy"]
    assert [x.goal_ids for x in x2] == [("g-tag", "g-buy")]


def test_any_logic_exits_on_the_first_goal() -> None:  # R11
    state = new_state()
    _, exits = run(state, f.workflow(TAG_GOAL, BUY_GOAL), f.started(), f.payment(amount="100", time=f.at(1)))
    assert [x.goal_ids for x in exits] == [("g-buy",)]


def test_tenants_and_workflows_are_isolated() -> None:
    other_tenant = ContactState("t2", "c1")
    run(other_tenant, f.workflow(TAG_GOAL), f.started(tenant="t2"))
    mine = new_state()
    _, exits = run(mine, f.workflow(TAG_GOAL), f.started(), f.tag(time=f.at(1)))
    assert exits[0].id != ids.exit_id("t2", "en1")
    assert other_tenant.enrollments["en1"].is_active


def test_state_survives_its_json_round_trip() -> None:
    state = new_state()
    run(state, f.workflow(TAG_GOAL, BUY_GOAL, logic="all"), f.started(), f.tag(time=f.at(1)))
    again = ContactState.from_json("t1", "c1", state.to_json(Clock(NOW)))
    assert again == state


def test_terminal_states_are_final() -> None:
    e = Enrollment("wf", "en", f.at(0))
    e.complete_goal(f.at(1), seen_at=f.at(1))
    with pytest.raises(IllegalTransition):
        e.end("completed", f.at(2), seen_at=f.at(2))
    with pytest.raises(IllegalTransition):
        e.record_goal("g", f.at(2))


# --- properties ------------------------------------------------------------------

_events = st.lists(
    st.one_of(
        st.builds(lambda t: f.tag(time=f.at(t)), st.integers(-30, 30)),
        st.builds(
            lambda t, a: f.payment(amount=str(a), time=f.at(t)), st.integers(-30, 30), st.integers(0, 200)
        ),
        st.builds(lambda t: f.started(time=f.at(t)), st.integers(-30, 30)),
        st.builds(
            lambda t, r: f.ended(r, time=f.at(t)),
            st.integers(-30, 30),
            st.sampled_from(["completed", "exited", "removed"]),
        ),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_events, st.sampled_from(["any", "all"]))
def test_at_most_one_exit_and_one_achievement_per_goal(events, logic) -> None:  # type: ignore[no-untyped-def]
    state = new_state()
    achievements, exits = run(state, f.workflow(TAG_GOAL, BUY_GOAL, logic=logic), *events)
    assert len(exits) <= 1
    assert len({a.id for a in achievements}) == len(achievements)
    if exits:
        met = {a.goal.id for a in achievements}
        assert met == {"g-tag", "g-buy"} if logic == "all" else len(met) >= 1
        assert state.enrollments["en1"].status is EnrollmentStatus.COMPLETED_GOAL


@settings(max_examples=300, deadline=None)
@given(_events)
def test_nothing_before_the_enrollment_counts(events) -> None:  # type: ignore[no-untyped-def]
    state = new_state()
    achievements, _ = run(state, f.workflow(TAG_GOAL, BUY_GOAL), *events)
    enrolled_at = state.enrollments["en1"].enrolled_at if "en1" in state.enrollments else None
    for a in achievements:
        assert enrolled_at is not None and a.achieved_at >= enrolled_at


# --- configuration reaching the worker late, goal changes, retention (R9, R10) ----------


def test_an_event_processed_before_the_activation_reached_us_counts_when_it_arrives() -> None:
    state, wf = new_state(), f.workflow(TAG_GOAL, activated_at=f.at(0))
    known: dict[str, WorkflowConfig] = {}
    clock = Clock(f.at(10), GRACE)
    state.handle(f.started(time=f.at(1)), known.get, clock)
    assert not state.handle(f.tag(time=f.at(2)), known.get, clock)  # the worker does not know wf1 yet
    known["wf1"] = wf
    outcome = state.on_workflow_changed("wf1", known.get, Clock(f.at(20), GRACE))
    assert [x.enrollment_id for x in outcome.exits] == ["en1"]


def test_a_goal_counts_only_events_after_its_last_change() -> None:
    changed = f.goal("tag_added", {"tag_name": "Purchased"}, "g-tag", changed_at=f.at(10))
    assert run(new_state(), f.workflow(changed), f.started(), f.tag(time=f.at(9))) == ([], [])
    _, exits = run(new_state(), f.workflow(changed), f.started(), f.tag(time=f.at(10)))
    assert len(exits) == 1


def test_reactivation_rearms_goals_for_events_after_it() -> None:  # R9, R10
    state = new_state()
    run(state, f.workflow(TAG_GOAL, active=False), f.started(time=f.at(0)), f.tag(time=f.at(5)))
    reactivated = f.workflow(TAG_GOAL, activated_at=f.at(8), version=2)
    assert run(state, reactivated, f.tag(time=f.at(7))) == ([], [])  # while it was deactivated
    _, exits = run(state, reactivated, f.tag(time=f.at(9)))
    assert len(exits) == 1


def test_ended_enrollments_are_forgotten_after_retention() -> None:  # R10: no leak
    state, wf = new_state(), f.workflow(TAG_GOAL)
    clock = Clock(f.at(0), GRACE, ended_retention=timedelta(seconds=30))
    state.handle(f.started(time=f.at(0)), lambda _: wf, clock)
    state.handle(f.tag(name="Other", time=f.at(1)), lambda _: wf, clock)
    state.handle(f.ended("removed", time=f.at(2)), lambda _: wf, clock)
    # The ended enrollment, 30 s after the worker saw it end (at 0); the kept event expires at 60.
    assert state.next_expiry(clock) == f.at(30)
    state.prune(Clock(f.at(61), GRACE, ended_retention=timedelta(seconds=30)))
    assert state.is_empty and state.next_expiry(clock) is None


# --- ended enrollments under lag (issue 10, item 8) ------------------------------------

RETENTION = timedelta(hours=1)


def _clock(now: datetime) -> Clock:
    return Clock(now, GRACE, ended_retention=RETENTION)


@settings(max_examples=60, deadline=None)
@given(
    lag=st.floats(min_value=0, max_value=30 * 24 * 3600),
    gap=st.floats(min_value=0, max_value=RETENTION.total_seconds() - 1),
)
def test_an_end_seen_before_its_start_holds_whatever_the_lag(lag: float, gap: float) -> None:
    # The enrollment started and ended at about T0; the worker was down for ``lag``
    # and, topics being unordered, sees the end first and the start ``gap`` later.
    state, wf = new_state(), f.workflow(TAG_GOAL)
    seen_end = f.at(120 + lag)
    state.handle(f.ended("exited", time=f.at(60)), lambda _: wf, _clock(seen_end))
    seen_start = seen_end + timedelta(seconds=gap)
    state.handle(f.started(time=f.at(0)), lambda _: wf, _clock(seen_start))
    assert not state.enrollments["en1"].is_active, "the late start re-armed an ended enrollment"
    assert run(state, wf, f.tag(time=f.at(90)), now=seen_start) == ([], [])
    # Forgotten once retention has passed in processing time (R10: no leak).
    state.prune(_clock(seen_end + RETENTION + timedelta(seconds=1)))
    assert "en1" not in state.enrollments


def test_retention_counts_from_when_the_end_was_seen() -> None:
    state, wf = new_state(), f.workflow(TAG_GOAL)
    state.handle(f.started(time=f.at(0)), lambda _: wf, _clock(f.at(0)))
    seen = f.at(7200)  # processed two hours after it happened
    state.handle(f.ended("removed", time=f.at(10)), lambda _: wf, _clock(seen))
    assert state.next_expiry(_clock(seen)) == seen + RETENTION
    state.prune(_clock(seen + RETENTION))
    assert "en1" in state.enrollments
    state.prune(_clock(seen + RETENTION + timedelta(seconds=1)))
    assert state.is_empty


def test_a_state_stored_before_the_seen_time_existed_falls_back_to_the_event_time() -> None:
    state, wf = new_state(), f.workflow(TAG_GOAL)
    state.handle(f.ended("removed", time=f.at(10)), lambda _: wf, _clock(f.at(20)))
    old = state.to_json(_clock(f.at(20)))
    del old["enrollments"][0]["ended_seen_at"]
    loaded = ContactState.from_json("t1", "c1", old)
    assert loaded.next_expiry(_clock(f.at(20))) == f.at(10) + RETENTION


# --- bounded state (issue 10, item 11) ---------------------------------------------------


def _form(i: int, extra: int = 0, seconds: float = 1) -> CloudEvent:
    data = {"form_id": "form-1", "submission_id": f"s{i}", "answers": "x" * extra}
    return f.event("form.submitted", data, time=f.at(seconds))


def test_a_kept_event_holds_only_what_the_matchers_need() -> None:
    state = new_state()
    state.handle(_form(1, extra=200_000), lambda _: None, Clock(NOW, GRACE))
    assert state.recent[0][1].data == {"form_id": "form-1", "submission_id": "s1"}
    assert len(json.dumps(state.to_json(Clock(NOW, GRACE)))) < 2_000
    # ...and that is enough for an enrollment processed after it.
    form_goal = f.goal("form_submitted", {"form_id": "form-1"}, "g-form")
    _, exits = run(state, f.workflow(form_goal), f.started(time=f.at(0)))
    assert len(exits) == 1


def test_six_large_submissions_in_a_minute_stay_far_below_the_changelogs_limit() -> None:
    # The case: six 200 KB form submissions gave a 1.2 MB state.
    state, clock = new_state(), Clock(NOW, GRACE)
    for i in range(6):
        state.handle(_form(i, extra=200_000), lambda _: None, clock)
    assert len(state.recent) == 6
    assert len(json.dumps(state.to_json(clock))) < 10_000


def test_kept_events_are_capped_per_contact_oldest_first() -> None:
    state, clock = new_state(), Clock(NOW, GRACE, max_kept_events=5)
    dropped = sum(state.handle(_form(i), lambda _: None, clock).dropped for i in range(8))
    assert dropped == 3
    assert [e.data["submission_id"] for _, e in state.recent] == ["s3", "s4", "s5", "s6", "s7"]


def test_kept_events_are_capped_in_bytes_too() -> None:
    # Payments keep their product ids (a goal may name any of them): up to ~200 KB each.
    products = tuple(f"p{i:0199d}" for i in range(1000))
    state, clock = new_state(), Clock(NOW, GRACE, max_kept_bytes=256 * 1024)
    outcomes = [
        state.handle(f.payment(products=products, event_id=f"pay-{i}"), lambda _: None, clock)
        for i in range(6)
    ]
    assert sum(o.dropped for o in outcomes) == 5
    assert [e.id for _, e in state.recent] == ["pay-5"]
    assert len(json.dumps(state.to_json(clock))) < 256 * 1024
