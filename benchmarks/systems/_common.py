"""Shared plumbing of the benchmark systems: arguments, the clock, peak RSS and the result line.

Every system script runs in a fresh process and prints exactly one JSON line on stdout:
{"system", "workload", "rows", "wall", "rss_mb", "ids_file", ...}. `wall` is measured inside
the process, from the start of the fetch to the finished DataFrame (or file); `rss_mb` is the
process's peak resident set (getrusage). Only the standard library and pandas are imported
here, so the same helpers work in the peers' virtual environments.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="server origin, e.g. http://127.0.0.1:8000")
    p.add_argument("--key", required=True, help="personal API key")
    p.add_argument("--project-id", type=int, default=1)
    p.add_argument("--workload", required=True, choices=["W1", "W2", "W3-csv", "W3-parquet"])
    p.add_argument("--after", default="2024-01-01T00:00:00Z", help="events: start (inclusive)")
    p.add_argument("--before", default="2024-01-31T00:00:00Z", help="events: end (exclusive)")
    p.add_argument("--out", required=True, help="directory for the ids file and artifacts")
    p.add_argument("--tag", default="run", help="distinguishes files of repeated runs")
    return p


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set in MB: this process's own (VmHWM) where Linux reports it.

    ru_maxrss of a process started by subprocess includes the resident size of the process
    that started it (the memory it ran in until exec): the runner, which holds a million
    expected ids, made every system report at least its 338 MB.
    """
    if who == resource.RUSAGE_SELF:
        hwm = own_peak_kib()
        if hwm is not None:
            return hwm / 1024
    peak = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def own_peak_kib() -> int | None:
    """VmHWM from /proc/self/status (KiB), or None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds() -> float:
    """User + system CPU of this process and of the children it has waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_stopped: list[Clock] = []  # the clock of this run, once stopped: emit() reports its CPU


#: Epoch seconds at which a clock starts (after waiting), so that two processes launched
#: together by benchmarks/overlap.py start their measured work at the same instant.
START_AT_VARIABLE = "PP_BENCH_START_AT"


class Clock:
    """Wall time, and the CPU time spent meanwhile, from construction to `stop()`."""

    def __init__(self) -> None:
        start_at = os.environ.get(START_AT_VARIABLE)
        if start_at:
            time.sleep(max(0.0, float(start_at) - time.time()))
        self.cpu_started = cpu_seconds()
        self.started = time.perf_counter()
        self.seconds: float | None = None
        self.cpu: float | None = None

    def stop(self) -> float:
        self.seconds = time.perf_counter() - self.started
        self.cpu = cpu_seconds() - self.cpu_started
        _stopped.append(self)
        return self.seconds


def write_ids(out: str, name: str, ids: Iterable[Any]) -> str:
    """Write one id per line (after the clock stopped); the runner compares the sets."""
    path = Path(out) / f"{name}.ids"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.writelines(f"{value}\n" for value in ids)
    return str(path)


def emit(args: argparse.Namespace, system: str, **fields: Any) -> None:
    """Print the one result line the runner reads."""
    if _stopped and "cpu" not in fields:
        fields["cpu"] = _stopped[-1].cpu
    line = {"system": system, "workload": args.workload, **fields}
    print(json.dumps(line), flush=True)


def deep_bytes(df: Any) -> int:
    return int(df.memory_usage(deep=True).sum())


def emit_frame(
    args: argparse.Namespace,
    system: str,
    df: Any,
    id_column: str,
    name: str,
    wall: float,
    **extra: Any,
) -> None:
    """The result line of a system that built a DataFrame (call it right after the clock
    stopped: peak RSS is read first, then the ids are written as `<name>-<workload>-<tag>`)."""
    rss = peak_rss_mb()
    ids = write_ids(args.out, f"{name}-{args.workload}-{args.tag}", df[id_column])
    emit(
        args,
        system,
        rows=len(df),
        wall=wall,
        rss_mb=rss,
        ids_file=ids,
        df_bytes=deep_bytes(df),
        columns=len(df.columns),
        **extra,
    )
