"""frames.py: literal JSON pages and HogQL responses -> exact frames (rows, columns, dtypes)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pandas as pd
import pytest

from posthog_pandas.exceptions import ConfigurationError, ResponseFormatError
from posthog_pandas.frames import (
    SCHEMAS,
    Column,
    FrameOptions,
    clickhouse_dtype,
    empty_frame,
    hogql_events_to_frame,
    hogql_to_frame,
    json_text,
    records_to_frame,
)

UTC = "datetime64[ns, UTC]"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def _missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def rows(df: pd.DataFrame) -> list[list[Any]]:
    """Frame cells as plain Python values, every kind of missing as None."""
    return [
        [None if _missing(v) else v for v in row]
        for row in df.astype(object).itertuples(index=False)
    ]


def dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {str(name): str(dtype) for name, dtype in df.dtypes.items()}


def frame(records: Any, resource: str | None = None, **options: Any) -> pd.DataFrame:
    schema = SCHEMAS[resource] if resource else None
    return records_to_frame(records, schema, FrameOptions(**options))


# --- literal pages per resource -----------------------------------------------------------

PERSONS_PAGE: list[dict[str, Any]] = [
    {
        "type": "person",
        "id": "0190c7c4-1111-7000-8000-000000000001",
        "uuid": "0190c7c4-1111-7000-8000-000000000001",
        "created_at": "2024-03-01T09:30:00.123456Z",
        "last_seen_at": None,
        "properties": {"email": "ada@example.com", "$initial_os": "Mac OS X", "plan": "pro"},
        "is_identified": True,
        "name": "ada@example.com",
        "distinct_ids": ["ada", "0190c7c4-anon"],
        "matched_recordings": [],
        "value_at_data_point": None,
    },
    {
        "type": "person",
        "id": "0190c7c4-2222-7000-8000-000000000002",
        "uuid": "0190c7c4-2222-7000-8000-000000000002",
        "created_at": "2024-03-02T10:00:00+02:00",
        "last_seen_at": "2024-03-05T00:00:00Z",
        "properties": {"$initial_os": "Windows", "age": 41},
        "is_identified": False,
        "name": "anon-2",
        "distinct_ids": [],
        "matched_recordings": [],
        "value_at_data_point": None,
    },
]


def test_persons_page_exact() -> None:
    df = frame(PERSONS_PAGE, "persons")
    assert dtypes(df) == {
        "id": "string",
        "distinct_ids": "string",
        "name": "string",
        "created_at": UTC,
        "last_seen_at": UTC,
        "is_identified": "boolean",
        "properties.$initial_os": "string",
        "properties.age": "Int64",
        "properties.email": "string",
        "properties.plan": "string",
    }
    assert rows(df) == [
        [
            "0190c7c4-1111-7000-8000-000000000001",
            '["ada","0190c7c4-anon"]',
            "ada@example.com",
            ts("2024-03-01T09:30:00.123456Z"),
            None,
            True,
            "Mac OS X",
            None,
            "ada@example.com",
            "pro",
        ],
        [
            "0190c7c4-2222-7000-8000-000000000002",
            "[]",
            "anon-2",
            ts("2024-03-02T08:00:00Z"),
            ts("2024-03-05T00:00:00Z"),
            False,
            "Windows",
            41,
            None,
            None,
        ],
    ]
    assert list(df.index) == [0, 1]


def test_persons_raw_keeps_every_field_as_sent() -> None:
    df = frame(PERSONS_PAGE[:1], "persons", raw=True)
    assert dtypes(df) == {
        "id": "string",
        "distinct_ids": "string",
        "name": "string",
        "created_at": UTC,
        "last_seen_at": UTC,
        "is_identified": "boolean",
        "uuid": "string",
        "type": "string",
        "matched_recordings": "string",
        "value_at_data_point": "Float64",
        "properties.$initial_os": "string",
        "properties.email": "string",
        "properties.plan": "string",
    }
    uuid = "0190c7c4-1111-7000-8000-000000000001"
    assert rows(df)[0][6:10] == [uuid, "person", "[]", None]


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("resource", ["persons", "cohort_persons"])
def test_persons_columns_come_from_the_schema_not_the_rows(resource: str, raw: bool) -> None:
    full = frame(PERSONS_PAGE, resource, raw=raw)
    empty = frame([], resource, raw=raw)
    plain = [c for c in full.columns if not c.startswith("properties.")]
    assert plain == list(empty.columns)
    assert dtypes(full[plain]) == dtypes(empty)


def test_legacy_persons_keep_uuid_beside_the_numeric_id() -> None:
    record = {"id": 17, "uuid": "0190c7c4-1111", "name": "a", "distinct_ids": ["a"]}
    df = frame([record], "legacy_persons")
    assert list(df.columns) == [
        "id", "uuid", "distinct_ids", "name", "created_at", "is_identified"
    ]  # fmt: skip
    assert rows(df) == [["17", "0190c7c4-1111", '["a"]', "a", None, None]]
    assert list(df.columns) == list(frame([], "legacy_persons").columns)


def test_person_retrieve_numeric_id_is_text() -> None:
    df = frame([{"id": 17, "uuid": "u", "properties": {}}], "persons")
    assert df["id"].tolist() == ["17"]
    assert str(df["id"].dtype) == "string"


EVENTS_PAGE: list[dict[str, Any]] = [
    {
        "id": "0190c7c4-aaaa-7000-8000-000000000001",
        "distinct_id": "ada",
        "properties": {"$browser": "Chrome", "$screen_width": 1440, "$lib": "web"},
        "event": "$pageview",
        "timestamp": "2024-03-01T10:00:00.5-08:00",
        "person": None,
        "elements": [],
        "elements_chain": "",
    },
    {
        "id": "0190c7c4-aaaa-7000-8000-000000000002",
        "distinct_id": "bob",
        "properties": {"$browser": "Firefox", "$screen_width": 1024.5, "clicked": True},
        "event": "$autocapture",
        "timestamp": "2024-03-01T19:00:00Z",
        "person": None,
        "elements": [{"tag_name": "a", "text": "Buy", "order": 0}],
        "elements_chain": 'a:text="Buy"',
    },
]


def test_events_page_exact() -> None:
    df = frame(EVENTS_PAGE, "events")
    assert dtypes(df) == {
        "uuid": "string",
        "event": "string",
        "distinct_id": "string",
        "timestamp": UTC,
        "person_id": "string",
        "elements_chain": "string",
        "elements": "string",
        "properties.$browser": "string",
        "properties.$lib": "string",
        "properties.$screen_width": "Float64",
        "properties.clicked": "boolean",
    }
    assert rows(df) == [
        [
            "0190c7c4-aaaa-7000-8000-000000000001",
            "$pageview",
            "ada",
            ts("2024-03-01T18:00:00.5Z"),
            None,
            "",
            "[]",
            "Chrome",
            "web",
            1440.0,
            None,
        ],
        [
            "0190c7c4-aaaa-7000-8000-000000000002",
            "$autocapture",
            "bob",
            ts("2024-03-01T19:00:00Z"),
            None,
            'a:text="Buy"',
            '[{"order":0,"tag_name":"a","text":"Buy"}]',
            "Firefox",
            None,
            1024.5,
            True,
        ],
    ]


def test_events_include_person_flattens_person_properties() -> None:
    page = [
        {
            "id": "e1",
            "event": "x",
            "person": {
                "is_identified": True,
                "distinct_ids": ["ada"],
                "properties": {"email": "ada@example.com", "name": "Ada"},
            },
            "properties": {"a": 1},
        },
        {"id": "e2", "event": "y", "person": None, "properties": {"a": 2}},
    ]
    df = frame(page, "events")
    assert list(df.columns)[7:] == [
        "properties.a",
        "person.distinct_ids",
        "person.is_identified",
        "person.properties.email",
        "person.properties.name",
    ]
    assert rows(df[list(df.columns)[7:]]) == [
        [1, '["ada"]', True, "ada@example.com", "Ada"],
        [2, None, None, None, None],
    ]


def test_cohorts_page_exact() -> None:
    page = [
        {
            "id": 3,
            "name": "Power users",
            "description": "",
            "groups": [],
            "deleted": False,
            "filters": {"properties": {"type": "AND", "values": []}},
            "query": None,
            "is_calculating": False,
            "created_by": {"id": 1, "email": "ada@example.com"},
            "created_at": "2024-01-01T00:00:00Z",
            "last_calculation": "2024-01-02T00:00:00.000001Z",
            "errors_calculating": 0,
            "count": None,
            "is_static": True,
            "cohort_type": "static",
            "experiment_set": [4, 5],
        }
    ]
    df = frame(page, "cohorts")
    assert list(df.columns) == [c.name for c in SCHEMAS["cohorts"]]
    assert dtypes(df) == {
        "id": "Int64",
        "name": "string",
        "description": "string",
        "count": "Int64",
        "is_static": "boolean",
        "is_calculating": "boolean",
        "cohort_type": "string",
        "created_at": UTC,
        "last_calculation": UTC,
        "errors_calculating": "Int64",
        "deleted": "boolean",
        "created_by": "string",
        "filters": "string",
        "query": "string",
        "groups": "string",
        "experiment_set": "string",
    }
    assert rows(df) == [
        [
            3,
            "Power users",
            "",
            None,
            True,
            False,
            "static",
            ts("2024-01-01T00:00:00Z"),
            ts("2024-01-02T00:00:00.000001Z"),
            0,
            False,
            '{"email":"ada@example.com","id":1}',
            '{"properties":{"type":"AND","values":[]}}',
            None,
            "[]",
            "[4,5]",
        ]
    ]


def test_feature_flags_extra_keys_follow_schema_columns() -> None:
    page = [
        {
            "id": 9,
            "name": "New checkout",
            "key": "new-checkout",
            "filters": {"groups": [{"properties": [], "rollout_percentage": 50}]},
            "deleted": False,
            "active": True,
            "rollout_percentage": 50,
            "can_edit": True,
            "created_at": "2024-02-01T12:00:00Z",
            "surveys": [],
        }
    ]
    df = frame(page, "feature_flags")
    schema_names = [c.name for c in SCHEMAS["feature_flags"]]
    assert list(df.columns) == [*schema_names, "can_edit", "surveys"]
    assert str(df["rollout_percentage"].dtype) == "Float64"
    assert rows(df[["id", "key", "active", "rollout_percentage", "can_edit", "surveys"]]) == [
        [9, "new-checkout", True, 50.0, True, "[]"]
    ]
    assert df.loc[0, "filters"] == '{"groups":[{"properties":[],"rollout_percentage":50}]}'


def test_groups_flatten_group_properties() -> None:
    page = [
        {
            "group_type_index": 0,
            "group_key": "acme",
            "group_properties": {"industry": "retail", "seats": 12},
            "created_at": "2024-01-01T00:00:00Z",
        }
    ]
    df = frame(page, "groups")
    assert dtypes(df) == {
        "group_type_index": "Int64",
        "group_key": "string",
        "created_at": UTC,
        "group_properties.industry": "string",
        "group_properties.seats": "Int64",
    }
    assert rows(df) == [[0, "acme", ts("2024-01-01T00:00:00Z"), "retail", 12]]


def test_session_recordings_person_flattened() -> None:
    page = [
        {
            "id": "rec-1",
            "distinct_id": "ada",
            "viewed": False,
            "recording_duration": 61,
            "active_seconds": 12.5,
            "start_time": "2024-01-01T00:00:00Z",
            "end_time": "2024-01-01T00:01:01Z",
            "click_count": 3,
            "start_url": "https://example.com/",
            "person": {"id": 5, "uuid": "p-5", "properties": {"email": "ada@example.com"}},
        }
    ]
    df = frame(page, "session_recordings")
    assert list(df.columns)[-3:] == ["person.id", "person.properties.email", "person.uuid"]
    assert df.loc[0, "recording_duration"] == 61.0
    assert str(df["recording_duration"].dtype) == "Float64"
    assert str(df["keypress_count"].dtype) == "Int64"
    assert rows(df[list(df.columns)[-3:]]) == [[5, "ada@example.com", "p-5"]]


def _sample_value(dtype: str) -> tuple[Any, Any]:
    """A JSON value for a schema dtype and the cell it must become."""
    return {
        "string": ("text", "text"),
        "Int64": (7, 7),
        "Float64": (1.5, 1.5),
        "boolean": (True, True),
        "datetime": ("2024-05-06T07:08:09.123Z", ts("2024-05-06T07:08:09.123Z")),
        "json": ({"b": [1, 2], "a": None}, '{"a":null,"b":[1,2]}'),
    }[dtype]


@pytest.mark.parametrize("resource", sorted(SCHEMAS))
def test_every_schema_exact_with_literal_record(resource: str) -> None:
    schema = SCHEMAS[resource]
    record: dict[str, Any] = {}
    expected_row: list[Any] = []
    expected_dtypes: dict[str, str] = {}
    flattened: dict[str, Any] = {}
    for column in schema:
        if column.raw_only:  # sent, and left out of the frame
            record[column.name] = _sample_value(column.dtype)[0]
            continue
        if column.dtype == "json-flatten":
            record[column.name] = {"k": "v", "n": 1}
            flattened[f"{column.name}.k"] = "v"
            flattened[f"{column.name}.n"] = 1
            continue
        value, cell = _sample_value(column.dtype)
        record[column.name] = value
        expected_row.append(cell)
        expected_dtypes[column.name] = {"datetime": UTC, "json": "string"}.get(
            column.dtype, column.dtype
        )
    df = records_to_frame([record], schema)
    flat_types = {name: "Int64" if name.endswith(".n") else "string" for name in flattened}
    assert dtypes(df) == {**expected_dtypes, **flat_types}
    assert rows(df) == [[*expected_row, *flattened.values()]]
    assert df.to_csv(index=False).count("\n") == 2


@pytest.mark.parametrize("resource", sorted(SCHEMAS))
def test_every_schema_frame_to_csv(resource: str) -> None:
    records = [dict(r, extra={"deep": {"x": [1, {"y": None}]}}) for r in PERSONS_PAGE + EVENTS_PAGE]
    for options in (FrameOptions(), FrameOptions(flatten=False), FrameOptions(max_depth=3)):
        df = records_to_frame(records, SCHEMAS[resource], options)
        text = df.to_csv(index=False)
        assert len(df) == 4
        assert text.splitlines()[0].split(",")[0] == SCHEMAS[resource][0].name


# --- empty results ------------------------------------------------------------------------


@pytest.mark.parametrize("resource", sorted(SCHEMAS))
def test_empty_result_has_schema_columns_and_dtypes(resource: str) -> None:
    schema = SCHEMAS[resource]
    df = records_to_frame([], schema)
    expected = {
        c.name: {"datetime": UTC, "json": "string"}.get(c.dtype, c.dtype)
        for c in schema
        if c.dtype != "json-flatten" and not c.raw_only
    }
    assert dtypes(df) == expected
    assert len(df) == 0
    assert df.equals(empty_frame(schema))


def test_empty_result_without_flattening_keeps_properties_object() -> None:
    df = records_to_frame([], SCHEMAS["persons"], FrameOptions(flatten=False))
    assert list(df.columns) == [c.name for c in SCHEMAS["persons"] if not c.raw_only]
    assert str(df["properties"].dtype) == "object"
    assert str(df["distinct_ids"].dtype) == "object"


def test_empty_without_schema_is_empty_frame() -> None:
    df = records_to_frame([], None)
    assert df.shape == (0, 0)


def test_empty_pyarrow_backend() -> None:
    df = records_to_frame([], SCHEMAS["groups"], FrameOptions(dtype_backend="pyarrow"))
    assert dtypes(df) == {
        "group_type_index": "int64[pyarrow]",
        "group_key": "string[pyarrow]",
        "created_at": "timestamp[ns, tz=UTC][pyarrow]",
    }


# --- flattening ---------------------------------------------------------------------------

NESTED: list[dict[str, Any]] = [
    {
        "properties": {
            "address": {"city": "Paris", "geo": {"lat": 48.85}},
            "tags": ["a", "b"],
            "plain": 1,
        }
    },
    {"properties": {"address": {"city": "Oslo", "zip": "0150"}, "plain": 2}},
]


def test_flatten_depth_1_renders_nested_dicts_as_json_text() -> None:
    df = frame(NESTED)
    assert dtypes(df) == {
        "properties.address": "string",
        "properties.plain": "Int64",
        "properties.tags": "string",
    }
    assert rows(df) == [
        ['{"city":"Paris","geo":{"lat":48.85}}', 1, '["a","b"]'],
        ['{"city":"Oslo","zip":"0150"}', 2, None],
    ]


def test_flatten_depth_2() -> None:
    df = frame(NESTED, max_depth=2)
    assert dtypes(df) == {
        "properties.address.city": "string",
        "properties.address.geo": "string",
        "properties.address.zip": "string",
        "properties.plain": "Int64",
        "properties.tags": "string",
    }
    assert rows(df) == [
        ["Paris", '{"lat":48.85}', None, 1, '["a","b"]'],
        ["Oslo", None, "0150", 2, None],
    ]


def test_flatten_depth_3_reaches_leaf() -> None:
    df = frame(NESTED, max_depth=3)
    assert "properties.address.geo.lat" in df.columns
    assert str(df["properties.address.geo.lat"].dtype) == "Float64"


def test_flatten_depth_0_keeps_properties_as_json_text() -> None:
    df = frame(NESTED[:1], max_depth=0)
    assert list(df.columns) == ["properties"]
    assert df.loc[0, "properties"] == json_text(NESTED[0]["properties"])


def test_custom_separator() -> None:
    df = frame(NESTED, sep="__", max_depth=2)
    assert "properties__address__city" in df.columns


def test_flatten_false_keeps_python_objects() -> None:
    df = frame(PERSONS_PAGE, "persons", flatten=False)
    assert list(df.columns) == [c.name for c in SCHEMAS["persons"] if not c.raw_only]
    assert str(df["properties"].dtype) == "object"
    assert df.loc[0, "properties"] == PERSONS_PAGE[0]["properties"]
    assert df.loc[0, "distinct_ids"] == ["ada", "0190c7c4-anon"]
    assert str(df["distinct_ids"].dtype) == "object"


def test_flatten_false_extra_nested_keys_stay_objects() -> None:
    df = frame([{"a": {"x": 1}}, {"a": [1]}], flatten=False)
    assert rows(df) == [[{"x": 1}], [[1]]]


def test_mixed_dict_and_scalar_nested_key() -> None:
    df = frame([{"properties": {"a": {"b": 1}}}, {"properties": {"a": "n/a"}}], max_depth=2)
    # the dict parts become columns; the scalar lands in the column named after the path
    assert rows(df) == [[None, 1], ["n/a", None]]
    assert list(df.columns) == ["properties.a", "properties.a.b"]


def test_non_dict_properties_values() -> None:
    page = [
        {"properties": None},
        {"properties": '{"a": 1}'},
        {"properties": "not json"},
        {"properties": ""},
        {"properties": [1, 2]},
        {"properties": {"a": 2}},
    ]
    df = frame(page)
    assert list(df.columns) == ["properties", "properties.a"]
    assert rows(df) == [
        [None, None],
        [None, 1],
        ["not json", None],
        [None, None],
        ["[1,2]", None],
        [None, 2],
    ]


def test_stable_header_regardless_of_row_order() -> None:
    page = [
        {"properties": {"zeta": 1}},
        {"properties": {"alpha": "x", "$lib": "web"}},
        {"properties": {"Mid": True}},
    ]
    forward = frame(page)
    backward = frame(page[::-1])
    assert list(forward.columns) == list(backward.columns)
    assert list(forward.columns) == [
        "properties.$lib",
        "properties.Mid",
        "properties.alpha",
        "properties.zeta",
    ]


def test_late_appearing_keys() -> None:
    page = [{"id": i, "properties": {"a": i}} for i in range(5)]
    page.append({"id": 5, "properties": {"a": 5, "late": "yes"}, "late_top": 1.5})
    df = frame(page)
    assert list(df.columns) == ["id", "late_top", "properties.a", "properties.late"]
    assert df["properties.late"].tolist()[-2:] == [pd.NA, "yes"]
    assert df["late_top"].isna().sum() == 5
    assert str(df["late_top"].dtype) == "Float64"
    assert str(df["id"].dtype) == "Int64"


def test_unicode_keys_and_values() -> None:
    page = [{"name": "Zoë", "properties": {"città": "Zürich 🚀", "名前": "太郎"}}]
    df = frame(page)
    assert list(df.columns) == ["name", "properties.città", "properties.名前"]
    assert rows(df) == [["Zoë", "Zürich 🚀", "太郎"]]
    assert "Zürich 🚀" in df.to_csv(index=False)


# --- mixed-type rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype", "cells"),
    [
        ([True, False, None], "boolean", [True, False, None]),
        ([1, 2, None], "Int64", [1, 2, None]),
        ([1, 2.5, None], "Float64", [1.0, 2.5, None]),
        (["a", "b", None], "string", ["a", "b", None]),
        (["a", 1, None], "string", ["a", "1", None]),
        ([True, 1, None], "string", ["true", "1", None]),
        (["a", False, None], "string", ["a", "false", None]),
        ([1.5, "x", True], "string", ["1.5", "x", "true"]),
        ([[1], "x", {"b": 1, "a": 2}], "string", ["[1]", "x", '{"a":2,"b":1}']),
        ([2**64, 1, None], "string", ["18446744073709551616", "1", None]),
        ([2**63 - 1, -(2**63)], "Int64", [2**63 - 1, -(2**63)]),
        ([None, None, None], "object", [None, None, None]),
    ],
)
def test_mixed_type_rule(values: list[Any], dtype: str, cells: list[Any]) -> None:
    page: list[dict[str, Any]] = [
        {"properties": {"k": v}} if v is not None else {"properties": {}} for v in values
    ]
    page_with_nulls = [{"properties": {"k": v}} for v in values]
    for records in (page, page_with_nulls):
        df = frame(records)
        if dtype == "object" and records is page:
            assert list(df.columns) == []  # a key that never appears makes no column
            continue
        assert str(df["properties.k"].dtype) == dtype
        assert [None if _missing(v) else v for v in df["properties.k"].tolist()] == cells


def test_nan_and_inf_floats() -> None:
    df = frame([{"properties": {"x": float("nan")}}, {"properties": {"x": float("inf")}}])
    assert str(df["properties.x"].dtype) == "Float64"
    assert df["properties.x"].isna().tolist() == [True, False]
    assert df.loc[1, "properties.x"] == float("inf")
    assert df.to_csv(index=False).splitlines() == ["properties.x", '""', "inf"]


def test_schema_column_with_wrong_types_falls_back_to_mixed_rule() -> None:
    df = frame([{"id": "not-a-number"}, {"id": 3}], "cohorts")
    assert str(df["id"].dtype) == "string"
    assert df["id"].tolist() == ["not-a-number", "3"]
    df = frame([{"is_static": 1}], "cohorts")
    assert str(df["is_static"].dtype) == "Int64"


# --- datetimes ------------------------------------------------------------------------------


def test_timestamps_every_iso_form() -> None:
    page = [
        {"timestamp": "2024-01-15T10:00:00Z"},
        {"timestamp": "2024-01-15T10:00:00.123456Z"},
        {"timestamp": "2024-01-15T10:00:00+02:00"},
        {"timestamp": "2024-01-15T10:00:00.5-08:00"},
        {"timestamp": "2024-01-15 10:00:00"},
        {"timestamp": None},
        {},
    ]
    df = frame(page, "events")
    assert str(df["timestamp"].dtype) == UTC
    assert [None if _missing(v) else v for v in df["timestamp"].tolist()] == [
        ts("2024-01-15T10:00:00Z"),
        ts("2024-01-15T10:00:00.123456Z"),
        ts("2024-01-15T08:00:00Z"),
        ts("2024-01-15T18:00:00.5Z"),
        ts("2024-01-15T10:00:00Z"),
        None,
        None,
    ]


@pytest.mark.parametrize(
    "bad", ["yesterday", "2024-13-45T00:00:00Z", 1700000000, "9999-01-01T00:00:00Z"]
)
def test_unparseable_datetime_stays_string(bad: Any) -> None:
    df = frame([{"timestamp": "2024-01-15T10:00:00Z"}, {"timestamp": bad}], "events")
    assert str(df["timestamp"].dtype) == "string"
    assert df["timestamp"].tolist() == ["2024-01-15T10:00:00Z", str(bad)]


# --- property definitions ------------------------------------------------------------------

DEFINED = {
    "seen": "DateTime",
    "n": "Numeric",
    "secs": "Duration",
    "price": "Numeric",
    "beta": "Boolean",
    "code": "String",
    "none_yet": "Numeric",
}


def test_properties_typed_by_their_definitions() -> None:
    records = [
        {
            "properties": {
                "seen": "2024-01-02T03:04:05Z",
                "n": "42",
                "secs": 5,
                "price": 1.5,
                "beta": "TRUE",
                "code": 7,
                "none_yet": None,
            }
        },
        {"properties": {"seen": "2024-01-03 04:05:06", "n": 3, "price": 2, "beta": False}},
    ]
    df = frame(records, property_types=DEFINED)
    assert dtypes(df) == {
        "properties.beta": "boolean",
        "properties.code": "string",
        "properties.n": "Int64",
        "properties.none_yet": "Int64",
        "properties.price": "Float64",
        "properties.secs": "Int64",
        "properties.seen": UTC,
    }
    assert rows(df) == [
        [True, "7", 42, None, 1.5, 5, ts("2024-01-02T03:04:05Z")],
        [False, None, 3, None, 2.0, None, ts("2024-01-03T04:05:06Z")],
    ]


@pytest.mark.parametrize(
    ("name", "values", "dtype"),
    [
        ("seen", [1704164645, 1704164646], "Int64"),  # a unix timestamp under DateTime
        ("seen", ["yesterday", "2024-01-02T03:04:05Z"], "string"),
        ("n", ["variant-1", 3], "string"),
        ("n", [True, 1], "string"),
        ("beta", ["yes", True], "string"),
        ("n", [2**70, 1], "string"),  # beyond Int64
    ],
)
def test_values_that_do_not_fit_their_definition_follow_the_mixed_rule(
    name: str, values: list[Any], dtype: str
) -> None:
    records = [{"properties": {name: v}} for v in values]
    typed = frame(records, property_types=DEFINED)
    assert dtypes(typed) == dtypes(frame(records)) == {f"properties.{name}": dtype}
    assert rows(typed) == rows(frame(records))


def test_definitions_type_only_the_top_level_properties() -> None:
    records = [
        {
            "properties": {"n": "1", "address": {"n": "2"}},
            "person": {"properties": {"n": "3"}},
            "group_properties": {"n": "4"},
        }
    ]
    options = {"max_depth": 2, "property_types": {"n": "Numeric", "address": "String"}}
    df = frame(records, "events", **options)
    assert {k: v for k, v in dtypes(df).items() if "." in k} == {
        "group_properties.n": "string",
        "person.properties.n": "string",
        "properties.address.n": "string",  # objects are flattened, whatever the definition
        "properties.n": "Int64",
    }


def test_hogql_event_properties_typed_by_their_definitions() -> None:
    columns = ["uuid", "event", "timestamp", "properties"]
    types = ["UUID", "String", "DateTime64(6, 'UTC')", "String"]
    results = [["u1", "e", "2024-01-01T00:00:00Z", '{"n": "5", "beta": "false"}']]
    options = FrameOptions(property_types={"n": "Numeric", "beta": "Boolean"})
    df = hogql_events_to_frame(columns, types, results, options)
    assert rows(df[["properties.beta", "properties.n"]]) == [[False, 5]]
    assert dtypes(df[["properties.beta", "properties.n"]]) == {
        "properties.beta": "boolean",
        "properties.n": "Int64",
    }


# --- options -----------------------------------------------------------------------------


def test_pyarrow_backend() -> None:
    df = frame(
        PERSONS_PAGE + [{"properties": {"score": 1.5, "tags": ["x"]}}],
        "persons",
        dtype_backend="pyarrow",
    )
    assert dtypes(df) == {
        "id": "string[pyarrow]",
        "distinct_ids": "string[pyarrow]",
        "name": "string[pyarrow]",
        "created_at": "timestamp[ns, tz=UTC][pyarrow]",
        "last_seen_at": "timestamp[ns, tz=UTC][pyarrow]",
        "is_identified": "bool[pyarrow]",
        "properties.$initial_os": "string[pyarrow]",
        "properties.age": "int64[pyarrow]",
        "properties.email": "string[pyarrow]",
        "properties.plan": "string[pyarrow]",
        "properties.score": "double[pyarrow]",
        "properties.tags": "string[pyarrow]",
    }
    assert all(isinstance(t, pd.ArrowDtype) for t in df.dtypes)
    numpy_rows = rows(frame(PERSONS_PAGE, "persons"))
    assert rows(df.iloc[:2, :10]) == numpy_rows


def test_user_dtypes_applied_last() -> None:
    df = frame(
        PERSONS_PAGE,
        "persons",
        dtypes={
            "properties.age": "Float64",
            "properties.email": "category",
            "name": "object",
            "properties.never_seen": "Int64",
            "properties.plan": "json",
        },
    )
    assert str(df["properties.age"].dtype) == "Float64"
    assert str(df["properties.email"].dtype) == "category"
    assert str(df["name"].dtype) == "object"
    assert list(df.columns)[-1] == "properties.never_seen"
    assert str(df["properties.never_seen"].dtype) == "Int64"
    assert df["properties.never_seen"].isna().all()


def test_user_dtype_datetime_parses_a_string_column() -> None:
    df = frame(
        [{"properties": {"signup": "2024-01-01T00:00:00Z"}}],
        dtypes={"properties.signup": "datetime"},
    )
    assert str(df["properties.signup"].dtype) == UTC
    assert df.loc[0, "properties.signup"] == ts("2024-01-01T00:00:00Z")


def test_user_dtypes_on_empty_frame() -> None:
    df = records_to_frame([], SCHEMAS["groups"], FrameOptions(dtypes={"group_key": "category"}))
    assert str(df["group_key"].dtype) == "category"


def test_bad_user_dtype_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"dtypes\['name'\] = 'Int64': cannot convert"):
        frame(PERSONS_PAGE, "persons", dtypes={"name": "Int64"})
    with pytest.raises(ConfigurationError, match="not-a-dtype"):
        frame(PERSONS_PAGE, "persons", dtypes={"name": "not-a-dtype"})


def test_invalid_options_and_columns() -> None:
    with pytest.raises(ConfigurationError, match="dtype_backend='arrow'"):
        FrameOptions(dtype_backend="arrow")
    with pytest.raises(ConfigurationError, match="max_depth=-1"):
        FrameOptions(max_depth=-1)
    with pytest.raises(ConfigurationError, match="sep"):
        FrameOptions(sep="")
    with pytest.raises(ConfigurationError, match="unknown dtype 'int'"):
        Column("x", "int")
    with pytest.raises(ConfigurationError, match="JSON objects"):
        records_to_frame([None], None)  # type: ignore[list-item]


def test_schemaless_records_keep_key_order_and_flatten_properties() -> None:
    df = frame([{"b": 1, "properties": {"x": 1}, "a": "s"}, {"c": True}])
    assert list(df.columns) == ["b", "a", "c", "properties.x"]
    assert dtypes(df) == {
        "b": "Int64",
        "a": "string",
        "c": "boolean",
        "properties.x": "Int64",
    }


def test_records_of_empty_dicts_keep_row_count() -> None:
    df = frame([{}, {}])
    assert df.shape == (2, 0)


# --- HogQL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "dtype"),
    [
        ("DateTime", UTC),
        ("DateTime64(6)", UTC),
        ("DateTime64(6, 'UTC')", UTC),
        ("DateTime('Europe/London')", UTC),
        ("Nullable(DateTime64(3, 'America/New_York'))", UTC),
        ("Date", "datetime64[ns]"),
        ("Date32", "datetime64[ns]"),
        ("Int8", "Int64"),
        ("Int16", "Int64"),
        ("Int32", "Int64"),
        ("Int64", "Int64"),
        ("UInt8", "Int64"),
        ("UInt16", "Int64"),
        ("UInt32", "Int64"),
        ("UInt64", "Int64"),
        ("Int128", "Int64"),
        ("UInt256", "Int64"),
        ("Float32", "Float64"),
        ("Float64", "Float64"),
        ("Decimal(18, 4)", "Float64"),
        ("Decimal64(2)", "Float64"),
        ("Bool", "boolean"),
        ("String", "string"),
        ("FixedString(16)", "string"),
        ("UUID", "string"),
        ("LowCardinality(String)", "string"),
        ("LowCardinality(Nullable(String))", "string"),
        ("Nullable(LowCardinality(String))", "string"),
        ("Enum8('a' = 1, 'b' = 2)", "string"),
        ("IPv4", "string"),
        ("Nullable(Int64)", "Int64"),
        ("Array(String)", "object"),
        ("Array(Nullable(Float64))", "object"),
        ("Tuple(String, UInt8)", "object"),
        ("Map(String, String)", "object"),
        ("Nothing", "object"),
        ("Nullable(Nothing)", "object"),
        ("SomethingNew(42)", "object"),
        ("", "object"),
    ],
)
def test_clickhouse_dtype(type_name: str, dtype: str) -> None:
    assert clickhouse_dtype(type_name) == dtype


def test_hogql_every_type_family() -> None:
    columns = [
        "ts", "day", "n", "big", "huge", "f", "dec", "flag", "flag01", "s", "lc", "arr", "tup",
        "m", "nothing", "weird",
    ]  # fmt: skip
    types = [
        "DateTime64(6, 'UTC')",
        "Date",
        "Nullable(Int32)",
        "UInt64",
        "UInt64",
        "Float64",
        "Decimal(10, 2)",
        "Bool",
        "UInt8",
        "LowCardinality(String)",
        "LowCardinality(Nullable(String))",
        "Array(String)",
        "Tuple(String, Int64)",
        "Map(String, Int64)",
        "Nullable(Nothing)",
        "Geo(1)",
    ]
    results: list[list[Any]] = [
        [
            "2024-01-15T10:00:00.123456-08:00", "2024-01-15", 1, 5, 18446744073709551615, 1.5,
            "12.34", True, 1, "a", None, ["x", "y"], ["t", 1], {"k": 1}, None, "?",
        ],
        [
            "2024-01-16 00:00:00", None, None, "9007199254740993", 1, None,
            0.5, False, 0, "b", "c", [], ["u", 2], {}, None, 7,
        ],
    ]  # fmt: skip
    df = hogql_to_frame(columns, types, results)
    assert dtypes(df) == {
        "ts": UTC,
        "day": "datetime64[ns]",
        "n": "Int64",
        "big": "Int64",
        "huge": "object",
        "f": "Float64",
        "dec": "Float64",
        "flag": "boolean",
        "flag01": "Int64",
        "s": "string",
        "lc": "string",
        "arr": "object",
        "tup": "object",
        "m": "object",
        "nothing": "object",
        "weird": "object",
    }
    assert rows(df) == [
        [
            ts("2024-01-15T18:00:00.123456Z"), pd.Timestamp("2024-01-15"), 1, 5,
            18446744073709551615, 1.5, 12.34, True, 1, "a", None, ["x", "y"], ["t", 1],
            {"k": 1}, None, "?",
        ],
        [
            ts("2024-01-16T00:00:00Z"), None, None, 9007199254740993, 1, None, 0.5, False, 0,
            "b", "c", [], ["u", 2], {}, None, 7,
        ],
    ]  # fmt: skip
    assert isinstance(df.loc[0, "huge"], int)
    df.to_csv(index=False)


def test_hogql_bool_from_zero_one_and_types_as_pairs() -> None:
    df = hogql_to_frame(
        ["b", "n"], [["b", "Bool"], ["n", "Int64"]], [[1, "42"], [0, None], [None, 7]]
    )
    assert dtypes(df) == {"b": "boolean", "n": "Int64"}
    assert rows(df) == [[True, 42], [False, None], [None, 7]]


def test_hogql_values_that_defy_their_type_do_not_crash() -> None:
    df = hogql_to_frame(
        ["d", "i", "f"], ["DateTime", "Int64", "Float64"], [["soon", "x", "y"], [None, 1.5, 2]]
    )
    assert dtypes(df) == {"d": "string", "i": "string", "f": "string"}
    assert rows(df) == [["soon", "x", "y"], [None, "1.5", "2"]]


def test_hogql_datetimes_in_a_project_timezone_become_utc_instants() -> None:
    # A non-UTC project answers with its offsets; across a DST change they differ row to row.
    zone = "DateTime64(6, 'America/Los_Angeles')"
    values = [
        "2024-03-09T16:00:00-08:00",
        "2024-03-10T05:00:00.250000-07:00",
        "2024-03-10T17:30:00+05:30",
        "2024-03-10T12:00:00Z",
        None,
    ]
    df = hogql_to_frame(["t"], [zone], [[v] for v in values])
    assert dtypes(df) == {"t": UTC}
    assert df["t"].tolist()[:4] == [
        ts("2024-03-10T00:00:00Z"),
        ts("2024-03-10T12:00:00.25Z"),
        ts("2024-03-10T12:00:00Z"),
        ts("2024-03-10T12:00:00Z"),
    ]
    assert df["t"].isna().tolist() == [False] * 4 + [True]


def test_hogql_empty_result_is_typed() -> None:
    df = hogql_to_frame(["e", "c", "t"], ["String", "UInt64", "DateTime"], [])
    assert df.shape == (0, 3)
    assert dtypes(df) == {"e": "string", "c": "Int64", "t": UTC}


def test_hogql_missing_types_and_duplicate_names() -> None:
    df = hogql_to_frame(["a", "a", "b"], ["String"], [["x", 1, [1]]])
    assert list(df.columns) == ["a", "a", "b"]
    assert dtypes(df) == {"a": "object", "b": "object"}  # dict() keeps the last "a"
    assert [str(t) for t in df.dtypes] == ["string", "object", "object"]
    assert rows(df) == [["x", 1, [1]]]


def test_hogql_row_width_mismatch() -> None:
    with pytest.raises(ResponseFormatError, match=r"2 columns but rows with \[1, 2\] values"):
        hogql_to_frame(["a", "b"], ["String", "String"], [["x", "y"], ["z"]])


def test_hogql_pyarrow_backend() -> None:
    df = hogql_to_frame(
        ["t", "d", "n", "s", "b", "a"],
        ["DateTime", "Date", "Int64", "String", "Bool", "Array(Int64)"],
        [["2024-01-01T00:00:00Z", "2024-01-01", 1, "x", True, [1]]],
        FrameOptions(dtype_backend="pyarrow"),
    )
    assert [str(t) for t in df.dtypes] == [
        "timestamp[ns, tz=UTC][pyarrow]",
        "timestamp[ns][pyarrow]",
        "int64[pyarrow]",
        "string[pyarrow]",
        "bool[pyarrow]",
        "object",
    ]


HOGQL_EVENT_COLUMNS = [
    "uuid",
    "event",
    "distinct_id",
    "timestamp",
    "properties",
    "elements_chain",
    "person_id",
]
HOGQL_EVENT_TYPES = [
    "UUID",
    "String",
    "String",
    "DateTime64(6, 'UTC')",
    "String",
    "String",
    "UUID",
]


def test_hogql_events_match_records_column_for_column() -> None:
    records = [dict(r, person_id="p-1") for r in EVENTS_PAGE]
    rows_ = [
        [
            r["id"],
            r["event"],
            r["distinct_id"],
            r["timestamp"],
            json_text(r["properties"]),
            r["elements_chain"],
            "p-1",
        ]
        for r in records
    ]
    from_hogql = hogql_events_to_frame(HOGQL_EVENT_COLUMNS, HOGQL_EVENT_TYPES, rows_)
    from_records = frame(records, "events")
    # the events list sends `elements`; HogQL does not select it: same column, missing values
    expected = from_records.assign(elements=pd.array([None, None], dtype="string"))
    pd.testing.assert_frame_equal(from_hogql, expected)


def test_hogql_events_extra_columns_and_no_flatten() -> None:
    rows_ = [["u1", "x", "d", "2024-01-01T00:00:00Z", '{"a": 1}', "", None, "7"]]
    columns = [*HOGQL_EVENT_COLUMNS, "$session_id_count"]
    types = [*HOGQL_EVENT_TYPES, "UInt64"]
    df = hogql_events_to_frame(columns, types, rows_)
    names = [c.name for c in SCHEMAS["events"] if c.dtype != "json-flatten"]
    assert list(df.columns) == [*names, "$session_id_count", "properties.a"]
    assert df.loc[0, "$session_id_count"] == 7
    raw = hogql_events_to_frame(columns, types, rows_, FrameOptions(flatten=False))
    assert raw.loc[0, "properties"] == {"a": 1}
    assert "person" in raw.columns


def test_hogql_events_empty() -> None:
    df = hogql_events_to_frame(HOGQL_EVENT_COLUMNS, HOGQL_EVENT_TYPES, [])
    assert df.equals(empty_frame(SCHEMAS["events"]))


def test_json_text_edge_values() -> None:
    assert json_text({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
    assert json_text([2**70]) == "[1180591620717411303424]"
    assert json_text({1: "x"}) == '{"1":"x"}'
    assert json_text(("t", 1)) == '["t",1]'


def test_naive_timestamps_are_utc_whatever_precedes_them() -> None:
    # pandas 2.x alone would give the second row the first row's -08:00 offset
    page = [
        {"timestamp": "2024-01-15T10:00:00-08:00"},
        {"timestamp": "2024-01-15 10:00:00"},
        {"timestamp": "2024-01-15"},
        {"timestamp": "2024-01-15T10:00:00.25+0130"},
        {"timestamp": None},
    ]
    df = frame(page, "events")
    assert [None if _missing(v) else v for v in df["timestamp"].tolist()] == [
        ts("2024-01-15T18:00:00Z"),
        ts("2024-01-15T10:00:00Z"),
        ts("2024-01-15T00:00:00Z"),
        ts("2024-01-15T08:30:00.25Z"),
        None,
    ]
    assert str(df["timestamp"].dtype) == UTC


def test_hogql_without_types_keeps_raw_objects() -> None:
    df = hogql_to_frame(["a", "b"], None, [[1, "x"]])
    assert dtypes(df) == {"a": "object", "b": "object"}
    assert rows(df) == [[1, "x"]]


def test_records_from_a_generator() -> None:
    df = records_to_frame((r for r in PERSONS_PAGE), SCHEMAS["persons"])
    assert len(df) == 2
    assert df["name"].tolist() == ["ada@example.com", "anon-2"]


def test_object_columns_of_strings_stay_object() -> None:
    # pandas 3 infers "str" for object data unless told otherwise
    df = frame([{"distinct_ids": "a", "properties": "b"}], "persons", flatten=False)
    assert str(df["distinct_ids"].dtype) == "object"
    assert str(df["properties"].dtype) == "object"


def test_concat_frames_equals_one_build_over_all_rows() -> None:
    from posthog_pandas.frames import concat_frames

    records = [
        {
            "id": "a",
            "event": "x",
            "timestamp": "2024-01-01T00:00:00Z",
            "properties": {"n": 1, "s": "q", "b": True},
        },
        {
            "id": "b",
            "event": "x",
            "timestamp": "2024-01-01T00:00:01Z",
            "properties": {"n": 2.5, "s": 5, "late": None},
        },
        {
            "id": "c",
            "event": "y",
            "timestamp": "2024-01-01T00:00:02Z",
            "properties": {"b": False, "z": 1},
        },
    ]
    whole = records_to_frame(records, SCHEMAS["events"])
    for cut in (1, 2):
        pages = [
            records_to_frame(records[:cut], SCHEMAS["events"]),
            records_to_frame(records[cut:], SCHEMAS["events"]),
        ]
        pd.testing.assert_frame_equal(concat_frames(pages), whole)
    assert str(whole["properties.s"].dtype) == "string"
    assert whole["properties.s"].tolist()[:2] == ["q", "5"]


def test_concat_frames_of_pages_with_one_layout_equals_one_build() -> None:
    from posthog_pandas.frames import concat_frames

    records = [
        {"id": str(i), "created_at": f"2024-01-0{i}T00:00:00Z", "properties": {"n": i, "s": "q"}}
        for i in range(1, 7)
    ]
    pages = [records_to_frame(records[i : i + 2], SCHEMAS["persons"]) for i in (0, 2, 4)]
    combined = concat_frames(pages)
    pd.testing.assert_frame_equal(combined, records_to_frame(records, SCHEMAS["persons"]))
    assert combined.index.tolist() == list(range(6))
    assert str(combined["properties.n"].dtype) == "Int64"


def test_concat_frames_with_the_same_columns_but_other_dtypes_follows_the_rule() -> None:
    from posthog_pandas.frames import concat_frames

    ints = records_to_frame([{"id": "a", "properties": {"n": 1}}], SCHEMAS["persons"])
    floats = records_to_frame([{"id": "b", "properties": {"n": 2.5}}], SCHEMAS["persons"])
    assert list(ints.columns) == list(floats.columns)
    combined = concat_frames([ints, floats])
    assert str(combined["properties.n"].dtype) == "Float64"
    assert combined["properties.n"].tolist() == [1.0, 2.5]


def test_concat_frames_leaves_out_empty_pages() -> None:
    from posthog_pandas.frames import concat_frames

    full = records_to_frame([{"id": "a", "properties": {"n": 1}}], SCHEMAS["persons"])
    empty = records_to_frame([], SCHEMAS["persons"])
    assert "properties.n" not in empty.columns
    combined = concat_frames([full, empty])
    pd.testing.assert_frame_equal(combined, full)
    only_empty = concat_frames([empty, empty])
    pd.testing.assert_frame_equal(only_empty, empty)


# Numbers and flags are built through Arrow (one C pass) instead of pd.array; the result must
# be the very array pd.array gives, including its edge cases, or None where pd.array refuses.
_MASKED_CASES = [
    ("Float64", [1.5, None, 2, float("nan"), -0.0, float("inf"), 2**53 + 1, 2**63 - 1]),
    ("Float64", [None, 2**64 + 7, 0.25]),  # beyond int64: Arrow refuses, pandas converts
    ("Float64", [None, None]),
    ("Float64", []),
    ("Int64", [1, None, -(2**63), 2**63 - 1, 0]),
    ("Int64", [1, 2**63]),  # beyond int64: no Int64 array (the caller falls back)
    ("Int64", [None, -(2**63) - 1]),
    ("boolean", [True, None, False]),
    ("boolean", [None]),
]


def _same_masked(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if got.dtype != want.dtype or len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if (a is pd.NA) != (b is pd.NA):
            return False
        if a is not pd.NA and (repr(a) != repr(b)):  # repr tells -0.0 from 0.0, nan == nan
            return False
    return True


@pytest.mark.parametrize(("dtype", "values"), _MASKED_CASES)
def test_masked_arrays_are_those_pandas_builds(dtype: str, values: list[Any]) -> None:
    from posthog_pandas.frames import _bool_array, _float_array, _int_array, _masked_via_arrow

    with warnings.catch_warnings():  # pandas warns before it refuses ints beyond 64 bits
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            want = pd.array(values, dtype=dtype)
        except (OverflowError, TypeError, ValueError):
            want = None
    build = {"Int64": _int_array, "Float64": _float_array, "boolean": _bool_array}[dtype]
    got = build(values)  # and no warning: pytest turns warnings into errors
    assert _same_masked(got, want), (got, want)
    if values and all(v is None or abs(v) < 2**63 for v in values if not isinstance(v, bool)):
        assert _masked_via_arrow(values, dtype) is not None  # the fast path took these


def test_numeric_property_columns_keep_their_dtypes_and_missing_values() -> None:
    frame = hogql_events_to_frame(
        ["uuid", "properties"],
        ["UUID", "String"],
        [
            ["u1", '{"n": 1, "x": 1.5, "b": true}'],
            ["u2", '{"n": null, "x": 2, "b": false}'],
            ["u3", '{"x": NaN}'.replace("NaN", "null")],
            ["u4", '{"n": -9223372036854775808, "b": null}'],
        ],
    )
    assert str(frame["properties.n"].dtype) == "Int64"
    assert frame["properties.n"].tolist()[::3] == [1, -(2**63)]
    assert frame["properties.n"].isna().tolist() == [False, True, True, False]
    assert str(frame["properties.x"].dtype) == "Float64"
    assert frame["properties.x"].tolist()[:2] == [1.5, 2.0]
    assert frame["properties.x"].isna().tolist() == [False, False, True, True]
    assert str(frame["properties.b"].dtype) == "boolean"
    assert frame["properties.b"].isna().tolist() == [False, False, True, True]
    assert frame["properties.b"].tolist()[:2] == [True, False]
