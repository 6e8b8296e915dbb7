"""deploy/: the Prometheus config, its alert rules and the Grafana dashboard are well formed,
and every metric they query is one the code exports (a renamed metric breaks this test,
not a dashboard in production).

The promtool tests (alert unit tests, dashboard queries parsed) run where promtool is
installed (Debian's `prometheus` package; .ci/run installs it) and are skipped elsewhere.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from goal_engine.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
PROMETHEUS_YML = PROMETHEUS / "prometheus.yml"
MAKEFILE = ROOT / "Makefile"
ALERTS_YML = PROMETHEUS / "alerts.yml"
ALERTS_TEST_YML = PROMETHEUS / "alerts_test.yml"
DASHBOARD_JSON = GRAFANA / "dashboard.json"

SEVERITIES = {"warning", "critical"}
DATASOURCE_UIDS = {"${DS_PROMETHEUS}", "prometheus"}

# Series Prometheus itself adds to every scrape.
PROMETHEUS_SERIES = {"up"}

# Metrics the code is about to export: family name -> type. Remove each entry once the
# code exports it (the test then finds it by itself).
NOT_YET_EXPORTED: dict[str, str] = {}

# Sample names each metric type exposes, from its family name (prometheus_client strips
# `_total` from a counter's family name).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}

_DEFINES_METRIC = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(", re.MULTILINE
)

# Imports one module in a fresh interpreter and prints what the default registry holds:
# each process has its own registry, and two modules may register the same name (the
# worker's and the projector's goal_engine_ready), so they are not imported together.
_COLLECT = """
import importlib, json, sys
from prometheus_client import REGISTRY
importlib.import_module(sys.argv[1])
print(json.dumps([[f.name, f.type, sorted({s.name for s in f.samples})] for f in REGISTRY.collect()]))
"""


def metric_modules() -> list[str]:
    """Every module of goal_engine/ and projections/ that defines a prometheus_client metric."""
    modules = []
    for package in ("goal_engine", "projections"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            if "prometheus_client" in source and _DEFINES_METRIC.search(source):
                modules.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return modules


def sample_names(family: str, kind: str) -> set[str]:
    return {family + suffix for suffix in SUFFIXES.get(kind, ("",))}


@pytest.fixture(scope="module")
def code_exported() -> set[str]:
    """Sample names of every metric the code defines (each module imported on its own)."""
    modules = metric_modules()
    procs = {
        m: subprocess.Popen(
            [sys.executable, "-c", _COLLECT, m], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for m in modules
    }
    names: set[str] = set()
    for module, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"importing {module} failed:\n{err.decode()}"
        for family, kind, samples in json.loads(out):
            names |= sample_names(family, kind) | set(samples)
    return names


@pytest.fixture(scope="module")
def exported(code_exported: set[str]) -> set[str]:
    names = code_exported | PROMETHEUS_SERIES
    for family, kind in NOT_YET_EXPORTED.items():
        names |= sample_names(family, kind)
    return names


# --- PromQL: the metric names of an expression ---------------------------------------------

PROMQL_FUNCTIONS = {
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    # functions
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "exp", "floor", "group_over_time", "histogram_avg", "histogram_count",
    "histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar",
    "histogram_sum", "holt_winters", "double_exponential_smoothing", "hour", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
    "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
    "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan",
    "tanh", "time", "timestamp", "vector", "year",
}  # fmt: skip
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "start", "end", "inf", "nan",
}  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+(?::\w+)?\}?")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_MODIFIER = re.compile(r"\b(offset)\s+-?[0-9a-zA-Z]+|@\s*[-+0-9.e]+|@\s*(start|end)\s*\(\s*\)")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; an unknown function name fails the test."""
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("", text)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(r"\1", text)
    text = _MODIFIER.sub("", text)
    text = _NUMBER.sub("0", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word in PROMQL_KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            assert word in PROMQL_FUNCTIONS, f"unknown PromQL function {word!r} in {expr!r}"
        elif word not in PROMQL_FUNCTIONS:
            names.add(word)
    return names


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, job)"
        ' (rate(a_seconds_bucket{job="x",le!="1e3"}[$__rate_interval])))'
        " > 2.5e0 and on (job) (time() - b:recorded offset 5m) unless ignoring (x) c"
        ' or label_replace(d{e="f"}, "g", "$1", "h", "(.*)") * 60 or sum without (i) (j) > bool 0'
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b:recorded", "c", "d", "j"}
    with pytest.raises(AssertionError, match="unknown PromQL function"):
        metric_names("rates(x[5m])")


# --- files -------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS_YML)["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # a collapsed row holds its panels


def dashboard_queries() -> list[tuple[str, str]]:
    return [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in all_panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


# --- (a) every metric queried is exported ---------------------------------------------------


def test_every_metric_an_alert_uses_is_exported(exported: set[str]) -> None:
    unknown = {
        rule["alert"]: sorted(metric_names(rule["expr"]) - exported)
        for rule in alert_rules()
        if metric_names(rule["expr"]) - exported
    }
    assert not unknown, f"alert rules query metrics no process exports: {unknown}"


def test_every_metric_the_dashboard_queries_is_exported(exported: set[str]) -> None:
    unknown = {
        where: sorted(metric_names(expr) - exported)
        for where, expr in dashboard_queries()
        if metric_names(expr) - exported
    }
    assert not unknown, f"dashboard panels query metrics no process exports: {unknown}"


def test_the_exported_set_is_read_from_the_code(code_exported: set[str]) -> None:
    # Guards the discovery itself: an empty or partial scan would make the tests above vacuous.
    assert {"goal_engine.stream.metrics", "projections.metrics", "goal_engine.api.middleware"} <= set(
        metric_modules()
    )
    assert {"goal_engine_exits_total", "goal_engine_api_request_seconds_bucket"} <= code_exported
    landed = [f for f, kind in NOT_YET_EXPORTED.items() if sample_names(f, kind) <= code_exported]
    assert not landed, f"the code exports these now: remove them from NOT_YET_EXPORTED: {landed}"


# --- (b) Prometheus files ---------------------------------------------------------------------


def test_prometheus_scrapes_what_make_run_starts_on_their_default_ports() -> None:
    config = load_yaml(PROMETHEUS_YML)
    fields = Settings.model_fields
    workers_line = re.search(r"^WORKERS \?= (\d+)$", MAKEFILE.read_text(), re.M)
    assert workers_line, "the Makefile sets make run's WORKERS"
    make_run_workers = int(workers_line.group(1))
    workers = Settings(worker_metrics_port=fields["worker_metrics_port"].default)
    expected = {
        "api": [f"127.0.0.1:{fields['api_port'].default}"],
        "worker": [f"127.0.0.1:{p}" for p in workers.local_worker_metrics_ports(make_run_workers)],
        "projector": [f"127.0.0.1:{fields['projector_metrics_port'].default}"],
    }
    jobs = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert jobs == expected
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])
    assert [PROMETHEUS / f for f in config["rule_files"]] == [ALERTS_YML]


def test_every_alert_has_expr_for_severity_and_annotations() -> None:
    rules = alert_rules()
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules:
        name = rule["alert"]
        assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: `for` is a duration"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name}: annotations.{key}"


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = load_yaml(ALERTS_TEST_YML)
    assert tests["rule_files"] == [ALERTS_YML.name]
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} <= fired


# --- (c) Grafana files --------------------------------------------------------------------------


def test_the_dashboard_panels_have_unique_ids_and_queries() -> None:
    board = dashboard()
    assert board["uid"] == "goal-engine"
    panels = list(all_panels(board["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels:
        if panel["type"] == "row":  # a row groups panels: it has no query of its own
            continue
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for item in (panel, *targets):
            assert item["datasource"]["uid"] in DATASOURCE_UIDS, panel["title"]
        assert all(t["expr"].strip() for t in targets), panel["title"]


def test_the_dashboard_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in all_panels(dashboard()["panels"]):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


def test_grafana_provisioning_loads_the_dashboard_from_the_prometheus_datasource() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert [(d["uid"], d["type"]) for d in datasources] == [("prometheus", "prometheus")]
    assert variables["DS_PROMETHEUS"]["current"]["value"] == datasources[0]["uid"]
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "goal-engine.yml")["providers"]
    assert [p["type"] for p in providers] == ["file"]
    assert all(p["options"]["path"] for p in providers)


# --- promtool -------------------------------------------------------------------------------------

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian package `prometheus`)"
)


def promtool(*args: str, cwd: Path) -> None:
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@needs_promtool
def test_the_alerts_fire_as_their_unit_tests_expect(tmp_path: Path) -> None:
    # promtool compares annotations verbatim: the unit tests give labels only, so they run
    # against a copy of the rules without annotations (each annotation's wording is free).
    rules = load_yaml(ALERTS_YML)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / ALERTS_YML.name).write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    shutil.copy(ALERTS_TEST_YML, tmp_path / ALERTS_TEST_YML.name)
    promtool("test", "rules", ALERTS_TEST_YML.name, cwd=tmp_path)


@needs_promtool
def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # Each query as a recording rule: `promtool check rules` parses it. Grafana's interval
    # variables become a duration first.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": re.sub(r"\$\{?__(rate_)?interval\}?", "5m", expr)}
        for i, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    promtool("check", "rules", path.name, cwd=tmp_path)
