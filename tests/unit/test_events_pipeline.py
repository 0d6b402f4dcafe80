"""The events pipeline's HogQL and arguments: property filters as PostHog compares them, the
time windows a timed-out pull splits into, `lookback=`, and PostHog's timeout answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas import events as events_module
from posthog_pandas._dates import to_duration
from posthog_pandas.events import (
    EventFilter,
    events_query,
    property_condition,
    split_events_window,
)
from tests.conftest import MOCK_HOST, mocked_connection

# Retries without waiting: some tests here are about a retried request.
RETRY = php.RetrySettings(attempts=3, backoff_factor=0, jitter=0)
QUERY_URL = f"{MOCK_HOST}/api/projects/3/query/"
AFTER = datetime(2024, 1, 1, tzinfo=UTC)
BEFORE = datetime(2024, 1, 31, tzinfo=UTC)
# PostHog's answers for a query stopped at a limit (posthog/exceptions.py, drf-exceptions-hog).
TIMEOUT_504 = {
    "type": "server_error",
    "code": "error",
    "detail": "Query has hit the max execution time before completing. See our docs for how to "
    "improve your query performance. You may need to materialize.",
    "attr": None,
}
TOO_SLOW_512 = {
    "type": "server_error",
    "code": "error",
    "detail": "Estimated query execution time (34.5 seconds) is too long. Try reducing its "
    "scope by changing the time range.",
    "attr": None,
}


@pytest.fixture(scope="module")
def parse_select() -> Any:
    """PostHog's own parser, loaded the one way the package loads it (server/hogql_parse)."""
    from posthog_pandas.server import hogql_parse

    return hogql_parse.parse_tree


def assert_parses(parse_select: Any, sql: str) -> None:
    tree = parse_select(sql)
    assert tree is not None and not tree.get("error"), (sql, tree)


def condition(prop: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return property_condition(prop, 0)


# -- property filters ---------------------------------------------------------------------------


def test_a_boolean_is_compared_as_the_json_text_hogql_reads() -> None:
    clause, values = condition({"key": "is_beta", "value": True, "type": "person"})
    assert clause == (
        "((person.properties.is_beta IS NOT NULL AND person.properties.is_beta IN {__prop_0}))"
    )
    assert values == {"__prop_0": ["true"]}  # was ['True'], which matches nothing


def test_numbers_are_compared_as_numbers_so_10_matches_10_point_0() -> None:
    clause, values = condition({"key": "revenue", "value": [10, 2.5]})
    assert clause == (
        "((toFloat(properties.revenue) IS NOT NULL AND "
        "toFloat(properties.revenue) IN {__prop_0_n}))"
    )
    assert values == {"__prop_0_n": [10.0, 2.5]}  # was ['10', '2.5']: text never equal to 10.0


def test_a_mixed_list_matches_any_of_its_values() -> None:
    clause, values = condition({"key": "plan", "value": ["pro", False, 3, None]})
    assert clause == (
        "((properties.plan IS NOT NULL AND properties.plan IN {__prop_0}) OR "
        "(toFloat(properties.plan) IS NOT NULL AND toFloat(properties.plan) IN {__prop_0_n}) OR "
        "properties.plan IS NULL)"
    )
    assert values == {"__prop_0": ["pro", "false"], "__prop_0_n": [3.0]}


def test_is_not_is_the_negation_so_events_without_the_property_stay() -> None:
    clause, values = condition({"key": "$browser", "operator": "is_not", "value": "Chrome"})
    assert (
        clause == "NOT (((properties.$browser IS NOT NULL AND properties.$browser IN {__prop_0})))"
    )
    assert values == {"__prop_0": ["Chrome"]}


def test_comparisons_take_numbers_and_numeric_text() -> None:
    assert condition({"key": "n", "operator": "gte", "value": "10"}) == (
        "toFloat(properties.n) >= {__prop_0}",
        {"__prop_0": 10.0},
    )
    assert condition({"key": "n", "operator": "lt", "value": 2}) == (
        "toFloat(properties.n) < {__prop_0}",
        {"__prop_0": 2.0},
    )


def test_icontains_looks_for_any_text_and_not_icontains_for_none() -> None:
    assert condition({"key": "url", "operator": "icontains", "value": ["doc", "blog"]}) == (
        "(properties.url IS NOT NULL AND (properties.url ILIKE concat('%', {__prop_0_0}, '%') "
        "OR properties.url ILIKE concat('%', {__prop_0_1}, '%')))",
        {"__prop_0_0": "doc", "__prop_0_1": "blog"},
    )
    clause, values = condition({"key": "url", "operator": "not_icontains", "value": True})
    assert clause.startswith("NOT (properties.url IS NOT NULL AND ")
    assert values == {"__prop_0_0": "true"}


@pytest.mark.parametrize(
    ("prop", "message"),
    [
        (
            {"key": "n", "operator": "gt", "value": "ten"},
            "properties[0]: operator 'gt' compares numbers; got 'ten'.",
        ),
        ({"key": "n", "operator": "gt", "value": True}, "operator 'gt' compares numbers"),
        ({"key": "n", "value": []}, "properties[0]: value is an empty list"),
        ({"key": "n", "value": {"a": 1}}, "value {'a': 1} is a dict; use a string, a number"),
        ({"key": "n", "value": float("nan")}, "nan is not a finite number"),
        ({"key": "u", "operator": "icontains", "value": None}, "icontains and not_icontains"),
    ],
)
def test_a_value_posthog_could_not_compare_is_refused(prop: dict[str, Any], message: str) -> None:
    with pytest.raises(php.ConfigurationError) as info:
        condition(prop)
    assert message in str(info.value)


def test_every_filter_page_is_hogql_posthogs_parser_accepts(parse_select: Any) -> None:
    props = [
        {"key": "is_beta", "value": True, "type": "person"},
        {"key": "revenue", "value": [10, 2.5, "x", None]},
        {"key": "$browser", "operator": "is_not", "value": ["Chrome", False]},
        {"key": "$current_url", "operator": "icontains", "value": ["doc", 5]},
        {"key": "$current_url", "operator": "not_icontains", "value": "blog"},
        {"key": "weird key", "operator": "gt", "value": 1},
        {"key": "n", "operator": "lte", "value": "3.5"},
        {"key": "n", "operator": "is_set"},
        {"key": "n", "operator": "is_not_set"},
    ]
    flt = EventFilter(after=AFTER, before=BEFORE, event=["a", "b"], properties=props)
    halves = split_events_window(flt, None)
    assert halves is not None
    cursor = ("2024-01-05T10:00:00.123456Z", "0190f3a0-0000-7000-8000-000000000001")
    for window, last in [(flt, None), (flt, cursor), (halves[0][0], cursor), halves[1]]:
        sql, _ = events_query(window, 50_000, last)
        assert_parses(parse_select, sql)


# -- time windows -------------------------------------------------------------------------------


def test_a_window_splits_into_halves_that_cover_it_once() -> None:
    flt = EventFilter(after=AFTER, before=BEFORE)
    halves = split_events_window(flt, None)
    assert halves is not None
    (first, first_last), (second, second_last) = halves
    middle = datetime(2024, 1, 16, tzinfo=UTC)
    assert (first.after, first.before, first_last) == (AFTER, middle, None)
    assert (second.after, second.before, second_last) == (middle, BEFORE, None)


def test_the_rest_after_a_cursor_splits_and_the_first_half_keeps_the_cursor() -> None:
    flt = EventFilter(after=AFTER, before=BEFORE)
    last = ("2024-01-29T00:00:00+01:00", "u-1")  # 2024-01-28 23:00 UTC, in the project's zone
    halves = split_events_window(flt, last)
    assert halves is not None
    (first, first_last), (second, _) = halves
    middle = datetime(2024, 1, 29, 23, 30, tzinfo=UTC)  # halfway from the cursor to `before`
    assert (first.after, first.before, first_last) == (AFTER, middle, last)
    assert (second.after, second.before) == (middle, BEFORE)


def test_a_window_shorter_than_a_second_is_not_split() -> None:
    end = AFTER + timedelta(milliseconds=999)
    assert split_events_window(EventFilter(after=AFTER, before=end), None) is None
    assert split_events_window(EventFilter(after=AFTER, before=end + timedelta(1)), None)


# -- lookback -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("6h", timedelta(hours=6)),
        (" 30min ", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        (timedelta(hours=3), timedelta(hours=3)),
        (timedelta(0), timedelta(0)),
    ],
)
def test_lookback_takes_a_timedelta_or_text(value: Any, expected: timedelta) -> None:
    assert to_duration(value, name="lookback") == expected


@pytest.mark.parametrize("value", ["a day", "banana", 3600, "1.5d", "d"])
def test_a_lookback_that_is_not_a_length_of_time_is_refused(value: Any) -> None:
    with pytest.raises(php.ConfigurationError) as info:
        to_duration(value, name="lookback")
    assert str(info.value) == (
        "lookback must be a length of time: a whole number and a unit such as '1d', '6h', "
        f"'30min', or a datetime.timedelta; got {value!r}."
    )


@pytest.mark.parametrize("value", ["-1d", " -6h", timedelta(hours=-1), pd.Timedelta("-1min")])
def test_a_negative_lookback_is_refused_as_negative(value: Any) -> None:
    with pytest.raises(php.ConfigurationError) as info:
        to_duration(value, name="lookback")
    assert str(info.value) == f"lookback must not be negative; got {value!r}."


def test_lookback_without_incremental_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    ph, adapter = mocked_connection(tmp_path, retry=RETRY)
    before = adapter.call_count
    with pytest.raises(php.ConfigurationError, match="lookback= applies to incremental=True"):
        ph.events(after=AFTER, before=BEFORE, lookback="1d")
    with pytest.raises(php.ConfigurationError, match="lookback must be a length of time"):
        ph.events(after=AFTER, before=BEFORE, incremental=True, lookback="soon")
    with pytest.raises(php.ConfigurationError, match="limit= does not apply to incremental"):
        ph.events(after=AFTER, before=BEFORE, incremental=True, limit=5)  # not silently all
    assert adapter.call_count == before


# -- PostHog's timeout answers ------------------------------------------------------------------


API_TIMEOUT_504 = {  # newer PostHog, for personal-key queries (hogql_query_runner.py)
    **TIMEOUT_504,
    "detail": "This query hit the 10-second time limit for queries run through the API. Submit "
    "it as an async query to give it more time: "
    "https://posthog.com/docs/api/queries#asynchronous-queries. You can also narrow the date "
    "range or the filters so it scans less data: "
    "https://posthog.com/docs/api/queries#writing-performant-queries",
}


# ClickHouseQueryMemoryLimitExceeded (posthog/exceptions.py): 504 in older PostHog, then 512,
# now 513 with its own code and wording.
MEMORY_504 = {
    **TIMEOUT_504,
    "detail": "Query has reached the max memory limit before completing. See our docs for how to "
    "improve your query memory footprint. You may need to narrow date range or materialize.",
}
MEMORY_DETAIL = (
    "This query ran out of memory before it could finish, usually because it's scanning too "
    "much data. Try a shorter date range or narrower filters, or see our docs for more ways to "
    "speed it up: https://posthog.com/docs/product-analytics/troubleshooting"
    "#how-do-i-speed-up-my-insights-and-queries"
)
MEMORY_513 = {**TIMEOUT_504, "code": "clickhouse_memory_limit_exceeded", "detail": MEMORY_DETAIL}
# ClickHouseClusterMemoryLimitExceeded: the same 513 and code, but the cluster was full, not
# the query too big: a retry later can pass, a smaller window would not help.
CLUSTER_MEMORY_513 = {
    **MEMORY_513,
    "detail": "We're under heavy load right now and couldn't finish this query. Please try "
    "again in a few minutes.",
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (504, TIMEOUT_504),
        (504, API_TIMEOUT_504),
        (512, TOO_SLOW_512),
        (504, MEMORY_504),
        (512, MEMORY_513),
        (513, MEMORY_513),
    ],
)
def test_posthogs_query_timeout_is_a_query_timeout_error_not_retried(
    tmp_path: Path, status: int, body: dict[str, Any]
) -> None:
    ph, adapter = mocked_connection(tmp_path, retry=RETRY)
    adapter.register_uri("POST", QUERY_URL, status_code=status, json=body)
    with pytest.raises(php.QueryTimeoutError) as info:
        ph.query("select count() from events")
    assert isinstance(info.value, php.ServerError)
    assert (info.value.status, info.value.detail) == (status, body["detail"])
    assert "narrow the time range, filter more or aggregate" in str(info.value)
    assert len([r for r in adapter.request_history if r.method == "POST"]) == 1


def test_a_full_cluster_is_retried_not_split(tmp_path: Path) -> None:
    ph, adapter = mocked_connection(tmp_path, retry=RETRY)
    adapter.register_uri(
        "POST",
        QUERY_URL,
        [
            {"status_code": 513, "json": CLUSTER_MEMORY_513},
            {"status_code": 200, "json": {"results": [[3]], "columns": ["n"], "types": ["UInt64"]}},
        ],
    )
    assert ph.query("select count() as n from events")["n"].tolist() == [3]
    assert len([r for r in adapter.request_history if r.method == "POST"]) == 2


def test_a_proxys_html_504_is_still_retried_as_a_server_error(tmp_path: Path) -> None:
    ph, adapter = mocked_connection(tmp_path, retry=RETRY)
    html = b"<html><head><title>504 Gateway Time-out</title></head></html>"
    adapter.register_uri(
        "POST", QUERY_URL, status_code=504, content=html, headers={"Content-Type": "text/html"}
    )
    with pytest.raises(php.ServerError) as info:
        ph.query("select count() from events")
    assert not isinstance(info.value, php.QueryTimeoutError)
    assert len([r for r in adapter.request_history if r.method == "POST"]) == 4


# -- windows: the count after a full first page ------------------------------------------------

EVENT_COLUMNS = ["uuid", "timestamp", "event"]
EVENT_TYPES = ["UUID", "DateTime64(6, 'UTC')", "String"]


def events_answer(*rows: tuple[str, str]) -> dict[str, Any]:
    results = [[uuid, ts, "e"] for uuid, ts in rows]
    return {"json": {"columns": EVENT_COLUMNS, "types": EVENT_TYPES, "results": results}}


def test_a_count_stopped_at_posthogs_limit_reads_the_rest_one_page_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 2)
    ph, adapter = mocked_connection(tmp_path, retry=RETRY)
    query = adapter.register_uri(
        "POST",
        QUERY_URL,
        [
            events_answer(("u1", "2024-01-02T00:00:00Z"), ("u2", "2024-01-03T00:00:00Z")),
            {"status_code": 504, "json": TIMEOUT_504},  # the count
            events_answer(("u3", "2024-01-04T00:00:00Z")),
        ],
    )
    frame = ph.events(after=AFTER, before=BEFORE, columns=["event"])
    assert frame["uuid"].tolist() == ["u1", "u2", "u3"]
    sent = [r.json()["query"] for r in query.request_history]
    assert "count() AS events" in sent[1]["query"]
    assert "(timestamp, uuid) > " in sent[2]["query"]  # the keyset page after the first
    assert (
        sent[2]["values"]["__last_uuid"] == "u2"
        and sent[2]["values"]["__after"] == sent[0]["values"]["__after"]
    )
