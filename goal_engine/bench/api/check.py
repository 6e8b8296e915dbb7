"""Before the load: the API's stats for one workflow against a brute-force count over the log.

The API answers from the aggregates; here every figure is counted again from
``enrollments`` and ``workflow_goal_achievements`` alone. Compared: all time, the totals,
the count per goal type and the average time to goal; over the last 30 whole days with
``interval=day``, and over the last 24 hours and some minutes up to the seed's last instant
with ``interval=hour`` (partial hours at both ends), the totals and every bucket of the
series, the empty ones too; and the time-to-goal
percentiles, which must lie within the histogram's stated error of the exact ones.
A mismatch fails the run before any load: a benchmark of a wrong answer measures nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx

from projections.analytics import PERCENTILES, rate
from projections.histogram import RELATIVE_ERROR

WINDOW_DAYS = 30


@dataclass
class CheckResult:
    tenant: str
    workflow_id: str
    window: str  # the windowed request's from, to and interval
    compared: int  # figures compared
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def check_window(end: datetime) -> tuple[datetime, datetime]:
    """The last WINDOW_DAYS whole days (UTC) before ``end``."""
    to = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return to - timedelta(days=WINDOW_DAYS), to


async def check_stats(
    conn: asyncpg.Connection, api: httpx.AsyncClient, tenant: str, workflow_id: str, end: datetime
) -> CheckResult:
    path = f"/api/v1/workflows/{workflow_id}/goals/stats"
    start, to = check_window(end)
    window = f"from={start.isoformat()} to={to.isoformat()} interval=day"
    result = CheckResult(tenant, workflow_id, window, compared=0)

    def expect(what: str, got: Any, want: Any) -> None:
        result.compared += 1
        if got != want:
            result.mismatches.append(f"{what}: the API says {got!r}, the log {want!r}")

    all_time = await _get(api, path, {})
    log = await conn.fetchrow(
        """
        SELECT count(*) AS enrolled, count(*) FILTER (WHERE status = 'completed_goal') AS achieved,
               avg(extract(epoch FROM ended_at - enrolled_at)) FILTER (WHERE status = 'completed_goal') AS ttg
        FROM enrollments WHERE tenant_id = $1 AND workflow_id = $2
        """,
        tenant,
        workflow_id,
    )
    expect("total_enrolled", all_time["total_enrolled"], log["enrolled"])
    expect("goals_achieved", all_time["goals_achieved"], log["achieved"])
    expect("conversion_rate", all_time["conversion_rate"], rate(log["achieved"], log["enrolled"]))
    hours = None if log["ttg"] is None else round(float(log["ttg"]) / 3600, 2)
    expect("avg_time_to_goal_hours", all_time["avg_time_to_goal_hours"], hours)
    by_type = await conn.fetch(
        """
        SELECT goal_type, count(*) AS n FROM workflow_goal_achievements
        WHERE tenant_id = $1 AND workflow_id = $2 GROUP BY goal_type
        """,
        tenant,
        workflow_id,
    )
    expect(
        "by_goal_type achieved",
        {t: v["achieved"] for t, v in all_time["by_goal_type"].items()},
        {r["goal_type"]: r["n"] for r in by_type},
    )
    exact = await conn.fetchrow(
        """
        SELECT percentile_disc(ARRAY[$3::float8, $4::float8, $5::float8])
               WITHIN GROUP (ORDER BY extract(epoch FROM ended_at - enrolled_at)) AS p
        FROM enrollments WHERE tenant_id = $1 AND workflow_id = $2 AND status = 'completed_goal'
        """,
        tenant,
        workflow_id,
        *PERCENTILES.values(),
    )
    for (name, _), seconds in zip(PERCENTILES.items(), exact["p"] or [], strict=False):
        got = all_time["time_to_goal_hours"][name]
        want = float(seconds) / 3600
        result.compared += 1
        # The histogram's bound, plus the answer's rounding to 4 decimals of an hour.
        if got is None or abs(got - want) > RELATIVE_ERROR * want + 0.00005:
            result.mismatches.append(
                f"time_to_goal_hours.{name}: the API says {got}, the log {want:.4f} "
                f"(allowed: {100 * RELATIVE_ERROR:.1f} %)"
            )

    await _check_window(conn, api, path, tenant, workflow_id, (start, to, "day"), expect)
    # The last day up to the seed's last instant, from an instant that is no whole hour: both
    # partial hours count, the last one up to `to`.
    recent = (end - timedelta(hours=24, minutes=17, seconds=23, microseconds=5), end, "hour")
    await _check_window(conn, api, path, tenant, workflow_id, recent, expect)
    result.window += f"; from={recent[0].isoformat()} to={recent[1].isoformat()} interval=hour"
    return result


async def _check_window(
    conn: asyncpg.Connection,
    api: httpx.AsyncClient,
    path: str,
    tenant: str,
    workflow_id: str,
    window: tuple[datetime, datetime, str],
    expect: Callable[[str, Any, Any], None],
) -> None:
    """Totals and every bucket of the series (zeros included) over [start, to) against the log."""
    start, to, interval = window
    params = {"from": start.isoformat(), "to": to.isoformat(), "interval": interval}
    windowed = await _get(api, path, params)
    buckets = await conn.fetch(
        """
        SELECT b.start, count(*) FILTER (WHERE a.kind = 'e') AS enrolled,
               count(*) FILTER (WHERE a.kind = 'x') AS achieved
        FROM (  -- every bucket meeting the window, stepped in UTC
            SELECT g AT TIME ZONE 'UTC' AS start
            FROM generate_series(date_trunc($5, $3::timestamptz, 'UTC') AT TIME ZONE 'UTC',
                                 ($4::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC',
                                 ('1 ' || $5)::interval) AS g
        ) AS b
        LEFT JOIN (
            SELECT 'e' AS kind, enrolled_at AS at FROM enrollments
            WHERE tenant_id = $1 AND workflow_id = $2 AND enrolled_at >= $3 AND enrolled_at < $4
            UNION ALL
            SELECT 'x', achieved_at FROM workflow_goal_achievements
            WHERE tenant_id = $1 AND workflow_id = $2 AND achieved_at >= $3 AND achieved_at < $4
        ) AS a ON date_trunc($5, a.at, 'UTC') = b.start
        GROUP BY b.start ORDER BY b.start
        """,
        tenant,
        workflow_id,
        start,
        to,
        interval,
    )
    what = f"{interval} window from {start.isoformat()}"
    expect(f"{what}: total_enrolled", windowed["total_enrolled"], sum(r["enrolled"] for r in buckets))
    expect(f"{what}: goals_achieved", windowed["goals_achieved"], sum(r["achieved"] for r in buckets))
    expect(
        f"{what}: series (start, enrolled, achieved)",
        [(datetime.fromisoformat(b["start"]), b["enrolled"], b["achieved"]) for b in windowed["series"]],
        [(r["start"], r["enrolled"], r["achieved"]) for r in buckets],
    )


async def _get(api: httpx.AsyncClient, path: str, params: dict[str, str]) -> dict[str, Any]:
    response = await api.get(path, params=params)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body
