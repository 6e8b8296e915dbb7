"""jsontext: orjson's speed, the json module's range (integers past 64 bits)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from goal_engine.contract import jsontext

# What json.loads produces from an event (no NaN: not JSON).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_what_is_written_is_read_back_exactly(value: Any) -> None:
    assert jsontext.loads(jsontext.dumps(value)) == value


@given(
    st.recursive(
        st.integers() | st.text(), lambda inner: st.dictionaries(st.text(max_size=8), inner, max_size=4)
    )
)
def test_the_text_is_the_json_modules_compact_utf8(value: Any) -> None:
    # Sizes of kept events are measured with it: the same bytes the state is stored as.
    assert jsontext.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def test_an_integer_past_64_bits_stays_an_integer() -> None:
    big = {"amount": 10**30, "small": 2**63 - 1}
    text = jsontext.dumps(big)
    assert text == b'{"amount":1000000000000000000000000000000,"small":9223372036854775807}'
    assert jsontext.loads(text) == big
    assert isinstance(jsontext.loads(text)["amount"], int)
