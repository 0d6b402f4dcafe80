"""The storage contract: every `Storage` passes the same tests, alone and under `CacheStore`.

Modelled on requests-cache's tests/integration/base_cache_test.py: one suite, a fixture
parametrized over the storages. Adding a storage is one entry in STORAGES (and, for the
crash test, how to make its next write fail half-way).
"""

from __future__ import annotations

import gc
import os
import sqlite3
import stat
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from posthog_pandas.cache import (
    CacheStore,
    Entry,
    MemoryStorage,
    ResourceInfo,
    Row,
    SQLiteStorage,
    Storage,
    compress_body,
)
from posthog_pandas.cache import writer as writer_module
from posthog_pandas.cache.files import prepare_dir
from posthog_pandas.cache.writer import BackgroundWriter
from posthog_pandas.exceptions import CacheError
from tests.conftest import open_files_of, wait_until

T0 = 1_750_000_000.0
URL = "https://us.posthog.com/api/projects/1/persons/"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SimulatedCrash(Exception):
    """Raised in the middle of a write."""


@contextmanager
def sqlite_write_crashes(storage: Storage) -> Iterator[None]:
    """The next write fails after its row is in place, inside the transaction: a trigger on
    this thread's connection aborts right after the INSERT."""
    assert isinstance(storage, SQLiteStorage)
    conn = storage._conn()
    conn.execute(
        "CREATE TEMP TRIGGER crash AFTER INSERT ON main.entries"
        " BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"
    )
    try:
        yield
    finally:
        conn.execute("DROP TRIGGER temp.crash")


class _CrashingDict(dict[Any, Any]):
    def __setitem__(self, key: Any, value: Any) -> None:
        raise SimulatedCrash("simulated crash")


@contextmanager
def memory_write_crashes(storage: Storage) -> Iterator[None]:
    """A dict assignment is the whole write, so the crash can only come before it."""
    assert isinstance(storage, MemoryStorage)
    rows = storage._rows
    storage._rows = _CrashingDict(rows)
    try:
        yield
    finally:
        storage._rows = rows


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[Path], Storage]
    crash_next_write: Callable[[Storage], AbstractContextManager[None]]
    on_disk: bool


def _sqlite(directory: Path) -> Storage:
    prepare_dir(directory)
    return SQLiteStorage(directory)


STORAGES = [
    Backend("sqlite", _sqlite, sqlite_write_crashes, on_disk=True),
    Backend("memory", lambda _directory: MemoryStorage(), memory_write_crashes, on_disk=False),
]


@pytest.fixture(params=STORAGES, ids=[b.name for b in STORAGES])
def backend(request: pytest.FixtureRequest) -> Backend:
    b: Backend = request.param
    return b


@pytest.fixture
def storage(backend: Backend, tmp_path: Path) -> Iterator[Storage]:
    s = backend.make(tmp_path / "c")
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(backend: Backend, tmp_path: Path, clock: Clock) -> Iterator[CacheStore]:
    directory = tmp_path / "c"
    store = CacheStore(directory, clock=clock, storage=backend.make(directory))
    yield store
    store.close()


def row(key: str = "k", body: bytes = b"stored", **changes: Any) -> Row:
    fields: dict[str, Any] = {
        "kind": "page",
        "key": key,
        "resource": "persons",
        "url": URL,
        "created": T0,
        "expires": T0 + 60,
        "size": len(body),
        "raw_size": 2 * len(body),
        "body": body,
    }
    return Row(**{**fields, **changes})


# --- the storage itself ------------------------------------------------------------------------


def test_row_round_trip(storage: Storage) -> None:
    written = row(body=bytes(range(256)) * 10)
    storage.write(written)
    assert storage.read("page", "k") == written


def test_a_sqlite_write_is_one_statement(tmp_path: Path) -> None:
    # A page's commit is what the next page request waits for; each statement is one more
    # wait for the GIL, so the row goes in as one statement, its own transaction.
    storage = _sqlite(tmp_path / "c")
    assert isinstance(storage, SQLiteStorage)
    storage.read("page", "k")  # opens this thread's connection
    statements: list[str] = []
    storage._conn().set_trace_callback(statements.append)
    try:
        storage.write(row(body=b"page"))
    finally:
        storage._conn().set_trace_callback(None)
    assert [s.split(" (")[0] for s in statements] == ["INSERT OR REPLACE INTO entries"]
    assert storage.read("page", "k") == row(body=b"page")
    storage.close()


def test_missing_row_is_none(storage: Storage) -> None:
    assert storage.read("page", "nothing") is None
    storage.delete("nothing")  # no error
    storage.discard("page", "nothing")


def test_write_replaces_the_row(storage: Storage) -> None:
    storage.write(row(body=b"old"))
    storage.write(row(body=b"new", created=T0 + 5))
    assert storage.read("page", "k") == row(body=b"new", created=T0 + 5)
    assert storage.summary(T0)["persons"].entries == 1


def test_kinds_are_separate_and_delete_removes_every_kind(storage: Storage) -> None:
    storage.write(row(body=b"page"))
    storage.write(row(kind="json", body=b"json"))
    storage.write(row(key="other", body=b"kept"))
    assert storage.read("json", "k") == row(kind="json", body=b"json")

    storage.delete("k")

    assert storage.read("page", "k") is None
    assert storage.read("json", "k") is None
    assert storage.read("page", "other") == row(key="other", body=b"kept")


def test_discard_removes_one_kind(storage: Storage) -> None:
    storage.write(row(body=b"page"))
    storage.write(row(kind="json", body=b"json"))
    storage.discard("page", "k")
    assert storage.read("page", "k") is None
    assert storage.read("json", "k") is not None


def test_remove_by_resource_and_age_returns_what_went(storage: Storage) -> None:
    storage.write(row("old-p", resource="persons", created=T0))
    storage.write(row("new-p", resource="persons", created=T0 + 100))
    storage.write(row("old-e", kind="frame", resource="events", created=T0))

    assert storage.remove(resource="persons", created_before=T0 + 50) == [("page", "old-p")]
    assert storage.remove(created_before=T0 + 50) == [("frame", "old-e")]
    assert storage.remove() == [("page", "new-p")]
    assert storage.summary(T0) == {}


def test_summary_numbers_are_exact(storage: Storage) -> None:
    storage.write(row("a", body=b"x" * 10, resource="persons", created=T0, expires=T0 + 10))
    storage.write(row("b", body=b"y" * 30, resource="persons", created=T0 + 20))
    storage.write(row("c", body=b"z" * 5, resource="events", created=T0 + 5))

    summary = storage.summary(now=T0 + 10)

    utc = lambda ts: datetime.fromtimestamp(ts, UTC)  # noqa: E731
    assert summary == {
        "persons": ResourceInfo(2, 1, 40, utc(T0), utc(T0 + 20)),
        "events": ResourceInfo(1, 0, 5, utc(T0 + 5), utc(T0 + 5)),
    }
    assert storage.bytes_used() >= 45


def test_a_write_that_fails_half_way_leaves_the_previous_row(
    backend: Backend, storage: Storage
) -> None:
    before = row(body=b"before")
    storage.write(before)

    with backend.crash_next_write(storage), pytest.raises((CacheError, SimulatedCrash)):
        storage.write(row(body=b"after, never whole"))

    assert storage.read("page", "k") == before
    storage.write(row(body=b"next"))  # the storage is still usable
    assert storage.read("page", "k") == row(body=b"next")


def test_a_failed_first_write_leaves_nothing(backend: Backend, storage: Storage) -> None:
    with backend.crash_next_write(storage), pytest.raises((CacheError, SimulatedCrash)):
        storage.write(row(body=b"never"))
    assert storage.read("page", "k") is None
    assert storage.summary(T0) == {}


def test_threads_write_and_read_at_once(storage: Storage) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                written = row(f"t{n}-{i}", body=f"{n}:{i}".encode() * 20, resource=f"r{n % 3}")
                storage.write(written)
                assert storage.read("page", written.key) == written
                storage.write(row("shared", body=f"{n}".encode() * 20))
                shared = storage.read("page", "shared")
                assert shared is not None and len(set(shared.body)) == 1  # one writer's, whole
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(info.entries for info in storage.summary(T0).values()) == 8 * 50 + 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    # Every pull reads the cache from a short-lived thread of its own (its page prefetch), so a
    # connection left open per ended thread meant files and memory lost per pull, for good.
    storage = _sqlite(tmp_path / "c")
    storage.write(row())

    def read_once() -> None:
        assert storage.read("page", "k") == row()

    blocker = threading.Event()
    alive_read = threading.Event()

    def long_lived() -> None:  # opens its connection, then outlives all the others
        read_once()
        alive_read.set()
        blocker.wait()
        read_once()  # its connection was not closed under it

    survivor = threading.Thread(target=long_lived)
    survivor.start()
    alive_read.wait()
    opened = []
    for _ in range(12):
        t = threading.Thread(target=read_once)
        t.start()
        t.join()
        opened.append(open_files_of(storage.path))  # type: ignore[attr-defined]
    blocker.set()
    survivor.join()

    assert opened[-1] == opened[1], opened  # not one more file per ended thread
    assert len(set(opened[1:])) == 1, opened
    storage.close()
    assert open_files_of(storage.path) == 0  # type: ignore[attr-defined]


def test_close_then_reuse(storage: Storage) -> None:
    storage.write(row())
    storage.close()
    storage.write(row(key="again"))
    assert storage.read("page", "again") == row(key="again")


# --- the cache over it -------------------------------------------------------------------------


def test_cache_round_trip(cache: CacheStore) -> None:
    cache.put("k", b'{"results": [1]}', resource="persons", url=URL + "?token=s3cret", ttl=60)
    shown = URL + "?token=%2A%2A%2A%2A%2A%2A%2A%2A"  # stored redacted
    assert cache.get("k") == Entry(b'{"results": [1]}', T0, T0 + 60, "persons", shown)


def test_cache_overwrite(cache: CacheStore, clock: Clock) -> None:
    cache.put("k", b"old", resource="persons", url=URL, ttl=60)
    clock.now += 10
    cache.put("k", b"new", resource="persons", url=URL, ttl=60)
    assert cache.get("k") == Entry(b"new", T0 + 10, T0 + 70, "persons", URL)
    assert cache.info().entries == 1


def test_cache_missing_keys(cache: CacheStore) -> None:
    assert cache.get("absent") is None
    assert cache.get("absent", allow_stale=True) is None
    assert cache.get_json("absent") is None
    assert cache.get_frame("absent") is None
    cache.delete("absent")


def test_cache_expiry(cache: CacheStore, clock: Clock) -> None:
    cache.put("k", b"body", resource="persons", url=URL, ttl=60)
    cache.put_json("pin", {"a": 1}, resource="events", ttl=60)
    clock.now = T0 + 59.9
    assert cache.get("k") is not None and cache.get_json("pin") == {"a": 1}
    clock.now = T0 + 60
    assert cache.get("k") is None and cache.get_json("pin") is None
    stale = cache.get("k", allow_stale=True)
    assert stale is not None and stale.body == b"body" and stale.age(clock.now) == 60
    assert cache.get_json("pin", allow_stale=True) == {"a": 1}
    assert cache.info().expired == 2


def test_cache_stores_compressed_pages(cache: CacheStore, backend: Backend) -> None:
    body = b'{"results": []}' * 1000
    cache.put("k", body, resource="r", url=URL, ttl=60)
    assert cache.info().resources["r"].bytes == len(compress_body(body))


def test_cache_delete_removes_page_json_and_frame(cache: CacheStore) -> None:
    cache.put("k", b"page", resource="r", url=URL, ttl=60)
    cache.put_json("k", [1], resource="r")
    cache.put_frame("k", pd.DataFrame({"a": [1.0]}), resource="r", ttl=60)
    cache.delete("k")
    assert (cache.get("k"), cache.get_json("k"), cache.get_frame("k")) == (None, None, None)
    assert not cache.frame_path("k").exists()
    assert cache.info().entries == 0


def test_cache_clear_by_resource_age_and_all(cache: CacheStore, clock: Clock) -> None:
    cache.put("p-old", b"x", resource="persons", url=URL, ttl=999)
    cache.put_frame("f-old", pd.DataFrame({"a": [1]}), resource="events", ttl=999)
    clock.now += 100
    cache.put("p-new", b"y", resource="persons", url=URL, ttl=999)
    cache.put("e-new", b"z", resource="events", url=URL, ttl=999)

    assert cache.clear(resource="persons", older_than=50) == 1
    assert cache.clear(older_than=50) == 1
    assert not cache.frame_path("f-old").exists()
    assert cache.get("p-new") is not None
    assert cache.clear() == 2
    assert cache.info().entries == 0


def test_cache_info_lists_every_resource(cache: CacheStore, clock: Clock) -> None:
    cache.put("a", b"a" * 100, resource="persons", url=URL, ttl=10)
    clock.now += 20
    cache.put_frame("f", pd.DataFrame({"a": [1]}), resource="events", ttl=10)

    info = cache.info()

    assert sorted(info.resources) == ["events", "persons"]
    assert (info.entries, info.expired) == (2, 1)
    assert info.resources["events"].bytes == cache.frame_path("f").stat().st_size
    assert info.oldest == datetime.fromtimestamp(T0, UTC)
    assert info.newest == datetime.fromtimestamp(T0 + 20, UTC)
    assert info.bytes >= info.resources["events"].bytes


def test_cache_frame_write_that_fails_half_way_keeps_the_previous_frame(
    cache: CacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    before = pd.DataFrame({"a": pd.array([1, 2], dtype="Int64")})
    cache.put_frame("f", before, resource="events", ttl=60)

    def half_then_crash(_table: Any, where: Any, **_kw: Any) -> None:
        where.write(b"PAR1 half a file")
        raise SimulatedCrash("simulated crash")

    monkeypatch.setattr(pq, "write_table", half_then_crash)
    with pytest.raises(SimulatedCrash):
        cache.put_frame("f", pd.DataFrame({"a": [3]}), resource="events", ttl=60)
    monkeypatch.undo()

    pd.testing.assert_frame_equal(cache.get_frame("f"), before)
    assert [p.name for p in cache.frame_path("f").parent.iterdir()] == ["f.parquet"]


def test_cache_files_are_private(cache: CacheStore, backend: Backend) -> None:
    cache.put("k", b"x" * 1000, resource="r", url=URL, ttl=60)
    cache.put_frame("f", pd.DataFrame({"a": [1.0]}), resource="r", ttl=60)

    paths = [cache.directory, *cache.directory.rglob("*")]
    names = {p.name for p in paths}
    assert {"salt", "frames", "f.parquet"} <= names
    assert ("cache.sqlite3" in names) is backend.on_disk
    for path in paths:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_cache_threads_share_it(cache: CacheStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                key, body = f"t{n}-{i}", f"{n}:{i}".encode() * 50
                cache.put(key, body, resource=f"r{n % 3}", url=URL, ttl=60)
                got = cache.get(key)
                assert got is not None and got.body == body
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert cache.info().entries == 400


def test_the_page_writer_works_over_any_storage(cache: CacheStore) -> None:
    writer = BackgroundWriter(cache)
    writer.put("k", b'{"results": []}', resource="persons", url=URL, ttl=60)
    writer.flush()
    assert cache.get("k") == Entry(b'{"results": []}', T0, T0 + 60, "persons", URL)


def test_the_page_writer_lets_go_of_a_page_once_written(cache: CacheStore) -> None:
    """Nothing in the writer keeps the last page's body (and its compressed copy) alive
    while it waits for the next: in a Dask worker that was a whole page per connection."""
    writer = BackgroundWriter(cache)
    body = b'{"results": [' + b"1," * 10_000 + b"1]}"
    alone = sys.getrefcount(body)
    writer.put("k", body, resource="events", url=URL, ttl=60)
    writer.flush()
    # the worker returns from the task just after flush() wakes up
    wait_until(lambda: sys.getrefcount(body) <= alone)
    assert sys.getrefcount(body) == alone
    assert cache.get("k") is not None


def test_an_idle_page_writer_ends_and_lets_its_cache_go(
    cache: CacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its worker thread used to wait for work forever, and interpreter exit held it too:
    every connection, once it had cached a page, kept its writer, cache and database
    connections alive for good (a notebook cell running connect() again leaked all three)."""
    monkeypatch.setattr(writer_module, "_IDLE_SECONDS", 0.05, raising=False)
    writer = BackgroundWriter(cache)
    writer.put("first", b"1", resource="events", url=URL, ttl=60)
    writer.flush()
    worker = writer._thread
    assert worker is not None
    wait_until(lambda: not worker.is_alive())
    assert not worker.is_alive()  # idle: it ended
    writer.put("second", b"2", resource="events", url=URL, ttl=60)  # starts another
    writer.flush()
    assert cache.get("first") is not None and cache.get("second") is not None

    gone = weakref.ref(writer)
    del writer
    wait_until(lambda: gc.collect() >= 0 and gone() is None)
    assert gone() is None


def test_memory_storage_leaves_no_database(tmp_path: Path) -> None:
    with CacheStore(tmp_path / "c", storage=MemoryStorage()) as store:
        store.put("k", b"v", resource="r", url=URL, ttl=60)
        assert store.get("k") is not None
    assert not (tmp_path / "c" / "cache.sqlite3").exists()


def test_two_sqlite_stores_on_one_directory_share_rows(tmp_path: Path) -> None:
    """Through the file, as processes do (test_cache_processes.py runs real processes)."""
    first = CacheStore(tmp_path / "c")
    second = CacheStore(tmp_path / "c")
    first.put("k", b"from the first", resource="r", url=URL, ttl=60)
    assert second.get("k") is not None
    assert sqlite3.connect(tmp_path / "c" / "cache.sqlite3").execute(
        "SELECT count(*) FROM entries"
    ).fetchone() == (1,)
    first.close()
    second.close()
