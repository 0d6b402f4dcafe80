"""PostHog's query result cache, one per project: answers by cache key, and async query statuses.

PostHog keeps every computed query answer (`posthog/hogql_queries/query_runner.py`) and serves it
again while it is fresh by `posthog/caching/utils.py`: a HogQLQuery has no date range, so it is
judged like a "minute" interval result, stale after 5 minutes (15 for `lazy_async`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["CachedAnswer", "ResultCache"]

STALE_AFTER = timedelta(minutes=5)  # staleness_threshold_map[DEFAULT]["minute"]
LAZY_STALE_AFTER = timedelta(minutes=15)  # staleness_threshold_map[LAZY]["minute"]


@dataclass(frozen=True)
class CachedAnswer:
    response: dict[str, Any]  # the answer as computed (is_cached False)
    last_refresh: datetime


class ResultCache:
    """Computed answers and async query statuses of one project; thread-safe."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self._answers: dict[str, CachedAnswer] = {}
        self._statuses: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            return self._answers.get(key)

    def put(self, key: str, answer: CachedAnswer) -> None:
        with self._lock:
            self._answers[key] = answer

    def is_stale(self, answer: CachedAnswer, *, lazy: bool = False) -> bool:
        return self.clock() > answer.last_refresh + (LAZY_STALE_AFTER if lazy else STALE_AFTER)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._statuses.clear()

    def status(self, query_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._statuses.get(query_id)

    def set_status(self, query_id: str, status: dict[str, Any]) -> None:
        with self._lock:
            self._statuses[query_id] = status
