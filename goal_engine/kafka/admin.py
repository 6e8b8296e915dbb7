"""``goal-engine topics``: every topic, its partitions and config, created or brought up to date."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from goal_engine.contract.topics import CONFIG_TOPICS, Topic
from goal_engine.core.config import Settings

log = logging.getLogger(__name__)

_DAY_MS = 24 * 3600 * 1000

#: What ``projections rebuild`` replays besides the catalog, and the dead letters
#: (their original bytes are what an operator replays): kept as long as the read
#: models keep the achievement log, so a rebuild gives the same 2 years.
HISTORY_TOPICS: tuple[Topic, ...] = (
    Topic.GOAL_ACHIEVED,
    Topic.EXIT_GOAL,
    Topic.DEAD_LETTER,
    Topic.ENROLLMENT_STARTED,
    Topic.ENROLLMENT_ENDED,
)


#: The worker's contact table (``goal_engine/stream``): Faust names its changelog
#: "{app id}-{table}-changelog", and the app id is ``worker_id``.
CONTACTS_TABLE = "contacts"


def changelog_topic(settings: Settings) -> str:
    return f"{settings.worker_id}-{CONTACTS_TABLE}-changelog"


@dataclass(frozen=True)
class TopicSpec:
    topic: Topic
    partitions: int
    config: dict[str, str]


@dataclass(frozen=True)
class TopicChange:
    """What ``ensure_topics`` did (or, in a dry run, would do) to one topic."""

    topic: str
    created: bool = False
    altered: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # name: (was, now)


def history_retention_ms(settings: Settings) -> int:
    # The achievement log drops whole months only, so it can hold up to a month
    # more than retention_days: the topics keep that month too.
    return (settings.retention_days + 31) * _DAY_MS


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """What every topic looks like. Why each choice:

    - contact-scoped topics share one partition count, so the re-keyed stream
      and the worker's contact table are co-partitioned;
    - configuration topics are compacted: each record is a whole workflow
      snapshot, so the newest per key is all a starting worker needs;
    - reference data is kept forever (the catalog is rebuilt from it);
    - :data:`HISTORY_TOPICS` keep the achievement log's retention (2 years by
      default), for audit and for a rebuild of the read models;
    - goal sources keep 30 days: once evaluated, what they caused is in the
      history topics; the re-keyed copy keeps 7 days.
    """
    n = settings.partitions
    specs: list[TopicSpec] = []
    for topic in Topic:
        if topic in CONFIG_TOPICS:
            config = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(_DAY_MS)}
        elif topic is Topic.CATALOG_ENTITY_CHANGED:
            # Not compacted: the contract sets no key for it, and a compacted topic
            # refuses unkeyed records. Kept forever so the read model can be rebuilt.
            config = {"retention.ms": "-1"}
        elif topic in HISTORY_TOPICS:
            config = {"retention.ms": str(history_retention_ms(settings))}
        elif topic is Topic.CONTACT_EVENTS:
            config = {"retention.ms": str(7 * _DAY_MS)}
        else:
            config = {"retention.ms": str(30 * _DAY_MS)}
        if settings.topic_min_insync_replicas is not None:
            # With acks=all, a write then needs this many replicas: fewer alive and it fails
            # (the producer retries) rather than being acknowledged by one disk.
            config["min.insync.replicas"] = str(settings.topic_min_insync_replicas)
        specs.append(TopicSpec(topic, n, config))
    return specs


def wanted_topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic ``ensure_topics`` manages, by name: its partitions and config."""
    wanted = {settings.topic(s.topic): (s.partitions, s.config) for s in topic_specs(settings)}
    # The worker's changelog too, co-partitioned with contact events. Left to Faust, it is
    # created as the worker starts, and a worker whose consumer saw it before its partitions
    # existed crashes on its first write (PartitionsMismatch: "has 0 partitions").
    changelog = {"cleanup.policy": "compact"}
    if settings.topic_min_insync_replicas is not None:
        changelog["min.insync.replicas"] = str(settings.topic_min_insync_replicas)
    wanted[changelog_topic(settings)] = (settings.partitions, changelog)
    return wanted


async def ensure_topics(settings: Settings, *, dry_run: bool = False) -> list[TopicChange]:
    """Make every topic match :func:`topic_specs`; returns what changed. Steps:

    1. create the missing topics with their config;
    2. read the topic-level overrides of the others;
    3. alter those whose overrides differ from the spec. The AlterConfigs request
       (all aiokafka has) replaces every override of a topic, so the ones we do
       not manage (an operator's ``max.message.bytes``, say) are sent back too.
    Partition counts of existing topics are never changed: that would move keys.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="goal-engine-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        specs = wanted_topics(settings)
        missing = [name for name in specs if name not in existing]
        rf = settings.topic_replication_factor
        changes = [TopicChange(name, created=True) for name in missing]
        if missing and not dry_run:
            # Another process may create them between our list and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(n, specs[n][0], rf, topic_configs=specs[n][1]) for n in missing]
                )
        present = [name for name in specs if name in existing]
        overrides = await _topic_overrides(admin, present) if present else {}
        altered = []
        for name in present:
            current = overrides[name]
            config = specs[name][1]
            diff = {k: (current.get(k), v) for k, v in config.items() if current.get(k) != v}
            if diff:
                changes.append(TopicChange(name, altered=diff))
                altered.append(ConfigResource(ConfigResourceType.TOPIC, name, {**current, **config}))
        if altered and not dry_run:
            _raise_on_errors("alter configs", await admin.alter_configs(altered))
        if changes and not dry_run:
            log.info("topics brought up to date", extra={"changes": [c.topic for c in changes]})
        return changes
    finally:
        await admin.close()


async def create_topics(settings: Settings) -> list[str]:
    """Create every missing topic, and bring the others' config up to date; returns those created."""
    return [c.topic for c in await ensure_topics(settings) if c.created]


async def topic_overrides(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    """The configs set on each of these topics (not inherited from the broker)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="goal-engine-admin")
    await admin.start()
    try:
        return await _topic_overrides(admin, names)
    finally:
        await admin.close()


# DescribeConfigs v1+ ``config_source`` of a value set on the topic itself.
_DYNAMIC_TOPIC_CONFIG = 1


async def _topic_overrides(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    _raise_on_errors("describe configs", responses)
    out: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            own: dict[str, str] = {}
            for entry in entries:
                key, value, source = entry[0], entry[1], entry[3]
                # v0 has is_default there instead: not a default is the closest to "set here".
                is_override = source == _DYNAMIC_TOPIC_CONFIG if response.API_VERSION else not source
                if not is_override:
                    continue
                if value is None:
                    # A sensitive value is not readable, so an alter would drop it: refuse.
                    raise RuntimeError(f"topic {name}: cannot keep the hidden value of {key}")
                own[key] = value
            out[name] = own
    return out


def _raise_on_errors(what: str, responses: list[object]) -> None:
    for response in responses:
        for resource in getattr(response, "resources", []):
            error_code, message, name = resource[0], resource[1], resource[3]
            if error_code:
                raise RuntimeError(f"{what} of topic {name} failed: error {error_code} {message or ''}")


async def topic_partitions(settings: Settings, names: list[str]) -> list[TopicPartition]:
    """Every partition of these topics, for a consumer that assigns them itself.

    (A consumer without a group has no metadata for topics it has not
    subscribed to, so it cannot list their partitions on its own.)
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="goal-engine-admin")
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if not d["error_code"]
        for p in d["partitions"]
    ]
    if missing := sorted(set(names) - {tp.topic for tp in partitions}):
        raise RuntimeError(f"missing topics {missing}: run `goal-engine topics` first")
    return partitions
