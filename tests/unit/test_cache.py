"""Contract tests for the on-disk cache storage (posthog_pandas.cache)."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import time_machine

import posthog_pandas.cache.store as store_module
from posthog_pandas.cache import (
    DB_NAME,
    ENV_CACHE_DIR,
    CacheInfo,
    CacheStore,
    Entry,
    compress_body,
    decompress_body,
    default_cache_dir,
    human_bytes,
    normalize_url,
    redact_url,
)
from posthog_pandas.exceptions import CacheError, ConfigurationError

T0 = 1_750_000_000.0
SECRET = "phx_S3cr3tPersonalKeyDoNotLeak0123456789abcdef"
PASSWORD = "hunter2-very-secret-password"
URL = "https://us.posthog.com/api/projects/1/persons/"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock):
    s = CacheStore(tmp_path / "cache", clock=clock)
    yield s
    s.close()


def key_for(store: CacheStore, url: str = URL, **kw) -> str:
    scope = kw.pop("scope", "us.posthog.com|1|" + store.fingerprint(SECRET))
    return store.make_key(scope=scope, method=kw.pop("method", "GET"), url=url, **kw)


def all_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


# --- pages -----------------------------------------------------------------------------------


def test_put_get_round_trip(store: CacheStore) -> None:
    key = key_for(store)
    store.put(key, b'{"results": [1, 2]}', resource="persons", url=URL + "?limit=100", ttl=60)

    entry = store.get(key)

    assert entry == Entry(
        body=b'{"results": [1, 2]}',
        created=T0,
        expires=T0 + 60,
        resource="persons",
        url=URL + "?limit=100",
    )


def test_miss_returns_none(store: CacheStore) -> None:
    assert store.get("0" * 64) is None
    assert store.get("0" * 64, allow_stale=True) is None


def test_put_replaces_previous_body(store: CacheStore, clock: Clock) -> None:
    store.put("k", b"old", resource="persons", url=URL, ttl=60)
    clock.now += 10
    store.put("k", b"new", resource="persons", url=URL, ttl=60)

    entry = store.get("k")
    assert entry is not None
    assert (entry.body, entry.created) == (b"new", T0 + 10)
    assert store.info().entries == 1


def test_empty_and_binary_bodies(store: CacheStore) -> None:
    store.put("empty", b"", resource="r", url=URL, ttl=60)
    blob = bytes(range(256)) * 100
    store.put("blob", blob, resource="r", url=URL, ttl=60)
    assert store.get("empty").body == b""  # type: ignore[union-attr]
    assert store.get("blob").body == blob  # type: ignore[union-attr]


def test_expiry_with_injected_clock(store: CacheStore, clock: Clock) -> None:
    store.put("k", b"body", resource="persons", url=URL, ttl=60)

    clock.now = T0 + 59.5
    assert store.get("k") is not None
    clock.now = T0 + 60
    assert store.get("k") is None

    stale = store.get("k", allow_stale=True)
    assert stale is not None
    assert stale.body == b"body"
    assert stale.age(clock.now) == 60
    assert not stale.is_fresh(clock.now)


def test_expiry_with_time_machine(tmp_path: Path) -> None:
    start = datetime(2025, 1, 1, 12, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        s = CacheStore(tmp_path / "c")
        s.put("k", b"body", resource="events", url=URL, ttl=3600)
        traveller.shift(timedelta(minutes=59))
        assert s.get("k") is not None
        traveller.shift(timedelta(minutes=1))
        assert s.get("k") is None
        stale = s.get("k", allow_stale=True)
        assert stale is not None
        assert stale.age() == 3600
        s.close()


def test_infinite_and_zero_ttl(store: CacheStore, clock: Clock) -> None:
    store.put("forever", b"x", resource="r", url=URL, ttl=math.inf)
    store.put("never", b"y", resource="r", url=URL, ttl=0)
    clock.now += 10 * 365 * 86400
    assert store.get("forever") is not None
    assert store.get("never") is None
    assert store.get("never", allow_stale=True) is not None


def test_nan_ttl_rejected(store: CacheStore) -> None:
    with pytest.raises(ConfigurationError, match="NaN"):
        store.put("k", b"x", resource="r", url=URL, ttl=math.nan)


def test_delete_removes_page_json_and_frame(store: CacheStore) -> None:
    key = key_for(store)
    store.put(key, b"page", resource="r", url=URL, ttl=60)
    store.put_json(key, {"pin": 1}, resource="r")
    store.put_frame(key, pd.DataFrame({"a": pd.array([1], dtype="Int64")}), resource="r", ttl=60)

    store.delete(key)

    assert store.get(key) is None
    assert store.get_json(key) is None
    assert store.get_frame(key) is None
    assert not store.frame_path(key).exists()
    assert store.info().entries == 0


# --- JSON records ------------------------------------------------------------------------------


def test_json_round_trip_and_separate_namespace(store: CacheStore, clock: Clock) -> None:
    pin = {"before": "2025-01-01T00:00:00Z", "pages": [1, 2], "done": False}
    store.put("k", b"page body", resource="events", url=URL, ttl=60)
    store.put_json("k", pin, resource="events", ttl=60)

    assert store.get_json("k") == pin
    assert store.get("k").body == b"page body"  # type: ignore[union-attr]
    clock.now += 61
    assert store.get_json("k") is None
    assert store.get_json("k", allow_stale=True) == pin


def test_json_default_ttl_is_forever(store: CacheStore, clock: Clock) -> None:
    store.put_json("state", [1, "two", None], resource="incremental")
    clock.now += 10**9
    assert store.get_json("state") == [1, "two", None]


# --- keys --------------------------------------------------------------------------------------


def test_make_key_is_sha256_hex(store: CacheStore) -> None:
    key = key_for(store)
    assert len(key) == 64
    assert int(key, 16) >= 0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://h.com/api/x/?b=2&a=1", "https://h.com/api/x/?a=1&b=2"),
        ("https://h.com/api/x/", "https://h.com/api/x"),
        ("https://H.COM/api/x/", "https://h.com/api/x/"),
        ("HTTPS://h.com/api/x/", "https://h.com/api/x/"),
        ("https://h.com:443/api/x/", "https://h.com/api/x/"),
        ("http://h.com:80/api/x/", "http://h.com/api/x/"),
        ("https://h.com/api/x/#frag", "https://h.com/api/x/"),
        ("https://h.com", "https://h.com/"),
    ],
)
def test_key_normalisation(store: CacheStore, a: str, b: str) -> None:
    assert key_for(store, a) == key_for(store, b)


def test_params_merge_with_query_string_in_any_order(store: CacheStore) -> None:
    base = "https://h.com/api/events/"
    k1 = key_for(store, base + "?limit=100", params={"after": "2025-01-01", "event": None})
    k2 = key_for(store, base, params={"after": "2025-01-01", "limit": 100})
    k3 = key_for(store, base + "?after=2025-01-01&limit=100")
    assert k1 == k2 == k3
    assert key_for(store, base, params={"p": [1, 2]}) == key_for(store, base + "?p=2&p=1")


def test_method_case_and_json_body_order_do_not_matter(store: CacheStore) -> None:
    b1 = json.dumps({"query": {"kind": "HogQLQuery", "query": "select 1"}}).encode()
    b2 = b'{"query":{"query":"select 1","kind":"HogQLQuery"}}'
    assert key_for(store, method="post", body=b1) == key_for(store, method="POST", body=b2)
    assert key_for(store, body=None) == key_for(store, body=b"")


@pytest.mark.parametrize(
    "change",
    [
        {"scope": "eu.posthog.com|1|" + "0" * 32},
        {"scope": "us.posthog.com|2|" + "0" * 32},
        {"scope": "us.posthog.com|1|" + "1" * 32},
        {"method": "POST"},
        {"url": "https://us.posthog.com:8443/api/projects/1/persons/"},
        {"url": "http://us.posthog.com/api/projects/1/persons/"},
        {"url": "https://us.posthog.com/api/projects/1/events/"},
        {"params": {"limit": 101}},
        {"body": b'{"query": "select 2"}'},
        {"url": "https://other@us.posthog.com/api/projects/1/persons/"},
    ],
)
def test_keys_separate(store: CacheStore, change: dict) -> None:
    base = {
        "scope": "us.posthog.com|1|" + "0" * 32,
        "method": "GET",
        "url": URL,
        "params": {"limit": 100},
        "body": b'{"query": "select 1"}',
    }
    assert store.make_key(**base) != store.make_key(**{**base, **change})


def test_normalize_and_redact_url() -> None:
    assert normalize_url("HTTPS://Us.PostHog.com:443/api/x/?b=1&a=2#top", {"c": True}) == (
        "https://us.posthog.com/api/x?a=2&b=1&c=True"
    )
    assert normalize_url("https://[::1]:8000/a/") == "https://[::1]:8000/a"
    redacted = redact_url(
        f"https://user:{PASSWORD}@h.com/api/x/?personal_api_key={SECRET}&token=t&API_KEY=k"
        "&key=k&password=p&limit=5#frag"
    )
    masked = "%2A%2A%2A%2A%2A%2A%2A%2A"  # the package's one redaction masks by name
    assert redacted == (
        f"https://h.com/api/x/?personal_api_key={masked}&token={masked}&API_KEY={masked}"
        f"&key={masked}&password={masked}&limit=5"
    )
    assert SECRET not in redacted and PASSWORD not in redacted


def test_stored_url_is_redacted(store: CacheStore) -> None:
    store.put("k", b"x", resource="r", url=f"{URL}?personal_api_key={SECRET}&limit=1", ttl=60)
    stored = store.get("k").url  # type: ignore[union-attr]
    assert stored == URL + "?personal_api_key=%2A%2A%2A%2A%2A%2A%2A%2A&limit=1"


# --- fingerprint and secrets -------------------------------------------------------------------


def test_fingerprint_stable_per_directory(tmp_path: Path) -> None:
    a1 = CacheStore(tmp_path / "a")
    a2 = CacheStore(tmp_path / "a")
    b = CacheStore(tmp_path / "b")
    fp = a1.fingerprint(SECRET)

    assert len(fp) == 32 and int(fp, 16) >= 0
    assert a2.fingerprint(SECRET) == fp
    assert b.fingerprint(SECRET) != fp
    assert a1.fingerprint(SECRET + "x") != fp
    assert a1.fingerprint("ab", "c") != a1.fingerprint("a", "bc")
    assert a1.fingerprint("user", PASSWORD) != a1.fingerprint("user", PASSWORD + "!")
    assert SECRET not in fp
    for s in (a1, a2, b):
        s.close()


def test_salt_file_is_32_random_bytes(store: CacheStore) -> None:
    salt = (store.directory / "salt").read_bytes()
    assert len(salt) == 32
    assert len(set(salt)) > 8


def test_damaged_salt_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "c").mkdir(mode=0o700)
    (tmp_path / "c" / "salt").write_bytes(b"short")
    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        s = CacheStore(tmp_path / "c")
    assert len((tmp_path / "c" / "salt").read_bytes()) == 32
    assert "salt" in caplog.text
    s.close()


def test_secrets_never_reach_disk_or_logs(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="posthog_pandas.cache")
    s = CacheStore(tmp_path / "c", clock=clock)
    scope = "us.posthog.com|1|" + s.fingerprint(SECRET) + s.fingerprint("me@x.com", PASSWORD)
    key = s.make_key(scope=scope, method="GET", url=URL, params={"personal_api_key": SECRET})
    url = f"https://me:{PASSWORD}@us.posthog.com/api/?personal_api_key={SECRET}&password={PASSWORD}"
    s.put(key, b"{}", resource="persons", url=url, ttl=60)
    s.put_json(key, {"state": 1}, resource="persons", url=url)
    s.put_frame(key, pd.DataFrame({"a": [1]}), resource="persons", ttl=60)
    s.get(key)
    s.info()
    s.clear(resource="nothing")

    needles = []
    for secret in (SECRET, PASSWORD):
        raw = secret.encode()
        needles += [
            raw,
            raw.hex().encode(),
            raw.hex().upper().encode(),
            base64.b64encode(raw),
            base64.urlsafe_b64encode(raw),
            base64.b64encode(raw).rstrip(b"="),
            secret.encode("utf-16-le"),
        ]
    files = all_files(tmp_path / "c")
    assert {p.name for p in files} >= {DB_NAME, f"{DB_NAME}-wal", "salt", f"{key}.parquet"}
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle)
    for needle in needles:
        assert needle.decode("latin-1") not in caplog.text
    assert SECRET not in repr(s) + repr(s.info()) + s.info()._repr_html_()
    s.close()


# --- file modes --------------------------------------------------------------------------------


def test_every_file_is_private(store: CacheStore) -> None:
    store.put("k", b"x" * 10000, resource="r", url=URL, ttl=60)
    store.put_json("j", {"a": 1}, resource="r")
    store.put_frame("f", pd.DataFrame({"a": [1.0]}), resource="r", ttl=60)

    paths = [store.directory, *store.directory.rglob("*")]
    names = {p.name for p in paths}
    assert {"salt", DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "frames", "f.parquet"} <= names
    for path in paths:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_loose_mode_of_own_directory_is_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    CacheStore(tmp_path / "c").close()
    os.chmod(tmp_path / "c", 0o755)
    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        CacheStore(tmp_path / "c").close()
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    assert [r.getMessage() for r in caplog.records] == [
        f"Cache directory {tmp_path / 'c'} had mode 755, so other users could read it; "
        "posthog-pandas changed it to 0700."
    ]


def test_loose_foreign_directory_is_only_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("someone else's file")
    os.chmod(shared, 0o755)
    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        CacheStore(shared).close()
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    assert "other users may read" in caplog.text


# --- directories and errors --------------------------------------------------------------------


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv(ENV_CACHE_DIR)
    import platformdirs

    assert default_cache_dir() == Path(platformdirs.user_cache_dir("posthog-pandas"))


def test_uncreatable_directory_raises_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "cache"

    with pytest.raises(CacheError) as excinfo:
        CacheStore(target)

    message = str(excinfo.value)
    assert str(target) in message
    assert "POSTHOG_PANDAS_CACHE_DIR" in message
    assert "cache_dir=..." in message
    assert "cache=False" in message


def test_directory_path_that_is_a_file_raises_cache_error(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.write_text("oops")
    with pytest.raises(CacheError, match="cannot be created or written"):
        CacheStore(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_parent_raises_cache_error(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    os.chmod(parent, 0o500)
    try:
        with pytest.raises(CacheError, match="POSTHOG_PANDAS_CACHE_DIR"):
            CacheStore(parent / "cache")
    finally:
        os.chmod(parent, 0o700)


# --- corruption --------------------------------------------------------------------------------


def fill(store: CacheStore, n: int = 300) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    bodies = {f"k{i}": rng.bytes(3000) for i in range(n)}
    for key, body in bodies.items():
        store.put(key, body, resource="events", url=URL, ttl=3600)
    return bodies


def corrupt_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".corrupt-" in p.name)


def test_truncated_database_is_moved_aside(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    s = CacheStore(tmp_path / "c", clock=clock)
    bodies = fill(s)
    s.close()
    db = tmp_path / "c" / DB_NAME
    assert not (tmp_path / "c" / f"{DB_NAME}-wal").exists()  # checkpointed on close
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 2)

    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        s = CacheStore(tmp_path / "c", clock=clock)
        results = {key: s.get(key) for key in bodies}

    for key, entry in results.items():
        assert entry is None or entry.body == bodies[key]
    assert len(corrupt_files(tmp_path / "c")) == 1
    assert "moved it to" in caplog.text
    s.put("after", b"fresh", resource="r", url=URL, ttl=60)
    assert s.get("after").body == b"fresh"  # type: ignore[union-attr]
    s.close()


@pytest.mark.parametrize(
    "junk", [b"junk" * 2000, b"\x00" * 4096, b"SQLite format 3\x00" + b"!" * 90]
)
def test_garbage_database_is_replaced_at_open(
    tmp_path: Path, junk: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    CacheStore(tmp_path / "c").close()
    (tmp_path / "c" / DB_NAME).write_bytes(junk)

    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        s = CacheStore(tmp_path / "c")

    assert corrupt_files(tmp_path / "c") and corrupt_files(tmp_path / "c")[0].startswith(
        f"{DB_NAME}.corrupt-"
    )
    assert "unreadable" in caplog.text
    assert s.get("k") is None
    s.put("k", b"v", resource="r", url=URL, ttl=60)
    assert s.get("k").body == b"v"  # type: ignore[union-attr]
    assert s.info().entries == 1
    s.close()


def test_database_replaced_while_open_is_recovered(tmp_path: Path) -> None:
    s = CacheStore(tmp_path / "c")
    s.put("k", b"v", resource="r", url=URL, ttl=60)
    s.close()
    db = tmp_path / "c" / DB_NAME
    db.write_bytes(b"garbage" * 1000)  # between open and use, e.g. by another program
    assert s.get("k") is None
    s.put("k", b"v2", resource="r", url=URL, ttl=60)
    assert s.get("k").body == b"v2"  # type: ignore[union-attr]
    s.close()


def raw_sql(store: CacheStore, sql: str, *args: object) -> None:
    conn = sqlite3.connect(store.directory / DB_NAME)
    with conn:
        conn.execute(sql, args)
    conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE entries SET body = x'deadbeef' WHERE key = ?",
        "UPDATE entries SET body = substr(body, 1, 10) WHERE key = ?",
        "UPDATE entries SET created = 'yesterday' WHERE key = ?",
        "UPDATE entries SET raw_size = 3 WHERE key = ?",
        "UPDATE entries SET body = 'text, not bytes' WHERE key = ?",
    ],
)
def test_corrupt_row_is_a_logged_miss(
    store: CacheStore, sql: str, caplog: pytest.LogCaptureFixture
) -> None:
    store.put("bad", b"x" * 1000, resource="r", url=URL, ttl=60)
    store.put("good", b"y" * 1000, resource="r", url=URL, ttl=60)
    raw_sql(store, sql, "bad")

    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        assert store.get("bad") is None
        assert store.get("bad", allow_stale=True) is None
    assert "Corrupt cache entry bad" in caplog.text
    assert "xxxx" not in caplog.text  # bodies are never logged
    assert store.get("good").body == b"y" * 1000  # type: ignore[union-attr]
    assert store.info().entries == 1  # the bad row was dropped


def test_pages_are_stored_as_zstd_frames(store: CacheStore) -> None:
    body = b'{"results": [1, 2, 3], "next": null}' * 1000
    store.put("k", body, resource="r", url=URL, ttl=60)
    conn = sqlite3.connect(store.directory / DB_NAME)
    stored, raw_size = conn.execute("SELECT body, raw_size FROM entries WHERE key = 'k'").fetchone()
    conn.close()
    assert stored[:4] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic
    assert len(stored) < len(body) // 20
    assert raw_size == len(body)
    assert decompress_body(stored, raw_size) == body


def test_zlib_entries_from_earlier_versions_are_still_read(store: CacheStore) -> None:
    body = b'{"results": [], "next": null}'
    store.put("old", b"placeholder", resource="r", url=URL, ttl=60)
    raw_sql(
        store,
        "UPDATE entries SET body = ?, raw_size = ? WHERE key = ?",
        zlib.compress(body, 1),
        len(body),
        "old",
    )
    assert store.get("old").body == body  # type: ignore[union-attr]


def test_decompress_body_checks_the_recorded_length() -> None:
    with pytest.raises(OSError, match="ZSTD"):
        decompress_body(compress_body(b"abc" * 100), 10)
    with pytest.raises(ValueError, match="length 3 != recorded 4"):
        decompress_body(zlib.compress(b"abc"), 4)


def test_corrupt_json_record_is_a_miss(store: CacheStore) -> None:
    store._put("json", "pin", b"{not json", resource="r", url="", ttl=60)
    assert store.get_json("pin") is None


def test_new_cache_uses_64k_pages_and_a_16mb_checkpoint(store: CacheStore) -> None:
    conn = store._storage._conn()  # type: ignore[attr-defined]
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 65536
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 256  # 16 MB of WAL
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


def test_cache_made_with_4k_pages_keeps_working(tmp_path: Path) -> None:
    # A cache written before 64 kB pages: SQLite cannot change the page size of a WAL
    # database, so it keeps 4 kB pages (and checkpoints every 4,096 of them, 16 MB).
    (tmp_path / "c").mkdir()
    conn = sqlite3.connect(tmp_path / "c" / DB_NAME)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode = WAL").fetchall()
    conn.close()
    old = CacheStore(tmp_path / "c")
    body = os.urandom(300_000)
    old.put("k", body, resource="r", url=URL, ttl=60)
    old.close()
    s = CacheStore(tmp_path / "c")
    assert s.get("k").body == body  # type: ignore[union-attr]
    check = s._storage._conn()  # type: ignore[attr-defined]
    assert check.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert check.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 4096


def test_other_schema_version_is_emptied(tmp_path: Path) -> None:
    s = CacheStore(tmp_path / "c")
    s.put("k", b"v", resource="r", url=URL, ttl=60)
    s.close()
    conn = sqlite3.connect(tmp_path / "c" / DB_NAME)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    s = CacheStore(tmp_path / "c")
    assert s.get("k") is None
    s.put("k", b"v", resource="r", url=URL, ttl=60)
    assert s.get("k") is not None
    s.close()


# --- frames ------------------------------------------------------------------------------------


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "string": pd.array(["a", None, "c"], dtype="string"),
            "string_python": pd.array(["a", None, "c"], dtype=pd.StringDtype("python")),
            "string_pyarrow": pd.array(["a", "b", None], dtype=pd.StringDtype("pyarrow")),
            "default_str": pd.Series(["x", None, "z"]),
            "int": pd.array([1, None, 3], dtype="Int64"),
            "bool": pd.array([True, None, False], dtype="boolean"),
            "float": pd.array([1.5, None, 2.5], dtype="Float64"),
            "ts": pd.Series(
                pd.to_datetime(
                    ["2025-01-01T00:00:00.123456789Z", None, "2025-06-01T00:00:00.000000001Z"],
                    utc=True,
                ),
                dtype="datetime64[ns, UTC]",
            ),
            "np_int": np.array([1, 2, 3], dtype="int64"),
            "np_float": np.array([1.0, np.nan, 3.0]),
            "obj": pd.Series([{"a": 1}, None, {"a": 2}], dtype=object),
            "all_na_string": pd.array([None, None, None], dtype="string"),
            "all_na_int": pd.array([None, None, None], dtype="Int64"),
            "all_na_bool": pd.array([None, None, None], dtype="boolean"),
            "all_na_float": pd.array([None, None, None], dtype="Float64"),
            "all_na_ts": pd.Series([None, None, None], dtype="datetime64[ns, UTC]"),
            "all_none_obj": pd.Series([None, None, None], dtype=object),
            "category": pd.Categorical(["a", "b", "a"]),
        }
    )


def assert_exact(got: pd.DataFrame | None, expected: pd.DataFrame) -> None:
    assert got is not None
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)
    assert [repr(d) for d in got.dtypes] == [repr(d) for d in expected.dtypes]
    pd.testing.assert_frame_equal(got, expected)


def test_frame_round_trip_exact_dtypes(store: CacheStore) -> None:
    df = sample_frame()
    store.put_frame("f1", df, resource="events", ttl=60)
    assert_exact(store.get_frame("f1"), df)


def test_empty_frame_round_trip(store: CacheStore) -> None:
    df = sample_frame().drop(columns=["category"]).iloc[:0]
    store.put_frame("empty", df, resource="events", ttl=60)
    assert_exact(store.get_frame("empty"), df)


def test_frame_with_no_columns(store: CacheStore) -> None:
    store.put_frame("none", pd.DataFrame(), resource="events", ttl=60)
    got = store.get_frame("none")
    assert got is not None and got.shape == (0, 0)


def test_frame_keeps_custom_index(store: CacheStore) -> None:
    df = pd.DataFrame({"a": pd.array([1, 2], dtype="Int64")}, index=pd.Index([10, 20], name="id"))
    store.put_frame("idx", df, resource="r", ttl=60)
    assert_exact(store.get_frame("idx"), df)


def test_frame_expiry_and_info(store: CacheStore, clock: Clock) -> None:
    store.put_frame("f", sample_frame(), resource="events", ttl=60)
    path = store.frame_path("f")
    assert path == store.directory / "frames" / "f.parquet"
    assert store.info().resources["events"].bytes == path.stat().st_size
    clock.now += 60
    assert store.get_frame("f") is None
    assert store.get_frame("f", allow_stale=True) is not None


def test_frame_write_leaves_no_temp_files(store: CacheStore) -> None:
    for _ in range(3):
        store.put_frame("f", sample_frame(), resource="events", ttl=60)
    assert [p.name for p in (store.directory / "frames").iterdir()] == ["f.parquet"]


class BlockedFrameWrites:
    """Holds CacheStore.put_frame on the writer thread until `release()`."""

    def __init__(self, store: CacheStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        real = store.put_frame

        def slow_put_frame(*args: Any, **kwargs: Any) -> None:
            self.started.set()
            assert self.gate.wait(10)
            real(*args, **kwargs)

        monkeypatch.setattr(store, "put_frame", slow_put_frame)

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def copy_on_write() -> Iterator[None]:
    """pandas 2.2 runs these tests too: turn its copy-on-write mode on for one test."""
    if int(pd.__version__.split(".", 1)[0]) >= 3:
        yield  # always on
        return
    with pd.option_context("mode.copy_on_write", True):
        yield


@pytest.mark.usefixtures("copy_on_write")
def test_put_frame_soon_returns_before_the_write_and_get_frame_waits_for_it(
    store: CacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = BlockedFrameWrites(store, monkeypatch)
    df = sample_frame()
    store.put_frame_soon("f", df, resource="events", ttl=60)
    assert blocked.started.wait(10)
    assert not store.frame_path("f").exists()  # the call did not wait for the write
    threading.Timer(0.2, blocked.release).start()
    assert_exact(store.get_frame("f"), df)  # waited for the pending write
    assert store.frame_path("f").exists()


@pytest.mark.usefixtures("copy_on_write")
def test_put_frame_soon_stores_the_frame_as_it_was_at_the_call(
    store: CacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = BlockedFrameWrites(store, monkeypatch)
    df = sample_frame()
    expected = df.copy()
    store.put_frame_soon("f", df, resource="events", ttl=60)
    df.loc[0, "int"] = 99  # the user edits their frame while the write waits
    df["added"] = 1
    blocked.release()
    store.flush_frames()
    assert_exact(store.get_frame("f"), expected)


@pytest.mark.usefixtures("copy_on_write")
def test_clear_and_info_wait_for_pending_frames(
    store: CacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = BlockedFrameWrites(store, monkeypatch)
    store.put_frame_soon("f", sample_frame(), resource="events", ttl=60)
    assert blocked.started.wait(10)
    threading.Timer(0.2, blocked.release).start()
    assert store.clear() == 1  # waited for the write, then removed it
    assert store.get_frame("f") is None
    assert list((store.directory / "frames").iterdir()) == []
    store.put_frame_soon("g", sample_frame(), resource="events", ttl=60)
    assert store.info().resources["events"].entries == 1


def test_a_frame_still_pending_at_interpreter_exit_is_written(tmp_path: Path) -> None:
    # 20,000 rows x 2 columns: big enough for pyarrow's multi-threaded conversion, which
    # fails at interpreter exit when it is allowed to use a thread pool.
    script = textwrap.dedent(
        f"""
        import pandas as pd
        from posthog_pandas.cache import CacheStore

        pd.options.mode.copy_on_write = True  # pandas 2.2; always on in pandas 3
        store = CacheStore({str(tmp_path / "c")!r})
        df = pd.DataFrame({{"a": range(20_000), "b": ["x"] * 20_000}})
        store.put_frame_soon("f", df, resource="events", ttl=3600)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "not keeping" not in done.stderr
    got = CacheStore(tmp_path / "c").get_frame("f")
    assert got is not None and got.shape == (20_000, 2)


def test_put_frame_soon_writes_at_once_without_copy_on_write(
    store: CacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "copy_on_write", lambda: False)
    store.put_frame_soon("f", sample_frame(), resource="events", ttl=60)
    assert store.frame_path("f").exists()  # no snapshot is safe, so no background write


@pytest.mark.usefixtures("copy_on_write")
def test_failed_background_frame_write_is_logged(
    store: CacheStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise CacheError("disk full")

    monkeypatch.setattr(store, "put_frame", fail)
    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        store.put_frame_soon("f", sample_frame(), resource="events", ttl=60)
        store.flush_frames()
    assert "not keeping the events frame in the cache: disk full" in caplog.text
    assert store.get_frame("f") is None


def test_corrupt_frame_is_a_logged_miss(
    store: CacheStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.put_frame("f", sample_frame(), resource="events", ttl=60)
    path = store.frame_path("f")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="posthog_pandas.cache"):
        assert store.get_frame("f") is None
    assert "unreadable" in caplog.text
    assert not path.exists()
    assert store.info().entries == 0


def test_missing_frame_file_is_a_miss(store: CacheStore) -> None:
    store.put_frame("f", sample_frame(), resource="events", ttl=60)
    store.frame_path("f").unlink()
    assert store.get_frame("f") is None
    assert store.info().entries == 0


def test_frame_without_row_is_a_miss(store: CacheStore) -> None:
    store.put_frame("f", sample_frame(), resource="events", ttl=60)
    raw_sql(store, "DELETE FROM entries")
    assert store.get_frame("f") is None


def test_unserialisable_frame_raises_cache_error(store: CacheStore) -> None:
    df = pd.DataFrame({"mixed": pd.Series([1, "a", 2.5], dtype=object)})
    with pytest.raises(CacheError, match="Parquet"):
        store.put_frame("bad", df, resource="r", ttl=60)
    assert store.get_frame("bad") is None


@pytest.mark.parametrize("key", ["../escape", "a/b", ".hidden", "", "x" * 300])
def test_frame_path_rejects_unsafe_keys(store: CacheStore, key: str) -> None:
    with pytest.raises(ConfigurationError, match="not usable as a file name"):
        store.frame_path(key)


# --- info and clear ----------------------------------------------------------------------------


def test_info_numbers_are_exact(store: CacheStore, clock: Clock) -> None:
    bodies = {"p1": b"a" * 5000, "p2": b"b" * 7000, "p3": os.urandom(3000)}
    store.put("p1", bodies["p1"], resource="persons", url=URL, ttl=10)
    clock.now += 100
    store.put("p2", bodies["p2"], resource="persons", url=URL, ttl=1000)
    store.put_json("pin", {"x": 1}, resource="events")
    clock.now += 100
    store.put("p3", bodies["p3"], resource="events", url=URL, ttl=1000)
    store.put_frame("f", sample_frame(), resource="events", ttl=1000)

    info = store.info()

    frame_size = store.frame_path("f").stat().st_size
    json_size = len(compress_body(b'{"x":1}'))
    assert info.entries == 5
    assert info.expired == 1
    assert info.oldest == datetime.fromtimestamp(T0, UTC)
    assert info.newest == datetime.fromtimestamp(T0 + 200, UTC)
    persons, events = info.resources["persons"], info.resources["events"]
    assert (persons.entries, persons.expired) == (2, 1)
    assert persons.bytes == len(compress_body(bodies["p1"])) + len(compress_body(bodies["p2"]))
    assert (events.entries, events.expired) == (3, 0)
    assert events.bytes == json_size + len(compress_body(bodies["p3"])) + frame_size
    on_disk = sum(p.stat().st_size for p in all_files(store.directory) if p.name != "salt")
    assert info.bytes == on_disk

    frame = info.to_frame()
    assert list(frame["resource"]) == ["events", "persons"]
    assert list(frame["entries"]) == [3, 2]
    assert frame.dtypes.astype(str).tolist() == [
        "string",
        "Int64",
        "Int64",
        "Int64",
        "datetime64[ns, UTC]",
        "datetime64[ns, UTC]",
    ]


def test_info_of_empty_cache(store: CacheStore) -> None:
    info = store.info()
    assert (info.entries, info.expired, info.oldest, info.newest) == (0, 0, None, None)
    assert info.resources == {}
    assert info.to_frame().shape == (0, 6)
    assert "0 entries" in repr(info)


def test_info_repr_and_html(tmp_path: Path, clock: Clock) -> None:
    s = CacheStore(tmp_path / "<b>cache", clock=clock)
    s.put("k", b"x" * 2000, resource="persons", url=URL, ttl=60)
    info = s.info()
    text = repr(info)
    assert text.startswith(f"CacheInfo({str(tmp_path / '<b>cache')!r}: 1 entries (0 expired)")
    assert "persons" in text and "2025-06-15" in text
    page = info._repr_html_()
    assert "&lt;b&gt;cache" in page and "<b>cache" not in page
    assert "<td>persons</td>" in page
    assert isinstance(info, CacheInfo)
    s.close()


def test_clear_by_resource_and_age(store: CacheStore, clock: Clock) -> None:
    store.put("old-persons", b"1", resource="persons", url=URL, ttl=1e9)
    store.put("old-events", b"2", resource="events", url=URL, ttl=1e9)
    store.put_frame("old-frame", sample_frame(), resource="events", ttl=1e9)
    clock.now += 3 * 3600
    store.put("new-persons", b"3", resource="persons", url=URL, ttl=1e9)
    store.put("new-events", b"4", resource="events", url=URL, ttl=1e9)

    assert store.clear(resource="persons", older_than=timedelta(hours=1)) == 1
    assert store.get("old-persons") is None and store.get("new-persons") is not None
    assert store.clear(older_than=2 * 3600.0) == 2
    assert store.get_frame("old-frame") is None
    assert not store.frame_path("old-frame").exists()
    assert store.clear(resource="events") == 1
    assert store.clear(resource="events") == 0
    assert store.info().entries == 1
    assert store.clear() == 1
    assert store.info().entries == 0


def test_clear_all_removes_frames_and_corrupt_files(store: CacheStore) -> None:
    store.put_frame("f", sample_frame(), resource="events", ttl=60)
    (store.directory / "frames" / "orphan.parquet").write_bytes(b"x")
    (store.directory / f"{DB_NAME}.corrupt-20250101T000000-abc").write_bytes(b"x")
    for _ in range(50):
        store.put(os.urandom(8).hex(), os.urandom(50_000), resource="r", url=URL, ttl=60)
    before = store.info().bytes

    assert store.clear() == 51

    assert list((store.directory / "frames").iterdir()) == []
    assert corrupt_files(store.directory) == []
    assert store.info().bytes < before / 10  # the freed pages went back to the filesystem


# --- concurrency within a process --------------------------------------------------------------


def test_close_then_reuse_reopens(store: CacheStore) -> None:
    store.put("k", b"v", resource="r", url=URL, ttl=60)
    store.close()
    assert store.get("k").body == b"v"  # type: ignore[union-attr]
    with store as same:
        assert same is store
    assert store.get("k") is not None


# --- throughput (reported, never asserted) -----------------------------------------------------


def test_report_throughput_of_1mb_pages(tmp_path: Path) -> None:
    s = CacheStore(tmp_path / "bench")
    rng = np.random.default_rng(1)
    rows = [
        {
            "uuid": rng.bytes(16).hex(),
            "event": str(rng.choice(["$pageview", "signup", "$autocapture"])),
            "distinct_id": rng.bytes(8).hex(),
            "properties": {
                "$current_url": f"https://ex.com/{rng.integers(1e6)}",
                "n": rng.random(),
            },
            "timestamp": f"2025-01-01T00:{rng.integers(60):02d}:00.{rng.integers(1e6):06d}Z",
        }
        for _ in range(5000)
    ]
    json_page = json.dumps({"results": rows}).encode()[: 1 << 20]
    pages = {"json": json_page, "random": os.urandom(1 << 20)}
    n = 20
    for label, page in pages.items():
        start = time.perf_counter()
        for i in range(n):
            s.put(f"{label}{i}", page, resource="bench", url=URL, ttl=60)
        put_s = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(n):
            assert s.get(f"{label}{i}").body == page  # type: ignore[union-attr]
        get_s = time.perf_counter() - start
        print(
            f"\ncache 1 MB {label} pages: put {n / put_s:.0f}/s ({n / put_s:.0f} MB/s), "
            f"get {n / get_s:.0f}/s ({n / get_s:.0f} MB/s)"
        )
    s.close()


def test_human_bytes_in_powers_of_1000_rounding_up_a_unit() -> None:
    # shared by CacheInfo and the export summary
    assert [human_bytes(n) for n in (0, 999, 1000, 999_949, 999_999, 183_200_000)] == [
        "0 bytes",
        "999 bytes",
        "1.0 kB",
        "999.9 kB",
        "1.0 MB",
        "183.2 MB",
    ]
    assert [human_bytes(n) for n in (999_999_999, 5 * 10**12)] == ["1.0 GB", "5000.0 GB"]
