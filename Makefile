# goal-engine: `make run` starts the whole local stack, `make test` runs every test
# against a real Kafka broker and a real PostgreSQL. Both install what they need first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit lint format schemas deploy-check monitor bench bench-api clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -c "from goal_engine.devstack.kafka import ensure_kafka_libs; ensure_kafka_libs()"
	touch $(STAMP)

install: $(STAMP)  ## create .venv, install the package and the Kafka broker (Maven Central)

run: install  ## start Kafka, PostgreSQL, worker, projector and API on 127.0.0.1:8000 (Ctrl-C stops all)
	$(VENV)/bin/goal-engine dev

test: install  ## unit and integration tests (real Kafka and PostgreSQL, started by the tests)
	$(PY) -m pytest

test-unit: install  ## only the pure unit tests (no broker, no database)
	$(PY) -m pytest tests/unit

bench: install  ## benchmark the worker against the raw aiokafka pipe (BENCH_ARGS="--rate 200" or "--burst 20000 --profile")
	$(PY) -m goal_engine.bench $(BENCH_ARGS)

bench-api: install  ## benchmark the API's reads: 1M achievements, 8 clients for 20 s (BENCH_API_ARGS="--clients 16")
	$(PY) -m goal_engine.bench.api $(BENCH_API_ARGS)

lint: install  ## ruff, mypy, and schemas/ in step with the models
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/goal-engine schemas --check

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schemas: install  ## regenerate schemas/ from the contract models
	$(VENV)/bin/goal-engine schemas

deploy-check:  ## promtool: the Prometheus config and alert rules are valid (Debian package prometheus)
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml

monitor:  ## Prometheus on 127.0.0.1:9090 scraping what `make run` starts, with the alert rules
	prometheus --config.file=deploy/prometheus/prometheus.yml --storage.tsdb.path=.local/prometheus --web.listen-address=127.0.0.1:9090

clean:  ## remove local state (.local: Kafka and PostgreSQL data, logs); keeps the Kafka download
	rm -rf .local
