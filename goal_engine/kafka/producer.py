"""One way to build the engine's Kafka producer: durable and idempotent."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from goal_engine.core.config import Settings


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    # acks=all + idempotence: a broker retry never duplicates or drops a record.
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
    )
