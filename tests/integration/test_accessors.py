"""Accessors end to end: cohort members, incremental events, pinned bounds, pandas-style readers."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas import events as events_module
from posthog_pandas.cache import writer as writer_module
from posthog_pandas.cache.sqlite import SQLiteStorage
from posthog_pandas.server import LocalPostHog
from tests.conftest import open_files_of, wait_until

pytestmark = pytest.mark.integration

Connect = Callable[..., php.PostHog]


def test_cohort_persons_are_the_static_cohorts_members(
    server: LocalPostHog, connect: Connect
) -> None:
    data = server.dataset()
    cohort_id = int(data.cohort_people["cohort_id"].iloc[0])
    members = connect().cohort_persons(cohort_id)
    expected = data.cohort_people.loc[data.cohort_people["cohort_id"] == cohort_id, "person_id"]
    assert set(members["id"]) == set(expected)


def test_insight_returns_its_series_by_day(server: LocalPostHog, connect: Connect) -> None:
    insight = server.dataset().insights[0]
    frame = connect().insight(insight["id"])
    first = server.insight_result(insight["id"])[0]
    rows = frame[frame["series"] == first["label"]]
    assert rows["value"].tolist() == [float(v) for v in first["data"]]
    assert rows["date"].dt.strftime("%Y-%m-%d").tolist() == first["days"]


def test_incremental_events_fetch_only_what_is_new(server: LocalPostHog, connect: Connect) -> None:
    start, end = server.time_range()
    ph = connect()
    mid = start + timedelta(days=10)
    first = ph.events(after=start, before=mid, incremental=True)
    expected = server.dataset().events
    assert set(first["uuid"]) == set(expected.loc[expected["timestamp"] < mid, "uuid"])
    server.clear_log()
    grown = ph.events(after=start, incremental=True)
    assert set(grown["uuid"]) == set(expected["uuid"])
    assert grown["uuid"].is_unique
    assert grown["timestamp"].is_monotonic_increasing
    sent = [r.hogql for r in server.requests if r.path.endswith("/query/")]
    assert sent and all("timestamp >=" in (q or "") for q in sent)


def test_columns_takes_one_name_or_any_list_of_names(
    server: LocalPostHog, connect: Connect
) -> None:
    start, end = server.time_range()
    ph = connect(cache=False)
    want = ph.events(after=start, before=end, columns=["event", "distinct_id"])
    assert list(want.columns) == ["uuid", "timestamp", "event", "distinct_id"]
    for given in (("event", "distinct_id"), pd.Index(["event", "distinct_id"])):
        got = ph.events(after=start, before=end, columns=given)
        pd.testing.assert_frame_equal(got, want)
    # A single name is that column, not its letters (once "Unable to resolve field: e").
    one = ph.events(after=start, before=end, columns="event")
    pd.testing.assert_frame_equal(one, want.drop(columns="distinct_id"))


def test_open_ended_pull_pins_its_upper_bound(server: LocalPostHog, connect: Connect) -> None:
    start, _ = server.time_range()
    ph = connect()
    ph.events(after=start)
    server.clear_log()
    again = connect()
    again.events(after=start)  # same pinned bound, so the same cached frame: no request
    assert server.requests == []
    again.events(after=start, refresh=True)
    assert [r for r in server.requests if r.path.endswith("/query/")]


def test_pandas_style_readers(server: LocalPostHog, connect: Connect, monkeypatch) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", server.api_key)
    monkeypatch.setenv("POSTHOG_HOST", server.url)
    persons = php.read_posthog("persons", progress=False)
    assert set(persons["id"]) == set(server.dataset().persons["id"])
    counts = php.read_hogql("select count() as n from events")
    assert counts["n"].tolist() == [len(server.dataset().events)]
    with pytest.raises(php.ConfigurationError, match="Did you mean 'cohorts'"):
        php.read_posthog("cohort")


def test_iter_events_streams_pages(server: LocalPostHog, connect: Connect, monkeypatch) -> None:
    import posthog_pandas.events as events_module

    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 5000)
    start, end = server.time_range()
    frames = list(connect().iter_events(after=start, before=end))
    # A full first page, then one frame per window of fewer than 5,000 events
    assert len(frames[0]) == 5000 and len(frames) >= 3
    assert all(0 < len(f) < 5000 for f in frames[1:])
    combined = pd.concat(frames, ignore_index=True)
    expected = server.dataset().events.sort_values(["timestamp", "uuid"])
    assert combined["uuid"].tolist() == expected["uuid"].tolist()


def test_empty_results_keep_their_schema(server: LocalPostHog, connect: Connect) -> None:
    ph = connect()
    start, _ = server.time_range()
    empty = ph.events(after=start - timedelta(days=400), before=start - timedelta(days=300))
    assert len(empty) == 0
    assert list(empty.columns[:4]) == ["uuid", "event", "distinct_id", "timestamp"]
    assert str(empty["timestamp"].dtype) == "datetime64[ns, UTC]"
    nobody = ph.persons(email="nobody@nowhere.test")
    assert len(nobody) == 0 and str(nobody["created_at"].dtype) == "datetime64[ns, UTC]"


def test_pulls_run_with_the_collector_paused_and_restore_it(
    server: LocalPostHog, connect: Connect, monkeypatch
) -> None:
    import gc

    from posthog_pandas import events as events_module

    states: list[bool] = []
    real = events_module.page_frame

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        states.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(events_module, "page_frame", recording)
    ph = connect()
    assert gc.isenabled()
    df = ph.events(after="2024-01-01", before="2024-01-03")
    assert len(df) and states and not any(states)  # every page was built with it off
    assert gc.isenabled()
    assert len(ph.query("SELECT event FROM events LIMIT 5")) == 5
    assert gc.isenabled()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
@pytest.mark.parametrize("slots", [1, 3])
def test_many_pulls_keep_the_same_open_files(
    server: LocalPostHog, connect: Connect, slots: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each pull reads the cache from threads of its own (a page prefetch, or its windows'):
    a notebook that pulls all day must not gather an open database connection (two files)
    per thread and pull until the OS refuses more."""
    start, _ = server.time_range()
    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 40)  # several pages, and windows
    ph = connect(max_concurrent_queries=slots)
    db = ph.cache.directory / "cache.sqlite3"
    opened = []
    for day in range(8):
        after = start + timedelta(days=day)
        ph.events(after=after, before=after + timedelta(days=1))
        for thread in threading.enumerate():  # the pull's threads end soon after it returns
            if thread.name.startswith(("posthog-pandas-prefetch", "posthog-pandas-window")):
                thread.join()
        opened.append(open_files_of(db))
    assert opened[0] > 0
    assert max(opened) == opened[2], opened  # what pulls hold by the third: no more after


def test_connecting_again_leaves_nothing_of_the_old_connection(
    server: LocalPostHog, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook cell that runs `ph = connect()` again drops the old connection: its cache
    writers' threads end and its database connections go with it, instead of one set more
    per run until the OS refuses threads or files."""
    monkeypatch.setattr(writer_module, "_IDLE_SECONDS", 0.05, raising=False)
    start, _ = server.time_range()
    for _ in range(4):
        ph = connect()
        ph.events(after=start, before=start + timedelta(days=1), refresh=True)
        ph.persons(refresh=True)
    directory = ph.cache.directory
    del ph

    def ours() -> list[object]:
        gc.collect()
        threads = [t for t in threading.enumerate() if t.name.startswith("posthog-pandas")]
        stores = [o for o in gc.get_objects() if type(o) is SQLiteStorage]
        return threads + [s for s in stores if s.directory == directory]

    wait_until(lambda: ours() == [], seconds=10)
    assert ours() == []
