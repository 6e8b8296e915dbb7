"""Compact JSON text, fast, for any value ``json.loads`` can produce.

orjson writes and reads JSON at a fifth of the json module's cost, but only
integers of up to 64 bits: it refuses to write a larger one, and reads one back
as a float. A producer's event may hold such an integer (``json.loads`` read it,
and the contract lets unknown data travel), so both directions fall back to the
json module when one may be there. Rare, and exact either way.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON: json.dumps(separators=(",", ":"), ensure_ascii=False)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


#: 19 digits in a row: maybe an integer past 64 bits, which orjson would read as a float.
_MAYBE_LONG_INTEGER = re.compile(rb"[0-9]{19}")


def loads(text: bytes) -> Any:
    """What :func:`dumps` wrote, exactly (an integer past 64 bits stays an integer)."""
    if _MAYBE_LONG_INTEGER.search(text):
        return json.loads(text)
    return orjson.loads(text)
