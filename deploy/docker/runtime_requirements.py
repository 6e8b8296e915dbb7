"""Print goal-engine's runtime dependencies, pinned to the versions installed in this
environment (the ones the tests ran with): ``name==version`` lines, dev extras left out.

`make images` builds the image's wheels from this list with ``pip wheel --no-deps``.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution

from packaging.markers import default_environment
from packaging.requirements import Requirement


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_pins(root: str = "goal-engine") -> dict[str, str]:
    pins: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (_key(name), extras) in seen:
            continue
        seen.add((_key(name), extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional dependency for another platform
        if _key(name) != root:
            pins[_key(name)] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            base = {k: str(v) for k, v in default_environment().items()}
            envs = [{**base, "extra": e} for e in (extras or {""})]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return pins


if __name__ == "__main__":
    for name, version in sorted(runtime_pins().items()):
        print(f"{name}=={version}")
