"""The raw pipe: the least work per goal event any engine must do, with aiokafka alone.

``python -m goal_engine.bench.baseline --bootstrap HOST:PORT --prefix P --events N``
(the benchmark runs it as a child process, on its own broker, and divides the
engine's throughput by this one's). Per event, as the engine: consume, decode
the CloudEvent (JSON), look up the contact's state, and produce its new state,
the achievement and the exit; acks=all, idempotent, and the acks awaited once
per fetched batch before the next fetch (the engine's "publish before state").
No validation, no Faust, no table: the physical anchor of one Python process.

It first fills ``{P}baseline.in`` with N ``contact.tag.added`` (not timed),
then times the drain of that backlog; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from goal_engine.bench.events import Population

TOPICS = ("in", "state", "achieved", "exit")


async def run(
    bootstrap: str, prefix: str, events: int, partitions: int, tenants: int = 10
) -> dict[str, float]:
    names = {t: f"{prefix}baseline.{t}" for t in TOPICS}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="goal-engine-baseline")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names.values()])
    finally:
        await admin.close()
    population = Population(tenants)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        now = datetime.now(UTC)
        acks = []
        state: dict[str, bytes] = {}
        for i in range(events):
            record = population.tag_added(i, now)
            acks.append(await producer.send(names["in"], record.value, key=record.key))
            enrollment = {"workflow_id": "bench-wf", "enrollment_id": population.enrollment(i), "met": []}
            state[record.key.decode()] = json.dumps({"enrollments": [enrollment]}).encode()
        await asyncio.gather(*acks)
        return await _drain(bootstrap, names, partitions, events, state, producer)
    finally:
        await producer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="goal-engine-baseline")
        await admin.start()
        try:
            await admin.delete_topics(list(names.values()))
        finally:
            await admin.close()


async def _drain(
    bootstrap: str,
    names: dict[str, str],
    partitions: int,
    events: int,
    state: dict[str, bytes],
    producer: AIOKafkaProducer,
) -> dict[str, float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(names["in"], p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        done = 0
        started, cpu = time.monotonic(), time.process_time()
        while done < events:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            acks = []
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value)
                    key = f"{event['tenantid']}:{event['subject']}"
                    contact = json.loads(state[key])
                    enrollment = contact["enrollments"][0]
                    enrollment["met"].append(event["data"]["tag_id"])
                    value = json.dumps(contact).encode()
                    state[key] = value
                    achieved = {"id": f"{enrollment['enrollment_id']}/goal", "trigger_event": event}
                    exited = {"workflow_enrollment_id": enrollment["enrollment_id"], "time": event["time"]}
                    acks.append(await producer.send(names["state"], value, key=record.key))
                    acks.append(
                        await producer.send(names["achieved"], json.dumps(achieved).encode(), key=record.key)
                    )
                    acks.append(
                        await producer.send(names["exit"], json.dumps(exited).encode(), key=record.key)
                    )
                    done += 1
            await asyncio.gather(*acks)
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    finally:
        await consumer.stop()
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds, 1),
        "cpu_ms_per_event": round(1000 * cpu / events, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goal_engine.bench.baseline", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True, help="topic prefix of this run")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.bootstrap, args.prefix, args.events, args.partitions))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
