"""JSON decoding: orjson for speed, the stdlib where orjson would round big integers.

orjson reads integers beyond 64 bits as floats (18446744073709551617 -> 1.8446744073709552e19),
silently changing ids and counters. A cheap scan for a 20+ digit number decides whether a text
needs the exact (slower) stdlib parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import orjson

_BIG_INT = re.compile(r"(?<![\w.\"])-?\d{20,}")
_BIG_INT_BYTES = re.compile(rb"(?<![\w.\"])-?\d{20,}")

JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | str) -> Any:
    """Parse JSON exactly: orjson, unless the text holds an integer too big for 64 bits."""
    if isinstance(data, bytes):
        if _BIG_INT_BYTES.search(data):
            return json.loads(data)
    elif _BIG_INT.search(data):
        return json.loads(data)
    return orjson.loads(data)


def needs_exact(texts: Sequence[str]) -> bool:
    """Whether any of many JSON texts holds a big integer (one scan over all of them)."""
    return _BIG_INT.search("\x00".join(texts)) is not None
