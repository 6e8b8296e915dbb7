"""Correction 6 of goal_engine/stream/transport.py: the broker holds a fetch 100 ms, not Faust's 1.5 s.

The end-to-end figure is ``bench --rate 2000`` (p50 1.25 s with Faust's wait, 50-90 ms
with this one); here only that the worker's aiokafka consumer gets it (nothing connects).
"""

from __future__ import annotations

from typing import cast

from faust.transport.drivers import aiokafka as faust_aiokafka

from goal_engine.stream import transport


async def test_the_workers_consumer_fetches_with_the_short_wait() -> None:
    app = transport.App(
        "test-fetch-wait", broker="kafka://127.0.0.1:1", autodiscover=False, web_enabled=False
    )
    consumer = cast(transport._Consumer, app.consumer)
    thread = consumer._new_consumer_thread()
    assert isinstance(thread, transport._ConsumerThread)
    aiokafka_consumer = thread._create_worker_consumer(cast(faust_aiokafka.Transport, app.transport))
    try:
        assert aiokafka_consumer._fetch_max_wait_ms == transport.FETCH_MAX_WAIT_MS <= 100
    finally:
        await aiokafka_consumer.stop()  # never started: releases its client
