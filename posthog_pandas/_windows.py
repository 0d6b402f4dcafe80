"""Concurrent windowed pulls: cut a time range into windows of at most one page each, from a
count of events per bucket, and pull several windows at once while handing out their pages in
window order.

PostHog runs 3 queries per project at once (more are answered 429), and on PostHog Cloud each
50,000-row page costs seconds of ClickHouse time: three windows in flight make a long pull up to
three times faster. Windows are consecutive half-open time ranges, so every event falls in
exactly one, and pages handed out in window order keep `(timestamp, uuid)` order. Windows are
derived from a count that is cached like any page, so a rerun after a crash plans the same
windows and finds each window's pages in the cache.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

__all__ = ["in_window_order", "plan_windows"]

T = TypeVar("T")
Window = tuple[datetime, datetime]


def plan_windows(
    start: datetime, end: datetime, buckets: Iterable[tuple[datetime, int]], max_rows: int
) -> list[Window]:
    """Consecutive windows covering [start, end), each holding at most `max_rows` events by
    the bucket counts (a bucket with more is a window of its own, paged inside).

    `buckets` are (bucket start, events in it), in time order; a bucket's events lie between
    its start and the next bucket's. Boundaries fall on bucket starts, so no count is split.
    """
    windows: list[Window] = []
    window_start, held = start, 0
    for bucket_start, count in buckets:
        if bucket_start <= window_start or bucket_start >= end:
            held += count  # the bucket holding `start` (or past the end) joins the first window
            continue
        if held and held + count > max_rows:
            windows.append((window_start, bucket_start))
            window_start, held = bucket_start, 0
        held += count
    windows.append((window_start, end))
    return windows


def in_window_order(
    pulls: Sequence[Callable[[], Iterator[T]]],
    workers: int,
    ahead: int | None = None,
    held: int = 2,
) -> Iterator[T]:
    """Every item of every pull, pull by pull in order, with up to `workers` pulls running at
    once. The pull being handed out streams; the others hold at most `held` items each until
    their turn (then wait), and at most `ahead` (default: `workers`) run beyond it, so memory
    stays bounded. An error in a pull is raised when its turn comes. Stopping early (close)
    lets the pulls in flight stop at their next item and starts no other."""
    if workers <= 1 or len(pulls) <= 1:
        for pull in pulls:
            yield from pull()
        return
    beyond = workers if ahead is None else max(ahead, 1)
    stop = threading.Event()
    outputs: list[queue.Queue[tuple[str, object]]] = []

    def run(pull: Callable[[], Iterator[T]], out: queue.Queue[tuple[str, object]]) -> None:
        if stop.is_set():
            return
        try:
            for item in pull():
                if not _put(out, ("item", item), stop):
                    return
        except BaseException as exc:  # handed to the consumer, raised in its thread
            _put(out, ("error", exc), stop)
        else:
            _put(out, ("end", None), stop)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="posthog-pandas-window")
    try:
        for index in range(len(pulls)):
            while len(outputs) < min(len(pulls), index + 1 + beyond):
                outputs.append(queue.Queue(maxsize=max(held, 1)))
                pool.submit(run, pulls[len(outputs) - 1], outputs[-1])
            yield from _drain(outputs[index])
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


# How often a pull waiting for room in its buffer checks whether the consumer stopped.
_STOP_POLL_SECONDS = 0.1


def _put(
    out: queue.Queue[tuple[str, object]], entry: tuple[str, object], stop: threading.Event
) -> bool:
    """Put `entry` once there is room; False when the consumer stopped meanwhile."""
    while not stop.is_set():
        try:
            out.put(entry, timeout=_STOP_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _drain(out: queue.Queue[tuple[str, object]]) -> Iterator[T]:
    while True:
        kind, value = out.get()
        if kind == "end":
            return
        if kind == "error":
            assert isinstance(value, BaseException)
            raise value
        yield value  # type: ignore[misc]
