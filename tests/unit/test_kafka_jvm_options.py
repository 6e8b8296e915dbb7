"""The dev broker's JVM options: ours by default, Kafka's own variables when set."""

from __future__ import annotations

import pytest

from goal_engine.devstack import kafka


def test_the_defaults_name_a_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_HEAP_OPTS", raising=False)
    monkeypatch.delenv("KAFKA_JVM_PERFORMANCE_OPTS", raising=False)
    options = kafka.jvm_options()
    assert options == (kafka.DEFAULT_HEAP_OPTS + " " + kafka.DEFAULT_PERFORMANCE_OPTS).split()
    assert any(o.startswith("-Xmx") for o in options)


def test_kafkas_own_variables_replace_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # The names kafka-server-start.sh reads, so an operator's habits carry over.
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "-Xms2g -Xmx2g")
    monkeypatch.setenv("KAFKA_JVM_PERFORMANCE_OPTS", "-XX:+UseG1GC '-XX:MaxGCPauseMillis=20'")
    assert kafka.jvm_options() == ["-Xms2g", "-Xmx2g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]


def test_an_empty_variable_leaves_the_jvm_its_own_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "")
    monkeypatch.setenv("KAFKA_JVM_PERFORMANCE_OPTS", "")
    assert kafka.jvm_options() == []
