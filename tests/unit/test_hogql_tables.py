"""The exact HogQL text and bound values each builder produces, one table per builder.

test_hogql_builders proves every text parses with PostHog's parser; these tables pin what
the texts say, written out literally, so that a change in generated HogQL shows in review.
They need no server and no parser.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from posthog_pandas.events import (
    EventCursor,
    EventFilter,
    events_query,
    property_condition,
    split_events_window,
)
from posthog_pandas.query import QueryPage, keyset_query

JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
SELECT_ALL = (
    "SELECT uuid, event, distinct_id, timestamp, properties, elements_chain, person_id FROM events "
)
WINDOW = (
    "WHERE timestamp >= toDateTime64({__after}, 6, 'UTC') "
    "AND timestamp < toDateTime64({__before}, 6, 'UTC')"
)
BOUNDS = {"__after": "2024-01-01 00:00:00.000000", "__before": "2024-02-01 00:00:00.000000"}

# -- property_condition: every operator and value type (index 2 names the placeholders) -------

PROPERTY_CONDITIONS = [
    pytest.param(
        dict(key="$browser", value="Chrome"),
        "((properties.$browser IS NOT NULL AND properties.$browser IN {__prop_2}))",
        {"__prop_2": ["Chrome"]},
        id="exact-text",
    ),
    pytest.param(
        dict(key="$browser", value=["Chrome", "Safari"], operator="exact"),
        "((properties.$browser IS NOT NULL AND properties.$browser IN {__prop_2}))",
        {"__prop_2": ["Chrome", "Safari"]},
        id="exact-list",
    ),
    pytest.param(
        dict(key="plan", value="free", operator="is_not", type="person"),
        "NOT (((person.properties.plan IS NOT NULL AND person.properties.plan IN {__prop_2})))",
        {"__prop_2": ["free"]},
        id="is_not-person",
    ),
    pytest.param(
        dict(key="beta", value=True),
        "((properties.beta IS NOT NULL AND properties.beta IN {__prop_2}))",
        {"__prop_2": ["true"]},
        id="exact-true",
    ),
    pytest.param(
        dict(key="beta", value=False, operator="is_not"),
        "NOT (((properties.beta IS NOT NULL AND properties.beta IN {__prop_2})))",
        {"__prop_2": ["false"]},
        id="is_not-false",
    ),
    pytest.param(
        dict(key="$screen_width", value=1024),
        (
            "((toFloat(properties.$screen_width) IS NOT NULL AND toFloat(properties.$screen_width) "
            "IN {__prop_2_n}))"
        ),
        {"__prop_2_n": [1024.0]},
        id="exact-number",
    ),
    pytest.param(
        dict(key="tier", value=["gold", 2, True, None]),
        (
            "((properties.tier IS NOT NULL AND properties.tier IN {__prop_2}) OR "
            "(toFloat(properties.tier) IS NOT NULL AND toFloat(properties.tier) IN {__prop_2_n}) "
            "OR properties.tier IS NULL)"
        ),
        {"__prop_2": ["gold", "true"], "__prop_2_n": [2.0]},
        id="exact-mixed-list",
    ),
    pytest.param(
        dict(key="$browser", value=None),
        "(properties.$browser IS NULL)",
        {},
        id="exact-none",
    ),
    pytest.param(
        dict(key="$current_url", value="/docs", operator="icontains"),
        (
            "(properties.$current_url IS NOT NULL AND (properties.$current_url ILIKE concat('%', "
            "{__prop_2_0}, '%')))"
        ),
        {"__prop_2_0": "/docs"},
        id="icontains",
    ),
    pytest.param(
        dict(key="$current_url", value=["/blog", "/news"], operator="not_icontains"),
        (
            "NOT (properties.$current_url IS NOT NULL AND (properties.$current_url ILIKE "
            "concat('%', {__prop_2_0}, '%') OR properties.$current_url ILIKE concat('%', "
            "{__prop_2_1}, '%')))"
        ),
        {"__prop_2_0": "/blog", "__prop_2_1": "/news"},
        id="not_icontains-list",
    ),
    pytest.param(
        dict(key="flag", value=True, operator="icontains"),
        (
            "(properties.flag IS NOT NULL AND (properties.flag ILIKE concat('%', {__prop_2_0}, "
            "'%')))"
        ),
        {"__prop_2_0": "true"},
        id="icontains-bool",
    ),
    pytest.param(
        dict(key="$screen_width", value=1024, operator="gt"),
        "toFloat(properties.$screen_width) > {__prop_2}",
        {"__prop_2": 1024.0},
        id="gt-int",
    ),
    pytest.param(
        dict(key="$screen_width", value=640.5, operator="gte"),
        "toFloat(properties.$screen_width) >= {__prop_2}",
        {"__prop_2": 640.5},
        id="gte-float",
    ),
    pytest.param(
        dict(key="age", value="30", operator="lt", type="person"),
        "toFloat(person.properties.age) < {__prop_2}",
        {"__prop_2": 30.0},
        id="lt-numeric-text-person",
    ),
    pytest.param(
        dict(key="age", value=65, operator="lte", type="person"),
        "toFloat(person.properties.age) <= {__prop_2}",
        {"__prop_2": 65.0},
        id="lte-person",
    ),
    pytest.param(
        dict(key="utm source", operator="is_set"),
        "properties.`utm source` IS NOT NULL",
        {},
        id="is_set-backticks",
    ),
    pytest.param(
        dict(key="a.b-c", operator="is_not_set", type="person"),
        "person.properties.`a.b-c` IS NULL",
        {},
        id="is_not_set-person-backticks",
    ),
]


@pytest.mark.parametrize(("prop", "text", "values"), PROPERTY_CONDITIONS)
def test_property_condition_text_and_values(
    prop: dict[str, Any], text: str, values: dict[str, Any]
) -> None:
    assert property_condition(prop, 2) == (text, values)


# -- events_query: each EventFilter field, with and without a keyset `last` --------------------

EVENTS_QUERIES = [
    pytest.param(
        EventFilter(after=JAN, before=FEB),
        1000,
        None,
        SELECT_ALL + WINDOW + " ORDER BY timestamp, uuid LIMIT 1000",
        BOUNDS,
        id="window",
    ),
    pytest.param(
        EventFilter(after=JAN, before=FEB, event="$pageview"),
        1000,
        None,
        SELECT_ALL + WINDOW + " AND event IN {__events} ORDER BY timestamp, uuid LIMIT 1000",
        {**BOUNDS, "__events": ["$pageview"]},
        id="event-str",
    ),
    pytest.param(
        EventFilter(after=JAN, before=FEB, event=["$pageview", "$autocapture"]),
        1000,
        None,
        SELECT_ALL + WINDOW + " AND event IN {__events} ORDER BY timestamp, uuid LIMIT 1000",
        {**BOUNDS, "__events": ["$pageview", "$autocapture"]},
        id="event-list",
    ),
    pytest.param(
        EventFilter(after=JAN, before=FEB, distinct_id="user-1"),
        1000,
        None,
        SELECT_ALL
        + WINDOW
        + " AND distinct_id = {__distinct_id} ORDER BY timestamp, uuid LIMIT 1000",
        {**BOUNDS, "__distinct_id": "user-1"},
        id="distinct_id",
    ),
    pytest.param(
        EventFilter(after=JAN, before=FEB, person_id="0190-aa"),
        1000,
        None,
        SELECT_ALL + WINDOW + " AND person_id = {__person_id} ORDER BY timestamp, uuid LIMIT 1000",
        {**BOUNDS, "__person_id": "0190-aa"},
        id="person_id",
    ),
    pytest.param(
        EventFilter(
            after=JAN,
            before=FEB,
            properties=[
                {"key": "$browser", "value": "Chrome"},
                {"key": "age", "value": 30, "operator": "gt", "type": "person"},
            ],
        ),
        1000,
        None,
        SELECT_ALL
        + WINDOW
        + (
            " AND ((properties.$browser IS NOT NULL AND properties.$browser IN {__prop_0})) AND "
            "toFloat(person.properties.age) > {__prop_1} ORDER BY timestamp, uuid LIMIT 1000"
        ),
        {**BOUNDS, "__prop_0": ["Chrome"], "__prop_1": 30.0},
        id="properties",
    ),
    pytest.param(
        EventFilter(after=JAN, before=FEB, where="properties.$os = 'Mac OS X' OR event = 'x'"),
        1000,
        None,
        SELECT_ALL
        + WINDOW
        + " AND (properties.$os = 'Mac OS X' OR event = 'x') ORDER BY timestamp, uuid LIMIT 1000",
        BOUNDS,
        id="where",
    ),
    pytest.param(
        EventFilter(
            after=JAN,
            before=FEB,
            columns=[
                "event",
                "timestamp",
                "properties.$browser",
                "properties.utm source",
                "properties.a-b",
            ],
        ),
        1000,
        None,
        (
            "SELECT uuid, timestamp, event, properties.$browser AS `properties.$browser`, "
            "properties.`utm source` AS `properties.utm source`, properties.`a-b` AS "
            "`properties.a-b` FROM events WHERE timestamp >= toDateTime64({__after}, 6, 'UTC') AND "
            "timestamp < toDateTime64({__before}, 6, 'UTC') ORDER BY timestamp, uuid LIMIT 1000"
        ),
        BOUNDS,
        id="columns-backticks",
    ),
    pytest.param(
        EventFilter(after=JAN, before=FEB, event="$pageview"),
        500,
        ("2024-01-10T12:00:00.250000+01:00", "0190aaaa-0000-7000-8000-000000000001"),
        SELECT_ALL
        + WINDOW
        + (
            " AND event IN {__events} AND timestamp >= toDateTime64({__last_ts}, 6, 'UTC') AND "
            "(timestamp, uuid) > (toDateTime64({__last_ts}, 6, 'UTC'), toUUID({__last_uuid})) "
            "ORDER BY timestamp, uuid LIMIT 500"
        ),
        {
            **BOUNDS,
            "__events": ["$pageview"],
            "__last_ts": "2024-01-10 11:00:00.250000",
            "__last_uuid": "0190aaaa-0000-7000-8000-000000000001",
        },
        id="keyset-offset-timestamp",
    ),
    pytest.param(
        EventFilter(after=JAN, before=FEB),
        500,
        ("2024-01-10T12:00:00Z", "u"),
        SELECT_ALL
        + WINDOW
        + (
            " AND timestamp >= toDateTime64({__last_ts}, 6, 'UTC') AND (timestamp, uuid) > "
            "(toDateTime64({__last_ts}, 6, 'UTC'), toUUID({__last_uuid})) ORDER BY timestamp, uuid "
            "LIMIT 500"
        ),
        {**BOUNDS, "__last_ts": "2024-01-10 12:00:00.000000", "__last_uuid": "u"},
        id="keyset-z-timestamp",
    ),
]


@pytest.mark.parametrize(("flt", "page_size", "last", "sql", "values"), EVENTS_QUERIES)
def test_events_query_text_and_values(
    flt: EventFilter,
    page_size: int,
    last: EventCursor | None,
    sql: str,
    values: dict[str, Any],
) -> None:
    assert events_query(flt, page_size, last) == (sql, values)


# -- keyset_query: the next page of a user's query, after the previous page's last row ---------

KEYSET_QUERIES = [
    pytest.param(
        "select timestamp, uuid from events order by timestamp, uuid",
        ["timestamp", "uuid"],
        ["timestamp", "uuid"],
        ["DateTime64(6, 'UTC')", "UUID"],
        ["2024-01-10T12:00:00Z", "0190aaaa-0000-7000-8000-000000000001"],
        None,
        (
            "SELECT * FROM (select timestamp, uuid from events) WHERE timestamp >= "
            "toDateTime64({__keyset_0}, 6, 'UTC') AND (timestamp, uuid) > "
            "(toDateTime64({__keyset_0}, 6, 'UTC'), toUUID({__keyset_1})) ORDER BY timestamp, uuid "
            "LIMIT 1000"
        ),
        {
            "__keyset_0": "2024-01-10 12:00:00.000000",
            "__keyset_1": "0190aaaa-0000-7000-8000-000000000001",
        },
        id="datetime-z-and-uuid",
    ),
    pytest.param(
        (
            "SELECT timestamp, uuid FROM events WHERE event = {e} ORDER BY timestamp, uuid LIMIT "
            "100000;"
        ),
        ["timestamp", "uuid"],
        ["timestamp", "uuid"],
        ["DateTime64(6, 'America/Los_Angeles')", "UUID"],
        ["2024-01-10T04:00:00.5-08:00", "u1"],
        {"e": "$pageview"},
        (
            "SELECT * FROM (SELECT timestamp, uuid FROM events WHERE event = {e}) WHERE timestamp "
            ">= toDateTime64({__keyset_0}, 6, 'UTC') AND (timestamp, uuid) > "
            "(toDateTime64({__keyset_0}, 6, 'UTC'), toUUID({__keyset_1})) ORDER BY timestamp, uuid "
            "LIMIT 1000"
        ),
        {"e": "$pageview", "__keyset_0": "2024-01-10 12:00:00.500000", "__keyset_1": "u1"},
        id="offset-limit-semicolon-user-values",
    ),
    pytest.param(
        "select distinct_id, count() as n from events group by distinct_id order by distinct_id",
        ["distinct_id"],
        ["distinct_id", "n"],
        ["String", "UInt64"],
        ["d-9", 4],
        None,
        (
            "SELECT * FROM (select distinct_id, count() as n from events group by distinct_id) "
            "WHERE (distinct_id) > ({__keyset_0}) ORDER BY distinct_id LIMIT 1000"
        ),
        {"__keyset_0": "d-9"},
        id="string-key",
    ),
    pytest.param(
        "select n, uuid from t order by n, uuid limit 10 ;",
        ["n", "uuid"],
        ["n", "uuid"],
        ["Int64", "UUID"],
        [42, "u2"],
        {"x": 1},
        (
            "SELECT * FROM (select n, uuid from t) WHERE n >= {__keyset_0} AND (n, uuid) > "
            "({__keyset_0}, toUUID({__keyset_1})) ORDER BY n, uuid LIMIT 1000"
        ),
        {"x": 1, "__keyset_0": 42, "__keyset_1": "u2"},
        id="number-then-uuid",
    ),
    pytest.param(
        "select ts from t order by ts",
        ["ts"],
        ["ts"],
        ["DateTime"],
        ["2024-01-10 12:00:00"],
        None,
        (
            "SELECT * FROM (select ts from t) WHERE (ts) > (toDateTime64({__keyset_0}, 6, 'UTC')) "
            "ORDER BY ts LIMIT 1000"
        ),
        {"__keyset_0": "2024-01-10 12:00:00.000000"},
        id="naive-datetime",
    ),
]


@pytest.mark.parametrize(
    ("hogql", "keys", "columns", "types", "last_row", "values", "sql", "bound"), KEYSET_QUERIES
)
def test_keyset_query_text_and_values(
    hogql: str,
    keys: list[str],
    columns: list[str],
    types: list[str],
    last_row: list[Any],
    values: dict[str, Any] | None,
    sql: str,
    bound: dict[str, Any],
) -> None:
    last = QueryPage(columns=columns, types=types, results=[["first"] * len(columns), last_row])
    assert keyset_query(hogql, keys, last, 1000, values) == (sql, bound)


# -- split_events_window: a timed-out window as two halves -------------------------------------

PAGEVIEWS = EventFilter(after=JAN, before=FEB, event="$pageview")
SPLITS = [
    pytest.param(
        PAGEVIEWS,
        None,
        (
            (
                EventFilter(
                    after=JAN, before=datetime(2024, 1, 16, 12, tzinfo=UTC), event="$pageview"
                ),
                None,
            ),
            (
                EventFilter(
                    after=datetime(2024, 1, 16, 12, tzinfo=UTC), before=FEB, event="$pageview"
                ),
                None,
            ),
        ),
        id="whole-window",
    ),
    pytest.param(
        PAGEVIEWS,
        ("2024-01-16T12:00:00+01:00", "u"),  # the rest after the cursor: 11:00 UTC onwards
        (
            (
                EventFilter(
                    after=JAN, before=datetime(2024, 1, 24, 5, 30, tzinfo=UTC), event="$pageview"
                ),
                ("2024-01-16T12:00:00+01:00", "u"),
            ),
            (
                EventFilter(
                    after=datetime(2024, 1, 24, 5, 30, tzinfo=UTC), before=FEB, event="$pageview"
                ),
                None,
            ),
        ),
        id="after-a-non-utc-cursor",
    ),
    pytest.param(
        EventFilter(after=JAN, before=JAN + timedelta(seconds=1, microseconds=1)),
        None,
        (
            (EventFilter(after=JAN, before=JAN + timedelta(microseconds=500_000)), None),
            (
                EventFilter(
                    after=JAN + timedelta(microseconds=500_000),
                    before=JAN + timedelta(seconds=1, microseconds=1),
                ),
                None,
            ),
        ),
        id="just-over-a-second",
    ),
    pytest.param(
        EventFilter(after=JAN, before=JAN + timedelta(milliseconds=999)),
        None,
        None,
        id="under-a-second-is-not-split",
    ),
]


@pytest.mark.parametrize(("flt", "last", "halves"), SPLITS)
def test_split_events_window_halves(
    flt: EventFilter, last: EventCursor | None, halves: object
) -> None:
    assert split_events_window(flt, last) == halves
