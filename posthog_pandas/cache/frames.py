"""Finished DataFrames kept as Parquet files beside the rows, with their exact dtypes.

Parquet alone does not bring every dtype back the same in every pandas version (strings
especially), so each file carries the dtype of every column in its metadata
(:func:`dtype_code`) and a read casts back to it. Writes go through
:func:`~posthog_pandas.cache.files.write_atomically`; :class:`FrameWriter` runs them on a
worker thread so the caller does not wait.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posthog_pandas.cache._fork import reset_after_fork
from posthog_pandas.cache.files import private_subdir, stale_temp_files, write_atomically
from posthog_pandas.exceptions import CacheError, ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FrameFiles", "FrameWriter", "dtype_code", "dtype_from_code"]

logger = logging.getLogger("posthog_pandas.cache")

FRAMES_DIR = "frames"
FRAME_META_KEY = b"posthog_pandas"
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


def copy_on_write() -> bool:
    """Whether pandas copy-on-write is on (always in pandas 3; an option in pandas 2.2)."""
    import pandas as pd

    return int(pd.__version__.split(".", 1)[0]) >= 3 or pd.options.mode.copy_on_write is True


# --- dtype codes -------------------------------------------------------------------------------


def dtype_code(dtype: Any) -> Any:
    """A dtype as JSON: its name, or for strings the storage and the missing-value flavour."""
    import pandas as pd

    if isinstance(dtype, pd.StringDtype):
        na_value = dtype.na_value
        is_nan = isinstance(na_value, float) and math.isnan(na_value)
        return {"string": dtype.storage, "na": "nan" if is_nan else "NA"}
    return str(dtype)


def dtype_from_code(code: Any) -> Any:
    """The dtype :func:`dtype_code` described."""
    import numpy as np
    import pandas as pd

    if isinstance(code, dict):
        na_value = np.nan if code["na"] == "nan" else pd.NA
        try:
            return pd.StringDtype(code["string"], na_value=na_value)  # type: ignore[call-arg,unused-ignore]
        except TypeError:  # pandas 2.2: the NaN flavour is spelled storage="pyarrow_numpy"
            return pd.StringDtype(code["string"])
    return pd.api.types.pandas_dtype(code)


def restore_dtypes(df: pd.DataFrame, codes: list[Any]) -> pd.DataFrame:
    """Cast each column back to the dtype it was written with (pandas versions disagree on
    what Parquet strings read back as)."""
    if len(codes) != df.shape[1]:
        raise ValueError(f"frame has {df.shape[1]} columns, metadata lists {len(codes)}")
    for i, code in enumerate(codes):
        if str(code) == "category":
            continue  # Parquet's dictionary + pandas metadata already restore categories
        target = dtype_from_code(code)
        column = df.iloc[:, i]
        if column.dtype != target:
            df.isetitem(i, column.astype(target).array)
    # Column labels come back as an object Index; rebuild it the way a fresh frame gets it
    # (pandas 3 infers its string dtype) so a cached frame equals the fetched one exactly.
    import pandas as pd

    df.columns = pd.Index(list(df.columns))
    return df


# --- files -------------------------------------------------------------------------------------


class FrameFiles:
    """``<cache>/frames/<key>.parquet`` files, private and written atomically."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = cache_dir / FRAMES_DIR

    def path(self, key: str) -> Path:
        """Where the Parquet copy of the frame for ``key`` lives."""
        if not _SAFE_KEY.fullmatch(key):
            raise ConfigurationError(
                f"cache key {key!r} is not usable as a file name (letters, digits, _ . - only)"
            )
        return self.directory / f"{key}.parquet"

    def write(self, key: str, df: pd.DataFrame) -> int:
        """Write ``df`` with its dtype codes; returns the file's size.

        Raises:
            CacheError: Parquet cannot hold this frame.
            OSError: the file cannot be written (nothing is left under its name).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path(key)
        meta = {"version": 1, "dtypes": [dtype_code(dt) for dt in df.dtypes]}
        try:
            # nthreads=1: pyarrow's parallel conversion needs a concurrent.futures pool, which
            # refuses work at interpreter exit, when FrameWriter's last write may still run.
            table = pa.Table.from_pandas(df, nthreads=1)
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), FRAME_META_KEY: json.dumps(meta).encode()}
            )
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise CacheError(f"cannot store this DataFrame as Parquet: {exc}") from exc
        private_subdir(self.directory)
        return write_atomically(path, lambda fh: pq.write_table(table, fh))

    def read(self, key: str) -> pd.DataFrame:
        """The frame with exactly the dtypes it was written with; raises whatever a missing
        or damaged file raises."""
        import pyarrow.parquet as pq

        table = pq.read_table(self.path(key))
        meta = json.loads((table.schema.metadata or {})[FRAME_META_KEY])
        return restore_dtypes(table.to_pandas(), list(meta["dtypes"]))

    def unlink(self, key: str) -> None:
        """Remove the file for ``key`` if there is one (keys no file could have are ignored)."""
        if _SAFE_KEY.fullmatch(key):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(key))

    def files(self) -> Iterator[Path]:
        """Every frame file present."""
        if self.directory.is_dir():
            yield from (p for p in self.directory.iterdir() if p.suffix == ".parquet")

    def bytes_used(self) -> int:
        total = 0
        for path in self.files():
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(path).st_size
        return total

    def remove_strays(self) -> None:
        """After a full clear: files no row points to, and abandoned temp files."""
        for path in [*self.files(), *stale_temp_files(self.directory)]:
            with contextlib.suppress(OSError):
                os.unlink(path)


# --- background writes -------------------------------------------------------------------------


class FrameWriter:
    """Runs frame writes on one worker thread and remembers those not finished, so a reader of
    the same key, a clear or a close can wait for them. The worker is joined at interpreter
    exit (concurrent.futures does that), so a pending write still lands."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Future[None]] = {}
        self._executor: ThreadPoolExecutor | None = None
        reset_after_fork(self)

    def submit(self, key: str, write: Callable[[], None]) -> None:
        """Run ``write()`` on the worker; until it is done, ``wait_for(key)`` waits for it."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, "posthog-pandas-frame-writer")
            future = self._executor.submit(write)
            self._pending[key] = future
        # Outside the lock: a future that is already done runs the callback right here.
        future.add_done_callback(lambda done: self._forget(key, done))

    def wait_for(self, key: str) -> None:
        with self._lock:
            pending = self._pending.get(key)
        if pending is not None:
            wait([pending])

    def flush(self) -> None:
        """Wait until every submitted write is done (or has failed)."""
        with self._lock:
            futures = list(self._pending.values())
        wait(futures)

    def _forget(self, key: str, done: Future[None]) -> None:
        with self._lock:
            if self._pending.get(key) is done:
                del self._pending[key]

    def _adopt_after_fork(self) -> None:
        """In a forked child the parent's worker thread does not exist, and its lock may have
        been held at fork time."""
        self._lock = threading.Lock()
        self._pending = {}
        self._executor = None
