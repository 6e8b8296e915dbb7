"""``python -m goal_engine.bench`` (``make bench``): the stream worker's throughput, exit
latency and memory under a steady load.

N active enrollments, then a steady stream of goal events at a given rate; it reports the
load rate, the exits per second, p50/p99/max latency from the source event's append to
the exit's append, and the worker's peak memory. Modules:

- ``stack.py``: Kafka, PostgreSQL, topics, migrations and ONE worker process (no projector
  or API: the exit latency does not depend on them), and stopping all of it;
- ``events.py``: the records it produces, built with the contract models;
- ``run.py``: the phases (configure, load, measure, drain);
- ``report.py``: percentiles, the printed table and the JSON report.

What every benchmark shares: ``lifecycle.py`` (exit codes, progress lines, Ctrl-C and
SIGTERM, the uninterruptible teardown) and ``cli.py`` (argument types, common flags).
``api/`` is the second benchmark, ``python -m goal_engine.bench.api`` (``make bench-api``):
the HTTP API's reads with 1,000,000 achievements in the log.
"""
