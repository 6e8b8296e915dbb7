"""``goal-engine dev --workers N`` and the benchmark's workers: one group, nothing shared but Kafka."""

from pathlib import Path

from goal_engine.core.config import Settings
from goal_engine.devstack.processes import worker_processes


def test_each_worker_has_its_own_metrics_port_state_and_log(tmp_path: Path) -> None:
    env = {"GOAL_ENGINE_WORKER_METRICS_PORT": "9101", "GOAL_ENGINE_STATE_DIR": str(tmp_path)}
    workers = worker_processes(3, env, [9101, 9111, 9121], tmp_path, tmp_path / "logs" / "worker.log")

    assert [w.name for w in workers] == ["worker", "worker-2", "worker-3"]
    assert [w.env["GOAL_ENGINE_WORKER_METRICS_PORT"] for w in workers] == ["9101", "9111", "9121"]
    assert [w.env["GOAL_ENGINE_STATE_DIR"] for w in workers] == [
        str(tmp_path),
        str(tmp_path / "worker-2"),
        str(tmp_path / "worker-3"),
    ]
    assert len({w.log_path for w in workers}) == 3
    assert all(w.command[-1] == "worker" for w in workers)
    assert "GOAL_ENGINE_WORKER_ID" not in {k for w in workers for k in w.env}  # one consumer group


def test_the_local_workers_ports_skip_the_projector_and_api_ports_and_readyz_checks_each() -> None:
    settings = Settings(worker_metrics_port=9101, projector_metrics_port=9102, local_workers=3)
    ports = settings.local_worker_metrics_ports()

    assert ports == [9101, 9111, 9121]
    assert settings.projector_metrics_port not in ports
    assert settings.peer_ready_urls == {
        "worker": "http://127.0.0.1:9101/metrics",
        "worker-2": "http://127.0.0.1:9111/metrics",
        "worker-3": "http://127.0.0.1:9121/metrics",
        "projector": "http://127.0.0.1:9102/metrics",
    }
