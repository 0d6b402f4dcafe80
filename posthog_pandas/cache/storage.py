"""The seam between the cache and where it keeps its rows: the `Storage` protocol.

A storage keeps rows by ``(kind, key)`` and knows nothing of HTTP, compression, JSON or
DataFrames: that is :class:`~posthog_pandas.cache.store.CacheStore`'s job. The contract every
storage keeps (tests/unit/test_cache_storage.py runs it against each one):

* ``write`` is atomic: after a failed write the previous row, or none, is still there, whole;
* ``read`` of a missing row is None; a row that exists but cannot be decoded raises
  :class:`CorruptRow` (the cache logs a miss and discards the row);
* every method is safe from many threads at once;
* a failure of the medium (disk full, permissions) raises
  :class:`~posthog_pandas.exceptions.CacheError`.

Expiry is decided by the cache, which owns the clock: a storage keeps ``created`` and
``expires`` as given and only compares them with the times it is handed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from posthog_pandas.cache.info import ResourceInfo

__all__ = ["CorruptRow", "Entry", "Row", "Storage"]


class CorruptRow(ValueError):
    """A stored row exists but cannot be decoded."""


@dataclass(frozen=True)
class Row:
    """One stored row. ``body`` is the stored payload (compressed page or JSON record; empty
    for a frame, whose Parquet file lives beside the storage); ``size`` counts the bytes it
    takes, ``raw_size`` the uncompressed body length."""

    kind: str
    key: str
    resource: str
    url: str
    created: float
    expires: float
    size: int
    raw_size: int
    body: bytes


@dataclass(frozen=True)
class Entry:
    """One cached response body (already decompressed) and its bookkeeping."""

    body: bytes
    created: float
    expires: float
    resource: str
    url: str

    def age(self, now: float | None = None) -> float:
        """Seconds since the entry was stored."""
        return (time.time() if now is None else now) - self.created

    def is_fresh(self, now: float | None = None) -> bool:
        """True until the entry's TTL has run out."""
        return (time.time() if now is None else now) < self.expires


class Storage(Protocol):
    """Where a cache keeps its rows (see the module docstring for the contract)."""

    def read(self, kind: str, key: str) -> Row | None:
        """The row, or None when there is none."""
        ...

    def write(self, row: Row) -> None:
        """Insert or replace the row under ``(row.kind, row.key)``, all or nothing."""
        ...

    def delete(self, key: str) -> None:
        """Remove the rows of every kind under ``key``."""
        ...

    def discard(self, kind: str, key: str) -> None:
        """Remove one unreadable row, best effort: never raises."""
        ...

    def remove(
        self, *, resource: str | None = None, created_before: float | None = None
    ) -> list[tuple[str, str]]:
        """Remove the rows matching all given filters; returns their ``(kind, key)``."""
        ...

    def summary(self, now: float) -> dict[str, ResourceInfo]:
        """Per resource: rows, rows expired at ``now``, their ``size`` total, oldest, newest."""
        ...

    def bytes_used(self) -> int:
        """What the storage takes: bytes on disk for a file, payload bytes in memory."""
        ...

    def close(self) -> None:
        """Release what this process holds; the storage reopens if used again."""
        ...
