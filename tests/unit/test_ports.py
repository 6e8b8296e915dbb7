"""goal_engine.devstack.ports: a port is handed out once per process."""

from __future__ import annotations

import socket

from goal_engine.devstack.ports import free_port


def test_ports_handed_out_are_distinct_and_free() -> None:
    # 500 draws from the kernel's ephemeral range collide with near certainty
    # (the birthday bound) unless the ports already handed out are skipped.
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    for port in ports[:20]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # still free: nothing kept it bound
