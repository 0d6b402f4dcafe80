"""What benchmarks/systems/dask_sys.py runs inside the Dask workers, importable there by name
(the workers find this folder on PYTHONPATH), so its module state lives in each worker process.

Each worker notes the size of every partition it pulled and reports its own peak RSS, CPU and
HTTP requests: the benchmark checks that no worker held much more than its partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import _common

_partition_bytes: list[int] = []  # deep size of each partition this worker pulled


def note_size(part: Any) -> Any:
    """Pass a partition through, remembering its size (map_partitions)."""
    if len(part):  # Dask also calls this on the empty meta
        _partition_bytes.append(_common.deep_bytes(part))
    return part


def events_per_day(frame: Any) -> Any:
    """The benchmark's group-by: events per day per event name, for a pandas or Dask frame."""
    day = frame["timestamp"].dt.floor("D")
    return frame.assign(day=day).groupby(["day", "event"]).size()


def read_partition(path: str, meta: Any) -> Any:
    """One partition from its local Parquet file, shaped as read_events' (dask_sys --mode
    parquet)."""
    import pandas as pd

    from posthog_pandas.dask import conform

    frame = pd.read_parquet(path)
    return frame if meta is None else conform(frame, meta)


def worker_compression(source: Any) -> str:
    """Open this worker's connection for `source` (posthog_pandas.dask opens it with the
    driver's settings) and say which compression it asks for."""
    return str(source.connection().settings.compression)


def report() -> dict[str, Any]:
    """This worker's peak RSS (MB), CPU seconds so far, partitions and HTTP requests."""
    from posthog_pandas import dask as ph_dask

    stats = [ph.request_stats for ph in ph_dask._connections.values()]
    return {
        "rss_mb": _common.peak_rss_mb(),
        "end_rss_mb": current_rss_mb(),
        "cpu": _common.cpu_seconds(),
        "partitions": len(_partition_bytes),
        "largest_partition_mb": max(_partition_bytes, default=0) / 2**20,
        "partitions_mb": sum(_partition_bytes) / 2**20,
        "requests": sum(s.requests for s in stats),
        "compression": sorted({ph.settings.compression for ph in ph_dask._connections.values()}),
    }


def start(source: Any, warm_files: Sequence[str] = ()) -> dict[str, Any]:
    """This worker's resident and CPU figures before the pull, once it has pulled an empty
    window (so the modules a pull imports are loaded) and read `warm_files` (the Parquet
    reader's), and its peak RSS restarts from there: the growth measured afterwards is what
    the pull held, not the worker's own code."""
    ph = source.connection()
    ph.events(after="1970-01-01", before="1970-01-01T00:00:01Z")
    for path in warm_files:
        read_partition(path, None)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # Linux: reset this process's peak RSS (VmHWM) to its current RSS
    except OSError:
        pass  # elsewhere the peak includes the worker's start
    return {"rss_mb": current_rss_mb(), "cpu": _common.cpu_seconds()}


def current_rss_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None
