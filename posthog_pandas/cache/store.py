"""`CacheStore`: the cache over a storage: pages, JSON records and DataFrames under one
directory, with expiry, compression and logged misses.

What it adds to a :class:`~posthog_pandas.cache.storage.Storage`: the clock (expiry), the codec
(pages compressed), JSON records, Parquet frames beside the rows, the salt that makes key
fingerprints, and the rule that a damaged entry is a logged miss, never an exception.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import posthog_pandas.cache.keys as keys
from posthog_pandas.cache.codec import CompressedBody, decompress_body
from posthog_pandas.cache.files import (
    SALT_NAME,
    cache_error,
    load_salt,
    prepare_dir,
    stale_temp_files,
)
from posthog_pandas.cache.frames import FrameFiles, FrameWriter, copy_on_write
from posthog_pandas.cache.info import CacheInfo
from posthog_pandas.cache.sqlite import DB_NAME, SQLiteStorage
from posthog_pandas.cache.storage import Entry, Row, Storage
from posthog_pandas.exceptions import CacheError, ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CacheStore"]

logger = logging.getLogger("posthog_pandas.cache")


class CacheStore:
    """Pages, JSON records and DataFrames under one directory, safe for many threads and
    processes at once.

    Args:
        directory: created with mode 0700 if missing; holds the salt and the frames, and the
            SQLite database unless ``storage`` is given.
        clock: seconds since the epoch; injectable so tests control expiry.
        storage: where rows go (default: :class:`~posthog_pandas.cache.sqlite.SQLiteStorage`
            in ``directory``); e.g. :class:`~posthog_pandas.cache.memory.MemoryStorage`.

    Raises:
        CacheError: the directory cannot be created or written.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        storage: Storage | None = None,
    ) -> None:
        self.directory = Path(directory).expanduser()
        self._clock = clock
        self._frames = FrameFiles(self.directory)
        self._frame_writer = FrameWriter()
        try:
            prepare_dir(self.directory, own_names=(SALT_NAME, DB_NAME))
            self._salt = load_salt(self.directory)
        except OSError as exc:
            raise cache_error(self.directory, exc) from exc
        self._storage: Storage = SQLiteStorage(self.directory) if storage is None else storage

    def __repr__(self) -> str:
        return f"CacheStore({str(self.directory)!r})"

    def __enter__(self) -> CacheStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- keys ---

    def fingerprint(self, *secrets: str) -> str:
        """A 32-hex-char HMAC-SHA256 of the secrets under this directory's salt: stable across
        processes sharing the directory, useless for recovering the secrets."""
        return keys.fingerprint(self._salt, *secrets)

    def make_key(
        self,
        *,
        scope: str,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
    ) -> str:
        """SHA-256 hex of scope (``"<host>|<project>|<fingerprint>"``), method, normalised URL
        and body digest. Headers never take part."""
        return keys.make_key(scope=scope, method=method, url=url, params=params, body=body)

    # --- pages ---

    def get(self, key: str, *, allow_stale: bool = False) -> Entry | None:
        """The entry under ``key``; None on a miss, when expired (unless ``allow_stale``), or
        when the stored row cannot be read (logged)."""
        return self._get("page", key, allow_stale=allow_stale)

    def put(
        self, key: str, body: bytes | CompressedBody, *, resource: str, url: str, ttl: float
    ) -> None:
        """Store ``body`` for ``ttl`` seconds (``math.inf`` for ever) in one transaction;
        a body from :meth:`compress` is stored as it is."""
        self._put("page", key, body, resource=resource, url=url, ttl=ttl)

    @staticmethod
    def compress(body: bytes) -> CompressedBody:
        """``body`` as :meth:`put` stores it. Compressing is most of a write's cost: done
        apart, it can run before the caller knows whether the body is worth keeping."""
        return CompressedBody.of(body)

    def delete(self, key: str) -> None:
        """Forget everything stored under ``key``: page, JSON record and frame."""
        self._storage.delete(key)
        self._frames.unlink(key)

    # --- JSON records (pins, incremental state) ---

    def get_json(self, key: str, *, allow_stale: bool = False) -> Any:
        """The JSON value stored under ``key``, or None (miss, expired, unreadable)."""
        entry = self._get("json", key, allow_stale=allow_stale)
        if entry is None:
            return None
        try:
            return json.loads(entry.body)
        except ValueError:
            logger.warning("Unreadable JSON record %s in %s; treated as a miss.", key, self)
            return None

    def put_json(
        self, key: str, value: Any, *, resource: str, ttl: float = math.inf, url: str = ""
    ) -> None:
        """Store a small JSON-serialisable ``value`` atomically."""
        body = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        self._put("json", key, body, resource=resource, url=url, ttl=ttl)

    # --- frames ---

    def frame_path(self, key: str) -> Path:
        """Where the Parquet copy of the frame for ``key`` lives."""
        return self._frames.path(key)

    def put_frame(self, key: str, df: pd.DataFrame, *, resource: str, ttl: float) -> None:
        """Write ``df`` as Parquet (temp file, fsync, ``os.replace``, 0600) and record it."""
        try:
            size = self._frames.write(key, df)
        except OSError as exc:
            raise cache_error(self.directory, exc) from exc
        self._write_row("frame", key, b"", resource=resource, url="", ttl=ttl, size=size)

    def put_frame_soon(self, key: str, df: pd.DataFrame, *, resource: str, ttl: float) -> None:
        """``put_frame`` on a worker thread, so the caller gets its DataFrame without waiting
        for the Parquet write.

        Only under pandas copy-on-write (always on in pandas 3) is a shallow copy a snapshot
        that later edits of ``df`` cannot reach; otherwise this writes before returning. Until
        the write lands, ``get_frame`` for the same key, ``info``, ``clear`` and ``close`` wait
        for it; so does interpreter exit (the worker thread is joined at shutdown).
        A failed write is logged: only the cached copy is missing.
        """
        if not copy_on_write():
            self.put_frame(key, df, resource=resource, ttl=ttl)
            return
        snapshot = df.copy(deep=False)
        self._frame_writer.submit(key, lambda: self._write_soon(key, snapshot, resource, ttl))

    def _write_soon(self, key: str, snapshot: pd.DataFrame, resource: str, ttl: float) -> None:
        try:
            self.put_frame(key, snapshot, resource=resource, ttl=ttl)
        except Exception as exc:  # nobody awaits this thread: log every failure, raise none
            logger.warning("not keeping the %s frame in the cache: %s", resource, exc)

    def flush_frames(self) -> None:
        """Wait until every frame given to ``put_frame_soon`` is written (or has failed)."""
        self._frame_writer.flush()

    def get_frame(self, key: str, *, allow_stale: bool = False) -> pd.DataFrame | None:
        """The stored frame with exactly the dtypes it was written with, or None (miss,
        expired, unreadable: logged)."""
        self._frame_writer.wait_for(key)  # still being written by put_frame_soon
        if self._get("frame", key, allow_stale=allow_stale) is None:
            return None
        path = self._frames.path(key)
        try:
            return self._frames.read(key)
        except FileNotFoundError:
            logger.warning("Cached frame %s is missing; treated as a miss.", path)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            logger.warning("Cached frame %s is unreadable (%s); treated as a miss.", path, exc)
        self._storage.discard("frame", key)
        with contextlib.suppress(OSError):
            os.unlink(path)
        return None

    # --- housekeeping ---

    def info(self) -> CacheInfo:
        """Counts, sizes and ages, overall and per resource."""
        self.flush_frames()
        resources = self._storage.summary(self._clock())
        size = self._storage.bytes_used() + self._frames.bytes_used()
        return CacheInfo.of(self.directory, resources, size)

    def clear(
        self, *, resource: str | None = None, older_than: float | timedelta | None = None
    ) -> int:
        """Remove entries (and their frames) matching all given filters; returns how many.
        ``older_than`` selects entries stored more than that many seconds ago."""
        self.flush_frames()  # a frame still being written must not land after the clear
        created_before = None
        if older_than is not None:
            seconds = (
                older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
            )
            created_before = self._clock() - float(seconds)
        removed = self._storage.remove(resource=resource, created_before=created_before)
        for kind, key in removed:
            if kind == "frame":
                self._frames.unlink(key)
        if resource is None and older_than is None:
            self._frames.remove_strays()
            for path in stale_temp_files(self.directory):
                with contextlib.suppress(OSError):
                    os.unlink(path)
        logger.info("Removed %d cache entries from %s.", len(removed), self.directory)
        return len(removed)

    def close(self) -> None:
        """Close this process's connections; the store reopens lazily if used again."""
        self.flush_frames()
        self._storage.close()

    # --- rows ---

    def _get(self, kind: str, key: str, *, allow_stale: bool) -> Entry | None:
        try:
            row = self._storage.read(kind, key)
            if row is None:
                return None
            if not allow_stale and self._clock() >= row.expires:
                return None  # checked first: no need to decompress an expired body
            body = b"" if kind == "frame" else decompress_body(row.body, row.raw_size)
        except CacheError as exc:
            logger.warning(
                "Cache read failed in %s (%s); treated as a miss.", self, exc.__cause__ or exc
            )
            return None
        except (OSError, zlib.error, TypeError, ValueError) as exc:
            logger.warning("Corrupt cache entry %s in %s (%s); treated as a miss.", key, self, exc)
            self._storage.discard(kind, key)
            return None
        return Entry(body, row.created, row.expires, row.resource, row.url)

    def _put(
        self,
        kind: str,
        key: str,
        body: bytes | CompressedBody,
        *,
        resource: str,
        url: str,
        ttl: float,
    ) -> None:
        packed = body if isinstance(body, CompressedBody) else CompressedBody.of(body)
        self._write_row(
            kind, key, packed.stored, resource=resource, url=url, ttl=ttl, raw_size=packed.raw_size
        )

    def _write_row(
        self,
        kind: str,
        key: str,
        stored: bytes,
        *,
        resource: str,
        url: str,
        ttl: float,
        size: int | None = None,
        raw_size: int = 0,
    ) -> None:
        if math.isnan(ttl):
            raise ConfigurationError("cache ttl must be a number of seconds, not NaN")
        created = self._clock()
        self._storage.write(
            Row(
                kind=kind,
                key=key,
                resource=resource,
                url=keys.redact_url(url) if url else "",
                created=created,
                expires=created + ttl,
                size=len(stored) if size is None else size,
                raw_size=raw_size,
                body=stored,
            )
        )
