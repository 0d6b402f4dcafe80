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
import contextlib
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
from posthog_pandas.cache.codec import CompressedBody
from posthog_pandas.exceptions import (
    CacheError,
    RateLimitError,
    ServerError,
    TransportError,
)

log = logging.getLogger("posthog_pandas.cache")

_NETWORK_FAILURES = (TransportError, ServerError, RateLimitError)

# How long `stage` waits for an idle worker to start compressing: a thread switch takes
# milliseconds; past this, something else has the CPU and the parse goes ahead regardless.
_HANDOFF_TIMEOUT = 0.05

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
    """Stores cache entries on a worker thread, so compressing and writing a page overlaps
    other work: parsing it, or the request for the next page.

    A page is handed over as soon as its body arrives (`stage`), before anyone knows whether it
    is worth caching; the worker compresses it at once, and writes it only when told to
    (`StagedPage.keep`), never when it is dropped. Nothing reaches the storage before the
    verdict, and a row is written whole in one transaction, so a page that turns out not to be
    cacheable, or a process killed midway, never leaves a partial or unwanted entry. The
    worker never waits for a verdict: a page still being judged holds up no other write.
    Kept entries waiting to be written are readable (`pending`); `flush()` waits for all of
    them (accessors flush before returning, and so does interpreter exit). A failed write is
    logged, never raised: the caller already has the data, only the cached copy is missing.
    """

    def __init__(self, store: CacheStore) -> None:
        self.store = store
        # Bounded: a slow disk makes fetching wait instead of piling pages up in memory.
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=4)
        self._pending: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._tasks = 0  # queued or running
        atexit.register(self.flush)

    def stage(self, key: str, body: bytes, *, resource: str, ttl: float) -> StagedPage:
        """Start compressing `body` for `key`; it is written once kept, never if dropped.

        When the worker is idle this returns once it is compressing: the caller's next step,
        parsing the body (orjson), holds the GIL throughout, and a worker that had not reached
        the compressor (which runs without the GIL) would sit until the parse ended."""
        page = StagedPage(self, key, body, resource, ttl)
        if self._submit(lambda: self._compress(page)):
            page.started.wait(_HANDOFF_TIMEOUT)
        return page

    def put(self, key: str, body: bytes, *, resource: str, url: str, ttl: float) -> None:
        """Store `body` under `key` (staged and kept at once)."""
        self.stage(key, body, resource=resource, ttl=ttl).keep(url)

    def pending(self, key: str) -> bytes | None:
        with self._lock:
            return self._pending.get(key)

    def flush(self) -> None:
        """Wait until every kept page is written (or has failed)."""
        self._queue.join()

    def _submit(self, task: Callable[[], None]) -> bool:
        """Queue `task`; True when the worker had nothing else to do."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="posthog-pandas-cache-writer", daemon=True
                )
                self._thread.start()
            idle = self._tasks == 0
            self._tasks += 1
        self._queue.put(task)
        return idle

    def _keep(self, page: StagedPage, url: str) -> None:
        with self._lock:
            if page.verdict is not None:
                return
            page.verdict, page.url = True, url
            self._pending[page.key] = page.body
            ready = page.compressed is not None
        if ready:  # compressed already: the write is a task of its own
            self._submit(lambda: self._write(page))

    def _drop(self, page: StagedPage) -> None:
        with self._lock:
            if page.verdict is None:
                page.verdict, page.compressed = False, None

    def _compress(self, page: StagedPage) -> None:
        page.started.set()
        try:
            compressed = self.store.compress(page.body)
        except Exception as exc:  # nobody awaits this thread: log every failure, raise none
            log.warning("could not cache %s: %s", page.url or page.resource, exc)
            with self._lock:  # dropped, whatever its verdict
                page.verdict = False
                self._forget(page)
            return
        with self._lock:
            if page.verdict is False:
                return
            page.compressed = compressed
            kept = page.verdict is True
        if kept:  # kept while it was being compressed: write it now
            self._write(page)

    def _write(self, page: StagedPage) -> None:
        assert page.compressed is not None
        try:
            self.store.put(
                page.key, page.compressed, resource=page.resource, url=page.url, ttl=page.ttl
            )
        except CacheError as exc:
            log.warning("could not cache %s: %s", page.url, exc)
        finally:
            with self._lock:
                self._forget(page)

    def _forget(self, page: StagedPage) -> None:
        """No longer pending (under the lock); a later page under the same key stays."""
        if self._pending.get(page.key) is page.body:
            del self._pending[page.key]

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            try:
                task()
            except Exception:  # the worker must outlive any one write: log, keep going
                log.exception("the cache writer failed")
            finally:
                with self._lock:
                    self._tasks -= 1
                self._queue.task_done()


class StagedPage:
    """A fresh page on its way to the cache while its answer is still being checked: `keep`
    has it written, `drop` forgets it; the first of the two counts."""

    def __init__(
        self, writer: BackgroundWriter, key: str, body: bytes, resource: str, ttl: float
    ) -> None:
        self._writer = writer
        self.key, self.body, self.resource, self.ttl = key, body, resource, ttl
        self.url = ""
        self.started = threading.Event()  # set by the worker as it starts compressing
        self.verdict: bool | None = None  # None until kept (True) or dropped (False)
        self.compressed: CompressedBody | None = None  # set by the worker

    def keep(self, url: str) -> None:
        self._writer._keep(self, url)

    def drop(self) -> None:
        self._writer._drop(self)


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
                self.stats.hits += 1
                return _json.loads(waiting, exact_if=exact_if)
            entry = store.get(key)
            if entry is not None:
                self.stats.hits += 1
                return _json.loads(entry.body, exact_if=exact_if)
        if self.offline:
            return self._offline_answer(store, key, what)
        self.stats.misses += 1
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
                self.stats.writes += 1
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
