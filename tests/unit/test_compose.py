"""deploy/compose.yaml: the one-host topology keeps to loopback and Prometheus sees every process."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"])


def test_every_container_uses_the_host_network_and_publishes_nothing() -> None:
    for name, service in _services().items():
        assert service.get("network_mode") == "host", name
        assert "ports" not in service and "networks" not in service, name


def test_every_listening_port_is_distinct() -> None:
    ports: list[str] = []
    for name, service in _services().items():
        env = service.get("environment", {})
        for key in ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "PGPORT", "GOAL_ENGINE_API_PORT"):
            if key in env:
                ports.append(env[key])
        if name.startswith("worker"):
            ports.append(env["GOAL_ENGINE_WORKER_METRICS_PORT"])
        if name == "projector":
            ports.append(env["GOAL_ENGINE_PROJECTOR_METRICS_PORT"])
    assert len(ports) == len(set(ports)), ports


def test_prometheus_scrapes_every_api_worker_and_projector() -> None:
    scraped = set(re.findall(r"127\.0\.0\.1:(\d+)", (DEPLOY / "prometheus" / "compose.yml").read_text()))
    expected = set()
    for name, service in _services().items():
        env = service.get("environment", {})
        if name.startswith("api"):
            expected.add(env["GOAL_ENGINE_API_PORT"])
        elif name.startswith("worker"):
            expected.add(env["GOAL_ENGINE_WORKER_METRICS_PORT"])
        elif name == "projector":
            expected.add(env["GOAL_ENGINE_PROJECTOR_METRICS_PORT"])
    assert scraped == expected


def test_the_cluster_replicates_three_ways_and_the_apps_ask_for_it() -> None:
    services = _services()
    brokers = [s for n, s in services.items() if n.startswith("kafka-")]
    assert len(brokers) == 3
    assert all(b["environment"]["KAFKA_REPLICATION"] == "3" for b in brokers)
    assert all(b["environment"]["KAFKA_MIN_ISR"] == "2" for b in brokers)
    app_env = services["worker-1"]["environment"]
    assert app_env["GOAL_ENGINE_TOPIC_REPLICATION_FACTOR"] == "3"
    assert app_env["GOAL_ENGINE_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert len(app_env["GOAL_ENGINE_KAFKA_BOOTSTRAP"].split(",")) == 3
