"""A single-node KRaft Kafka broker run from jars fetched off Maven Central.

No Docker and no tarball from outside the package registries: ``deploy/kafka/pom.xml``
names the broker, Maven copies its jars into ``<cache>/kafka-<version>/libs`` once, and
``KafkaBroker`` runs ``java -cp 'libs/*' kafka.Kafka`` as a child process of the caller.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fcntl
import hashlib
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from goal_engine.devstack import DevstackError, stop_orphan, tail
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.processes import LocalServer, spawn, stop_child

log = logging.getLogger("goal_engine.devstack")


def new_cluster_id() -> str:
    """A KRaft cluster id, the shape of `kafka-storage.sh random-uuid` (base64url of 16 bytes,
    no padding). It may begin with "-": pass it to the storage tool as "--cluster-id=ID"."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


# Keep in step with <kafka.version> in deploy/kafka/pom.xml (the POM says why this one).
# Known Faust 0.15.3 issue, any broker version: with processing_guarantee="exactly_once"
# table recovery reads the changelog end from consumer.last_stable_offset(), which is None
# before the first fetch, so a restarted worker skips recovery and starts with empty tables.
KAFKA_VERSION = "4.4.0"

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_PATH = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"

_INSTALL_HINT = (
    "install Java 17+ and Maven (e.g. `apt-get install openjdk-17-jre-headless maven`), "
    "or set GOAL_ENGINE_KAFKA_BOOTSTRAP to an existing broker"
)

#: The JVM's heap and collector, under the names Kafka's own start script reads
#: (``kafka-server-start.sh``): set either variable to replace our default.
#:
#: Why these: this broker shares a small machine with the worker it serves, and its
#: CPU is the worker's loss. Sampled per JVM thread in a 20,000-contact bulk tag
#: (docs/performance/worker.md, "The broker's JVM"), most of the broker's 2.6-5.5 s
#: of CPU was the JVM's own: the C2 compiler (~1.2 s, compiling while the burst ran),
#: and G1's concurrent marking of a heap started at 256 MB (up to 2.3 s); serving
#: requests took 0.5-0.7 s. C1 alone compiles at a fraction of the cost, and the
#: parallel collector with a fixed heap has no concurrent work: the broker's share
#: fell to 0.7-1.1 s.
HEAP_OPTS_VARIABLE, DEFAULT_HEAP_OPTS = "KAFKA_HEAP_OPTS", "-Xms1g -Xmx1g"
PERFORMANCE_OPTS_VARIABLE, DEFAULT_PERFORMANCE_OPTS = (
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "-XX:+UseParallelGC -XX:TieredStopAtLevel=1",
)


def jvm_options() -> list[str]:
    """The broker's JVM options: ``KAFKA_HEAP_OPTS`` and ``KAFKA_JVM_PERFORMANCE_OPTS``, or ours."""
    heap = os.environ.get(HEAP_OPTS_VARIABLE, DEFAULT_HEAP_OPTS)
    performance = os.environ.get(PERFORMANCE_OPTS_VARIABLE, DEFAULT_PERFORMANCE_OPTS)
    return shlex.split(heap) + shlex.split(performance)


# Broker logging goes to stdout (redirected into data_dir/kafka.log by us). Turned down:
# the config dumps (~2,000 lines per start; server.properties is next to the log anyway),
# per-request and state-change logs, which would drown the lines that matter when a
# start fails. Kafka's own shutdown hook flushes logs; log4j's would only warn about it.
_LOG4J2 = """\
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
"""


def _require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise DevstackError(f"The local Kafka broker needs {' and '.join(missing)} on PATH: {_INSTALL_HINT}.")


def ensure_kafka_libs(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Return ``cache_dir/kafka-<KAFKA_VERSION>/libs``, downloading the jars if needed.

    The jars are copied into a temporary directory and renamed into place only once Maven
    succeeded, with a marker holding the POM's hash, so an interrupted download is never
    taken as complete and a changed POM triggers a new one. A file lock keeps two
    processes (e.g. parallel test runs) from downloading at the same time.
    """
    if not POM_PATH.is_file():
        raise DevstackError(f"{POM_PATH} is missing: run from a checkout of the repository.")
    pom_hash = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()
    home = cache_dir / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    marker = libs / ".complete"
    if marker.is_file() and marker.read_text().strip() == pom_hash:
        return libs

    _require_tools("java", "mvn")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another process may have finished the download while we waited for the lock.
        if marker.is_file() and marker.read_text().strip() == pom_hash:
            return libs
        for stale in home.glob("libs.tmp-*"):  # left by interrupted downloads
            shutil.rmtree(stale, ignore_errors=True)
        tmp = home / f"libs.tmp-{os.getpid()}"
        log.info("downloading Kafka %s from Maven Central into %s…", KAFKA_VERSION, libs)
        started = time.monotonic()
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM_PATH),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
        ]
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not (tmp / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            raise DevstackError(
                f"`{' '.join(cmd)}` failed (exit {result.returncode}); is Maven Central reachable?\n{output}"
            )
        (tmp / ".complete").write_text(pom_hash + "\n")
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
        log.info("Kafka %s downloaded in %.1f s", KAFKA_VERSION, time.monotonic() - started)
    return libs


def is_port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _java_string_hash(text: str) -> int:
    data, h = text.encode("utf-16-be"), 0  # String.hashCode() runs over UTF-16 code units
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _probe_groups(partitions: int) -> list[str]:
    """Group ids whose offsets live in each partition of __consumer_offsets (Kafka maps a
    group to ``abs(groupId.hashCode()) % partitions``), one per partition."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        group = f"goal-engine-devstack-probe-{n}"
        h = _java_string_hash(group)
        found.setdefault((0 if h == -(1 << 31) else abs(h)) % partitions, group)
        n += 1
    return list(found.values())


async def _probe(bootstrap: str) -> bool:
    """True once the broker serves metadata naming itself and an active controller, and its
    group coordinator has loaded the committed offsets.

    An open port is not enough: a KRaft broker listens before it has registered with the
    controller, and until then metadata lists no brokers and topic creation fails. Nor is
    metadata: for a moment after a restart, OffsetFetch answers COORDINATOR_LOAD_IN_PROGRESS
    as a top-level error with no partitions, which aiokafka 0.14 ignores (it reads only
    per-partition errors), so a consumer starting then sees "no committed offset" and
    resets to earliest/latest: reprocessing or skipping everything.
    """
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.commit import OffsetFetchRequest
    from aiokafka.protocol.metadata import MetadataRequest

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await client.bootstrap()
        if not client.cluster.brokers() or client.cluster.controller is None:
            return False
        node = next(iter(client.cluster.brokers())).nodeId
        md = await client.send(node, MetadataRequest(["__consumer_offsets"], False))
        error, _, _, partitions = md.topics[0][:4]
        if error == 3:  # UNKNOWN_TOPIC_OR_PARTITION: no group has been used yet
            return True
        if error != 0 or any(p_error != 0 or leader < 0 for p_error, _, leader, *_ in partitions):
            return False  # partitions still without a leader right after a restart
        for group in _probe_groups(len(partitions)):
            response = await client.send(node, OffsetFetchRequest(group, None))
            if response.error_code != 0:  # 14: still loading, 16: not coordinator yet
                return False
        return True
    except Exception:
        return False
    finally:
        await client.close()


class KafkaBroker(LocalServer):
    """One KRaft node (broker + controller) on 127.0.0.1, owned by the calling process.

    ``data_dir`` keeps the cluster id, config, log segments and ``kafka.log``; a second
    start on the same directory reuses all of it (no download, no format).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 9092,
        controller_port: int | None = None,
        cache_dir: Path = DEFAULT_CACHE_DIR,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.cache_dir = Path(cache_dir)
        self.log_path = self.data_dir / "kafka.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker JVM, None when not running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _write_config(self, controller_port: int) -> Path:
        # Static voters rather than a formatted (--standalone) dynamic quorum: the voter's
        # address then lives only in this file, so the controller port may change between
        # runs without reformatting.
        props = {
            "node.id": "1",
            "process.roles": "broker,controller",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir / "kraft"),
            "num.partitions": "1",
            # Topics are created explicitly (by the app and by Faust); a typo must fail.
            "auto.create.topics.enable": "false",
            # Single node: internal topics cannot have more than one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Default 3 s delay before the first rebalance only slows tests down.
            "group.initial.rebalance.delay.ms": "0",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        return path

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        return [
            "java",
            *jvm_options(),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _format_if_needed(self, libs: Path, config: Path) -> None:
        if (self.data_dir / "kraft" / "meta.properties").is_file():
            return
        id_file = self.data_dir / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        log.info("formatting KRaft storage in %s (cluster id %s)…", self.data_dir, cluster_id)
        # One argument, "--cluster-id=ID": an id may begin with "-" (base64url), which as a separate
        # argument the tool would take for an option.
        cmd = self._java(
            libs, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)
        )
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DevstackError(
                f"Formatting Kafka storage failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def _reap_stale(self) -> None:
        """Stop a broker left running on this data_dir by a process that died without stop().

        It would hold the log-dir lock (and usually the port), so the new one could not start.
        """
        pid_file = self.data_dir / "kafka.pid"
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"kafka.Kafka" in cmdline and str(self.data_dir).encode() in cmdline:
            log.warning("stopping Kafka broker (pid %d) left over from an earlier run", pid)
            stop_orphan(pid, signal.SIGTERM)

    def start(self, timeout: float = 60) -> str:
        """Start the broker and return its bootstrap address once it serves metadata."""
        if self.pid is not None:
            return self.bootstrap
        started = time.monotonic()
        _require_tools("java")
        libs = ensure_kafka_libs(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._reap_stale()
        if is_port_open("127.0.0.1", self.port):
            raise DevstackError(
                f"Port {self.port} is already in use; stop whatever listens there, pick "
                "another port, or set GOAL_ENGINE_KAFKA_BOOTSTRAP to use that broker."
            )
        config = self._write_config(self.controller_port or free_port())
        self._format_if_needed(libs, config)

        boot = time.monotonic()
        self._proc = spawn(self._java(libs, "kafka.Kafka", str(config)), self.log_path, cwd=self.data_dir)
        (self.data_dir / "kafka.pid").write_text(f"{self._proc.pid}\n")

        deadline = boot + timeout
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            while True:
                if self._proc.poll() is not None:
                    code = self._proc.returncode
                    self._proc = None
                    raise DevstackError(
                        f"Kafka exited with code {code} during start-up; last lines of "
                        f"{self.log_path}:\n{tail(self.log_path)}"
                    )
                # The probe runs its own event loop in a worker thread, so start() works
                # both from plain code and from inside a running loop (async fixtures).
                if (
                    is_port_open("127.0.0.1", self.port)
                    and pool.submit(asyncio.run, _probe(self.bootstrap)).result()
                ):
                    break
                if time.monotonic() > deadline:
                    self.stop()
                    raise DevstackError(
                        f"Kafka did not become ready within {timeout:.0f} s; last lines of "
                        f"{self.log_path}:\n{tail(self.log_path)}"
                    )
                time.sleep(0.25)
        log.info(
            "Kafka ready on %s in %.1f s (%.1f s for the JVM)",
            self.bootstrap,
            time.monotonic() - started,
            time.monotonic() - boot,
        )
        return self.bootstrap

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL after ``timeout``; safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_child(proc, "Kafka", signal.SIGTERM, timeout)
        (self.data_dir / "kafka.pid").unlink(missing_ok=True)
