"""The background cache writer: pages written off the request path, readable meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

from posthog_pandas._fetcher import BackgroundWriter
from posthog_pandas.cache import CacheStore


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
