"""Several processes on one cache directory: no corruption, no "database is locked"."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import pytest

from posthog_pandas.cache import CacheStore

WORKERS = 4
ENTRIES = 200
URL = "https://us.posthog.com/api/projects/1/events/"


def body_for(key: str) -> bytes:
    """Deterministic, key-specific body of a few kB, so any mix-up is detectable."""
    seed = hashlib.sha256(key.encode()).digest()
    return seed * (50 + seed[0] % 100)


def _writer(directory: str, n: int, barrier: Any, results: Any) -> None:
    try:
        store = CacheStore(directory)
        barrier.wait(timeout=60)
        checked = 0
        for i in range(ENTRIES):
            own, shared = f"w{n}-{i}", f"shared-{i}"
            store.put(own, body_for(own), resource=f"r{n}", url=URL, ttl=3600)
            store.put(shared, body_for(shared), resource="shared", url=URL, ttl=3600)
            store.put_json(f"pin{n}-{i}", {"n": n, "i": i}, resource="pins")
            got = store.get(own)
            assert got is not None and got.body == body_for(own), own
            assert store.get_json(f"pin{n}-{i}") == {"n": n, "i": i}
            for other in range(WORKERS):  # read whatever the others wrote so far
                key = f"w{other}-{i}"
                entry = store.get(key)
                if entry is not None:
                    assert entry.body == body_for(key), key
                    checked += 1
        results.put((n, "ok", checked, store.fingerprint("phx_same_key")))
        store.close()
    except BaseException:  # reported to the parent, which fails the test with the traceback
        results.put((n, "error", traceback.format_exc(), ""))


def _fingerprinter(directory: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=60)
        store = CacheStore(directory)
        results.put(store.fingerprint("phx_same_key"))
        store.close()
    except BaseException:
        results.put("error: " + traceback.format_exc())


def run_processes(ctx: Any, target: Any, args_for: Any, count: int) -> list[Any]:
    barrier = ctx.Barrier(count)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args_for(n), barrier, results)) for n in range(count)
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return out


@pytest.mark.slow
def test_four_processes_write_and_read_concurrently(tmp_path: Path) -> None:
    directory = str(tmp_path / "cache")
    ctx = mp.get_context("spawn")

    results = run_processes(ctx, _writer, lambda n: (directory, n), WORKERS)

    errors = [detail for _, status, detail, _ in results if status != "ok"]
    assert errors == []
    assert len({fp for *_, fp in results}) == 1  # one salt for everyone
    store = CacheStore(directory)
    for n in range(WORKERS):
        for i in range(ENTRIES):
            key = f"w{n}-{i}"
            assert store.get(key).body == body_for(key)  # type: ignore[union-attr]
            assert store.get_json(f"pin{n}-{i}") == {"n": n, "i": i}
    info = store.info()
    assert info.entries == WORKERS * ENTRIES * 2 + ENTRIES
    assert info.resources["shared"].entries == ENTRIES
    assert [p.name for p in Path(directory).iterdir() if ".corrupt-" in p.name] == []
    store.close()


@pytest.mark.slow
def test_racing_first_opens_agree_on_the_salt(tmp_path: Path) -> None:
    directory = str(tmp_path / "fresh")
    ctx = mp.get_context("spawn")

    fingerprints = run_processes(ctx, _fingerprinter, lambda n: (directory,), 6)

    assert not any(fp.startswith("error") for fp in fingerprints), fingerprints
    assert len(set(fingerprints)) == 1
    assert sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp")) == []


def _child_uses_inherited_store(store: CacheStore, results: Any) -> None:
    try:
        assert store.get("from-parent").body == b"parent"  # type: ignore[union-attr]
        store.put("from-child", b"child", resource="r", url=URL, ttl=60)
        results.put("ok")
    except BaseException:
        results.put(traceback.format_exc())


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_store_used_after_fork_opens_its_own_connection(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    store.put("from-parent", b"parent", resource="r", url=URL, ttl=60)  # parent has a connection
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    proc = ctx.Process(target=_child_uses_inherited_store, args=(store, results))
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork with threads running
        warnings.simplefilter("ignore", DeprecationWarning)
        proc.start()
    assert results.get(timeout=60) == "ok"
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert store.get("from-child").body == b"child"  # type: ignore[union-attr]
    store.put("after", b"fine", resource="r", url=URL, ttl=60)  # parent connection still good
    assert store.get("after").body == b"fine"  # type: ignore[union-attr]
    store.close()
