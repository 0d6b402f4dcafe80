"""A storage in a dict: for tests, and for a cache that must not outlive the process."""

from __future__ import annotations

import threading
from collections import defaultdict

from posthog_pandas.cache.info import ResourceInfo, utc
from posthog_pandas.cache.storage import Row

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """Rows in memory behind one lock. A write replaces a whole row at once, so it is atomic
    by construction; nothing survives the process."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Row] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStorage({len(self._rows)} rows)"

    def read(self, kind: str, key: str) -> Row | None:
        with self._lock:
            return self._rows.get((kind, key))

    def write(self, row: Row) -> None:
        with self._lock:
            self._rows[(row.kind, row.key)] = row

    def delete(self, key: str) -> None:
        with self._lock:
            for ident in [ident for ident in self._rows if ident[1] == key]:
                del self._rows[ident]

    def discard(self, kind: str, key: str) -> None:
        with self._lock:
            self._rows.pop((kind, key), None)

    def remove(
        self, *, resource: str | None = None, created_before: float | None = None
    ) -> list[tuple[str, str]]:
        with self._lock:
            gone = [
                ident
                for ident, row in self._rows.items()
                if (resource is None or row.resource == resource)
                and (created_before is None or row.created < created_before)
            ]
            for ident in gone:
                del self._rows[ident]
        return gone

    def summary(self, now: float) -> dict[str, ResourceInfo]:
        with self._lock:
            rows = list(self._rows.values())
        by_resource: defaultdict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_resource[row.resource].append(row)
        return {
            name: ResourceInfo(
                entries=len(group),
                expired=sum(row.expires <= now for row in group),
                bytes=sum(row.size for row in group),
                oldest=utc(min(row.created for row in group)),
                newest=utc(max(row.created for row in group)),
            )
            for name, group in by_resource.items()
        }

    def bytes_used(self) -> int:
        with self._lock:
            return sum(len(row.body) for row in self._rows.values())

    def close(self) -> None:
        """Nothing to release: the rows stay until the object goes."""
