"""The workflow-configuration table every worker holds whole (R9).

Each worker needs every workflow's goals, whichever contacts it owns, so this
table is broadcast, not partitioned: every worker reads all partitions of the
(compacted) configuration topics from the beginning, then follows them.

Why not a Faust ``GlobalTable``: its changelog is known to leave some workers
with a partial table when several run (robinhood/faust#716, #541). A plain
consumer with no group has no such failure mode and no rebalance to stall on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from goal_engine.contract.events import InvalidEvent, WorkflowSnapshot, parse_event
from goal_engine.contract.topics import CONFIG_TOPICS, workflow_key
from goal_engine.core.config import Settings
from goal_engine.domain.workflow import WorkflowConfig
from goal_engine.kafka.admin import topic_partitions
from goal_engine.stream import metrics

log = logging.getLogger(__name__)


OnChange = Callable[[str, str], Awaitable[None]]


class WorkflowConfigs:
    def __init__(self, settings: Settings, on_change: OnChange | None = None) -> None:
        self._settings = settings
        self._on_change = on_change
        self._configs: dict[str, WorkflowConfig] = {}
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    def get(self, tenant_id: str, workflow_id: str) -> WorkflowConfig | None:
        return self._configs.get(workflow_key(tenant_id, workflow_id))

    def __len__(self) -> int:
        return len(self._configs)

    def apply(self, tenant_id: str, snapshot: WorkflowSnapshot) -> bool:
        """Take a snapshot unless we hold a newer one; True when it changed the table."""
        key = workflow_key(tenant_id, snapshot.workflow_id)
        current = self._configs.get(key)
        if current is not None and current.version >= snapshot.version:
            return False  # a redelivered or reordered older snapshot
        self._configs[key] = WorkflowConfig.from_snapshot(snapshot)
        metrics.WORKFLOWS.set(len(self._configs))
        return True

    async def run(self) -> None:
        """Load everything up to the current end, set ``ready``, then follow."""
        s = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            client_id=f"{s.worker_id}-configs",
            group_id=None,
            enable_auto_commit=False,
        )
        self._consumer = consumer
        await consumer.start()
        try:
            partitions = await topic_partitions(s, [s.topic(t) for t in CONFIG_TOPICS])
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            pending = {tp for tp, offset in end.items() if offset > 0}
            log.info("loading workflow configurations", extra={"partitions": len(partitions)})
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
                for tp, records in batch.items():
                    for record in records:
                        changed = self.apply_record(record.value)
                        if changed and self._on_change is not None and self.ready.is_set():
                            await self._on_change(*changed)
                        if tp in pending and record.offset + 1 >= end[tp]:
                            pending.discard(tp)
                if not self.ready.is_set():
                    # A partition with only compacted-away or aborted records
                    # never yields its last offset: ask where we are instead.
                    for tp in list(pending):
                        if await consumer.position(tp) >= end[tp]:
                            pending.discard(tp)
                    if not pending:
                        log.info("workflow configurations loaded", extra={"workflows": len(self)})
                        self.ready.set()
        finally:
            await consumer.stop()

    def apply_record(self, value: bytes | None) -> tuple[str, str] | None:
        """Apply one record; the (tenant, workflow) it changed, if it changed one."""
        try:
            event = parse_event(value)
            snapshot = WorkflowSnapshot.model_validate(event.data["workflow"])
        except (InvalidEvent, KeyError, ValueError) as exc:
            # Only the API writes these topics; a bad record is a bug to see, not to crash on.
            log.error("ignored an invalid configuration record", extra={"reason": str(exc)})
            return None
        if self.apply(event.tenantid, snapshot):
            return event.tenantid, snapshot.workflow_id
        return None
