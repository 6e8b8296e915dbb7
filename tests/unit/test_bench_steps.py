"""``python -m goal_engine.bench.steps`` measures real work: every tag exits its enrollment."""

from __future__ import annotations

from goal_engine.bench import steps


def test_the_steps_bench_exits_every_enrollment_and_reports_cpu_per_event() -> None:
    # run() raises SystemExit when an enrollment is left active (a tag that did not exit).
    figures = steps.run(contacts=40, tenants=3, batch_size=16)
    assert figures["enrollment_us"] > 0 and figures["tag_us"] > 0
