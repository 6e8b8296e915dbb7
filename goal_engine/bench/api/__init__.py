"""``python -m goal_engine.bench.api`` (``make bench-api``): the HTTP API's read latency and
throughput with N achievements in the log (goal stats, the tenant summary, the log itself).

Modules:

- ``seed.py``: N achievements, their enrollments and the aggregates, straight into
  PostgreSQL with SQL;
- ``check.py``: the API's stats for one workflow against a brute-force count over the log;
- ``load.py``: the mix of requests and the concurrent clients;
- ``run.py``: the phases (database, seed, api, check, load, report);
- ``report.py``: per-endpoint figures, the printed table and the JSON report.

The PostgreSQL provisioning, CPU probes, exit codes and percentiles are the worker
benchmark's (``goal_engine/bench/stack.py``, ``lifecycle.py``, ``report.py``).
"""
