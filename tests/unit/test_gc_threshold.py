"""The worker and the projector run Python's cyclic collector less often (``cli``)."""

import gc
from collections.abc import Iterator

import pytest

from goal_engine.cli import collect_garbage_less_often
from goal_engine.core.config import Settings


@pytest.fixture
def restored_threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_threshold")
def test_the_young_generation_threshold_is_the_setting_and_the_older_ones_stay() -> None:
    gc.set_threshold(700, 10, 10)
    collect_garbage_less_often(Settings(gc_threshold=12_345))
    assert gc.get_threshold() == (12_345, 10, 10)


def test_the_default_is_well_above_pythons() -> None:
    assert Settings().gc_threshold >= 10 * 700
