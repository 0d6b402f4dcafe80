"""What a cache holds, for people: counts, sizes and ages as text, HTML and a DataFrame."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CacheInfo", "ResourceInfo", "human_bytes"]


def human_bytes(n: int) -> str:
    """A byte count for people, in powers of 1,000: "999 bytes", "1.2 kB", "183.2 MB"."""
    if n < 1000:
        return f"{n} bytes"
    size = n / 1000
    for unit in ("kB", "MB"):
        if round(size, 1) < 1000:  # 999,999 bytes is "1.0 MB", not "1000.0 kB"
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def utc(ts: float | None) -> datetime | None:
    """A stored timestamp (seconds since the epoch) as an aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class ResourceInfo:
    """Entries of one resource: count, expired count, payload bytes, oldest and newest."""

    entries: int
    expired: int
    bytes: int
    oldest: datetime | None
    newest: datetime | None


@dataclass(frozen=True)
class CacheInfo:
    """What a cache directory holds. ``bytes`` is the on-disk size of the database and frames;
    per-resource ``bytes`` count payload (compressed bodies and Parquet files)."""

    directory: Path
    entries: int
    expired: int
    bytes: int
    oldest: datetime | None
    newest: datetime | None
    resources: Mapping[str, ResourceInfo] = field(default_factory=dict)

    @classmethod
    def of(cls, directory: Path, resources: Mapping[str, ResourceInfo], size: int) -> CacheInfo:
        """Totals over ``resources``; ``size`` is what the cache takes on disk."""
        created = [(r.oldest, r.newest) for r in resources.values()]
        return cls(
            directory=directory,
            entries=sum(r.entries for r in resources.values()),
            expired=sum(r.expired for r in resources.values()),
            bytes=size,
            oldest=min((lo for lo, _ in created if lo is not None), default=None),
            newest=max((hi for _, hi in created if hi is not None), default=None),
            resources=resources,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per resource, with nullable dtypes."""
        import pandas as pd

        names = sorted(self.resources)
        rows = [self.resources[name] for name in names]
        return pd.DataFrame(
            {
                "resource": pd.array(names, dtype="string"),
                "entries": pd.array([r.entries for r in rows], dtype="Int64"),
                "expired": pd.array([r.expired for r in rows], dtype="Int64"),
                "bytes": pd.array([r.bytes for r in rows], dtype="Int64"),
                "oldest": pd.Series([r.oldest for r in rows], dtype="datetime64[ns, UTC]"),
                "newest": pd.Series([r.newest for r in rows], dtype="datetime64[ns, UTC]"),
            }
        )

    def _summary(self) -> str:
        return (
            f"{self.entries} entries ({self.expired} expired), {human_bytes(self.bytes)}, "
            f"oldest {_when(self.oldest)}, newest {_when(self.newest)}"
        )

    def __repr__(self) -> str:
        lines = [f"CacheInfo({str(self.directory)!r}: {self._summary()})"]
        width = max((len(name) for name in self.resources), default=0)
        for name in sorted(self.resources):
            r = self.resources[name]
            lines.append(
                f"  {name:<{width}}  {r.entries:>6} entries  {human_bytes(r.bytes):>9}"
                f"  newest {_when(r.newest)}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>posthog-pandas cache</b> <code>{html.escape(str(self.directory))}</code>: "
            f"{html.escape(self._summary())}</p>"
        )
        if not self.resources:
            return head
        return head + str(self.to_frame().to_html(index=False))
