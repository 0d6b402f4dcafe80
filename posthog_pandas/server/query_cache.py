"""PostHog's query result cache, one per project: answers by cache key, and async query statuses.

PostHog keeps every computed query answer (`posthog/hogql_queries/query_runner.py`) and serves it
again while it is fresh by `posthog/caching/utils.py`: a HogQLQuery has no date range, so it is
judged like a "minute" interval result, stale after 5 minutes (15 for `lazy_async`). PostHog's
Redis evicts too: here the least recently used answers go once the cache holds more than
`max_rows` rows (one PostHog page), so a long pull never keeps its pages in the server's memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["CachedAnswer", "ResultCache"]

STALE_AFTER = timedelta(minutes=5)  # staleness_threshold_map[DEFAULT]["minute"]
LAZY_STALE_AFTER = timedelta(minutes=15)  # staleness_threshold_map[LAZY]["minute"]
MAX_CACHED_ROWS = 50_000
MAX_STATUSES = 100  # async statuses kept for polling (PostHog's expire too)


@dataclass(frozen=True)
class CachedAnswer:
    response: dict[str, Any]  # the answer as computed (is_cached False)
    last_refresh: datetime


class ResultCache:
    """Computed answers and async query statuses of one project; thread-safe."""

    def __init__(
        self, clock: Callable[[], datetime] | None = None, max_rows: int = MAX_CACHED_ROWS
    ) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.max_rows = max_rows
        self._answers: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._rows = 0
        self._statuses: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: str, answer: CachedAnswer) -> None:
        rows = _rows(answer)
        with self._lock:
            old = self._answers.pop(key, None)
            self._rows -= _rows(old) if old is not None else 0
            if rows > self.max_rows:
                return
            self._answers[key] = answer
            self._rows += rows
            while self._rows > self.max_rows:
                _, evicted = self._answers.popitem(last=False)
                self._rows -= _rows(evicted)

    def is_stale(self, answer: CachedAnswer, *, lazy: bool = False) -> bool:
        return self.clock() > answer.last_refresh + (LAZY_STALE_AFTER if lazy else STALE_AFTER)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._rows = 0
            self._statuses.clear()

    def status(self, query_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._statuses.get(query_id)

    def drop_status(self, query_id: str) -> None:
        with self._lock:
            self._statuses.pop(query_id, None)

    def set_status(self, query_id: str, status: dict[str, Any]) -> None:
        with self._lock:
            self._statuses.pop(query_id, None)
            self._statuses[query_id] = status
            while len(self._statuses) > MAX_STATUSES:
                del self._statuses[next(iter(self._statuses))]


def _rows(answer: CachedAnswer) -> int:
    results = answer.response.get("results")
    return len(results) if isinstance(results, list) else 1
