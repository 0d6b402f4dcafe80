"""Window planning and the in-order concurrent runner behind windowed events pulls."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_pandas._windows import in_window_order, plan_windows

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hours(*counts: int) -> list[tuple[datetime, int]]:
    return [(T0 + i * HOUR, n) for i, n in enumerate(counts)]


def test_windows_hold_at_most_max_rows_by_the_counts() -> None:
    windows = plan_windows(T0, T0 + 6 * HOUR, hours(30, 30, 50, 10, 0, 45), max_rows=60)
    assert windows == [
        (T0, T0 + 2 * HOUR),  # 30 + 30
        (T0 + 2 * HOUR, T0 + 5 * HOUR),  # 50 + 10 + 0
        (T0 + 5 * HOUR, T0 + 6 * HOUR),  # 45
    ]


def test_a_bucket_above_max_rows_is_a_window_of_its_own() -> None:
    windows = plan_windows(T0, T0 + 3 * HOUR, hours(10, 500, 10), max_rows=60)
    assert windows == [(T0, T0 + HOUR), (T0 + HOUR, T0 + 2 * HOUR), (T0 + 2 * HOUR, T0 + 3 * HOUR)]


def test_a_start_inside_the_first_bucket_keeps_it_in_the_first_window() -> None:
    start = T0 + timedelta(minutes=20)  # the cursor of the page already read
    assert plan_windows(start, T0 + 2 * HOUR, hours(40, 40), max_rows=60) == [
        (start, T0 + HOUR),
        (T0 + HOUR, T0 + 2 * HOUR),
    ]
    assert plan_windows(T0, T0 + HOUR, [], max_rows=60) == [(T0, T0 + HOUR)]


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 120), max_size=40),
    max_rows=st.integers(1, 150),
    offset=st.integers(0, 59),
)
def test_windows_cover_the_range_once_in_order(
    counts: list[int], max_rows: int, offset: int
) -> None:
    start = T0 + timedelta(minutes=offset)
    end = T0 + max(len(counts), 1) * HOUR
    buckets = hours(*counts)
    windows = plan_windows(start, end, buckets, max_rows)
    assert windows[0][0] == start and windows[-1][1] == end
    assert all(a < b for a, b in windows)
    assert all(windows[i][1] == windows[i + 1][0] for i in range(len(windows) - 1))
    for a, b in windows:  # a window over max_rows holds one bucket with events
        inside = [n for t, n in buckets if (a <= t < b) or (t < a < t + HOUR)]
        assert sum(inside) <= max_rows or len([n for n in inside if n]) == 1


def pull_of(
    items: list[int], log: list[str], name: str, delay: float = 0.0
) -> Callable[[], Iterator[int]]:
    def pull() -> Iterator[int]:
        log.append(f"start {name}")
        for item in items:
            time.sleep(delay)
            yield item
        log.append(f"end {name}")

    return pull


def test_items_come_in_pull_order_whatever_order_the_pulls_finish() -> None:
    log: list[str] = []
    pulls = [
        pull_of([1, 2], log, "a", delay=0.05),  # the slowest finishes last
        pull_of([3], log, "b"),
        pull_of([4, 5], log, "c"),
        pull_of([6], log, "d"),
    ]
    assert list(in_window_order(pulls, workers=3)) == [1, 2, 3, 4, 5, 6]
    assert log.index("end b") < log.index("end a")  # b really ran while a was running


def test_never_more_pulls_at_once_than_workers_nor_further_ahead_than_allowed() -> None:
    running, peak, lock = [0], [0], threading.Lock()
    started: list[int] = []

    def pull_number(i: int) -> Callable[[], Iterator[int]]:
        def pull() -> Iterator[int]:
            with lock:
                started.append(i)
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.01)
            with lock:
                running[0] -= 1
            yield i

        return pull

    seen = []
    for item in in_window_order([pull_number(i) for i in range(12)], workers=3, ahead=2):
        seen.append(item)
        assert max(started) <= item + 2  # never more than 2 pulls beyond the one handed out
    assert seen == list(range(12)) and peak[0] <= 3


def test_an_error_is_raised_at_its_pulls_turn_after_the_items_before_it() -> None:
    def broken() -> Iterator[int]:
        yield 3
        raise RuntimeError("window 2 failed")

    log: list[str] = []
    got: list[int] = []
    with pytest.raises(RuntimeError, match="window 2 failed"):
        for item in in_window_order([pull_of([1, 2], log, "a"), broken, pull_of([4], log, "c")], 3):
            got.append(item)
    assert got == [1, 2, 3]


def test_closing_early_starts_no_more_pulls() -> None:
    log: list[str] = []
    pulls = [pull_of([i], log, str(i), delay=0.01) for i in range(20)]
    stream = in_window_order(pulls, workers=2, ahead=1)
    assert next(stream) == 0
    stream.close()
    assert len([entry for entry in log if entry.startswith("start")]) <= 3


def test_one_worker_runs_the_pulls_one_after_the_other() -> None:
    log: list[str] = []
    pulls = [pull_of([1], log, "a"), pull_of([2], log, "b")]
    assert list(in_window_order(pulls, workers=1)) == [1, 2]
    assert log == ["start a", "end a", "start b", "end b"]


def test_a_pull_ahead_holds_at_most_held_items_until_its_turn() -> None:
    produced: list[int] = []

    def first() -> Iterator[int]:
        time.sleep(0.2)  # the second pull runs meanwhile, and must wait for room
        yield 0

    def second() -> Iterator[int]:
        for item in range(1, 11):
            produced.append(item)
            yield item

    stream = in_window_order([first, second], workers=2, held=2)
    assert next(stream) == 0
    assert len(produced) <= 3  # two held, one waiting to be put
    assert list(stream) == list(range(1, 11))


def test_a_pull_waiting_for_room_stops_when_the_consumer_does() -> None:
    def first() -> Iterator[int]:
        yield 0

    def endless() -> Iterator[int]:
        yield from itertools.count(1)

    stream = in_window_order([first, endless], workers=2, held=1)
    assert next(stream) == 0
    stream.close()  # returns: the endless pull, blocked on a full buffer, saw the stop
