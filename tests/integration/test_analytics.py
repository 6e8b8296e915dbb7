"""Analytics over time (R12) against a brute-force computation over the same events."""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from goal_engine.contract.events import ExitGoal, GoalAchieved, TriggerEvent, encode_event, make_event
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.domain import ids
from projections import analytics
from projections.histogram import RELATIVE_ERROR
from projections.projector import Projector
from tests.integration.helpers import bearer, cloud_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 10, 1, tzinfo=UTC)
GOAL_TYPES = ("tag_added", "form_submitted")


@dataclass(frozen=True)
class Journey:
    enrolled_at: datetime
    achievements: tuple[tuple[str, datetime], ...] = ()  # (goal type, when), in time order

    @property
    def exited_at(self) -> datetime | None:
        """The last goal met exits (an ``all`` workflow when there are two)."""
        return self.achievements[-1][1] if self.achievements else None


def make_journeys(rng: random.Random, n: int) -> list[Journey]:
    out = []
    for _ in range(n):
        enrolled = T0 + timedelta(seconds=rng.randrange(0, 10 * 24 * 3600))
        if rng.random() >= 0.4:
            out.append(Journey(enrolled))
            continue
        last = rng.choice(GOAL_TYPES)
        exited = enrolled + timedelta(seconds=rng.lognormvariate(9, 1.5))
        achievements = [(last, exited)]
        if rng.random() < 0.3:  # the other goal met first: each goal type is timed on its own
            other = next(t for t in GOAL_TYPES if t != last)
            achievements.insert(0, (other, enrolled + (exited - enrolled) * rng.random()))
        out.append(Journey(enrolled, tuple(achievements)))
    return out


class Records:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.offsets = prefix, {}  # type: dict[str, int]

    def __call__(self, topic: Topic, value: bytes) -> object:
        name = self.prefix + topic
        offset = self.offsets.get(name, 0)
        self.offsets[name] = offset + 1
        return type("Record", (), {"topic": name, "partition": 0, "offset": offset, "value": value})()


async def project(pool: asyncpg.Pool, tenant: str, workflow: str, journeys: list[Journey]) -> None:
    records, prefix = [], f"analytics-{uuid.uuid4().hex[:6]}."
    record = Records(prefix)
    for n, j in enumerate(journeys):
        contact, enrollment = f"c{n}", f"en{n}"
        started = cloud_event(
            "workflow.enrollment.started",
            tenant,
            {"workflow_id": workflow, "enrollment_id": enrollment},
            contact,
            j.enrolled_at,
        )
        records.append(record(Topic.ENROLLMENT_STARTED, json.dumps(started).encode()))
        if j.exited_at is None:
            continue
        events: list[tuple[Topic, str, GoalAchieved | ExitGoal]] = []
        for goal_type, at in j.achievements:
            goal_id = f"goal-{goal_type}"
            trigger = TriggerEvent(id=f"src{n}-{goal_type}", type="contact.tag.added", time=at, data={})
            achieved = GoalAchieved(
                id=ids.achievement_id(tenant, enrollment, goal_id),
                workflow_id=workflow,
                workflow_enrollment_id=enrollment,
                contact_id=contact,
                goal_config_id=goal_id,
                goal_type=goal_type,
                achieved_at=at,
                trigger_event=trigger,
                # Half as older workers published them: the projector takes the start it has seen.
                enrolled_at=j.enrolled_at if n % 2 else None,
            )
            events.append((Topic.GOAL_ACHIEVED, achieved.id, achieved))
        exited = ExitGoal(
            workflow_id=workflow,
            workflow_enrollment_id=enrollment,
            contact_id=contact,
            goal_config_ids=[f"goal-{t}" for t, _ in j.achievements],
            exited_at=j.exited_at,
            enrolled_at=j.enrolled_at,
        )
        events.append((Topic.EXIT_GOAL, ids.exit_id(tenant, enrollment), exited))
        for topic, event_id, data in events:
            time = data.achieved_at if isinstance(data, GoalAchieved) else data.exited_at
            event = make_event(
                topic, event_id=event_id, tenant_id=tenant, time=time, subject=contact, data=data
            )
            records.append(record(topic, encode_event(event)))
    projector = Projector(pool, prefix)
    for i in range(0, len(records), 500):
        await projector.process_batch(records[i : i + 500])  # type: ignore[arg-type]


def bucket_start(t: datetime, interval: str) -> datetime:
    h = t.replace(minute=0, second=0, microsecond=0)
    if interval == "hour":
        return h
    day = h.replace(hour=0)
    return day if interval == "day" else day - timedelta(days=day.weekday())


STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def brute_force(journeys: list[Journey], start: datetime, end: datetime, interval: str) -> dict[str, Any]:
    """The stats over [start, end), to the microsecond, computed from every event; the series
    has every bucket from the one holding ``start`` to the one holding the last instant before
    ``end``, the empty ones too."""
    enrolled = [j for j in journeys if start <= j.enrolled_at < end]
    exited = [j for j in journeys if j.exited_at is not None and start <= j.exited_at < end]
    series: dict[datetime, list[int]] = {}
    bucket = bucket_start(start, interval)
    while bucket < end:
        series[bucket] = [0, 0]
        bucket += STEP[interval]
    for j in enrolled:
        series[bucket_start(j.enrolled_at, interval)][0] += 1
    for j in exited:
        assert j.exited_at is not None
        series[bucket_start(j.exited_at, interval)][1] += 1
    by_type: dict[str, list[float]] = {}  # goal type -> seconds from enrollment to each achievement
    for j in journeys:
        for goal_type, at in j.achievements:
            if start <= at < end:
                by_type.setdefault(goal_type, []).append((at - j.enrolled_at).total_seconds())
    return {
        "total_enrolled": len(enrolled),
        "goals_achieved": len(exited),
        "by_type": by_type,
        "series": {k: tuple(v) for k, v in sorted(series.items())},
        "durations": [(j.exited_at - j.enrolled_at).total_seconds() for j in exited if j.exited_at],
    }


def assert_time_to_goal(got: dict[str, Any], durations: list[float]) -> None:
    """Percentiles within the histogram's bound of the exact nearest-rank values."""
    for name, q in analytics.PERCENTILES.items():
        if not durations:
            assert got[name] is None
            continue
        exact = nearest_rank(durations, q) / 3600
        assert got[name] == pytest.approx(exact, rel=RELATIVE_ERROR + 1e-3), name


def assert_matches(got: dict[str, Any] | None, want: dict[str, Any]) -> int:
    """The API's stats equal the brute force's; how many goal types were compared."""
    assert got is not None
    assert (got["total_enrolled"], got["goals_achieved"]) == (want["total_enrolled"], want["goals_achieved"])
    assert [(b["start"], (b["enrolled"], b["achieved"])) for b in got["series"]] == list(
        want["series"].items()
    )
    assert_time_to_goal(got["time_to_goal_hours"], want["durations"])
    assert set(got["by_goal_type"]) == set(want["by_type"])
    for goal_type, seconds in want["by_type"].items():
        stats = got["by_goal_type"][goal_type]
        assert stats["achieved"] == len(seconds)
        assert stats["conversion_rate"] == analytics.rate(len(seconds), want["total_enrolled"])
        # The average is exact (sums of seconds), rounded to 2 decimals of an hour.
        exact_avg = sum(seconds) / len(seconds) / 3600
        assert stats["avg_time_to_goal_hours"] == pytest.approx(exact_avg, abs=0.005 + 1e-9)
        assert_time_to_goal(stats["time_to_goal_hours"], seconds)
    return len(want["by_type"])


@pytest.mark.parametrize("seed", [1, 2])
async def test_windows_and_series_match_brute_force(pool: asyncpg.Pool, seed: int) -> None:
    """Windows from and to any instant (partial hours at both ends, windows inside one hour,
    windows across whole days), every interval."""
    rng = random.Random(seed)
    tenant, workflow = f"analytics-{uuid.uuid4().hex[:6]}", "wf"
    journeys = make_journeys(rng, 400)
    await project(pool, tenant, workflow, journeys)
    await pool.execute("INSERT INTO workflows (tenant_id, workflow_id) VALUES ($1, $2)", tenant, workflow)

    checked_types = 0
    for n in range(12):
        start = T0 + timedelta(seconds=rng.randrange(0, 9 * 24 * 3600), microseconds=rng.randrange(10**6))
        longest = (3600, 6 * 3600, 5 * 24 * 3600)[n % 3]  # within an hour, across hours, across days
        end = start + timedelta(seconds=rng.randrange(1, longest), microseconds=rng.randrange(10**6))
        interval = rng.choice(["hour", "day", "week"])
        got = await analytics.workflow_stats(pool, tenant, workflow, analytics.Window(start, end, interval))
        checked_types += assert_matches(got, brute_force(journeys, start, end, interval))
    assert checked_types, "no window held an achievement: the per-type checks never ran"

    all_time = await analytics.workflow_stats(pool, tenant, workflow)
    assert all_time is not None and all_time["total_enrolled"] == len(journeys)
    assert all_time["goals_achieved"] == sum(1 for j in journeys if j.exited_at)
    everything = brute_force(journeys, T0, T0 + timedelta(days=365), "day")
    for goal_type, seconds in everything["by_type"].items():
        stats = all_time["by_goal_type"][goal_type]
        assert stats["achieved"] == len(seconds)
        assert_time_to_goal(stats["time_to_goal_hours"], seconds)


async def test_the_current_hour_counts_up_to_now(pool: asyncpg.Pool) -> None:
    """Goals all reached in the last 40 minutes show in "the last 24 hours", to the instant."""
    tenant, workflow = f"now-{uuid.uuid4().hex[:6]}", "wf"
    now = datetime.now(UTC)
    journeys = [
        Journey(now - timedelta(minutes=40 - k), (("tag_added", now - timedelta(minutes=30 - 5 * k)),))
        for k in range(5)
    ] + [Journey(now - timedelta(minutes=3))]
    await project(pool, tenant, workflow, journeys)
    day_ago = now - timedelta(hours=24)
    for window in (analytics.Window(day_ago, now, "hour"), analytics.Window(day_ago, None, "hour")):
        got = await analytics.workflow_stats(pool, tenant, workflow, window, now=now)
        assert got is not None and len(got["series"]) == 25  # 23 whole hours and a part at each end
        assert_matches(got, brute_force(journeys, day_ago, now, "hour"))
        assert (got["total_enrolled"], got["goals_achieved"]) == (6, 5)
    # `from` inclusive, `to` exclusive, to the microsecond.
    at = journeys[2].achievements[0][1]
    tick = timedelta(microseconds=1)
    for start, end, achieved in ((at, at + tick, 1), (at - timedelta(hours=1), at, 2), (at + tick, now, 2)):
        got = await analytics.workflow_stats(pool, tenant, workflow, analytics.Window(start, end), now=now)
        assert got is not None and got["goals_achieved"] == achieved, (start, end)
    # Without `from`, the series starts at the first bucket with activity.
    got = await analytics.workflow_stats(pool, tenant, workflow, analytics.Window(None, now, "hour"), now=now)
    assert got is not None
    starts = [b["start"] for b in got["series"]]
    assert starts[0] == analytics.bucket_of(journeys[0].enrolled_at, "hour")
    assert starts[-1] == analytics.bucket_of(now, "hour") and sum(b["achieved"] for b in got["series"]) == 5


async def test_a_window_up_to_now_reuses_its_kept_rollups_only_while_the_database_is_unchanged(
    pool: asyncpg.Pool,
) -> None:
    """The API keeps a window up to now's whole days and hours (analytics.Rollups): within
    the hour, a read given them back counts the partial hours anew, which the clock has moved,
    and after any commit it reads the rollups again."""
    tenant, workflow = f"kept-{uuid.uuid4().hex[:6]}", "wf"
    now = T0 + timedelta(days=5, minutes=10)
    later = now + timedelta(minutes=30)  # the same hour
    journeys = [
        *make_journeys(random.Random(23), 300),
        # In the partial hours, which move between the two reads below.
        Journey(now + timedelta(minutes=5), (("tag_added", now + timedelta(minutes=12)),)),
        Journey(now - timedelta(days=3, minutes=-20), (("form_submitted", now + timedelta(minutes=1)),)),
    ]
    await project(pool, tenant, workflow, journeys)

    def window(at: datetime) -> analytics.Window:
        return analytics.Window(at - timedelta(days=3), None, "day")

    assert analytics.rollups_key(window(now), now) == analytics.rollups_key(window(later), later)
    got, _, kept = await analytics.read_workflow_stats(pool, tenant, workflow, window(now), now)
    assert kept is not None
    assert_matches(got, brute_force(journeys, now - timedelta(days=3), now, "day"))

    got, _, reused = await analytics.read_workflow_stats(pool, tenant, workflow, window(later), later, kept)
    assert reused is kept  # the same snapshot: the rollups were not read again
    assert_matches(got, brute_force(journeys, later - timedelta(days=3), later, "day"))
    assert got is not None and got["goals_achieved"] > 0

    # A commit inside the window's whole days: the kept rollups no longer hold.
    journeys.append(Journey(now - timedelta(days=1, hours=3), (("tag_added", now - timedelta(days=1)),)))
    await project(pool, tenant, workflow, journeys)  # the others again: redelivered, counted once
    got, _, read = await analytics.read_workflow_stats(pool, tenant, workflow, window(later), later, kept)
    assert read is not kept and read is not None
    assert_matches(got, brute_force(journeys, later - timedelta(days=3), later, "day"))

    # A window with an end is kept whole by the read cache: its rollups are not packed.
    ended = analytics.Window(now - timedelta(days=3), now, "day")
    got, _, packed = await analytics.read_workflow_stats(pool, tenant, workflow, ended, later)
    assert packed is None
    assert_matches(got, brute_force(journeys, now - timedelta(days=3), now, "day"))


async def test_an_empty_window_has_a_zero_for_every_bucket(pool: asyncpg.Pool) -> None:
    tenant, workflow = f"empty-{uuid.uuid4().hex[:6]}", "wf"
    await pool.execute("INSERT INTO workflows (tenant_id, workflow_id) VALUES ($1, $2)", tenant, workflow)
    window = analytics.Window(T0 + timedelta(minutes=30), T0 + timedelta(days=3), "day")
    got = await analytics.workflow_stats(pool, tenant, workflow, window)
    assert got is not None
    assert [(b["start"], b["enrolled"], b["achieved"]) for b in got["series"]] == [
        (T0 + timedelta(days=d), 0, 0) for d in range(3)
    ]
    too_long = analytics.Window(T0 - timedelta(days=800), T0, "hour")
    with pytest.raises(analytics.SeriesTooLong):
        await analytics.workflow_stats(pool, tenant, workflow, too_long)


async def test_the_api_serves_windows_and_the_tenant_summary(stack: Settings, api: httpx.AsyncClient) -> None:
    tenant = f"summary-{uuid.uuid4().hex[:6]}"
    pool = await asyncpg.create_pool(stack.database_url_asyncpg, min_size=1, max_size=2)
    try:
        rng = random.Random(7)
        for workflow, n in (("wf-a", 50), ("wf-b", 80)):
            await project(pool, tenant, workflow, make_journeys(rng, n))
    finally:
        await pool.close()
    auth = bearer(stack, tenant)
    params = {"from": "2026-10-02T00:00:00Z", "to": "2026-10-05T00:00:00Z", "interval": "day"}
    body = (await api.get("/workflows/wf-a/goals/stats", params=params, headers=auth)).json()
    assert [b["start"][:10] for b in body["series"]] == ["2026-10-02", "2026-10-03", "2026-10-04"]
    assert sum(b["enrolled"] for b in body["series"]) == body["total_enrolled"]
    summary = (await api.get("/goals/stats", headers=auth)).json()
    rates = [w["conversion_rate"] for w in summary["workflows"]]
    assert summary["total"] == 2 and rates == sorted(rates, reverse=True)


HOURLY_ROLLUPS = set(analytics.HOURLY_ROLLUPS)  # the bench's prewarm reads them too (warm.py)


def _scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every scan of a table or index in an EXPLAIN (ANALYZE, FORMAT JSON) plan: its node."""
    own = [node] if "Relation Name" in node else []
    return own + [scan for child in node.get("Plans", []) for scan in _scans(child)]


async def _explained(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    return _scans(json.loads(plan)[0]["Plan"])


async def test_a_window_of_whole_days_reads_no_hourly_rollup(pool: asyncpg.Pool) -> None:
    """In the generic plan the read pool uses (one plan for every window), the spans of whole
    hours of a window that has none are never scanned: an empty span would still descend the
    big hourly indexes, whose pages are seldom cached."""
    tenant, workflow = f"days-{uuid.uuid4().hex[:6]}", "wf"
    await project(pool, tenant, workflow, make_journeys(random.Random(3), 50))
    cut = analytics.segments(T0, T0 + timedelta(days=7), "day")
    assert all(a == b for a, b in cut.hours) and cut.days == (T0, T0 + timedelta(days=7))
    spans = [t for span in (cut.days, *cut.hours, *cut.partial) for t in span]
    async with pool.acquire() as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE window_read AS {analytics.WINDOW_SQL}")
        try:
            # EXECUTE takes no bound parameters: literals (of this test's own values).
            values = (tenant, workflow, "day", *(t.isoformat() for t in spans))
            args = ", ".join(f"'{value}'" for value in values) + ", NULL"  # no rollups kept
            plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE window_read({args})")
        finally:
            await conn.execute("DEALLOCATE window_read; RESET plan_cache_mode")
    scans = [(n["Relation Name"], n["Actual Loops"]) for n in _scans(json.loads(plan)[0]["Plan"])]
    hourly = [(relation, loops) for relation, loops in scans if relation in HOURLY_ROLLUPS]
    assert {relation for relation, _ in hourly} == HOURLY_ROLLUPS, scans  # the generic plan has them
    assert all(loops == 0 for _, loops in hourly), hourly
    assert all(loops >= 1 for relation, loops in scans if relation.endswith("_daily")), scans


async def test_a_windows_whole_and_partial_hours_are_read_from_indexes_alone(pool: asyncpg.Pool) -> None:
    """The hours at a window's ends come from the hourly rollups and its partial hours from
    the enrollments through indexes that hold the columns read (migration 0010): the rows
    themselves, a heap page per hour of a workflow at scale, are never visited."""
    tenant, workflow = f"covered-{uuid.uuid4().hex[:6]}", "wf"
    await project(pool, tenant, workflow, make_journeys(random.Random(5), 200))
    start = T0 + timedelta(days=2, hours=5, minutes=17)
    cut = analytics.segments(start, start + timedelta(days=5, hours=3, minutes=9), "day")
    assert all(a < b for a, b in (*cut.hours, *cut.partial)), cut  # every kind of span is read
    covered = HOURLY_ROLLUPS | {"enrollments"}
    async with pool.acquire() as conn:
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(sorted(covered))}")  # the visibility map
        # A few hundred rows: without these a sequential scan would be cheaper than any index.
        await conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        try:
            spans = [t for span in (cut.days, *cut.hours, *cut.partial) for t in span]
            scans = await _explained(conn, analytics.WINDOW_SQL, tenant, workflow, "day", *spans, None)
        finally:
            await conn.execute("RESET enable_seqscan; RESET enable_bitmapscan")
    read = [n for n in scans if n["Relation Name"] in covered and n["Actual Loops"]]
    assert {n["Relation Name"] for n in read} == covered, scans
    assert all(n["Node Type"] == "Index Only Scan" for n in read), [
        (n["Relation Name"], n["Node Type"], n.get("Index Name")) for n in read
    ]


async def test_a_window_whose_rollups_are_kept_reads_only_its_partial_hours(pool: asyncpg.Pool) -> None:
    """WINDOW_SQL given the snapshot its kept rollups were read at ($14) scans no rollup while
    the database is at it, only the rows of its partial hours; given another, it reads them."""
    tenant, workflow = f"skip-{uuid.uuid4().hex[:6]}", "wf"
    await project(pool, tenant, workflow, make_journeys(random.Random(29), 100))
    start = T0 + timedelta(days=2, hours=5, minutes=17)
    cut = analytics.segments(start, start + timedelta(days=5, hours=3, minutes=9), "day")
    spans = [t for span in (cut.days, *cut.hours, *cut.partial) for t in span]
    rollups = HOURLY_ROLLUPS | {f"{table}_daily" for table in ("workflow_activity", "workflow_goal_type")}
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):  # one snapshot
        snapshot = await conn.fetchval("SELECT pg_current_snapshot()::text")
        for kept_at, rollups_read in ((snapshot, False), (f"{snapshot} ", True)):
            scans = await _explained(conn, analytics.WINDOW_SQL, tenant, workflow, "day", *spans, kept_at)
            loops: dict[str, int] = {}
            for n in scans:
                loops[n["Relation Name"]] = loops.get(n["Relation Name"], 0) + n["Actual Loops"]
            assert {r for r in loops if r.startswith("workflow_") and "stats" not in r} >= rollups, loops
            assert all((loops[r] > 0) == rollups_read for r in rollups), (kept_at, loops)
            achievements = sum(n for r, n in loops.items() if r.startswith("workflow_goal_achievements"))
            assert loops["enrollments"] > 0 and achievements > 0, loops  # the log: monthly partitions
