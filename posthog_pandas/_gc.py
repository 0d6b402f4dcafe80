"""Pausing Python's cyclic garbage collector while a pull turns JSON into DataFrames.

Decoding a page creates hundreds of thousands of lists, dicts and strings. Each allocation of a
container counts towards the collector's thresholds, so a 50,000-row page sets off many
collections, and the older generations are traversed again and again while the rows are still
alive, which adds up to a sizeable share of a large pull. None of that work finds garbage:
rows are freed by reference counting as each page becomes columns. So the collector is paused
for the duration of a pull and restored afterwards.

`gc.disable()` is process-wide, so pauses are counted: overlapping pulls on several threads
pause it once and the last one to finish restores it, to whatever state it was in before the
first one began (a program that runs with the collector off keeps it off).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Collector off inside the block (reference counting still frees everything acyclic)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
