"""The devstack's own Kafka broker: formatting its storage (real Kafka StorageTool)."""

from __future__ import annotations

from pathlib import Path

import pytest

from goal_engine.devstack.kafka import KafkaBroker
from goal_engine.devstack.ports import free_port

pytestmark = pytest.mark.integration


def test_a_cluster_id_beginning_with_a_dash_formats(tmp_path: Path) -> None:
    # A random base64url id begins with "-" once in 64: the StorageTool must not take it for
    # an option (it failed with "argument --cluster-id/-t: expected one argument").
    data_dir = tmp_path / "kafka"
    data_dir.mkdir()
    (data_dir / "cluster.id").write_text("-1T-sfOZT0CoA14aMYcaBA\n")
    with KafkaBroker(data_dir, port=free_port()):
        meta = (data_dir / "kraft" / "meta.properties").read_text()
    assert "cluster.id=-1T-sfOZT0CoA14aMYcaBA" in meta
