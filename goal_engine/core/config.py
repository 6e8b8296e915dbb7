"""Settings: every knob of every process, from ``GOAL_ENGINE_*`` environment variables.

One object, built once per process by :func:`get_settings`; nothing else reads
the environment. The README's configuration table lists the same names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from goal_engine.contract.topics import Topic, topic_name

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOAL_ENGINE_", extra="ignore")

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    topic_prefix: str = Field("", description="prepended to every topic read or written")
    partitions: int = Field(
        12,
        ge=1,
        description="partitions of the topics `goal-engine topics` creates (existing topics keep theirs): "
        "the most worker processes that can share the work",
    )
    topic_replication_factor: int = Field(
        1,
        ge=1,
        description="replicas of every topic `goal-engine topics` and the worker create (3 in production)",
    )
    topic_min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="min.insync.replicas of every topic `goal-engine topics` manages; unset: the broker's",
    )

    # --- PostgreSQL --------------------------------------------------------------
    database_url: str | None = Field(
        None, description="postgresql://… of the read models; unset: `make run` starts an embedded one"
    )

    # --- API -------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    jwt_secret: str = Field(
        "",
        description="HS256 secret of API tokens, at least 32 bytes; the API refuses to start without "
        "one (`make run` generates one into .local/)",
    )
    jwt_audience: str | None = Field(None, description="when set, a token's `aud` must be this")
    jwt_issuer: str | None = Field(None, description="when set, a token's `iss` must be this")
    jwt_leeway_seconds: float = Field(
        10.0, ge=0, le=300, description="clock skew tolerated on a token's `exp` and `iat`"
    )
    jwt_max_lifetime_seconds: int = Field(
        24 * 3600, ge=60, description="longest lifetime (exp - iat) of a token the API accepts"
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1, description="largest request body the API accepts, counted as it arrives"
    )
    api_read_cache_mib: int = Field(
        64,
        ge=0,
        description="memory per API process for the exact cache of the read answers (stats, "
        "tenant summary, achievements pages); 0 turns it off",
    )

    # --- stream worker ----------------------------------------------------------
    worker_id: str = Field("goal-engine", description="Faust app id: the consumer group of the workers")
    state_dir: Path = Field(REPO_ROOT / ".local" / "worker-state", description="Faust table data")
    table_store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://")
    grace_seconds: float = Field(
        60.0, ge=0, description="how long a goal event waits for an enrollment processed after it"
    )
    ended_retention_seconds: float = Field(
        3600.0, ge=0, description="how long an ended enrollment is remembered (against late duplicates)"
    )
    max_kept_events: int = Field(
        20, ge=1, description="most goal events one contact keeps for the grace window (oldest go first)"
    )
    max_kept_event_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="most bytes of goal events one contact keeps for the grace window (oldest go first)",
    )
    sweep_interval_seconds: float = Field(30.0, gt=0, description="how often expired worker state is swept")
    evaluate_batch_size: int = Field(
        1000, ge=1, description="most contact events the worker evaluates before it waits for Kafka's acks"
    )
    evaluate_batch_wait_seconds: float = Field(
        0.005,
        ge=0,
        description="how long the worker lets a batch with room left fill, once (added latency at low "
        "load; 0: only what has arrived)",
    )
    worker_commit_every: int = Field(
        10_000,
        ge=1,
        description="the worker also commits its offsets after this many processed records (Faust's "
        "broker_commit_every), besides once per commit interval",
    )
    gc_threshold: int = Field(
        50_000,
        ge=1,
        description="allocations between two of Python's young garbage collections in the worker and "
        "the projector (at Python's default, 700, they took ~17 % of the worker's CPU in a bulk tag)",
    )
    worker_session_timeout_seconds: float = Field(
        60.0,
        ge=6,  # the broker's group.min.session.timeout.ms (6 s by default) refuses less
        le=90,  # at most Faust's broker_request_timeout
        description="how long the group waits for a silent (e.g. killed) worker before its partitions "
        "move to the others, or to its restarted self",
    )

    # --- metrics (one port per process) ----------------------------------------
    worker_metrics_port: int = 9101
    projector_metrics_port: int = 9102
    ready_check_peers: bool = Field(
        True, description="/readyz also requires the worker(s) and projector (on this host) to be ready"
    )
    local_workers: int = Field(
        1,
        ge=1,
        description="stream workers on this host, for /readyz: worker n serves its metrics 10 ports "
        "after worker n-1's (`goal-engine dev --workers N` sets it)",
    )

    # --- projector ---------------------------------------------------------------
    projector_group: str = Field("goal-engine-projector", description="consumer group of the projector")
    projector_batch_size: int = Field(2000, ge=1)
    retention_days: int = Field(
        730,
        ge=1,
        description="how long goal history is kept: the achievement log (applied daily by the projector) "
        "and, plus a month, the topics a rebuild replays (set by `goal-engine topics`)",
    )

    log_level: str = "INFO"
    log_format: str = Field("json", description="json or text")

    def topic(self, topic: Topic | str) -> str:
        return topic_name(topic, self.topic_prefix)

    @property
    def peer_ready_urls(self) -> dict[str, str]:
        if not self.ready_check_peers:
            return {}
        ports = self.local_worker_metrics_ports()
        workers = {f"worker-{n}" if n > 1 else "worker": port for n, port in enumerate(ports, start=1)}
        return {
            **{name: f"http://127.0.0.1:{port}/metrics" for name, port in workers.items()},
            "projector": f"http://127.0.0.1:{self.projector_metrics_port}/metrics",
        }

    def local_worker_metrics_ports(self, workers: int | None = None) -> list[int]:
        """Worker 1's metrics port, then every tenth port (9111, 9121, …: the ports right
        after it are the projector's and the API's)."""
        return [self.worker_metrics_port + 10 * n for n in range(workers or self.local_workers)]

    @property
    def database_url_asyncpg(self) -> str:
        if not self.database_url:
            raise RuntimeError("GOAL_ENGINE_DATABASE_URL is not set")
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
