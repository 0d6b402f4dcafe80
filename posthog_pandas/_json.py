"""JSON decoding: orjson for speed, the stdlib where orjson would round big integers.

orjson reads integers beyond 64 bits as floats (18446744073709551617 -> 1.8446744073709552e19),
silently changing ids and counters. A cheap scan for a run of 20+ digits decides whether a text
needs the exact (slower) stdlib parser. The scan maps every byte to "0" (digit) or " " with
bytes.translate and looks for 20 zeros with bytes.find: both run in C, where a regular
expression took longer than orjson's whole parse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson

# orjson keeps integers up to 2**64 - 1 (20 digits) exact; shorter runs need no scan (the one
# gap: negative 19-digit numbers below -2**63, rare enough to accept).
_DIGIT_MASK = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 20
_SCAN_BATCH = 256  # texts per needs_exact scan: small copies the allocator can reuse

JSONDecodeError = orjson.JSONDecodeError
_UNPARSED = object()


def has_long_number(data: bytes) -> bool:
    """Whether `data` has a run of 20+ ASCII digits (a number orjson might round)."""
    return data.translate(_DIGIT_MASK).find(_LONG_RUN) != -1


def loads(data: bytes | str, *, exact_if: Callable[[Any], bool] | None = None) -> Any:
    """Parse JSON exactly: orjson, unless the text holds an integer too big for 64 bits.

    `exact_if(parsed)` may vouch for orjson's parse from what the document says about itself
    (the query API names every column's type: see query.parsed_exactly), which saves the scan,
    a real part of a large page's decode time. When it does not, the scan decides as usual.
    """
    parsed: Any = _UNPARSED
    if exact_if is not None:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the usual path below decides, and raises the usual error
        else:
            if exact_if(parsed):
                return parsed
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if has_long_number(raw):
        return json.loads(data)
    return orjson.loads(data) if parsed is _UNPARSED else parsed


def needs_exact(texts: Sequence[str]) -> bool:
    """Whether any of many JSON texts holds a big integer.

    Scanned a few hundred texts at a time: the joined, encoded and translated copies of one
    batch are small enough for the allocator to hand the same memory back for the next, where
    the three copies of a whole page were fresh memory each time, paid for in page faults.
    """
    for start in range(0, len(texts), _SCAN_BATCH):
        batch = " ".join(texts[start : start + _SCAN_BATCH])
        if has_long_number(batch.encode("utf-8", "surrogatepass")):
            return True
    return False
