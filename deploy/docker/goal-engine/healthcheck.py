"""Docker health check of the goal-engine image: is this container's role serving?

The role is the subcommand the container runs (read from PID 1's command line), so one
image and one HEALTHCHECK serve every role. Ports come from the same GOAL_ENGINE_*
variables the process reads. Exit 0: healthy, 1: not (Docker's convention).
"""

from __future__ import annotations

import os
import sys
import urllib.request

ROLES = ("api", "worker", "projector", "migrate", "topics")


def role() -> str:
    with open("/proc/1/cmdline", "rb") as f:
        args = f.read().decode().split("\0")
    return next((a for a in args if a in ROLES), "")


def fetch(port: str, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return str(response.read().decode())


def healthy(name: str) -> bool:
    env = os.environ.get
    if name == "api":
        return '"ok"' in fetch(env("GOAL_ENGINE_API_PORT", "8000"), "/healthz")
    if name in ("worker", "projector"):
        port = env(f"GOAL_ENGINE_{name.upper()}_METRICS_PORT", "9101" if name == "worker" else "9102")
        return any(line.strip() == "goal_engine_ready 1.0" for line in fetch(port, "/metrics").splitlines())
    return True  # one-shots: nothing to serve


if __name__ == "__main__":
    name = role()
    try:
        ok = healthy(name)
    except OSError as exc:
        print(f"{name or 'unknown role'}: {exc}")
        sys.exit(1)
    print(f"{name}: {'ready' if ok else 'not ready'}")
    sys.exit(0 if ok else 1)
