"""ph.query() against the local server where it behaves as PostHog does: LIMIT lowered to 50,000
without hasMore, DateTime keyset bounds parsed in ClickHouse's basic mode, and answers served
from PostHog's result cache until a refresh."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas.server import LocalPostHog
from tests.conftest import local_connection

pytestmark = pytest.mark.integration

Connect = Callable[..., php.PostHog]


@pytest.fixture(scope="module")
def big() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=200, events=60_000, seed=11) as srv:
        yield srv


@pytest.fixture()
def small() -> Iterator[LocalPostHog]:
    """A server of its own: these tests add events to it."""
    with LocalPostHog(persons=50, events=300, seed=12) as srv:
        yield srv


def connector(srv: LocalPostHog, tmp_path: Path) -> Connect:
    return functools.partial(local_connection, srv, tmp_path / "cache")


def add_event(srv: LocalPostHog) -> str:
    """An event arrives (on 2024-01-02, inside the data's range); returns its uuid."""
    event = {"event": "late", "distinct_id": "d", "timestamp": datetime(2024, 1, 2, tzinfo=UTC)}
    return srv.ingest_events([event])[0]


def query_requests(srv: LocalPostHog) -> list[tuple[int, str]]:
    return [(r.status, r.hogql or "") for r in srv.requests if r.path.endswith("/query/")]


def test_a_limit_above_50000_is_paged_by_keyset_to_exactly_that_many_rows(
    big: LocalPostHog, tmp_path: Path
) -> None:
    ph = connector(big, tmp_path)(cache=False)
    big.clear_log()
    frame = ph.query("select uuid, timestamp from events order by timestamp, uuid limit 55000")
    events = big.dataset().events.sort_values(["timestamp", "uuid"])
    assert frame["uuid"].tolist() == events["uuid"].head(55_000).tolist()
    sent = query_requests(big)
    assert [status for status, _ in sent] == [200, 200]  # the DateTime bound parsed
    assert sent[1][1].endswith("ORDER BY timestamp, uuid LIMIT 5000")


def test_a_limit_above_50000_without_a_keyset_order_is_a_query_error(
    big: LocalPostHog, tmp_path: Path
) -> None:
    ph = connector(big, tmp_path)(cache=False)
    with pytest.raises(php.TruncationError, match="lowers LIMIT 55,000 to that without a word"):
        ph.query("select uuid from events limit 55000")


def test_blocking_serves_a_stale_answer_and_refresh_a_fresh_one(
    small: LocalPostHog, tmp_path: Path
) -> None:
    connect = connector(small, tmp_path)
    ph = connect(cache=False)
    first = ph.query("select count() as n from events")
    assert first["n"].tolist() == [300] and first.attrs["is_cached"] is False
    add_event(small)
    stale = ph.query("select count() as n from events")  # PostHog's cache answers
    assert stale["n"].tolist() == [300] and stale.attrs["is_cached"] is True
    assert stale.attrs["last_refresh"] == first.attrs["last_refresh"]
    fresh = ph.query("select count() as n from events", refresh=True)
    assert fresh["n"].tolist() == [301] and fresh.attrs["is_cached"] is False
    assert fresh.attrs["last_refresh"] > first.attrs["last_refresh"]
    assert pd.Timestamp(fresh.attrs["last_refresh"]).tz is not None  # ISO text in UTC


def test_refresh_also_replaces_the_local_copy(small: LocalPostHog, tmp_path: Path) -> None:
    ph = connector(small, tmp_path)()
    assert ph.query("select count() as n from events")["n"].tolist() == [300]
    add_event(small)
    assert ph.query("select count() as n from events", refresh=True)["n"].tolist() == [301]
    small.clear_log()
    again = ph.query("select count() as n from events")
    assert again["n"].tolist() == [301] and query_requests(small) == []  # from our cache


def test_events_refresh_asks_posthog_to_compute_afresh(small: LocalPostHog, tmp_path: Path) -> None:
    ph = connector(small, tmp_path)()
    window = {"after": "2024-01-01", "before": "2024-01-03"}
    before = ph.events(**window)
    added = add_event(small)
    assert added not in set(ph.events(**window, cache=False)["uuid"])  # PostHog's cache answers
    fresh = ph.events(**window, refresh=True)
    assert len(fresh) == len(before) + 1 and added in set(fresh["uuid"])
