"""frames.py property tests: any JSON properties give a frame of the right length and CSV."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posthog_pandas.frames import (
    SCHEMAS,
    FrameOptions,
    hogql_events_to_frame,
    records_to_frame,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)
properties = st.dictionaries(st.sampled_from(["a", "b", "$c", "d.e", "ü"]), json_values, max_size=4)
records = st.lists(
    st.fixed_dictionaries(
        {"id": st.text(max_size=4), "properties": properties | st.none()},
        optional={"timestamp": st.sampled_from(["2024-01-01T00:00:00Z", None, "bad", 3])},
    ),
    max_size=8,
)
options = st.builds(
    FrameOptions,
    flatten=st.booleans(),
    max_depth=st.integers(0, 3),
    dtype_backend=st.sampled_from([None, "pyarrow"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=records, opts=options, resource=st.sampled_from([None, "events", "persons"]))
def test_any_json_properties_make_a_frame(
    page: list[dict[str, Any]], opts: FrameOptions, resource: str | None
) -> None:
    df = records_to_frame(page, SCHEMAS[resource] if resource else None, opts)
    assert len(df) == len(page)
    assert df.columns.is_unique
    df.to_csv()


def _json_safe(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


@settings(max_examples=100, deadline=None)
@given(page=records)
def test_hogql_events_agree_with_records(page: list[dict[str, Any]]) -> None:
    page = [r for r in page if r["properties"] is None or _json_safe(r["properties"])]
    rows = [
        [
            r["id"],
            None,
            None,
            None,
            None if r["properties"] is None else orjson.dumps(r["properties"]).decode(),
        ]
        for r in page
    ]
    columns = ["uuid", "event", "distinct_id", "timestamp", "properties"]
    types = ["String", "String", "String", "DateTime", "String"]
    from_hogql = hogql_events_to_frame(columns, types, rows)
    records_ = [{"id": r["id"], "properties": r["properties"]} for r in page]
    from_records = records_to_frame(records_, SCHEMAS["events"])
    assert list(from_hogql.columns) == list(from_records.columns)
    assert len(from_hogql) == len(page)
