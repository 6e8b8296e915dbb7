# goal-engine: `make run` starts the whole local stack, `make test` runs every test
# against a real Kafka broker and a real PostgreSQL. Both install what they need first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# make run: how many stream worker processes (one consumer group). One: on a 2-core machine that
# also runs Kafka and PostgreSQL a second worker costs more CPU than it frees (README, "Sizing").
WORKERS ?= 1

.DEFAULT_GOAL := help
.PHONY: help install install-browser run test test-unit test-fast test-integration test-browser lint format schemas deploy-check monitor bench bench-steps bench-api bench-projector images up down chaos clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -c "from goal_engine.devstack.kafka import ensure_kafka_libs; ensure_kafka_libs()"
	touch $(STAMP)

install: $(STAMP)  ## create .venv, install the package and the Kafka broker (Maven Central)

# The console's browser tests drive Debian's chromium (Playwright's own browser download
# cannot work here); apt-get waits for another apt's lock instead of failing.
install-browser:  ## Debian's chromium for the console's browser tests (apt-get, as root)
	@command -v chromium >/dev/null || { \
	    apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	        --no-install-recommends chromium >/dev/null; }

run: install  ## start Kafka, PostgreSQL, worker(s) (WORKERS=N), projector and API on 127.0.0.1:8000 (Ctrl-C stops all)
	$(VENV)/bin/goal-engine dev --workers $(WORKERS)

test: install install-browser  ## every tier: the fast ones first (a quick failure), then integration and browser
	$(PY) -m pytest -m "not integration"
	$(PY) -m pytest -m integration

test-unit: install  ## only the pure unit tests (no broker, no database), seconds
	$(PY) -m pytest tests/unit

test-fast: install  ## every test not marked integration: unit and the in-process API tier, seconds
	$(PY) -m pytest -m "not integration"

test-integration: install  ## the tests against real Kafka and PostgreSQL (marked integration)
	$(PY) -m pytest -m integration

test-browser: install install-browser  ## only the console's tests in chromium (starts the whole stack)
	$(PY) -m pytest tests/integration/browser

bench: install  ## benchmark the worker against the raw aiokafka pipe (BENCH_ARGS="--rate 200" or "--burst 20000 --profile")
	$(PY) -m goal_engine.bench $(BENCH_ARGS)

bench-steps: install  ## the worker's own CPU per event (evaluate + state write), no Kafka: steady enough to compare one change
	$(PY) -m goal_engine.bench.steps $(BENCH_STEPS_ARGS)

bench-api: install  ## benchmark the API's reads: 1M achievements, 8 clients for 20 s (BENCH_API_ARGS="--clients 16")
	$(PY) -m goal_engine.bench.api $(BENCH_API_ARGS)

bench-projector: install  ## benchmark the projector: 50k achievements + exits from Kafka, vs a plain COPY (BENCH_PROJECTOR_ARGS=...)
	$(PY) -m goal_engine.bench.projector $(BENCH_PROJECTOR_ARGS)

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
	promtool check config deploy/prometheus/compose.yml
	promtool check rules deploy/prometheus/alerts.yml

monitor:  ## Prometheus on 127.0.0.1:9090 scraping what `make run` starts, with the alert rules
	prometheus --config.file=deploy/prometheus/prometheus.yml --storage.tsdb.path=.local/prometheus --web.listen-address=127.0.0.1:9090

images: install  ## Docker images goal-engine, -kafka, -postgres, -prometheus, built offline (cached); sizes
	deploy/docker/engine.sh install
	deploy/docker/engine.sh start
	deploy/docker/build-images.sh

up: images  ## deploy/compose.yaml: 3 brokers, PostgreSQL, 2 workers, projector, 2 APIs, Prometheus; waits for /readyz
	deploy/docker/compose.sh up

down:  ## stop what `make up` started (the volumes are kept)
	deploy/docker/compose.sh down

chaos: images  ## fault suite on containers (testcontainers): 3 brokers, kill/pause/stop under load; prints a table
	GOAL_ENGINE_CHAOS=1 $(PY) -m pytest tests/chaos -q $(CHAOS_ARGS)

clean:  ## remove local state (.local: Kafka and PostgreSQL data, logs); keeps the Kafka download
	rm -rf .local
