"""The connection's query slots: how many HogQL queries it runs at once, and how a 429 for
PostHog's concurrency limit slows it down instead of failing the pull.

PostHog runs 3 queries at once per organization; a 4th waits up to 30 s for a slot, then is
answered 429 "Exceeded maximum concurrency limit" (posthog/clickhouse/client/limit.py). The
slots are the organization's, so another notebook or a dashboard may hold some: when PostHog
says so, this connection lowers its own limit by one (never below one) and retries, and after
a run of answered queries it raises the limit again, one at a time, up to what was asked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

__all__ = ["CONCURRENCY_LIMIT_TEXT", "QuerySlots"]

# The start of the detail PostHog's ConcurrencyLimitExceeded carries (limit.py).
CONCURRENCY_LIMIT_TEXT = "Exceeded maximum concurrency limit"
# Answered queries in a row, at a lowered limit, before one more slot is tried again.
RECOVER_AFTER = 3


class QuerySlots:
    """A semaphore whose size follows PostHog's answers: `ceiling` at most, 1 at least.

    `shared`, when set, is a further limit each slot also holds while its query runs, shared
    with other connections (posthog_pandas.dask: the project's 3 slots across a cluster).
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.in_use = 0
        self.lowest = ceiling  # the lowest limit ever reached (tests and benchmarks read it)
        self.shared: Callable[[], AbstractContextManager[Any]] | None = None
        self._answered = 0
        self._ready = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot while the block runs (waiting until one is free)."""
        with self._ready:
            self._ready.wait_for(lambda: self.in_use < self.limit)
            self.in_use += 1
        try:
            with self.shared() if self.shared is not None else nullcontext():
                yield
        finally:
            with self._ready:
                self.in_use -= 1
                self._ready.notify()

    def refused(self) -> None:
        """PostHog had no slot for a query: run one fewer at once from now on."""
        with self._ready:
            self.limit = max(1, self.limit - 1)
            self.lowest = min(self.lowest, self.limit)
            self._answered = 0

    def answered(self) -> None:
        """A query was answered: after a run of them, try one more slot again."""
        with self._ready:
            if self.limit >= self.ceiling:
                return
            self._answered += 1
            if self._answered >= RECOVER_AFTER:
                self.limit += 1
                self._answered = 0
                self._ready.notify()
