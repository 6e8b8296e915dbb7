"""The load: C concurrent clients, each sending its next request as soon as the last answered.

Closed loop (like wrk or hey), one keep-alive connection each (``wire.py``): each client
picks an endpoint of the mix at random (by weight), a random workflow of a random tenant
(with that tenant's token), sends, waits for the whole body, and records the latency and
the status. The figures count the requests sent in the measure window (those sent during
the warm-up are left out), but an error counts whenever it happens: any non-2xx answer
or failed request fails the run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from goal_engine.bench.api.seed import SeedWorkflow
from goal_engine.bench.api.wire import Connection, HttpError
from goal_engine.core.security import READ, mint_token

API = "/api/v1"


@dataclass(frozen=True)
class Endpoint:
    name: str
    route: str  # as the API labels it in its own metrics (below /api/v1)
    what: str


ENDPOINTS = {
    e.name: e
    for e in (
        Endpoint("stats", "/workflows/{workflow_id}/goals/stats", "one workflow's stats, all time"),
        Endpoint(
            "stats-window",
            "/workflows/{workflow_id}/goals/stats",
            "the same over a random 30-day window, interval=day (a 30-bucket series)",
        ),
        Endpoint(
            "stats-now",
            "/workflows/{workflow_id}/goals/stats",
            "the last 30 days up to now, interval=day: never kept (to is now), partial hours at both ends",
        ),
        Endpoint("tenant-stats", "/goals/stats", "the tenant's workflows with their conversion"),
        Endpoint(
            "achievements",
            "/workflows/{workflow_id}/goals/achievements",
            "the newest page (limit=50) of one workflow's achievement log",
        ),
    )
}


def read_token(jwt_secret: str, tenant: str) -> str:
    """A bearer token of ``tenant`` with the read scope, as `goal-engine token` mints them."""
    return mint_token(
        jwt_secret, tenant_id=tenant, subject="goal-engine-bench", scopes=[READ], ttl_seconds=3600
    )


@dataclass
class Samples:
    """What one endpoint saw in the measure window."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "500", or the exception's name
    first_error: str | None = None

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))


@dataclass(frozen=True)
class Target:
    tenant: str
    workflow_id: str


class Load:
    """Builds the requests of the mix and runs the clients."""

    def __init__(
        self,
        base_url: str,
        jwt_secret: str,
        workflows: list[SeedWorkflow],
        mix: dict[str, int],
        span: tuple[datetime, datetime],
        seed: int = 1,
    ) -> None:
        self.base_url = base_url
        self.targets = [Target(w.tenant, w.workflow_id) for w in workflows]
        self.tokens = {
            t.tenant: mint_token(
                jwt_secret, tenant_id=t.tenant, subject="bench", scopes=[READ], ttl_seconds=3600
            )
            for t in self.targets
        }
        self.names = list(mix)
        self.weights = [mix[n] for n in self.names]
        self.span_days = max(0, (span[1] - span[0]).days - 30)
        self.span_start = span[0].replace(hour=0, minute=0, second=0, microsecond=0)
        self.seed = seed

    def request(self, rng: random.Random) -> tuple[str, str, dict[str, str], dict[str, str]]:
        """(endpoint name, path, query, headers) of one request of the mix."""
        name = rng.choices(self.names, self.weights)[0]
        target = rng.choice(self.targets)
        path = API + ENDPOINTS[name].route.format(workflow_id=target.workflow_id)
        headers = {"Authorization": f"Bearer {self.tokens[target.tenant]}"}
        query: dict[str, str] = {}
        if name == "stats-window":
            start = self.span_start + timedelta(days=rng.randint(0, self.span_days))
            query = {
                "from": start.isoformat(),
                "to": (start + timedelta(days=30)).isoformat(),
                "interval": "day",
            }
        elif name == "stats-now":  # a dashboard's "last 30 days": no `to`, so up to now
            query = {"from": (datetime.now(UTC) - timedelta(days=30)).isoformat(), "interval": "day"}
        elif name == "achievements":
            query = {"limit": "50"}
        return name, path, query, headers

    async def run(
        self,
        clients: int,
        warmup: float,
        duration: float,
        tick: Callable[[dict[str, Samples]], None],
        measure_starts: Callable[[], None],
    ) -> tuple[dict[str, Samples], float]:
        """Run ``clients`` clients for ``warmup + duration`` s; the measure window's samples and length.

        ``tick`` gets the samples so far about once a second (for progress lines; it may raise to
        stop the run); ``measure_starts`` is called when the warm-up ends.
        """
        samples = {name: Samples() for name in self.names}
        url = urlsplit(self.base_url)
        connections = [Connection(url.hostname or "127.0.0.1", url.port or 80) for _ in range(clients)]
        try:
            loop = asyncio.get_running_loop()
            measure_from = loop.time() + warmup
            until = measure_from + duration
            loop.call_at(measure_from, measure_starts)
            tasks = [
                asyncio.create_task(
                    self._client(connections[i], random.Random(self.seed + i), measure_from, until, samples)
                )
                for i in range(clients)
            ]
            try:
                while not all(t.done() for t in tasks):
                    await asyncio.wait(tasks, timeout=1.0)
                    tick(samples)
                for t in tasks:
                    t.result()  # a client that crashed is a bug of the bench: raise it
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return samples, loop.time() - measure_from
        finally:
            for connection in connections:
                connection.close()

    async def _client(
        self,
        connection: Connection,
        rng: random.Random,
        measure_from: float,
        until: float,
        samples: dict[str, Samples],
    ) -> None:
        loop = asyncio.get_running_loop()
        while (sent := loop.time()) < until:
            name, path, params, headers = self.request(rng)
            started = time.perf_counter()
            try:
                code, body = await connection.get(path, params, headers)
                status, error = str(code), None
                if not 200 <= code < 300:
                    error = f"{code} on {path} {params}: {body[:300].decode(errors='replace')}"
            except HttpError as exc:
                status, error = type(exc).__name__, f"{exc} on {path}"
            elapsed_ms = 1000 * (time.perf_counter() - started)
            if sent < measure_from and error is None:
                continue  # the warm-up
            s = samples[name]
            s.statuses[status] += 1
            if error is None:
                s.latencies_ms.append(elapsed_ms)
            elif s.first_error is None:
                s.first_error = error
