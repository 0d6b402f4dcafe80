"""Accessor behaviour that needs a scripted server: fallbacks, stale copies, argument checks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import requests

import posthog_pandas as php
from tests.conftest import MOCK_HOST, mocked_connection

HOST = MOCK_HOST


def test_events_fall_back_to_the_list_without_a_query_api(tmp_path: Path) -> None:
    ph, adapter = mocked_connection(tmp_path)
    adapter.register_uri(
        "POST",
        f"{HOST}/api/projects/3/query/",
        status_code=404,
        json={
            "type": "invalid_request",
            "code": "not_found",
            "detail": "Endpoint not found.",
            "attr": None,
        },
    )
    adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/3/events/",
        json={
            "next": None,
            "results": [
                {
                    "id": "u2",
                    "event": "$pageview",
                    "distinct_id": "d",
                    "properties": {"a": 1},
                    "timestamp": "2024-01-02T00:00:00Z",
                    "elements": [],
                    "elements_chain": "",
                },
                {
                    "id": "u1",
                    "event": "$pageview",
                    "distinct_id": "d",
                    "properties": {"a": 2},
                    "timestamp": "2024-01-01T00:00:00Z",
                    "elements": [],
                    "elements_chain": "",
                },
            ],
        },
    )
    with pytest.warns(UserWarning, match="no query API"):
        frame = ph.events(after="2024-01-01", before="2024-01-03", event="$pageview")
    assert frame["uuid"].tolist() == ["u2", "u1"]
    assert frame["properties.a"].tolist() == [1, 2]
    listed = [r for r in adapter.request_history if r.path.endswith("/events/")][-1]
    assert listed.qs["event"] == ["$pageview"] and listed.qs["limit"] == ["1000"]
    with pytest.warns(UserWarning, match="no query API"):
        one = ph.events(after="2024-01-01", before="2024-01-03", event="$pageview", limit=1)
    assert one["uuid"].tolist() == ["u2"]  # the list's order: newest first
    assert adapter.request_history[-1].qs["limit"] == ["1"]  # asked for one row, not 1,000


def test_a_network_failure_returns_the_stale_copy_with_its_age(tmp_path: Path) -> None:
    ttl = php.CacheTTL(lists=0.0, frames=0.0)
    ph, adapter = mocked_connection(tmp_path, cache_ttl=ttl)
    adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/3/cohorts/",
        [
            {"json": {"count": 1, "next": None, "results": [{"id": 1, "name": "c"}]}},
            {"exc": requests.exceptions.ConnectionError("network down")},
        ],
    )
    assert ph.cohorts()["id"].tolist() == [1]
    with pytest.warns(
        UserWarning,
        match=r"failed \(TransportError\); using the cached copy from "
        r"\d+ seconds ago",
    ):
        again = ph.cohorts()
    assert again["id"].tolist() == [1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ph: ph.persons(email=5), "email must be a string, got int 5"),
        (lambda ph: ph.groups(9), "group_type_index must be an integer from 0 to 4, got 9"),
        (lambda ph: ph.events(after="yesterday-ish"), "after='yesterday-ish' is not a date"),
        (lambda ph: ph.events(after="2024-02-01", before="2024-01-01"), "must be earlier than"),
        (lambda ph: ph.events(properties="plan=pro"), "properties must be a list of filters"),
        (
            lambda ph: ph.events(properties=[{"key": "a", "operator": "near"}]),
            "operator 'near' is not supported",
        ),
        (lambda ph: ph.events(columns=["bad col"]), "'bad col' is not an events column"),
        (lambda ph: ph.property_definitions(type="cohort"), "use 'event', 'person', 'group'"),
        (lambda ph: ph.cohort_persons(0), "cohort_id must be a positive integer"),
        (lambda ph: ph.read("person"), "Did you mean 'persons'?"),
        (lambda ph: ph.query(""), "query() needs a HogQL SELECT statement"),
    ],
)
def test_bad_arguments_name_the_parameter(tmp_path: Path, call, message: str) -> None:
    ph, adapter = mocked_connection(tmp_path)
    before = adapter.call_count
    with pytest.raises(php.ConfigurationError) as info:
        call(ph)
    assert message in str(info.value)
    assert adapter.call_count == before  # nothing was sent


def test_misspelled_options_get_a_suggestion(tmp_path: Path) -> None:
    ph, _ = mocked_connection(tmp_path)
    with pytest.raises(
        TypeError, match="unexpected keyword argument 'refesh'. Did you mean 'refresh'?"
    ):
        ph.cohorts(refesh=True)  # type: ignore[call-arg]


def test_insight_result_is_a_tidy_time_series(tmp_path: Path) -> None:
    ph, adapter = mocked_connection(tmp_path)
    adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/3/insights/7/",
        json={
            "id": 7,
            "result": [
                {"label": "$pageview", "days": ["2024-01-01", "2024-01-02"], "data": [3, 4]},
                {
                    "label": "signed_up",
                    "breakdown_value": "Chrome",
                    "days": ["2024-01-01"],
                    "data": [1],
                },
            ],
        },
    )
    frame = ph.insight(7)
    assert frame.to_dict("list") == {
        "series": ["$pageview", "$pageview", "signed_up"],
        "breakdown_value": [None, None, "Chrome"],
        "date": list(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"], utc=True)),
        "value": [3.0, 4.0, 1.0],
    }
    assert [str(t) for t in frame.dtypes] == ["string", "string", "datetime64[ns, UTC]", "Float64"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-05T10:00:00Z", "2024-01-05 10:00:00.000000"),
        ("2024-01-05T11:00:00.250000+01:00", "2024-01-05 10:00:00.250000"),
        ("2024-01-05T05:00:00-05:00", "2024-01-05 10:00:00.000000"),
        ("2024-01-05 10:00:00", "2024-01-05 10:00:00.000000"),
    ],
)
def test_keyset_bound_is_the_same_instant_in_utc(value: str, expected: str) -> None:
    from posthog_pandas.query import hogql_timestamp as _hogql_timestamp

    assert _hogql_timestamp(value) == expected


def _query_answer(rows: int) -> dict[str, object]:
    # PostHog's answer to a query with LIMIT: no hasMore, no limit (only its paginator sets them)
    return {
        "columns": ["event"],
        "types": ["String"],
        "results": [["e"]] * rows,
        "hasMore": None,
        "limit": None,
        "offset": None,
    }


def test_a_query_that_got_its_own_limit_is_complete(tmp_path: Path) -> None:
    ph, adapter = mocked_connection(tmp_path)
    query = adapter.register_uri("POST", f"{HOST}/api/projects/3/query/", json=_query_answer(3))
    assert ph.query("select event from events limit 3")["event"].tolist() == ["e", "e", "e"]
    assert query.call_count == 1


def test_a_limit_above_posthogs_cap_without_keyset_order_is_refused(tmp_path: Path) -> None:
    # PostHog lowers LIMIT 60000 to 50,000 without a word: a full page may hide more rows
    ph, adapter = mocked_connection(tmp_path)
    adapter.register_uri("POST", f"{HOST}/api/projects/3/query/", json=_query_answer(50_000))
    with pytest.raises(
        php.TruncationError, match=r"cut this query's result at 50,000 rows \(PostHog "
    ):
        ph.query("select event from events limit 60000")
