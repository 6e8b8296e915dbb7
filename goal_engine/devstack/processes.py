"""Child processes of the dev stack and the test harness: start, watch, stop, no orphans."""

from __future__ import annotations

import abc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from goal_engine.devstack import die_with_parent

log = logging.getLogger("goal_engine.devstack")


def spawn(command: list[str], log_path: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start a child that dies with us, in a session of its own, its output appended to ``log_path``.

    Its own session: a terminal's Ctrl-C reaches only the supervisor, which
    then stops the children in order, instead of every process at once.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
            **popen,
        )


def stop_child(proc: subprocess.Popen[bytes], name: str, sig: int, timeout: float) -> None:
    """``sig`` (the child's own clean shutdown), then SIGKILL after ``timeout``; safe to repeat."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0f s; killing it", name, timeout)
        proc.kill()
        proc.wait()


class LocalServer(abc.ABC):
    """A server run as our child (Kafka, PostgreSQL): started on ``with``, stopped on leaving it."""

    @abc.abstractmethod
    def start(self, timeout: float = 60) -> str:
        """Start it and return its address once it serves."""

    @abc.abstractmethod
    def stop(self, timeout: float = 20) -> None:
        """Stop it cleanly, by force after ``timeout``; safe to repeat."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ManagedProcess:
    """One ``goal-engine <command>`` child (see :func:`spawn`)."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = spawn(self.command, self.log_path, env=self.env)
        log.info("started %s (pid %s), log: %s", self.name, self.proc.pid, self.log_path)

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None:
            stop_child(self.proc, self.name, signal.SIGTERM, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def goal_engine_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "goal_engine.cli", *args]


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def worker_processes(
    count: int, env: Mapping[str, str], metrics_ports: list[int], state_dir: Path, log_path: Path
) -> list[ManagedProcess]:
    """``count`` stream workers of one consumer group: Kafka shares the partitions among them.

    Each process needs its own metrics port and its own table directory; the first
    keeps ``env``'s, worker n the n-th port and ``state_dir/worker-n``.
    """
    workers = []
    for n in range(1, count + 1):
        name, env_n = "worker", dict(env)
        if n > 1:
            name = f"worker-{n}"
            env_n["GOAL_ENGINE_WORKER_METRICS_PORT"] = str(metrics_ports[n - 1])
            env_n["GOAL_ENGINE_STATE_DIR"] = str(state_dir / name)
        workers.append(
            ManagedProcess(name, goal_engine_command("worker"), env_n, log_path.with_name(f"{name}.log"))
        )
    return workers
