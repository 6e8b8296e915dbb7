"""The production topology in containers, for the fault suite: testcontainers starts every
container, Docker's API kills, pauses and restarts them.

Three KRaft brokers (RF 3, min.insync.replicas 2), PostgreSQL, the migrate and topics
one-shots, two workers, one projector and one API, from the images `make images` builds.
Every container uses host networking and binds 127.0.0.1 on a free port picked here, so
nothing gets an address of its own (the engine runs with --bridge=none) and a run never
collides with `make up` or another run. The apps restart on a crash (``on-failure``, as
compose's ``unless-stopped``); a ``docker kill`` is not a crash to Docker, so a killed
container stays down until the test starts it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import docker
import httpx
from aiokafka.client import AIOKafkaClient
from testcontainers.core.container import DockerContainer

from goal_engine.core.config import Settings
from goal_engine.devstack.kafka import new_cluster_id
from goal_engine.devstack.ports import free_port
from tests.integration.helpers import eventually

log = logging.getLogger("tests.chaos")

LABEL = "goal-engine.chaos"
APP_IMAGE = "goal-engine:latest"
KAFKA_IMAGE = "goal-engine-kafka:latest"
POSTGRES_IMAGE = "goal-engine-postgres:latest"
PG_PASSWORD = "chaos"
JWT_SECRET = "chaos-suite-secret-of-at-least-32-bytes"  # the API refuses shorter ones


def remove_leftovers() -> None:
    """Containers of an earlier run that died before its teardown (they hold no ports we
    pick, but they cost memory and CPU)."""
    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True, v=True)
    client.close()


class Node:
    """One container of the topology."""

    def __init__(
        self, run: str, name: str, image: str, env: dict[str, str], command: list[str] | None = None
    ):
        self.name = name
        self._paused_by = ""
        options: dict[str, Any] = {"network_mode": "host", "labels": {LABEL: run}}
        if command and command[0] in ("worker", "projector", "api"):
            options["restart_policy"] = {"Name": "on-failure"}
        self.container = DockerContainer(image).with_name(f"chaos-{run}-{name}").with_envs(**env)
        self.container.with_kwargs(**options)
        if command:
            self.container.with_command(command)

    @property
    def docker(self) -> Any:
        return self.container.get_wrapped_container()

    def start(self) -> None:
        """The first start (testcontainers creates the container), or a restart of it."""
        if self.container._container is None:
            self.container.start()
        else:
            self.docker.start()

    def kill(self) -> None:
        """kill -9 of the container's process: no shutdown hook, no flush, no commit."""
        self.docker.kill(signal="SIGKILL")

    def stop(self, timeout: int = 30) -> None:
        self.docker.stop(timeout=timeout)

    def pause(self) -> str:
        """Freeze every process of the container: it answers nothing, its connections stay open.

        ``docker pause`` needs the cgroup freezer, which some hosts (this one: "unable to
        freeze") lack; SIGSTOP to the container's process freezes the broker just the same.
        """
        try:
            self.docker.pause()
            self._paused_by = "docker pause"
        except docker.errors.APIError:
            self.docker.kill(signal="SIGSTOP")
            self._paused_by = "SIGSTOP (no cgroup freezer for docker pause)"
        return self._paused_by

    def unpause(self) -> None:
        if self._paused_by == "docker pause":
            self.docker.unpause()
        else:
            self.docker.kill(signal="SIGCONT")

    def state(self) -> dict[str, Any]:
        self.docker.reload()
        return dict(self.docker.attrs["State"]) | {"RestartCount": self.docker.attrs["RestartCount"]}

    def wait(self, timeout: float) -> int:
        return int(self.docker.wait(timeout=timeout)["StatusCode"])

    def logs(self, lines: int = 40) -> str:
        return str(self.docker.logs(tail=lines).decode(errors="replace"))

    def remove(self) -> None:
        if self.container._container is not None:
            self.container.stop()


class Cluster:
    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.kafka_ports = [free_port() for _ in range(3)]
        self.controller_ports = [free_port() for _ in range(3)]
        self.pg_port = free_port()
        self.api_port = free_port()
        self.projector_port = free_port()
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self.kafka_ports)
        self.database_url = f"postgresql://goal_engine:{PG_PASSWORD}@127.0.0.1:{self.pg_port}/goal_engine"
        self.settings = Settings(
            kafka_bootstrap=self.bootstrap, database_url=self.database_url, jwt_secret=JWT_SECRET
        )
        # Beginning with "-" on purpose (1 in 64 random ids do): the brokers' entrypoint must
        # pass it as one argument, or the storage tool takes it for an option (a CI run failed so).
        cluster_id = "-" + new_cluster_id()[1:]
        voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(self.controller_ports))
        self.brokers = [
            Node(
                self.run,
                f"kafka-{i + 1}",
                KAFKA_IMAGE,
                {
                    "KAFKA_NODE_ID": str(i + 1),
                    "KAFKA_PORT": str(self.kafka_ports[i]),
                    "KAFKA_CONTROLLER_PORT": str(self.controller_ports[i]),
                    "KAFKA_VOTERS": voters,
                    "KAFKA_CLUSTER_ID": cluster_id,
                    "KAFKA_REPLICATION": "3",
                    "KAFKA_MIN_ISR": "2",
                    "KAFKA_HEAP_OPTS": "-Xms256m -Xmx384m",
                },
            )
            for i in range(3)
        ]
        self.postgres = Node(
            self.run,
            "postgres",
            POSTGRES_IMAGE,
            {"PGPORT": str(self.pg_port), "POSTGRES_USER": "goal_engine", "POSTGRES_PASSWORD": PG_PASSWORD},
        )
        self.workers: list[Node] = []
        self.worker_ports: list[int] = []
        self.projector = self._app("projector", ["projector"])
        self.api = self._app("api", ["api"])
        self.nodes: list[Node] = [*self.brokers, self.postgres]

    def app_env(self, **extra: str) -> dict[str, str]:
        return {
            "GOAL_ENGINE_KAFKA_BOOTSTRAP": self.bootstrap,
            "GOAL_ENGINE_DATABASE_URL": self.database_url,
            "GOAL_ENGINE_JWT_SECRET": JWT_SECRET,
            "GOAL_ENGINE_TOPIC_REPLICATION_FACTOR": "3",
            "GOAL_ENGINE_TOPIC_MIN_INSYNC_REPLICAS": "2",
            "GOAL_ENGINE_WORKER_SESSION_TIMEOUT_SECONDS": "10",
            "GOAL_ENGINE_API_PORT": str(self.api_port),
            "GOAL_ENGINE_PROJECTOR_METRICS_PORT": str(self.projector_port),
            # The API's /readyz asks the first worker (and the projector) on this host.
            "GOAL_ENGINE_WORKER_METRICS_PORT": str(self.worker_ports[0] if self.worker_ports else 0),
            **extra,
        }

    def _app(self, name: str, command: list[str], **extra: str) -> Node:
        return Node(self.run, name, APP_IMAGE, self.app_env(**extra), command)

    # --- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        started = time.monotonic()
        self.worker_ports = [free_port(), free_port()]
        for node in [*self.brokers, self.postgres]:
            node.start()
        try:
            await self.wait_brokers(3, timeout=180)
        except AssertionError as exc:  # say why: the brokers' own last lines (a CI run once timed out here)
            raise AssertionError("\n".join([str(exc), *self.dump_logs()])) from None
        await self.wait_postgres(timeout=120)
        for name, command in (("migrate", ["migrate"]), ("topics", ["topics"])):
            await self.one_shot(name, command)
        self.projector = self._app("projector", ["projector"])
        self.api = self._app("api", ["api"])
        self.nodes += [self.projector, self.api]
        for port in self.worker_ports:
            await self.add_worker(port, wait=False)
        self.projector.start()
        self.api.start()
        for i in range(len(self.workers)):
            await self.wait_worker(i)
        await self.wait_ready("projector", self.projector_port)
        await self.wait_api()
        log.info("cluster up in %.0f s", time.monotonic() - started)

    async def one_shot(self, name: str, command: list[str], attempts: int = 5) -> None:
        for attempt in range(1, attempts + 1):
            node = self._app(f"{name}-{attempt}", command)
            self.nodes.append(node)
            node.start()
            code = await asyncio.to_thread(node.wait, 300)
            if code == 0:
                return
            log.warning("%s exited %d (attempt %d):\n%s", name, code, attempt, node.logs())
            await asyncio.sleep(3)
        raise AssertionError(f"{name} failed {attempts} times")

    async def add_worker(self, port: int | None = None, *, wait: bool = True) -> Node:
        if port is None:
            port = free_port()
            self.worker_ports.append(port)
        index = len(self.workers)
        node = self._app(f"worker-{index + 1}", ["worker"], GOAL_ENGINE_WORKER_METRICS_PORT=str(port))
        self.workers.append(node)
        self.nodes.append(node)
        node.start()
        if wait:
            await self.wait_worker(index)
        return node

    # --- waits -----------------------------------------------------------------------------

    async def wait_brokers(self, count: int, timeout: float = 120) -> None:
        """Until every broker, asked on its own port, lists ``count`` live brokers and a
        controller (another broker's metadata may still list a restarted one as alive)."""

        async def listed(port: int) -> int:
            client = AIOKafkaClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=5000)
            try:
                await client.bootstrap()
                return len(client.cluster.brokers()) if client.cluster.controller is not None else 0
            except Exception:
                return 0
            finally:
                await client.close()

        async def brokers() -> int:
            return min([await listed(port) for port in self.kafka_ports])

        await eventually(
            brokers, lambda n: n >= count, timeout=timeout, interval=1.0, what=f"{count} brokers"
        )

    async def wait_postgres(self, timeout: float = 60) -> None:
        async def up() -> bool:
            try:
                conn = await asyncpg.connect(self.database_url, timeout=3)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                return False
            await conn.close()
            return True

        await eventually(up, bool, timeout=timeout, interval=0.5, what="PostgreSQL")

    async def wait_ready(self, name: str, port: int, timeout: float = 180) -> None:
        async def ready() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                return False
            return any(line.strip() == "goal_engine_ready 1.0" for line in body.splitlines())

        await eventually(ready, bool, timeout=timeout, interval=0.5, what=f"{name} ready")

    async def wait_worker(self, index: int, timeout: float = 180) -> None:
        await self.wait_ready(self.workers[index].name, self.worker_ports[index], timeout)

    async def wait_api(self, timeout: float = 180) -> None:
        async def ready() -> int:
            try:
                async with httpx.AsyncClient(timeout=3) as client:
                    return (await client.get(f"http://127.0.0.1:{self.api_port}/readyz")).status_code
            except httpx.HTTPError:
                return 0

        await eventually(ready, lambda code: code == 200, timeout=timeout, interval=0.5, what="API /readyz")

    # --- teardown --------------------------------------------------------------------------

    def dump_logs(self) -> Iterator[str]:
        for node in self.nodes:
            try:
                yield f"--- {node.name} ---\n{node.logs()}"
            except Exception as exc:  # a container that never started
                yield f"--- {node.name}: no logs ({exc}) ---"

    def remove(self) -> None:
        for node in reversed(self.nodes):
            try:
                node.remove()
            except Exception as exc:
                log.warning("could not remove %s: %s", node.name, exc)
