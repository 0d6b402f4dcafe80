"""Projects with a timezone: HogQL reads DateTimes in it, as PostHog's printer does.

PostHog wraps every DateTime field in `toTimeZone(field, team.timezone)`
(posthog/hogql/transforms/property_types.py), so day functions group by local day, a string
compared with a DateTime is a local wall time, and results are rendered with the zone's
offset by orjson with OPT_UTC_Z (posthog/renderers.py). REST lists keep UTC timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd
import pytest
import requests

from posthog_pandas.server import LocalPostHog
from posthog_pandas.server.data import TABLES_DDL
from posthog_pandas.server.hogql import HogQLEngine

NOW = datetime(2024, 1, 7, 12, 0, 0, tzinfo=UTC)

ROWS = """
INSERT INTO events VALUES
 ('e1', 'a', 'd1', '2024-01-05 10:00:00+00', '{}', '', '2024-01-05 10:00:00+00', 'p1'),
 ('e2', 'a', 'd1', '2024-01-08 23:59:59.25+00', '{}', '', '2024-01-08 23:59:59.25+00', 'p1'),
 ('e3', 'b', 'd2', '2024-02-01 00:00:00+00', '{}', '', '2024-02-01 00:00:00+00', 'p2'),
 ('e4', 'b', 'd2', '2024-03-10 12:00:00+00', '{}', '', '2024-03-10 12:00:00+00', 'p2');
"""

# e4 is after the US switch to summer time (2024-03-10 10:00 UTC): its offset is -07:00.
RENDERED = {
    "UTC": [
        "2024-01-05T10:00:00Z",
        "2024-01-08T23:59:59.250000Z",
        "2024-02-01T00:00:00Z",
        "2024-03-10T12:00:00Z",
    ],
    "America/Los_Angeles": [
        "2024-01-05T02:00:00-08:00",
        "2024-01-08T15:59:59.250000-08:00",
        "2024-01-31T16:00:00-08:00",
        "2024-03-10T05:00:00-07:00",
    ],
    "Asia/Kolkata": [
        "2024-01-05T15:30:00+05:30",
        "2024-01-09T05:29:59.250000+05:30",
        "2024-02-01T05:30:00+05:30",
        "2024-03-10T17:30:00+05:30",
    ],
    # orjson's OPT_UTC_Z writes any zero offset as "Z", not only the UTC zone's
    "Europe/London": [
        "2024-01-05T10:00:00Z",
        "2024-01-08T23:59:59.250000Z",
        "2024-02-01T00:00:00Z",
        "2024-03-10T12:00:00Z",
    ],
}


def events_table() -> duckdb.DuckDBPyConnection:
    """The server's tables holding the four events of ROWS."""
    c = duckdb.connect()
    c.execute(TABLES_DDL)
    c.execute(ROWS)
    return c


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    return events_table()


def run(conn: duckdb.DuckDBPyConnection, zone: str, sql: str, **values: Any) -> list[list[Any]]:
    return HogQLEngine(conn, now=lambda: NOW, timezone=zone).run(sql, values or None).results


@pytest.mark.parametrize("zone", list(RENDERED))
def test_datetimes_are_rendered_with_the_projects_offset(
    conn: duckdb.DuckDBPyConnection, zone: str
) -> None:
    result = HogQLEngine(conn, timezone=zone).run(
        "SELECT timestamp, toStartOfDay(timestamp) AS day FROM events ORDER BY timestamp"
    )
    assert [row[0] for row in result.results] == RENDERED[zone]
    assert result.types == [f"DateTime64(6, '{zone}')"] * 2
    midnights = [row[1] for row in result.results]
    assert [m[:10] for m in midnights] == [r[:10] for r in RENDERED[zone]]  # the local day
    assert all(m[10:19] == "T00:00:00" for m in midnights)


def test_day_functions_group_by_the_projects_local_day(conn: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT toDate(timestamp) AS day, count() AS n FROM events GROUP BY day ORDER BY day"
    assert run(conn, "UTC", sql) == [
        ["2024-01-05", 1],
        ["2024-01-08", 1],
        ["2024-02-01", 1],
        ["2024-03-10", 1],
    ]
    assert run(conn, "America/Los_Angeles", sql) == [
        ["2024-01-05", 1],
        ["2024-01-08", 1],
        ["2024-01-31", 1],
        ["2024-03-10", 1],
    ]
    assert run(conn, "Asia/Kolkata", sql) == [
        ["2024-01-05", 1],
        ["2024-01-09", 1],
        ["2024-02-01", 1],
        ["2024-03-10", 1],
    ]
    hours = "SELECT toHour(timestamp), toMonth(timestamp) FROM events ORDER BY timestamp"
    assert run(conn, "Asia/Kolkata", hours) == [[15, 1], [5, 1], [5, 2], [17, 3]]
    assert run(conn, "America/Los_Angeles", hours) == [[2, 1], [15, 1], [16, 1], [5, 3]]


def test_a_string_compared_with_a_datetime_is_a_local_wall_time(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    # PostHog rewrites `toTimeZone(timestamp, tz) >= '2024-02-01'` to
    # `timestamp >= toDateTime64('2024-02-01', 6, tz)`: local midnight.
    since = "SELECT uuid FROM events WHERE timestamp >= '2024-02-01' ORDER BY uuid"
    assert run(conn, "UTC", since) == [["e3"], ["e4"]]
    assert run(conn, "America/Los_Angeles", since) == [["e4"]]  # e3 is Jan 31, 16:00 there
    assert run(conn, "Asia/Kolkata", since) == [["e3"], ["e4"]]
    wall = "SELECT uuid FROM events WHERE timestamp = toDateTime('2024-01-31 16:00:00')"
    assert run(conn, "America/Los_Angeles", wall) == [["e3"]]
    assert run(conn, "UTC", wall) == []
    # An explicit zone, or a bound datetime, is the same instant in every project.
    for zone in RENDERED:
        utc = "SELECT uuid FROM events WHERE timestamp = toDateTime64({t}, 6, 'UTC')"
        assert run(conn, zone, utc, t="2024-02-01 00:00:00") == [["e3"]]
        bound = "SELECT uuid FROM events WHERE timestamp >= {t} ORDER BY uuid"
        assert run(conn, zone, bound, t=datetime(2024, 2, 1, tzinfo=UTC)) == [["e3"], ["e4"]]


def test_now_is_in_the_project_timezone(conn: duckdb.DuckDBPyConnection) -> None:
    assert run(conn, "America/Los_Angeles", "SELECT now()") == [["2024-01-07T04:00:00-08:00"]]
    assert run(conn, "Asia/Kolkata", "SELECT now()") == [["2024-01-07T17:30:00+05:30"]]


def test_a_timezone_that_is_not_an_iana_name_is_refused(conn: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match=r"timezone='Mars/Olympus' is not an IANA time zone"):
        LocalPostHog(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="is not an IANA time zone name"):
        HogQLEngine(conn, timezone="UTC'; SELECT 1; --")


# ---- over HTTP ------------------------------------------------------------------------------

ZONE = "Asia/Kolkata"  # a non-whole-hour offset


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=60, events=800, seed=3, timezone=ZONE) as server:
        yield server


def get(srv: LocalPostHog, path: str) -> Any:
    r = requests.get(f"{srv.url}{path}", headers={"Authorization": f"Bearer {srv.api_key}"})
    assert r.status_code == 200, r.text
    return r.json()


def query(srv: LocalPostHog, sql: str) -> Any:
    r = requests.post(
        f"{srv.url}/api/projects/1/query/",
        json={"query": {"kind": "HogQLQuery", "query": sql}},
        headers={"Authorization": f"Bearer {srv.api_key}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.integration
def test_the_team_shows_its_timezone_where_posthog_does(srv: LocalPostHog) -> None:
    assert srv.timezone == ZONE
    assert get(srv, "/api/users/@me/")["team"]["timezone"] == ZONE
    assert get(srv, "/api/projects/1/")["timezone"] == ZONE
    assert {t["timezone"] for t in get(srv, "/api/organizations/@current/")["teams"]} == {ZONE}
    assert get(srv, "/api/projects/1/insights/1/")["timezone"] == ZONE


@pytest.mark.integration
def test_hogql_answers_in_the_project_timezone_and_rest_lists_in_utc(srv: LocalPostHog) -> None:
    events = srv.dataset().events
    body = query(srv, "SELECT uuid, timestamp FROM events ORDER BY timestamp, uuid LIMIT 5")
    assert body["types"] == ["String", f"DateTime64(6, '{ZONE}')"]
    assert all(row[1].endswith("+05:30") for row in body["results"])
    instants = pd.to_datetime([row[1] for row in body["results"]], utc=True, format="ISO8601")
    assert list(instants) == list(events["timestamp"].iloc[:5])

    days = query(
        srv, "SELECT toDate(timestamp) AS day, count() AS n FROM events GROUP BY day ORDER BY day"
    )
    local = events["timestamp"].dt.tz_convert(ZONE).dt.strftime("%Y-%m-%d").value_counts()
    assert days["results"] == [[day, int(n)] for day, n in sorted(local.items())]

    # The events list renders `timestamp.astimezone().isoformat()` on a UTC server, persons
    # go through DRF (TIME_ZONE = "UTC"): neither follows the project's timezone.
    listed = get(srv, "/api/projects/1/events/?limit=3")["results"]
    assert all(e["timestamp"].endswith("+00:00") for e in listed)
    persons = get(srv, "/api/projects/1/persons/?limit=3")["results"]
    assert all(p["created_at"].endswith("Z") for p in persons)
