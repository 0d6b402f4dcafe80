"""The background cache writer: pages written off the request path, readable meanwhile.

A fresh page's write starts when its body arrives, before it is parsed and checked (so that
compressing overlaps parsing); it reaches the storage only once the answer is judged worth
caching, so an answer that is not (a "still running" query, a body that does not parse) never
leaves an entry.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

import posthog_pandas as php
from posthog_pandas import _polling
from posthog_pandas.cache import DB_NAME, CacheStore
from posthog_pandas.cache.writer import BackgroundWriter, StagedPage
from tests.conftest import MOCK_HOST, MockConnect


def test_pending_entries_are_readable_and_flush_writes_them(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    writer = BackgroundWriter(store)
    gate = threading.Event()
    real_put = store.put

    def slow_put(*args, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(5)
        real_put(*args, **kwargs)

    store.put = slow_put  # type: ignore[method-assign]
    writer.put("k1", b'{"results": []}', resource="persons", url="https://h/x", ttl=60)
    assert writer.pending("k1") == b'{"results": []}'
    assert store.get("k1") is None
    gate.set()
    writer.flush()
    assert writer.pending("k1") is None
    entry = store.get("k1")
    assert entry is not None and entry.body == b'{"results": []}'


def test_a_failed_write_is_logged_not_raised(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    from posthog_pandas.exceptions import CacheError

    store = CacheStore(tmp_path / "c")
    writer = BackgroundWriter(store)

    def failing_put(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise CacheError("database or disk is full")

    store.put = failing_put  # type: ignore[method-assign]
    writer.put("k2", b"{}", resource="persons", url="https://h/y", ttl=60)
    writer.flush()
    assert writer.pending("k2") is None
    assert "could not cache https://h/y: database or disk is full" in caplog.text


def test_a_staged_page_is_written_only_once_kept_and_a_dropped_one_never(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    writer = BackgroundWriter(store)
    kept = writer.stage("k1", b'{"results": [1]}', resource="query", ttl=60)
    dropped = writer.stage("k2", b'{"results": [2]}', resource="query", ttl=60)
    writer.flush()  # both compressed; neither judged yet, so neither is written or readable
    assert store.get("k1") is None and writer.pending("k1") is None
    kept.keep("https://h/q")
    dropped.drop()
    dropped.keep("https://h/q")  # the first verdict counts
    writer.flush()
    entry = store.get("k1")
    assert entry is not None and entry.body == b'{"results": [1]}' and entry.url == "https://h/q"
    assert store.get("k2") is None and writer.pending("k2") is None


def test_stage_returns_once_an_idle_worker_is_compressing(tmp_path: Path) -> None:
    # The caller parses the body next, holding the GIL throughout: the worker must be inside
    # the compressor (which releases it) by then, or the two would not overlap.
    store = CacheStore(tmp_path / "c")
    writer = BackgroundWriter(store)
    gate = threading.Event()
    real_compress = store.compress

    def slow_compress(body: bytes) -> Any:
        gate.wait(5)
        return real_compress(body)

    store.compress = slow_compress  # type: ignore[method-assign]
    page = writer.stage("k1", b"{}", resource="query", ttl=60)
    assert page.started.is_set()
    page.keep("https://h/q")  # kept while still being compressed: pending, written after
    assert writer.pending("k1") == b"{}" and store.get("k1") is None
    gate.set()
    writer.flush()
    entry = store.get("k1")
    assert entry is not None and entry.body == b"{}"
    assert writer.pending("k1") is None


def test_a_page_still_being_judged_holds_up_no_other_write(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    writer = BackgroundWriter(store)
    undecided = writer.stage("a", b'"a"', resource="query", ttl=60)
    writer.put("b", b'"b"', resource="persons", url="https://h/b", ttl=60)
    writer.flush()  # returns without a verdict on "a"
    entry = store.get("b")
    assert entry is not None and entry.body == b'"b"'
    assert store.get("a") is None
    undecided.drop()


def test_a_page_that_cannot_be_compressed_is_logged_and_never_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CacheStore(tmp_path / "c")
    writer = BackgroundWriter(store)
    gate = threading.Event()

    def failing_compress(body: bytes) -> Any:
        gate.wait(5)
        raise MemoryError("no room for the compressed copy")

    store.compress = failing_compress  # type: ignore[method-assign]
    page = writer.stage("k1", b"{}", resource="query", ttl=60)
    page.keep("https://h/q")
    gate.set()
    writer.flush()
    assert store.get("k1") is None and writer.pending("k1") is None
    assert "could not cache https://h/q: no room for the compressed copy" in caplog.text


# -- the policy: what an early write becomes ------------------------------------------------------

QUERY_URL = f"{MOCK_HOST}/api/projects/3/query/"
ANSWER = {"results": [[1]], "columns": ["a"], "types": ["Int64"], "hasMore": None, "limit": None}


def cached_rows(cache_dir: Path) -> list[tuple[str, int]]:
    """(resource, body length) of every cached page, read with plain SQLite."""
    conn = sqlite3.connect(cache_dir / DB_NAME)
    try:
        rows = conn.execute("SELECT resource, raw_size FROM entries WHERE kind = 'page'")
        return [(str(resource), raw_size) for resource, raw_size in rows.fetchall()]
    finally:
        conn.close()


@pytest.fixture()
def staged(monkeypatch: pytest.MonkeyPatch) -> list[StagedPage]:
    """Every page whose cache write started, in order."""
    pages: list[StagedPage] = []
    real_stage = BackgroundWriter.stage

    def spy(self: BackgroundWriter, *args: Any, **kwargs: Any) -> StagedPage:
        pages.append(real_stage(self, *args, **kwargs))
        return pages[-1]

    monkeypatch.setattr(BackgroundWriter, "stage", spy)
    return pages


def test_a_still_running_answer_is_staged_then_dropped_and_leaves_no_entry(
    mock_connect: MockConnect,
    staged: list[StagedPage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_polling, "POLL_INTERVAL", 0.0)
    ph, adapter = mock_connect()
    running = {"results": None, "query_status": {"id": "q1", "complete": False}}
    adapter.register_uri("POST", QUERY_URL, json=running)
    done = {"query_status": {"id": "q1", "complete": True, "results": ANSWER}}
    adapter.register_uri("GET", f"{QUERY_URL}q1/", json=done)

    frame = ph.query("select a from t limit 1")

    assert frame["a"].tolist() == [1]
    ph._conn.fetcher.flush()
    running_pages = [page for page in staged if b"query_status" in page.body]
    assert [page.verdict for page in running_pages] == [False]  # its write began, then dropped
    assert [resource for resource, _ in cached_rows(tmp_path / "c")] == ["me"]


def test_a_body_that_does_not_parse_is_dropped_and_the_retry_is_cached(
    mock_connect: MockConnect, staged: list[StagedPage], tmp_path: Path
) -> None:
    retry = php.RetrySettings(attempts=2, backoff_factor=0.0, jitter=0.0)
    ph, adapter = mock_connect(retry=retry)
    good = orjson.dumps(ANSWER)
    adapter.register_uri("POST", QUERY_URL, [{"content": good[:-9]}, {"content": good}])

    frame = ph.query("select a from t limit 1")

    assert frame["a"].tolist() == [1]
    ph._conn.fetcher.flush()
    queries = [page for page in staged if page.resource == "query"]
    assert [(page.body, page.verdict) for page in queries] == [(good[:-9], False), (good, True)]
    assert sorted(cached_rows(tmp_path / "c"))[1:] == [("query", len(good))]  # and "me"
    again = ph.query("select a from t limit 1")  # from the cache
    assert again["a"].tolist() == [1] and adapter.call_count == 3
