"""The sweeper's expiry queue: each due key once, the latest schedule wins, nothing leaks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from goal_engine.stream.expiry import ExpiryQueue


def test_due_keys_come_out_once_in_time_order() -> None:
    queue = ExpiryQueue()
    queue.schedule("b", 20.0)
    queue.schedule("a", 10.0)
    queue.schedule("c", 30.0)
    assert queue.pop_due(5.0) == []
    assert queue.pop_due(20.0) == ["a", "b"]
    assert queue.pop_due(20.0) == []
    assert len(queue) == 1


def test_a_later_schedule_replaces_the_earlier_one() -> None:
    queue = ExpiryQueue()
    queue.schedule("a", 10.0)
    queue.schedule("a", 50.0)
    assert queue.pop_due(40.0) == []
    assert queue.pop_due(50.0) == ["a"]


def test_none_unschedules() -> None:
    queue = ExpiryQueue()
    queue.schedule("a", 10.0)
    queue.schedule("a", None)
    assert queue.pop_due(100.0) == []
    assert len(queue) == 0


schedules = st.lists(
    st.tuples(st.sampled_from("abcdefgh"), st.one_of(st.none(), st.integers(0, 100).map(float))),
    max_size=200,
)


@given(schedules, st.integers(0, 120).map(float))
def test_pop_due_returns_exactly_the_keys_whose_last_schedule_is_due(
    ops: list[tuple[str, float | None]], now: float
) -> None:
    queue = ExpiryQueue()
    latest: dict[str, float | None] = {}
    for key, at in ops:
        queue.schedule(key, at)
        latest[key] = at
    expected = {k for k, at in latest.items() if at is not None and at <= now}
    due = queue.pop_due(now)
    assert sorted(due) == sorted(expected)
    assert len(due) == len(set(due))
    assert len(queue) == sum(1 for at in latest.values() if at is not None) - len(expected)


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.floats(0, 100))))
def test_rebuild_keeps_what_the_store_says(stored: dict[str, float | None]) -> None:
    queue = ExpiryQueue()
    queue.rebuild(stored.items())
    assert sorted(queue.pop_due(1000.0)) == sorted(k for k, at in stored.items() if at is not None)
