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

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from posthog_pandas._http import HttpClient, redact_url
from posthog_pandas.cache import CacheStore, Entry
from posthog_pandas.exceptions import (
    CacheError,
    RateLimitError,
    ServerError,
    TransportError,
)

log = logging.getLogger("posthog_pandas.cache")

_NETWORK_FAILURES = (TransportError, ServerError, RateLimitError)


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


@dataclass
class Fetcher:
    """Sends requests through the cache policy; one per connector."""

    http: HttpClient
    store: CacheStore | None
    scope: str
    ttl: CacheTTL = field(default_factory=CacheTTL)
    offline: bool = False
    stats: CacheStats = field(default_factory=CacheStats)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        resource: str,
        cache: bool = True,
        refresh: bool = False,
    ) -> Any:
        """GET one page as parsed JSON, from the cache when fresh."""
        absolute = self.http.url_for(url)
        key = self._key("GET", absolute, params, None) if cache else None
        return self._fetch(
            key,
            lambda: self.http.send("GET", absolute, params=params),
            resource=resource,
            ttl=self.ttl.lists,
            refresh=refresh,
            what=f"GET {redact_url(absolute)}",
        )

    def post_query(
        self,
        url: str,
        body: Mapping[str, Any],
        *,
        resource: str = "query",
        cache: bool = True,
        refresh: bool = False,
    ) -> Any:
        """POST a query (a read, so cacheable and retryable) and return its parsed JSON."""
        absolute = self.http.url_for(url)
        encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        key = self._key("POST", absolute, None, encoded) if cache else None
        return self._fetch(
            key,
            lambda: self.http.send("POST", absolute, json=body, idempotent=True),
            resource=resource,
            ttl=self.ttl.queries,
            refresh=refresh,
            what=f"query {redact_url(absolute)}",
        )

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
    ) -> Any:
        store = self.store if key is not None else None
        if store is not None and key is not None and not refresh and not self.offline:
            entry = store.get(key)
            if entry is not None:
                self.stats.hits += 1
                return orjson.loads(entry.body)
        if self.offline:
            return self._offline_answer(store, key, what)
        self.stats.misses += 1
        try:
            response = send()
        except _NETWORK_FAILURES as exc:
            stale = store.get(key, allow_stale=True) if store is not None and key else None
            if stale is None:
                raise
            return self._stale_answer(stale, exc, what)
        if store is not None and key is not None:
            store.put(key, response.content, resource=resource, url=response.url, ttl=ttl)
            self.stats.writes += 1
        return response.data

    def _offline_answer(self, store: CacheStore | None, key: str | None, what: str) -> Any:
        entry = store.get(key, allow_stale=True) if store is not None and key else None
        if entry is None:
            raise CacheError(
                f"Offline mode: {what} is not in the cache, so it cannot be answered. Run the "
                "same call once while online (connect(offline=False)) to cache it."
            )
        self.stats.hits += 1
        return orjson.loads(entry.body)

    def _stale_answer(self, entry: Entry, exc: Exception, what: str) -> Any:
        self.stats.stale += 1
        age = describe_age(entry.age())
        warnings.warn(
            f"{what} failed ({type(exc).__name__}); using the cached copy from {age} ago.",
            UserWarning,
            stacklevel=5,
        )
        return orjson.loads(entry.body)


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"
