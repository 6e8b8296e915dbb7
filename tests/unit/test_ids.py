"""Deterministic ids never change: the same inputs give the ids every earlier release gave."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from goal_engine.domain import ids

names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def test_the_ids_of_released_versions_stay_the_same() -> None:
    # Pinned: a consumer deduplicates by these; a new id for an old achievement is a double count.
    assert ids.achievement_id("acme", "en-1", "g-1") == "03af3bb2-3f1c-5f55-8642-9dd53647c67e"
    assert ids.exit_id("acme", "en-1") == "5aa5bab8-6e88-54de-9b32-b901650d5b74"


@given(tenant_id=names, enrollment_id=names, goal_id=names)
def test_ids_are_the_standard_uuid5_of_their_inputs(tenant_id: str, enrollment_id: str, goal_id: str) -> None:
    ns = ids._NAMESPACE
    expected = uuid.uuid5(ns, f"achievement\x1f{tenant_id}\x1f{enrollment_id}\x1f{goal_id}")
    assert ids.achievement_id(tenant_id, enrollment_id, goal_id) == str(expected)
    assert ids.exit_id(tenant_id, enrollment_id) == str(
        uuid.uuid5(ns, f"exit\x1f{tenant_id}\x1f{enrollment_id}")
    )
