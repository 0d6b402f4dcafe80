"""Cache policy: which responses are read from and written to the on-disk cache, and when.

The storage (SQLite, atomic writes, private files) is `cache.CacheStore`; this module decides:
- GET pages and query responses are cached; only 2xx answers that parsed as JSON are stored;
- `refresh=True` skips the read and rewrites the entry; `cache=False` neither reads nor writes;
- offline mode serves only from the cache (stale entries included) and names what is missing;
- when the network fails and a stale copy exists, that copy is returned with a warning saying
  how old it is.
Cache keys include the host, the project and a salted fingerprint of the credentials, so two keys
never see each other's entries.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from posthog_pandas import _json
from posthog_pandas._http import HttpClient
from posthog_pandas._urls import redact_url
from posthog_pandas.cache import CacheStore, Entry
from posthog_pandas.exceptions import (
    CacheError,
    RateLimitError,
    ServerError,
    TransportError,
)

log = logging.getLogger("posthog_pandas.cache")

_NETWORK_FAILURES = (TransportError, ServerError, RateLimitError)

# validate(parsed answer) -> False to skip caching; raises on a malformed answer.
Validator = Callable[[Any], bool | None]


@dataclass(frozen=True)
class CacheTTL:
    """How long cached answers count as fresh, in seconds.

    Attributes:
        lists: pages of list endpoints (persons, cohorts, flags, ...).
        queries: HogQL query answers, including event pages.
        frames: the finished DataFrame kept beside the pages for instant reruns.
    """

    lists: float = 3600.0
    queries: float = 3600.0
    frames: float = 3600.0


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stale: int = 0
    writes: int = 0


class BackgroundWriter:
    """Stores cache entries on a worker thread, so compressing and writing page N overlaps the
    request for page N+1. Entries waiting to be written are readable (`pending`); `flush()`
    waits for all of them (accessors flush before returning, and so does interpreter exit).
    A failed write is logged, never raised: the caller already has the data, only the cached
    copy is missing.
    """

    def __init__(self, store: CacheStore) -> None:
        self.store = store
        # Bounded: a slow disk makes fetching wait instead of piling pages up in memory.
        self._queue: queue.Queue[tuple[str, bytes, str, str, float]] = queue.Queue(maxsize=4)
        self._pending: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def put(self, key: str, body: bytes, *, resource: str, url: str, ttl: float) -> None:
        with self._lock:
            self._pending[key] = body
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="posthog-pandas-cache-writer", daemon=True
                )
                self._thread.start()
        self._queue.put((key, body, resource, url, ttl))

    def pending(self, key: str) -> bytes | None:
        with self._lock:
            return self._pending.get(key)

    def flush(self) -> None:
        self._queue.join()

    def _run(self) -> None:
        while True:
            key, body, resource, url, ttl = self._queue.get()
            try:
                self.store.put(key, body, resource=resource, url=url, ttl=ttl)
            except CacheError as exc:
                log.warning("could not cache %s: %s", url, exc)
            finally:
                with self._lock:
                    if self._pending.get(key) is body:
                        del self._pending[key]
                self._queue.task_done()


@dataclass
class Fetcher:
    """Sends requests through the cache policy; one per connector."""

    http: HttpClient
    store: CacheStore | None
    scope: str
    ttl: CacheTTL = field(default_factory=CacheTTL)
    offline: bool = False
    stats: CacheStats = field(default_factory=CacheStats)
    writer: BackgroundWriter | None = None

    def __post_init__(self) -> None:
        if self.store is not None and self.writer is None:
            self.writer = BackgroundWriter(self.store)

    def count_hit(self) -> None:
        """An answer served from the cache above this fetcher (a finished frame)."""
        self.stats.hits += 1

    def flush(self) -> None:
        """Wait until every page fetched so far is in the cache."""
        if self.writer is not None:
            self.writer.flush()

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        resource: str,
        cache: bool = True,
        refresh: bool = False,
        validate: Validator | None = None,
    ) -> Any:
        """GET one page as parsed JSON, from the cache when fresh.

        `validate(data)` runs on a fresh answer before it is stored: it raises on a malformed
        answer (which is then never cached) and returns False for one not worth caching.
        """
        absolute = self.http.url_for(url)
        key = self._key("GET", absolute, params, None) if cache else None
        return self._fetch(
            key,
            lambda: self.http.send("GET", absolute, params=params),
            resource=resource,
            ttl=self.ttl.lists,
            refresh=refresh,
            what=f"GET {redact_url(absolute)}",
            validate=validate,
        )

    def post_query(
        self,
        url: str,
        body: Mapping[str, Any],
        *,
        resource: str = "query",
        cache: bool = True,
        refresh: bool = False,
        validate: Validator | None = None,
        exact_if: Callable[[Any], bool] | None = None,
        unkeyed: Mapping[str, Any] | None = None,
    ) -> Any:
        """POST a query (a read, so cacheable and retryable) and return its parsed JSON.

        `exact_if` vouches for the fast decode of an answer, fresh or cached (`_json.loads`).
        `unkeyed` fields are sent but kept out of the cache key: they say how PostHog should
        answer (`refresh`), not what."""
        absolute = self.http.url_for(url)
        encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        key = self._key("POST", absolute, None, encoded) if cache else None
        sent = {**body, **unkeyed} if unkeyed else body
        return self._fetch(
            key,
            lambda: self.http.send("POST", absolute, json=sent, idempotent=True, exact_if=exact_if),
            resource=resource,
            ttl=self.ttl.queries,
            refresh=refresh,
            what=f"query {redact_url(absolute)}",
            validate=validate,
            exact_if=exact_if,
        )

    def keep_query_answer(
        self, url: str, body: Mapping[str, Any], data: Any, *, resource: str = "query"
    ) -> None:
        """Cache an answer obtained after the POST (an asynchronous query polled to its end)
        under the POST's own key, so the next identical query is a cache hit."""
        absolute = self.http.url_for(url)
        key = self._key("POST", absolute, None, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        if key is None or self.offline:
            return
        target = self.writer if self.writer is not None else self.store
        assert target is not None
        target.put(key, orjson.dumps(data), resource=resource, url=absolute, ttl=self.ttl.queries)
        self.stats.writes += 1

    def _key(
        self, method: str, url: str, params: Mapping[str, Any] | None, body: bytes | None
    ) -> str | None:
        if self.store is None:
            return None
        return self.store.make_key(
            scope=self.scope, method=method, url=url, params=params, body=body
        )

    def _fetch(
        self,
        key: str | None,
        send: Any,
        *,
        resource: str,
        ttl: float,
        refresh: bool,
        what: str,
        validate: Validator | None = None,
        exact_if: Callable[[Any], bool] | None = None,
    ) -> Any:
        store = self.store if key is not None else None
        if store is not None and key is not None and not refresh and not self.offline:
            waiting = self.writer.pending(key) if self.writer is not None else None
            if waiting is not None:
                self.stats.hits += 1
                return _json.loads(waiting, exact_if=exact_if)
            entry = store.get(key)
            if entry is not None:
                self.stats.hits += 1
                return _json.loads(entry.body, exact_if=exact_if)
        if self.offline:
            return self._offline_answer(store, key, what)
        self.stats.misses += 1
        try:
            response = send()
        except _NETWORK_FAILURES as exc:
            self.flush()
            stale = store.get(key, allow_stale=True) if store is not None and key else None
            if stale is None:
                raise
            return self._stale_answer(stale, exc, what)
        cacheable = validate(response.data) if validate is not None else True
        if store is not None and key is not None and cacheable is not False:
            target = self.writer if self.writer is not None else store
            target.put(key, response.content, resource=resource, url=response.url, ttl=ttl)
            self.stats.writes += 1
        return response.data

    def _offline_answer(self, store: CacheStore | None, key: str | None, what: str) -> Any:
        self.flush()
        entry = store.get(key, allow_stale=True) if store is not None and key else None
        if entry is None:
            raise CacheError(
                f"Offline mode: {what} is not in the cache, so it cannot be answered. Run the "
                "same call once while online (connect(offline=False)) to cache it."
            )
        self.stats.hits += 1
        return _json.loads(entry.body)

    def _stale_answer(self, entry: Entry, exc: Exception, what: str) -> Any:
        self.stats.stale += 1
        age = describe_age(entry.age())
        warnings.warn(
            f"{what} failed ({type(exc).__name__}); using the cached copy from {age} ago.",
            UserWarning,
            stacklevel=5,
        )
        return _json.loads(entry.body)


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"
