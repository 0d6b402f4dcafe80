"""ph.events() against a server that behaves like PostHog: property filters on booleans and
numbers, late events under `incremental=True`, and PostHog's query time limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas._dates import hogql_literal
from posthog_pandas.server import LocalPostHog

pytestmark = pytest.mark.integration

Connect = Callable[..., php.PostHog]


@pytest.fixture()
def budget(server: LocalPostHog) -> Iterator[LocalPostHog]:
    """The module's server; whatever a test sets as `max_scan_rows` is undone after it."""
    saved = server.max_scan_rows
    yield server
    server.max_scan_rows = saved


def events_with_person(server: LocalPostHog) -> pd.DataFrame:
    """The generated events, each with its person's properties (a dict) and its own."""
    data = server.dataset()
    people = dict(zip(data.persons["id"], data.persons["properties"], strict=True))
    frame = data.events[["uuid", "timestamp", "person_id", "properties"]].copy()
    frame["person"] = frame["person_id"].map(lambda pid: people.get(pid, {}))
    frame["own"] = frame["properties"].map(orjson.loads)
    return frame


def uuids(frame: pd.DataFrame) -> list[str]:
    return [str(u) for u in frame["uuid"]]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@pytest.mark.parametrize(
    ("prop", "keep"),
    [
        (  # PostHog reads a boolean as its JSON text: 'true', never 'True'
            {"key": "is_beta", "value": True, "type": "person"},
            lambda e: e["person"].get("is_beta") is True,
        ),
        (  # is_not keeps events whose person has no such property
            {"key": "is_beta", "operator": "is_not", "value": True, "type": "person"},
            lambda e: e["person"].get("is_beta") is not True,
        ),
        (  # a number matches the stored JSON number, whatever its spelling (3 for 3.0)
            {"key": "signup_count", "value": 3.0, "type": "person"},
            lambda e: e["person"].get("signup_count") == 3,
        ),
        (  # one key holds numbers, texts and booleans: only numbers compare
            {"key": "ab_score", "operator": "gte", "value": 50, "type": "person"},
            lambda e: is_number(e["person"].get("ab_score")) and e["person"]["ab_score"] >= 50,
        ),
        (
            {"key": "revenue", "operator": "lt", "value": "20"},
            lambda e: is_number(e["own"].get("revenue")) and e["own"]["revenue"] < 20,
        ),
        (
            {"key": "ab_score", "value": [False, "variant-1"], "type": "person"},
            lambda e: (
                e["person"].get("ab_score") in (False, "variant-1")
                and not is_number(e["person"].get("ab_score"))
            ),
        ),
    ],
)
def test_property_filters_match_what_posthog_matches(
    server: LocalPostHog, connect: Connect, prop: dict[str, Any], keep: Any
) -> None:
    start, end = server.time_range()
    expected = events_with_person(server)
    expected = expected[expected.apply(keep, axis=1)]
    got = connect().events(after=start, before=end, properties=[prop])
    assert len(expected) > 0
    assert uuids(got) == uuids(expected)  # the same events, in (timestamp, uuid) order


def test_a_late_event_is_picked_up_by_the_next_incremental_pull(tmp_path: Path) -> None:
    with LocalPostHog(persons=200, events=3000, seed=11) as srv:
        start, _ = srv.time_range()
        ph = php.connect(
            srv.api_key,
            host=srv.url,
            cache_dir=tmp_path / "cache",
            progress=False,
            dotenv=False,
            prompt=False,
        )
        first = ph.events(after=start, incremental=True)
        assert uuids(first) == uuids(srv.dataset().events)
        newest = first["timestamp"].max().to_pydatetime()
        did = str(srv.dataset().events["distinct_id"].iloc[0])
        late, too_late, new = srv.ingest_events(
            [
                {"event": "late", "distinct_id": did, "timestamp": newest - timedelta(hours=2)},
                {"event": "too late", "distinct_id": did, "timestamp": newest - timedelta(days=3)},
                {"event": "new", "distinct_id": did, "timestamp": newest + timedelta(hours=1)},
            ]
        )
        srv.clear_log()

        second = ph.events(after=start, incremental=True)

        everything = srv.dataset().events  # ingested rows included, in (timestamp, uuid) order
        assert uuids(second) == [u for u in uuids(everything) if u != too_late]
        assert {late, new} <= set(second["uuid"])
        (sent,) = [r for r in srv.requests if r.path.endswith("/query/")]
        assert sent.status == 200  # one page: the last day again, and what is new
        third = ph.events(after=start, incremental=True, lookback="4d")
        assert uuids(third) == uuids(everything)  # a longer look-back reaches the 3-day-late one
        assert third["uuid"].is_unique


def test_a_pull_that_hits_posthogs_time_limit_returns_the_same_rows(
    budget: LocalPostHog, connect: Connect
) -> None:
    start, end = budget.time_range()
    budget.max_scan_rows = 1500  # a page may sort 1,500 of the 12,000 events, no more
    ph = connect()

    got = ph.events(after=start, before=end)

    expected = budget.dataset().events
    assert uuids(got) == uuids(expected)
    assert got["timestamp"].tolist() == expected["timestamp"].tolist()
    statuses = [r.status for r in budget.requests if r.path.endswith("/query/")]
    assert statuses.count(504) >= 3 and statuses.count(200) >= 8
    assert set(statuses) == {200, 504}
    budget.clear_log()
    pages = list(connect().iter_events(after=start, before=end))  # no frame: the pages
    assert uuids(pd.concat(pages, ignore_index=True)) == uuids(expected)
    assert budget.requests == []  # the windows, and which windows timed out, came from the cache


def test_a_window_too_short_to_split_raises_a_clear_error(
    budget: LocalPostHog, connect: Connect
) -> None:
    start, end = budget.time_range()
    budget.max_scan_rows = 0  # every page that has events to sort times out
    with pytest.raises(php.QueryTimeoutError) as info:  # refresh: not PostHog's cached pages
        connect().events(after=start, before=end, refresh=True)
    first = budget.dataset().events["timestamp"].iloc[0].to_pydatetime()
    assert str(info.value).startswith(
        "PostHog stopped the events query at its time limit even for the window from "
        f"{hogql_literal(first)[:10]}"
    )
    assert "too short to split further. Narrow what is read (event=, properties=" in str(info.value)
    timeouts = [r for r in budget.requests if r.path.endswith("/query/") and r.status == 504]
    assert 20 <= len(timeouts) <= 25  # 30 days halved down to under a second, once each


def test_an_export_that_hits_posthogs_time_limit_writes_every_event_once(
    budget: LocalPostHog, connect: Connect, tmp_path: Path
) -> None:
    start, end = budget.time_range()
    budget.max_scan_rows = 1500
    target = tmp_path / "events.csv"
    summary = connect().export("events", target, after=start, before=end)
    written = pd.read_csv(target, usecols=["uuid"], dtype="string")["uuid"]
    assert summary.rows == len(budget.dataset().events)
    assert uuids(pd.DataFrame({"uuid": written})) == uuids(budget.dataset().events)
    assert 504 in {r.status for r in budget.requests if r.path.endswith("/query/")}
