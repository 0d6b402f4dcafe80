"""The background page writer: pages compressed and written on a worker thread, so that
caching overlaps other work (parsing the page, the request for the next one).

A page is staged as soon as its body arrives, before anyone knows whether it is worth
caching; the worker compresses it at once and writes it only once it is kept, never when it
is dropped. Which pages are kept is the cache policy's decision (``posthog_pandas._fetcher``).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections.abc import Callable

from posthog_pandas.cache.codec import CompressedBody
from posthog_pandas.cache.store import CacheStore
from posthog_pandas.exceptions import CacheError

__all__ = ["BackgroundWriter", "StagedPage"]

log = logging.getLogger("posthog_pandas.cache")

# How long `stage` waits for an idle worker to start compressing: a thread switch takes
# milliseconds; past this, something else has the CPU and the parse goes ahead regardless.
_HANDOFF_TIMEOUT = 0.05
# How long an idle worker waits for more before it ends (the next page starts another): a
# worker that never ended would keep its writer, the cache and its database connections
# alive after their connection is gone, one set per connect() (a notebook cell run again).
_IDLE_SECONDS = 2.0

# The writers alive, flushed at interpreter exit. Weak, for the same reason.
_LIVE: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


def _flush_live_writers() -> None:
    for writer in list(_LIVE):
        writer.flush()


atexit.register(_flush_live_writers)


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
        _LIVE.add(self)

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
        while self._run_next():
            pass

    def _run_next(self) -> bool:
        """Run the next task; False when the worker has been idle for `_IDLE_SECONDS` and
        ends (under the lock, so `_submit` starts another for a task queued after that)."""
        try:
            task = self._queue.get(timeout=_IDLE_SECONDS)
        except queue.Empty:
            with self._lock:
                if self._tasks:  # being queued right now: wait for it
                    return True
                self._thread = None
                return False
        self._run_task(task)
        return True

    def _run_task(self, task: Callable[[], None]) -> None:
        # A function of its own so that nothing refers to the task (its page's body and
        # compressed copy) once it has run, while the worker waits for the next one.
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
