"""The local server's model of PostHog's query time limit, live ingestion (late events), events
replaced wholesale (the twins' agreement tests), and HogQL's toFloat on text that is not a
number."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import requests

from posthog_pandas.server import LocalPostHog

pytestmark = pytest.mark.integration

# ClickHouseQueryTimeOut (posthog/exceptions.py) as drf-exceptions-hog renders it.
POSTHOG_TIMEOUT = {
    "type": "server_error",
    "code": "error",
    "detail": "Query has hit the max execution time before completing. See our docs for how to "
    "improve your query performance. You may need to materialize.",
    "attr": None,
}


@pytest.fixture()
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=300, events=3000, seed=5, max_scan_rows=1000) as server:
        yield server


def run_query(srv: LocalPostHog, sql: str) -> requests.Response:
    return requests.post(
        f"{srv.url}/api/projects/1/query/",
        json={"query": {"kind": "HogQLQuery", "query": sql}},
        headers={"Authorization": f"Bearer {srv.api_key}"},
    )


def test_a_query_that_sorts_more_rows_than_the_budget_gets_posthogs_timeout(
    srv: LocalPostHog,
) -> None:
    page = "SELECT uuid FROM events {} ORDER BY timestamp, uuid LIMIT 10"
    r = run_query(srv, page.format(""))  # sorts all 3,000 events for its 10 rows
    assert (r.status_code, r.json()) == (504, POSTHOG_TIMEOUT)
    narrow = page.format("WHERE timestamp < toDateTime64('2024-01-08 00:00:00', 6, 'UTC')")
    expected = srv.dataset().events
    assert (expected["timestamp"] < datetime(2024, 1, 8, tzinfo=UTC)).sum() <= 1000
    r = run_query(srv, narrow)
    assert r.status_code == 200
    assert [row[0] for row in r.json()["results"]] == list(expected["uuid"][:10])
    assert run_query(srv, "SELECT count() FROM events").json()["results"] == [[3000]]
    srv.max_scan_rows = None
    assert run_query(srv, page.format("")).status_code == 200


def test_the_default_budget_is_above_any_demo_data() -> None:
    assert LocalPostHog().max_scan_rows == 5_000_000


def test_ingested_events_are_served_like_generated_ones(srv: LocalPostHog) -> None:
    data = srv.dataset()
    did = str(data.person_distinct_ids["distinct_id"].iloc[0])
    person = str(data.person_distinct_ids["person_id"].iloc[0])
    late = datetime(2024, 1, 3, 12, 0, 0, 250000, tzinfo=UTC)  # a past timestamp: late
    (uuid,) = srv.ingest_events(
        [{"event": "late", "distinct_id": did, "timestamp": late, "properties": {"n": 1}}]
    )
    events = srv.dataset().events
    assert len(events) == 3001
    assert events["timestamp"].is_monotonic_increasing
    row = events[events["uuid"] == uuid].iloc[0]
    assert (row["event"], row["person_id"], row["timestamp"]) == ("late", person, late)
    srv.max_scan_rows = None
    r = run_query(srv, f"SELECT event, properties.n, person_id FROM events WHERE uuid = '{uuid}'")
    assert r.json()["results"] == [["late", "1", person]]
    listed = requests.get(
        f"{srv.url}/api/projects/1/events/",
        params={"event": "late"},
        headers={"Authorization": f"Bearer {srv.api_key}"},
    ).json()["results"]
    assert [(e["id"], orjson.loads(orjson.dumps(e["properties"]))) for e in listed] == [
        (uuid, {"n": 1})
    ]


def test_replaced_events_are_the_only_ones_served(srv: LocalPostHog) -> None:
    data = srv.dataset()
    did = str(data.person_distinct_ids["distinct_id"].iloc[0])
    person = str(data.person_distinct_ids["person_id"].iloc[0])
    when = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    (uuid,) = srv.replace_events([{"event": "only", "distinct_id": did, "timestamp": when}])
    events = srv.dataset().events
    assert events[["uuid", "event", "person_id", "timestamp"]].values.tolist() == [
        [uuid, "only", person, when]
    ]
    r = run_query(srv, "SELECT uuid, event, person_id FROM events")
    assert r.json()["results"] == [[uuid, "only", person]]
    srv.replace_events([])
    assert len(srv.dataset().events) == 0
    assert run_query(srv, "SELECT count() FROM events").json()["results"] == [[0]]


@pytest.mark.parametrize(("text", "value"), [("'abc'", None), ("'1.5'", 1.5), ("'true'", None)])
def test_to_float_of_text_that_is_not_a_number_is_null(
    srv: LocalPostHog, text: str, value: Any
) -> None:
    # HogQL's toFloat is accurateCastOrNull(x, 'Float64') (conversions.py): NULL, not an error
    r = run_query(srv, f"SELECT toFloat({text})")
    assert (r.status_code, r.json()["results"]) == (200, [[value]])
