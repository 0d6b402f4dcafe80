"""Concurrent windowed events pulls against the local server: exact rows in (timestamp, uuid)
order whatever the windows, never more than PostHog's 3 queries in flight, and a 429 for the
concurrency limit that slows a connection down instead of failing it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posthog_pandas import events as events_module
from posthog_pandas.server import LocalPostHog
from posthog_pandas.server.latency import Latency
from tests.conftest import local_connection

pytestmark = pytest.mark.integration

EVENTS = 3_000  # the generated days, January 2024; the examples below live in 2031 and on


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=50, events=EVENTS, seed=21) as server:
        yield server


@pytest.fixture()
def quick(srv: LocalPostHog) -> Iterator[LocalPostHog]:
    srv.latency = Latency()
    srv.set_faults(None)
    yield srv
    srv.latency = Latency()


# Each example gets its own day, so the ingested events of one never meet another's.
_days = itertools.count()

# A burst: many events at one instant. Second 0 puts it on a minute's start, where windows are
# cut; bursts larger than a page make a window of several keyset pages inside one instant.
bursts = st.lists(
    st.tuples(
        st.integers(0, 240),  # minute of the day
        st.sampled_from([0, 0, 1, 30, 59]),  # second: often exactly on a window edge
        st.integers(1, 40),  # events at that instant
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bursts=bursts, page=st.integers(5, 60), workers=st.integers(1, 3))
def test_every_event_once_in_timestamp_uuid_order_whatever_the_windows(
    quick: LocalPostHog, tmp_path: Path, bursts: list[tuple[int, int, int]], page: int, workers: int
) -> None:
    day = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(days=next(_days))
    sent = [
        {"event": "tie", "distinct_id": f"d{n}", "timestamp": day + timedelta(minutes=m, seconds=s)}
        for m, s, size in bursts
        for n in range(size)
    ]
    uuids = quick.ingest_events(sent)
    expected = pd.DataFrame({"uuid": uuids, "timestamp": [e["timestamp"] for e in sent]})
    expected = expected.sort_values(["timestamp", "uuid"])
    ph = local_connection(quick, None, max_concurrent_queries=workers)
    quick.clear_log()
    with mock.patch.object(events_module, "MAX_PAGE_ROWS", page):
        frame = ph.events(after=day, before=day + timedelta(days=1))
    assert frame["uuid"].tolist() == expected["uuid"].tolist()
    queries = [r.hogql or "" for r in quick.requests if r.path.endswith("/query/")]
    counted = [q for q in queries if "count() AS events" in q]
    assert len(counted) == (1 if workers > 1 and len(sent) >= page else 0)


def test_an_events_pull_and_an_export_never_have_more_than_three_queries_in_flight(
    quick: LocalPostHog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 300)
    quick.latency = Latency(per_query=0.2)  # each query holds its slot a while: they overlap
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    ph = local_connection(quick, None)
    quick.reset_query_peak()
    frame = ph.events(after=start, before=end)
    assert len(frame) == EVENTS and quick.query_peak == 3  # three windows at once, never four
    quick.reset_query_peak()
    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 250)  # no answer from PostHog's cache
    summary = ph.export("events", tmp_path / "e.parquet", after=start, before=end)
    assert summary.rows == EVENTS and quick.query_peak == 3


def test_every_query_of_a_connection_shares_its_limit(quick: LocalPostHog) -> None:
    quick.latency = Latency(per_query=0.1)
    ph = local_connection(quick, None, max_concurrent_queries=2)
    quick.reset_query_peak()
    threads = [
        threading.Thread(target=ph.query, args=(f"select {n}",), kwargs={"cache": False})
        for n in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert quick.query_peak == 2


def test_a_429_for_the_concurrency_limit_slows_the_pull_instead_of_failing(
    quick: LocalPostHog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two connections, three windows each: PostHog has 3 slots, so some queries wait past the
    # local server's slot wait and are answered 429 "Exceeded maximum concurrency limit".
    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 300)
    quick.latency = Latency(per_query=1.0)  # longer than the server's wait for a free slot
    end = datetime(2024, 2, 1, tzinfo=UTC)
    # Ranges no other test reads, so PostHog's own cache answers none of their queries.
    starts = [datetime(2024, 1, 3, tzinfo=UTC), datetime(2024, 1, 4, tzinfo=UTC)]
    pulls = [local_connection(quick, None) for _ in starts]
    frames: list[Any] = [None, None]

    def pull(index: int) -> None:
        frames[index] = pulls[index].events(after=starts[index], before=end)

    quick.clear_log()
    threads = [threading.Thread(target=pull, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r for r in quick.requests if r.status == 429]  # PostHog's limit was hit ...
    events = quick.dataset().events.sort_values(["timestamp", "uuid"])
    for start, frame in zip(starts, frames, strict=True):  # ... and no pull failed
        inside = (events["timestamp"] >= start) & (events["timestamp"] < end)
        assert frame["uuid"].tolist() == events.loc[inside, "uuid"].tolist()
    assert min(ph._conn.http.query_slots.lowest for ph in pulls) < 3  # one ran fewer at once
