"""The HogQL engine: exact rows, columns, types and errors on hand-written DuckDB tables."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import duckdb
import pytest

from posthog_pandas.server.data import TABLES_DDL
from posthog_pandas.server.hogql import (
    LOCAL_LIMITATION,
    OFFSET_NOT_ALLOWED_MESSAGE,
    HogQLEngine,
    HogQLError,
    HogQLResult,
)

NOW = datetime(2024, 1, 7, 12, 0, 0, tzinfo=UTC)  # a Sunday

ROWS = """
INSERT INTO events VALUES
 ('a1', '$pageview', 'd1', '2024-01-05 10:00:00+00',
  '{"$browser": "Chrome", "address": {"city": "Paris"}, "n": "3.7", "$current_url": "https://x.com/a"}',
  'div:nth-child="1"', '2024-01-05 10:00:01+00', 'p1'),
 ('a2', '$pageview', 'd2', '2024-01-05 10:00:00+00', '{"$browser": "Firefox", "n": 2}',
  '', '2024-01-05 10:00:02+00', 'p2'),
 ('a3', 'click', 'd1', '2024-01-06 11:30:00.123+00', '{"$browser": "Chrome", "n": 5}',
  '', '2024-01-06 11:30:01+00', 'p1'),
 ('a4', '$pageview', 'd3', '2024-01-08 23:59:59+00', '{"tags": ["x", "y"], "flag": true}',
  '', '2024-01-09 00:00:00+00', 'p3'),
 ('a5', 'signup', 'd2', '2024-02-01 00:00:00+00', '{}', '', '2024-02-01 00:00:00+00', 'p2');
INSERT INTO persons VALUES
 ('p1', '2024-01-01 00:00:00+00', '{"email": "a@x.com", "plan": "pro"}', true),
 ('p2', '2024-01-02 08:30:00+00', '{"email": "b@y.org"}', false);
INSERT INTO person_distinct_ids VALUES ('d1', 'p1'), ('d2', 'p2'), ('d3', 'p3');
INSERT INTO groups VALUES (0, 'acme', '{"name": "Acme", "size": "10"}', '2024-01-01 00:00:00+00');
INSERT INTO cohort_people VALUES (1, 'p1'), (1, 'p2'), (2, 'p1');
"""


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute(TABLES_DDL)
    c.execute(ROWS)
    return c


@pytest.fixture
def engine(conn: duckdb.DuckDBPyConnection) -> HogQLEngine:
    return HogQLEngine(conn, now=lambda: NOW)


def rows(engine: HogQLEngine, query: str, values: dict[str, Any] | None = None) -> list[list[Any]]:
    return engine.run(query, values).results


def one(engine: HogQLEngine, expression: str, where: str = "uuid = 'a1'") -> Any:
    """The value of one expression on one event."""
    return rows(engine, f"SELECT {expression} FROM events WHERE {where}")[0][0]


def error(engine: HogQLEngine, query: str, values: dict[str, Any] | None = None) -> str:
    with pytest.raises(HogQLError) as info:
        engine.run(query, values)
    assert info.value.code == "invalid_input"
    return info.value.detail


# ---- SELECT * and result shape -------------------------------------------------------------


def test_select_star_on_events(engine: HogQLEngine) -> None:
    result = engine.run("SELECT * FROM events WHERE uuid IN ('a1', 'a3') ORDER BY uuid")
    assert isinstance(result, HogQLResult)
    assert result.columns == [
        "uuid",
        "event",
        "properties",
        "timestamp",
        "distinct_id",
        "elements_chain",
        "created_at",
        "person_id",
    ]
    assert result.types == [
        "String",
        "String",
        "String",
        "DateTime64(6, 'UTC')",
        "String",
        "String",
        "DateTime64(6, 'UTC')",
        "String",
    ]
    assert result.results == [
        [
            "a1",
            "$pageview",
            '{"$browser": "Chrome", "address": {"city": "Paris"}, "n": "3.7", '
            '"$current_url": "https://x.com/a"}',
            "2024-01-05T10:00:00Z",
            "d1",
            'div:nth-child="1"',
            "2024-01-05T10:00:01Z",
            "p1",
        ],
        [
            "a3",
            "click",
            '{"$browser": "Chrome", "n": 5}',
            "2024-01-06T11:30:00.123000Z",
            "d1",
            "",
            "2024-01-06T11:30:01Z",
            "p1",
        ],
    ]
    assert result.has_more is False
    assert result.limit == 100
    assert result.hogql == "SELECT * FROM events WHERE uuid IN ('a1', 'a3') ORDER BY uuid"
    assert result.clickhouse.startswith('SELECT "events"."uuid" AS "uuid"')
    assert result.clickhouse.endswith("LIMIT 101")


def test_select_star_on_other_tables(engine: HogQLEngine) -> None:
    persons = engine.run("SELECT * FROM persons ORDER BY id")
    assert persons.columns == ["id", "created_at", "properties", "is_identified"]
    assert persons.types == ["String", "DateTime64(6, 'UTC')", "String", "Bool"]
    assert persons.results[1] == ["p2", "2024-01-02T08:30:00Z", '{"email": "b@y.org"}', False]
    groups = engine.run("SELECT * FROM groups")
    assert groups.columns == ["group_type_index", "group_key", "group_properties", "created_at"]
    assert groups.types == ["Int32", "String", "String", "DateTime64(6, 'UTC')"]
    assert rows(engine, "SELECT g.key, g.index, g.properties.name FROM groups g") == [
        ["acme", 0, "Acme"]
    ]
    assert rows(engine, "SELECT * FROM person_distinct_ids ORDER BY distinct_id") == [
        ["d1", "p1"],
        ["d2", "p2"],
        ["d3", "p3"],
    ]
    assert rows(
        engine, "SELECT cohort_id, count() FROM cohort_people GROUP BY cohort_id ORDER BY cohort_id"
    ) == [[1, 2], [2, 1]]


def test_qualified_star_and_column_names(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT p.*, e.event FROM events e JOIN persons p ON p.id = e.person_id WHERE e.uuid = 'a1'"
    )
    assert result.columns == ["id", "created_at", "properties", "is_identified", "event"]
    assert result.results == [
        ["p1", "2024-01-01T00:00:00Z", '{"email": "a@x.com", "plan": "pro"}', True, "$pageview"]
    ]


# ---- property access -----------------------------------------------------------------------


def test_property_access_forms(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT properties.$browser, properties.address.city, properties['$browser'], "
        "properties['address']['city'], events.properties.n, e.properties.$current_url, "
        "properties.missing, properties.n "
        "FROM events e WHERE e.uuid = 'a1'"
    )
    assert result.columns == [
        "properties.$browser",
        "properties.address.city",
        "properties.$browser",
        "properties.address.city",
        "events.properties.n",
        "e.properties.$current_url",
        "properties.missing",
        "properties.n",
    ]
    assert result.types == ["Nullable(String)"] * 8
    assert result.results == [
        ["Chrome", "Paris", "Chrome", "Paris", "3.7", "https://x.com/a", None, "3.7"]
    ]


def test_property_values_are_strings(engine: HogQLEngine) -> None:
    # numbers and booleans come back as their JSON text, objects/arrays as JSON
    assert one(engine, "properties.n", "uuid = 'a2'") == "2"
    assert one(engine, "properties.flag", "uuid = 'a4'") == "true"
    assert one(engine, "properties.tags", "uuid = 'a4'") == '["x","y"]'
    assert one(engine, "properties.address", "uuid = 'a1'") == '{"city":"Paris"}'
    assert one(engine, "properties") == (
        '{"$browser": "Chrome", "address": {"city": "Paris"}, "n": "3.7", '
        '"$current_url": "https://x.com/a"}'
    )


def test_property_in_where_group_and_order(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT properties.$browser AS browser, count() FROM events "
        "WHERE properties.$browser IS NOT NULL GROUP BY browser ORDER BY browser",
    ) == [["Chrome", 2], ["Firefox", 1]]


def test_person_fields_on_events(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT uuid, person_id, person.id, person.properties.email, person.created_at, "
        "person.is_identified FROM events ORDER BY uuid"
    )
    assert result.columns == [
        "uuid",
        "person_id",
        "person.id",
        "person.properties.email",
        "person.created_at",
        "person.is_identified",
    ]
    assert result.types == [
        "String",
        "String",
        "String",
        "Nullable(String)",
        "DateTime64(6, 'UTC')",
        "Bool",
    ]
    assert result.results == [
        ["a1", "p1", "p1", "a@x.com", "2024-01-01T00:00:00Z", True],
        ["a2", "p2", "p2", "b@y.org", "2024-01-02T08:30:00Z", False],
        ["a3", "p1", "p1", "a@x.com", "2024-01-01T00:00:00Z", True],
        ["a4", "p3", "p3", None, None, None],  # no persons row: LEFT JOIN
        ["a5", "p2", "p2", "b@y.org", "2024-01-02T08:30:00Z", False],
    ]


def test_person_properties_filter_and_group(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT person.properties.email AS email, count() AS c FROM events e "
        "WHERE e.person.properties.email LIKE '%@x.com' OR person.properties.plan = 'pro' "
        "GROUP BY email ORDER BY c DESC",
    ) == [["a@x.com", 2]]


# ---- keyset pagination ---------------------------------------------------------------------


def test_tuple_comparison_with_ties(engine: HogQLEngine) -> None:
    query = (
        "SELECT uuid FROM events WHERE (timestamp, uuid) {op} "
        "(toDateTime('2024-01-05 10:00:00'), 'a1') ORDER BY timestamp, uuid"
    )
    assert rows(engine, query.format(op=">")) == [["a2"], ["a3"], ["a4"], ["a5"]]
    assert rows(engine, query.format(op=">=")) == [["a1"], ["a2"], ["a3"], ["a4"], ["a5"]]
    assert rows(engine, query.format(op="<")) == []
    assert rows(engine, query.format(op="<=")) == [["a1"]]
    assert rows(engine, query.format(op="=")) == [["a1"]]
    assert rows(engine, query.format(op="!=")) == [["a2"], ["a3"], ["a4"], ["a5"]]


def test_keyset_paging_visits_every_row_once(engine: HogQLEngine) -> None:
    seen: list[str] = []
    cursor: tuple[str, str] | None = None
    while True:
        where = ""
        values: dict[str, Any] = {}
        if cursor is not None:
            where = "WHERE (timestamp, uuid) > (toDateTime({ts}), {id})"
            values = {"ts": cursor[0], "id": cursor[1]}
        page = engine.run(
            f"SELECT uuid, toString(timestamp) FROM events {where} "
            "ORDER BY timestamp, uuid LIMIT 2",
            values,
        )
        seen += [r[0] for r in page.results]
        if not page.has_more:
            break
        cursor = (page.results[-1][1], page.results[-1][0])
    assert seen == ["a1", "a2", "a3", "a4", "a5"]


def test_keyset_with_iso_string_and_desc(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT uuid FROM events WHERE timestamp < '2024-01-06T11:30:00.123Z' "
        "ORDER BY timestamp DESC, uuid DESC",
    ) == [["a2"], ["a1"]]


# ---- clauses -------------------------------------------------------------------------------


def test_where_in_between_case_distinct_having(engine: HogQLEngine) -> None:
    assert rows(engine, "SELECT DISTINCT event FROM events ORDER BY event") == [
        ["$pageview"],
        ["click"],
        ["signup"],
    ]
    assert rows(
        engine,
        "SELECT uuid FROM events WHERE timestamp BETWEEN '2024-01-05' AND '2024-01-07' "
        "AND event NOT IN ('signup') ORDER BY uuid",
    ) == [["a1"], ["a2"], ["a3"]]
    assert rows(
        engine,
        "SELECT uuid, CASE WHEN event = 'click' THEN 'c' WHEN event = 'signup' THEN 's' "
        "ELSE 'other' END FROM events ORDER BY uuid",
    ) == [["a1", "other"], ["a2", "other"], ["a3", "c"], ["a4", "other"], ["a5", "s"]]
    assert rows(
        engine,
        "SELECT distinct_id, count() AS c FROM events GROUP BY distinct_id HAVING c > 1 "
        "ORDER BY c DESC, distinct_id",
    ) == [["d1", 2], ["d2", 2]]
    assert rows(
        engine,
        "SELECT event, distinct_id FROM events ORDER BY event DESC, distinct_id ASC, uuid",
    ) == [
        ["signup", "d2"],
        ["click", "d1"],
        ["$pageview", "d1"],
        ["$pageview", "d2"],
        ["$pageview", "d3"],
    ]


def test_subqueries_and_joins(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT event, c FROM (SELECT event, count() AS c FROM events GROUP BY event) AS t "
        "WHERE c > 1",
    ) == [["$pageview", 3]]
    assert rows(
        engine,
        "SELECT count() FROM events WHERE person_id IN "
        "(SELECT person_id FROM cohort_people WHERE cohort_id = 2)",
    ) == [[2]]
    assert rows(
        engine,
        "SELECT e.uuid, pdi.person_id, p.properties.email FROM events e "
        "INNER JOIN person_distinct_ids pdi ON pdi.distinct_id = e.distinct_id "
        "LEFT JOIN persons p ON p.id = pdi.person_id WHERE e.event = '$pageview' ORDER BY e.uuid",
    ) == [["a1", "p1", "a@x.com"], ["a2", "p2", "b@y.org"], ["a4", "p3", None]]
    # a subquery's JSON column can still be traversed
    assert rows(
        engine,
        "SELECT s.properties.$browser FROM (SELECT properties FROM events WHERE uuid = 'a2') s",
    ) == [["Firefox"]]


def test_alias_shadowing_a_column(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT toStartOfDay(timestamp) AS timestamp, count() FROM events "
        "GROUP BY timestamp ORDER BY timestamp LIMIT 2",
    ) == [["2024-01-05T00:00:00Z", 2], ["2024-01-06T00:00:00Z", 1]]


def test_window_function(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT uuid, row_number() OVER (PARTITION BY distinct_id ORDER BY timestamp) "
        "FROM events WHERE distinct_id = 'd1' ORDER BY uuid",
    ) == [["a1", 1], ["a3", 2]]


# ---- functions -----------------------------------------------------------------------------


def test_aggregates(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT count(), count(properties.$browser), count(DISTINCT distinct_id), "
        "uniq(distinct_id), uniqExact(event), sum(toInt(properties.n)), "
        "avg(toFloat(properties.n)), min(timestamp), max(uuid), "
        "countIf(event = '$pageview'), sumIf(toInt(properties.n), event = 'click'), "
        "avgIf(toFloat(properties.n), event = '$pageview'), argMax(uuid, timestamp), "
        "argMin(uuid, timestamp), quantile(0.5)(toFloat(properties.n)) FROM events"
    )
    assert result.results == [
        [
            5,
            3,
            3,
            3,
            3,
            10,
            3.5666666666666664,
            "2024-01-05T10:00:00Z",
            "a5",
            3,
            5,
            2.85,
            "a5",
            "a1",
            3.7,
        ]
    ]
    assert result.types == [
        "UInt64", "UInt64", "UInt64", "UInt64", "UInt64", "Int64", "Float64",
        "DateTime64(6, 'UTC')", "String", "UInt64", "Int64", "Float64", "String", "String",
        "Float64",
    ]  # fmt: skip
    assert result.columns[:3] == [
        "count()",
        "count(properties.$browser)",
        "count(DISTINCT distinct_id)",
    ]


def test_group_array_and_any(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT distinct_id, groupArray(uuid), any(event), groupArray(properties.$browser) "
        "FROM (SELECT * FROM events ORDER BY uuid) GROUP BY distinct_id ORDER BY distinct_id"
    )
    assert result.types == ["String", "Array(String)", "String", "Array(String)"]
    got = [[r[0], sorted(r[1]), r[2], sorted(r[3])] for r in result.results]
    assert got == [
        ["d1", ["a1", "a3"], got[0][2], ["Chrome", "Chrome"]],
        ["d2", ["a2", "a5"], got[1][2], ["Firefox"]],  # NULLs are skipped, like ClickHouse
        ["d3", ["a4"], "$pageview", []],
    ]
    assert got[0][2] in ("$pageview", "click")


def test_date_functions(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT toDate(timestamp), toDateTime('2024-03-01 12:34:56'), toStartOfHour(timestamp), "
        "toStartOfDay(timestamp), toStartOfWeek(timestamp), toStartOfWeek(timestamp, 1), "
        "toStartOfMonth(timestamp), toYear(timestamp), toMonth(timestamp), "
        "toDayOfWeek(timestamp), toHour(timestamp), toUnixTimestamp(timestamp) "
        "FROM events WHERE uuid = 'a3'"
    )
    assert result.results == [
        [
            "2024-01-06",
            "2024-03-01T12:34:56Z",
            "2024-01-06T11:00:00Z",
            "2024-01-06T00:00:00Z",
            "2023-12-31",  # weeks start on Sunday by default (mode 0)
            "2024-01-01",  # mode 1: Monday
            "2024-01-01",
            2024,
            1,
            6,  # Saturday
            11,
            1704540600,
        ]
    ]
    assert result.types == [
        "Date", "DateTime64(6, 'UTC')", "DateTime64(6, 'UTC')", "DateTime64(6, 'UTC')",
        "Date", "Date", "Date", "Int64", "Int64", "Int64", "Int64", "Int64",
    ]  # fmt: skip


def test_now_today_and_interval_arithmetic(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT now(), today(), yesterday(), now() - INTERVAL 1 DAY, now() + INTERVAL 2 HOUR, "
        "now() - INTERVAL 1 WEEK, now() - INTERVAL 1 MONTH, today() - INTERVAL 3 DAY",
    ) == [
        [
            "2024-01-07T12:00:00Z",
            "2024-01-07",
            "2024-01-06",
            "2024-01-06T12:00:00Z",
            "2024-01-07T14:00:00Z",
            "2023-12-31T12:00:00Z",
            "2023-12-07T12:00:00Z",
            "2024-01-04T00:00:00Z",
        ]
    ]
    assert rows(
        engine, "SELECT uuid FROM events WHERE timestamp > now() - INTERVAL 2 DAY ORDER BY uuid"
    ) == [["a3"], ["a4"], ["a5"]]


def test_now_keeps_microseconds(conn: duckdb.DuckDBPyConnection) -> None:
    engine = HogQLEngine(conn, now=lambda: datetime(2024, 1, 7, 12, 0, 0, 250000, tzinfo=UTC))
    assert rows(engine, "SELECT now()") == [["2024-01-07T12:00:00.250000Z"]]


def test_date_diff_add_sub(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT dateDiff('day', timestamp, now()), dateDiff('hour', timestamp, now()), "
        "dateAdd('day', 2, timestamp), dateSub('month', 1, timestamp), "
        "dateAdd(timestamp, INTERVAL 1 HOUR) FROM events WHERE uuid = 'a1'",
    ) == [[2, 50, "2024-01-07T10:00:00Z", "2023-12-05T10:00:00Z", "2024-01-05T11:00:00Z"]]


def test_date_bucketing(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT toStartOfDay(timestamp) AS day, count() FROM events GROUP BY day ORDER BY day",
    ) == [
        ["2024-01-05T00:00:00Z", 2],
        ["2024-01-06T00:00:00Z", 1],
        ["2024-01-08T00:00:00Z", 1],
        ["2024-02-01T00:00:00Z", 1],
    ]
    assert rows(
        engine,
        "SELECT toStartOfWeek(timestamp) AS week, count() FROM events GROUP BY week ORDER BY week",
    ) == [["2023-12-31", 3], ["2024-01-07", 1], ["2024-01-28", 1]]
    assert rows(
        engine,
        "SELECT toStartOfMonth(timestamp) AS m, uniq(distinct_id) FROM events GROUP BY m "
        "ORDER BY m",
    ) == [["2024-01-01", 3], ["2024-02-01", 1]]


def test_conversions(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT toString(timestamp), toString(toDate(timestamp)), toString(42), "
        "toInt(properties.n), toInt64('12'), toFloat(properties.n), toFloat64('1.5'), "
        "toDateTime(1704448800) FROM events WHERE uuid = 'a1'"
    )
    assert result.results == [
        ["2024-01-05 10:00:00", "2024-01-05", "42", 3, 12, 3.7, 1.5, "2024-01-05T10:00:00Z"]
    ]
    assert result.types == [
        "String", "String", "String", "Int64", "Int64", "Float64", "Float64",
        "DateTime64(6, 'UTC')",
    ]  # fmt: skip


def test_string_functions(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT lower(event), upper(distinct_id), length(event), length('héllo'), "
        "concat(event, '-', distinct_id), like(event, '%view'), event ILIKE '$PAGE%', "
        "event NOT LIKE 'c%' FROM events WHERE uuid = 'a1'",
    ) == [["$pageview", "D1", 9, 6, "$pageview-d1", True, True, True]]


def test_conditional_and_math_functions(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT if(event = 'click', 'yes', 'no'), multiIf(uuid = 'a1', 1, uuid = 'a2', 2, 3), "
        "coalesce(properties.missing, properties.$browser), ifNull(properties.missing, 'x'), "
        "round(3.14159, 2), round(2.6), floor(2.7) FROM events WHERE uuid = 'a2'",
    ) == [["no", 2, "Firefox", "x", 3.14, 3.0, 2.0]]


def test_json_functions(engine: HogQLEngine) -> None:
    assert rows(
        engine,
        "SELECT JSONExtractString(properties, 'address', 'city'), "
        "JSONExtractString(properties, 'nope'), JSONExtractInt(properties, 'n'), "
        "JSONExtractFloat(properties, 'n'), JSONHas(properties, '$browser'), "
        "JSONHas(properties, 'nope') FROM events WHERE uuid = 'a1'",
    ) == [["Paris", "", 3, 3.7, True, False]]
    assert one(engine, "JSONExtractString(properties, 'tags', 2)", "uuid = 'a4'") == "y"


def test_array_functions(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT splitByChar(',', 'a,b,c'), has(splitByChar(',', 'a,b'), 'b'), "
        "has(['x'], 'y'), length(splitByChar(',', 'a,b,c'))"
    )
    assert result.results == [[["a", "b", "c"], True, False, 3]]
    assert result.types == ["Array(String)", "Bool", "Bool", "Int64"]
    assert rows(engine, "SELECT arrayJoin(splitByChar(',', 'a,b')) AS x ORDER BY x") == [
        ["a"],
        ["b"],
    ]


def test_list_of_datetimes_is_json_ready(engine: HogQLEngine) -> None:
    result = engine.run("SELECT groupArray(timestamp) FROM events WHERE distinct_id = 'd1'")
    assert result.types == ["Array(DateTime64(6, 'UTC'))"]
    assert sorted(result.results[0][0]) == ["2024-01-05T10:00:00Z", "2024-01-06T11:30:00.123000Z"]


def test_column_names_and_edge_values(engine: HogQLEngine) -> None:
    result = engine.run(
        "SELECT toDateTime(timestamp), e.event AS ev, 1 -- {x} a comment\n"
        "FROM events e /* {y} */ WHERE uuid = 'a1'"
    )
    assert result.columns == ["toDateTime(timestamp)", "ev", "1"]
    result = engine.run("SELECT sum(1), count(), NULL FROM events WHERE 1 = 0")
    assert (result.results, result.types) == (
        [[0, 0, None]],
        ["Int64", "UInt64", "Nullable(Nothing)"],
    )


def test_function_names_are_checked(engine: HogQLEngine) -> None:
    assert error(engine, "SELECT nosuch(1)") == "Unsupported function call 'nosuch(...)'"
    assert error(engine, "SELECT toDate()") == "Function 'toDate' expects 1 argument, found 0"
    assert error(engine, "SELECT dateDiff('fortnight', now(), now())").startswith(
        "Unknown date unit 'fortnight'"
    )
    assert rows(engine, "SELECT COUNT(*), Sum(1) FROM events") == [[5, 5]]


# ---- LIMIT ---------------------------------------------------------------------------------


def test_limit_rules(engine: HogQLEngine) -> None:
    result = engine.run("SELECT uuid FROM events ORDER BY uuid")
    assert (result.limit, result.has_more, len(result.results)) == (100, False, 5)
    result = engine.run("SELECT uuid FROM events ORDER BY uuid LIMIT 2")
    assert (result.limit, result.has_more, result.results) == (2, True, [["a1"], ["a2"]])
    result = engine.run("SELECT uuid FROM events ORDER BY uuid LIMIT 5")
    assert (result.limit, result.has_more, len(result.results)) == (5, False, 5)
    result = engine.run("SELECT uuid FROM events LIMIT 60000")
    assert (result.limit, result.has_more) == (50_000, False)
    assert result.clickhouse.endswith("LIMIT 50001")


def test_default_and_max_limit_apply(conn: duckdb.DuckDBPyConnection) -> None:
    engine = HogQLEngine(conn, default_limit=3, max_limit=4, now=lambda: NOW)
    result = engine.run("SELECT uuid FROM events ORDER BY uuid")
    assert (result.limit, result.has_more, result.results) == (3, True, [["a1"], ["a2"], ["a3"]])
    result = engine.run("SELECT uuid FROM events ORDER BY uuid LIMIT 10")
    assert (result.limit, result.has_more, len(result.results)) == (4, True, 4)
    # a subquery's own LIMIT is left alone
    assert rows(engine, "SELECT count() FROM (SELECT uuid FROM events LIMIT 10)") == [[5]]


def test_default_limit_is_100_on_many_rows(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        "INSERT INTO events SELECT 'g' || i, 'gen', 'd', TIMESTAMPTZ '2024-03-01 00:00:00+00' "
        "+ i * INTERVAL 1 SECOND, '{}', '', NULL, NULL FROM range(150) t(i)"
    )
    result = HogQLEngine(conn).run("SELECT uuid FROM events WHERE event = 'gen'")
    assert (result.limit, result.has_more, len(result.results)) == (100, True, 100)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT uuid FROM events LIMIT 10 OFFSET 5",
        "SELECT uuid FROM events LIMIT 5, 10",
        "SELECT uuid FROM events OFFSET 5",
        "SELECT count() FROM (SELECT uuid FROM events LIMIT 1 OFFSET 1)",
        "SELECT uuid FROM nosuchtable LIMIT 1 OFFSET 1",
    ],
)
def test_offset_is_rejected_with_posthogs_message(engine: HogQLEngine, query: str) -> None:
    assert error(engine, query) == OFFSET_NOT_ALLOWED_MESSAGE
    assert OFFSET_NOT_ALLOWED_MESSAGE.startswith(
        "OFFSET is not supported on queries made with a personal API key. "
        "For pagination, use keyset pagination on the `timestamp` column"
    )


def test_limit_must_be_a_constant(engine: HogQLEngine) -> None:
    assert error(engine, "SELECT 1 FROM events LIMIT (SELECT 1)") == (
        "LIMIT must be a constant non-negative integer"
    )


# ---- placeholders --------------------------------------------------------------------------


def test_placeholders_of_every_type(engine: HogQLEngine) -> None:
    values = {
        "event": "$pageview",
        "ids": ["a1", "a2", "a4"],
        "n": 2,
        "x": 1.5,
        "flag": True,
        "nothing": None,
        "since": datetime(2024, 1, 5, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        "day": date(2024, 1, 8),
    }
    assert rows(
        engine,
        "SELECT uuid, {n} + {x}, {flag}, {nothing} FROM events WHERE event = {event} "
        "AND uuid IN {ids} AND timestamp >= {since} AND toDate(timestamp) < {day} ORDER BY uuid",
        values,
    ) == [["a1", 3.5, True, None], ["a2", 3.5, True, None]]
    assert rows(engine, "SELECT count() FROM events WHERE uuid IN {ids}", {"ids": []}) == [[0]]
    assert rows(engine, "SELECT { ev }", {"ev": "it's"}) == [["it's"]]


def test_unknown_placeholder(engine: HogQLEngine) -> None:
    assert error(engine, "SELECT 1 FROM events WHERE event = {ev}", {"other": 1}) == (
        "Placeholder {ev} is not available in this context. You can use the following: other"
    )
    assert error(engine, "SELECT 1 FROM {tbl}", {"tbl": "events"}) == (
        "Placeholder {tbl} can only be used as a value"
    )
    assert error(engine, "SELECT {v}", {"v": {"a": 1}}) == (
        "Placeholder {v} has a value of unsupported type dict"
    )


def test_placeholder_injection_is_inert(
    engine: HogQLEngine, conn: duckdb.DuckDBPyConnection
) -> None:
    evil = "x'); DROP TABLE events; --"
    assert rows(engine, "SELECT uuid FROM events WHERE event = {ev}", {"ev": evil}) == []
    assert rows(engine, "SELECT uuid FROM events WHERE uuid IN {ids}", {"ids": [evil]}) == []
    assert rows(engine, "SELECT {ev}", {"ev": evil}) == [[evil]]
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (5,)
    # braces inside string literals are text, not placeholders
    assert rows(engine, "SELECT '{ev}'", {"ev": evil}) == [["{ev}"]]


# ---- read-only and resolution errors ------------------------------------------------------


def _not_hogql(keyword: str) -> str:
    """PostHog's parser on a statement that is not a SELECT."""
    return f"mismatched input '{keyword}' expecting {{SELECT, WITH, '{{', '(', '<'}}"


def _local(detail: str) -> str:
    """A HogQLUnsupported detail: valid HogQL that only this local server cannot run."""
    return f"{detail} ({LOCAL_LIMITATION})"


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("INSERT INTO events VALUES (1)", _not_hogql("INSERT")),
        ("DROP TABLE events", _not_hogql("DROP")),
        ("ATTACH 'x.db' AS x", _not_hogql("ATTACH")),
        ("COPY events TO 'x.csv'", _not_hogql("COPY")),
        ("PRAGMA version", _not_hogql("PRAGMA")),
        ("CREATE TABLE t (a INT)", _not_hogql("CREATE")),
        ("SELECT 1; DROP TABLE events", "mismatched input 'DROP' expecting <EOF>"),
        ("SELECT 1; SELECT 2", "mismatched input 'SELECT' expecting <EOF>"),
        (
            "SELECT * FROM read_csv('/etc/passwd')",
            "Table functions are not supported: read_csv('/etc/passwd')",
        ),
        (
            "SELECT * FROM read_parquet('x.parquet')",
            "Table functions are not supported: read_parquet('x.parquet')",
        ),
        ("SELECT read_text('/etc/passwd')", "Unsupported function call 'read_text(...)'"),
        (
            "SELECT * FROM '/etc/passwd'",
            "no viable alternative at input 'SELECT * FROM '/etc/passwd''",
        ),
        ("SELECT * FROM system.tables", 'Unknown table "system.tables".'),
        ("SELECT * FROM main.events", 'Unknown table "main.events".'),
        ("SELECT * FROM duckdb_tables()", "Table functions are not supported: duckdb_tables()"),
        (
            "WITH x AS (SELECT 1) SELECT * FROM x",
            _local("WITH (common table expressions) is not supported"),
        ),
        ("SELECT 1 UNION ALL SELECT 2", _local("Only SELECT queries are supported, got UNION")),
        (
            "SELECT 1 FROM events SETTINGS max_threads = 1",
            "Unsupported: SelectStmt.settingsClause()",
        ),
        ("SELECT uuid FROM events LIMIT 1 BY event", _local("LIMIT BY is not supported")),
    ],
)
def test_read_only(engine: HogQLEngine, conn: duckdb.DuckDBPyConnection, query: str,
                   detail: str) -> None:  # fmt: skip
    assert error(engine, query) == detail
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (5,)


def test_unknown_table_and_field(engine: HogQLEngine) -> None:
    assert error(engine, "SELECT 1 FROM sessions") == 'Unknown table "sessions".'
    assert error(engine, "SELECT nope FROM events") == "Unable to resolve field: nope"
    assert error(engine, "SELECT e.nope FROM events e") == "Unable to resolve field: e.nope"
    assert error(engine, "SELECT event.x FROM events") == "Unable to resolve field: event.x"
    assert error(engine, "SELECT person.nope FROM events") == (
        "Unable to resolve field: person.nope"
    )
    assert error(engine, "SELECT x FROM events WHERE uuid = 'a'") == ("Unable to resolve field: x")
    assert error(engine, "SELECT s.nope FROM (SELECT uuid FROM events) s") == (
        "Unable to resolve field: s.nope"
    )


def test_syntax_errors_are_posthogs(engine: HogQLEngine) -> None:
    detail = error(engine, "SELECT uuid FROM events WHERE")
    assert detail == "no viable alternative at input 'SELECT uuid FROM events WHERE'"
    assert error(engine, "") == _not_hogql("<EOF>")


def test_local_parse_errors_have_position(engine: HogQLEngine) -> None:
    # PostHog's parser accepts this (a table named WHERE); sqlglot, the local engine, does not.
    # Positions refer to the query as written, even after `$name` quoting and placeholders.
    detail = error(engine, "SELECT properties.$a, {x}\nFROM WHERE", {"x": 1})
    assert detail == _local("Syntax error at line 2, column 6: Expected table name but got 'WHERE'")


def test_runtime_errors_become_hogql_errors(engine: HogQLEngine) -> None:
    detail = error(engine, "SELECT toDate('not a date')")
    assert "Conversion Error" in detail


# ---- concurrency ---------------------------------------------------------------------------


def test_concurrent_runs(engine: HogQLEngine) -> None:
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert engine.run("SELECT count() FROM events").results == [[5]]
                assert engine.run("SELECT max(timestamp) FROM events").results == [
                    ["2024-02-01T00:00:00Z"]
                ]
        except BaseException as e:  # surfaced below
            failures.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
