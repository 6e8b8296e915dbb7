"""``python -m goal_engine.bench.bulk_tag``: a CRM's bulk tag against a running stack (``make run``).

What a user does: N contacts are enrolled in a workflow whose goal is a tag, then the
tag is added to all N at once. This script produces those records to the stack's
Kafka (``GOAL_ENGINE_KAFKA_BOOTSTRAP``, 127.0.0.1:9092 for ``make run``), as the
CRM's modules would (contract keys, ``goal-engine send``'s format), and reports when
the last ``workflow.exit.goal`` came, measured from the first and the last tag's append
(both Kafka timestamps). The workflow must exist and be active with a tag goal on
``--tag`` (see the README's "Try it by hand": steps 1 and 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from goal_engine.bench.events import KafkaRecord, TagGoalWorkflow
from goal_engine.bench.stack import cpu_seconds, host_cpu_seconds
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.kafka.admin import topic_partitions


async def produce(producer: AIOKafkaProducer, settings: Settings, records: list[KafkaRecord]) -> list[int]:
    futures = [await producer.send(settings.topic(t), v, key=k) for t, k, v in records]
    return [m.timestamp for m in await asyncio.gather(*futures)]


#: Which part of the local stack a process is, by its command line (first match).
_PARTS = (
    ("worker", "goal_engine.cli worker"),
    ("projector", "goal_engine.cli projector"),
    ("api", "goal_engine.cli api"),
    ("kafka", "kafka"),
    ("postgresql", "postgres"),
)


CpuSnapshot = dict[int, tuple[str, float]]  # pid -> (part of the stack, CPU seconds so far)


def cpu_snapshot() -> tuple[float, CpuSnapshot]:
    """The host's CPU seconds so far, and each process's, with the part of the stack it is.

    A process of none of the parts is "other"; this script is "bulk-tag (this client)".
    """
    processes: CpuSnapshot = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        pid = int(cmdline.parent.name)
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        part = "bulk-tag (this client)" if pid == os.getpid() else "other"
        part = next((name for name, marker in _PARTS if marker in command), part)
        if (cpu := cpu_seconds(pid)) is not None:
            processes[pid] = (part, cpu)
    return host_cpu_seconds(), processes


def print_cpu_split(
    before: tuple[float, CpuSnapshot], after: tuple[float, CpuSnapshot], seconds: float
) -> None:
    """Where the host's CPU went between two :func:`cpu_snapshot` (in cores: 1.0 is one core busy).

    What the processes alive at the end do not account for (processes that ended
    meanwhile, the kernel's own work) is "not accounted".
    """
    used: defaultdict[str, float] = defaultdict(float)
    for pid, (part, cpu) in after[1].items():
        used[part] += cpu - before[1].get(pid, (part, 0.0))[1]
    host = after[0] - before[0]
    used["not accounted"] = host - sum(used.values())
    print(f"CPU from the first tag sent to the last exit seen ({seconds:.2f} s), in cores:", flush=True)
    for part, cpu in [*sorted(used.items(), key=lambda kv: -kv[1]), ("host (all of the above)", host)]:
        print(f"  {part:<24} {cpu / seconds:5.2f}  ({cpu:.1f} s)", flush=True)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    run_id = uuid.uuid4().hex[:6]
    wf = TagGoalWorkflow(args.tenant, args.workflow, args.tag, args.tag_name, "goal-engine/bulk-tag")
    contacts = [f"bulk-{run_id}-{i}" for i in range(args.contacts)]
    enrollments = {f"en-{c}": c for c in contacts}
    exits = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await exits.start()
    await producer.start()
    try:
        tps = await topic_partitions(settings, [settings.topic(Topic.EXIT_GOAL)])
        exits.assign(tps)
        await exits.seek_to_end(*tps)
        for tp in tps:
            await exits.position(tp)
        started = [wf.enrollment_started(c, e, datetime.now(UTC)) for e, c in enrollments.items()]
        await produce(producer, settings, started)
        print(
            f"enrolled {len(started):,} contacts in {args.workflow}; waiting {args.settle:.0f} s", flush=True
        )
        await asyncio.sleep(args.settle)
        tags = [wf.tag_added(c, datetime.now(UTC)) for c in contacts]
        t0, cpu_before = time.monotonic(), cpu_snapshot()
        appended = await produce(producer, settings, tags)
        first, last = min(appended), max(appended)
        print(f"appended {len(tags):,} contact.tag.added in {time.monotonic() - t0:.2f} s", flush=True)
        seen: dict[str, int] = {}
        deadline = time.monotonic() + args.timeout
        while len(seen) < len(enrollments) and time.monotonic() < deadline:
            for records in (await exits.getmany(timeout_ms=500, max_records=5000)).values():
                for r in records:
                    enrollment = json.loads(r.value)["data"]["workflow_enrollment_id"]
                    if enrollment in enrollments:
                        seen.setdefault(enrollment, r.timestamp)
        cpu_split = (cpu_before, cpu_snapshot(), time.monotonic() - t0)
    finally:
        await producer.stop()
        await exits.stop()
    if not seen:
        print("no exit arrived", flush=True)
        return 1
    last_exit = max(seen.values())
    print(
        f"exits: {len(seen):,}/{len(enrollments):,}; last exit {(last_exit - last) / 1000:.2f} s after the "
        f"last tag's append, {(last_exit - first) / 1000:.2f} s after the first "
        f"({len(seen) / max(0.001, (last_exit - first) / 1000):,.0f} exits/s)",
        flush=True,
    )
    print_cpu_split(*cpu_split)
    return 0 if len(seen) == len(enrollments) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goal_engine.bench.bulk_tag", description=__doc__)
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--workflow", default="wf-1")
    parser.add_argument("--tag", default="tag-42", help="the tag id of the workflow's goal")
    parser.add_argument("--tag-name", default="Purchased")
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument(
        "--settle", type=float, default=20.0, help="seconds between the enrollments and the tags"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="how long to wait for the exits")
    args = parser.parse_args(argv)
    return asyncio.run(run(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
