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

import contextlib
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
from posthog_pandas.cache.writer import BackgroundWriter, StagedPage
from posthog_pandas.exceptions import (
    CacheError,
    RateLimitError,
    ServerError,
    TransportError,
)

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
    # Windows of one pull are fetched on several threads: `+=` alone could lose a count.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


class EarlyWrite:
    """The cache write of one fetch, started when a 2xx body arrives (`HttpClient.send`'s
    `on_body`) rather than after it is parsed and checked, so that compressing overlaps
    parsing. A retry's body replaces the one before it (that attempt failed); the body finally
    returned is kept only if it is worth caching, and anything not kept is dropped on exit."""

    def __init__(self, writer: BackgroundWriter, key: str, resource: str, ttl: float) -> None:
        self._writer, self._key, self._resource, self._ttl = writer, key, resource, ttl
        self._page: StagedPage | None = None

    def __enter__(self) -> EarlyWrite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.drop()

    def __call__(self, body: bytes) -> None:
        self.drop()
        self._page = self._writer.stage(self._key, body, resource=self._resource, ttl=self._ttl)

    def keep(self, body: bytes, url: str) -> None:
        """Write `body`, the answer returned (staged now if no hook saw it arrive)."""
        if self._page is None or self._page.body is not body:
            self(body)
        assert self._page is not None
        self._page.keep(url)
        self._page = None

    def drop(self) -> None:
        if self._page is not None:
            self._page.drop()
            self._page = None


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
        self.stats.add("hits")

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
            lambda on_body: self.http.send("GET", absolute, params=params, on_body=on_body),
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
            lambda on_body: self.http.send(
                "POST", absolute, json=sent, idempotent=True, exact_if=exact_if, on_body=on_body
            ),
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
        self.stats.add("writes")

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
        send: Callable[[Callable[[bytes], None] | None], Any],
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
                self.stats.add("hits")
                return self._decode(waiting, exact_if)
            entry = store.get(key)
            if entry is not None:
                self.stats.add("hits")
                return self._decode(entry.body, exact_if)
        if self.offline:
            return self._offline_answer(store, key, what)
        self.stats.add("misses")
        early = self._early_write(key, resource, ttl)
        with early or contextlib.nullcontext():  # whatever is not kept is dropped on the way out
            try:
                response = send(early)
            except _NETWORK_FAILURES as exc:
                self.flush()
                stale = store.get(key, allow_stale=True) if store is not None and key else None
                if stale is None:
                    raise
                return self._stale_answer(stale, exc, what)
            cacheable = validate(response.data) if validate is not None else True
            if early is not None and cacheable is not False:
                early.keep(response.content, response.url)
                self.stats.add("writes")
        return response.data

    def _early_write(self, key: str | None, resource: str, ttl: float) -> EarlyWrite | None:
        if self.writer is None or key is None:
            return None
        return EarlyWrite(self.writer, key, resource, ttl)

    def _offline_answer(self, store: CacheStore | None, key: str | None, what: str) -> Any:
        self.flush()
        entry = store.get(key, allow_stale=True) if store is not None and key else None
        if entry is None:
            raise CacheError(
                f"Offline mode: {what} is not in the cache, so it cannot be answered. Run the "
                "same call once while online (connect(offline=False)) to cache it."
            )
        self.stats.add("hits")
        return self._decode(entry.body)

    def _stale_answer(self, entry: Entry, exc: Exception, what: str) -> Any:
        self.stats.add("stale")
        age = describe_age(entry.age())
        warnings.warn(
            f"{what} failed ({type(exc).__name__}); using the cached copy from {age} ago.",
            UserWarning,
            stacklevel=5,
        )
        return self._decode(entry.body)

    def _decode(self, body: bytes, exact_if: Callable[[Any], bool] | None = None) -> Any:
        """A cached body's JSON, decoded under the HTTP client's parse gate as a fresh one is."""
        with self.http.parse_gate:
            return _json.loads(body, exact_if=exact_if)


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"
