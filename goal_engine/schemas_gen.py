"""``schemas/``: one JSON Schema file per topic, generated from the contract models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from goal_engine.contract.events import DATA_MODELS, CloudEvent
from goal_engine.contract.topics import Topic

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def topic_schema(topic: Topic) -> dict[str, Any]:
    """The envelope's schema with ``type`` fixed and ``data`` the topic's model."""
    schema = CloudEvent.model_json_schema()
    data = DATA_MODELS[topic].model_json_schema()
    defs = {**schema.pop("$defs", {}), **data.pop("$defs", {})}
    schema["title"] = str(topic)
    schema["properties"]["type"] = {"const": str(topic), "title": "Type"}
    schema["properties"]["data"] = data
    if defs:
        schema["$defs"] = defs
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def rendered() -> dict[str, str]:
    return {
        f"{topic}.schema.json": json.dumps(topic_schema(topic), indent=2, sort_keys=True) + "\n"
        for topic in DATA_MODELS
    }


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Files that differ from the models (missing, stale or extra)."""
    expected = rendered()
    present = {p.name for p in directory.glob("*.schema.json")} if directory.exists() else set()
    problems = [n for n, text in expected.items() if n not in present or (directory / n).read_text() != text]
    problems += sorted(present - set(expected))
    return problems
