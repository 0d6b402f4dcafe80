"""Random JSON envelopes and property values: a DataFrame or a PostHogError, never a KeyError.

Every list and query answer of a mocked PostHog is one generated body; the accessors must turn
it into a DataFrame or raise an error of the package's tree. Also: a 200 whose JSON is not a
page is never cached, and an asynchronous query that never completes does not poll for ever.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import requests
import requests_mock
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import posthog_pandas as php
from tests.conftest import NONE_DEFINED

HOST = "https://us.posthog.com"
ME = {"email": "a@example.com", "team": {"id": 1, "project_id": 1, "name": "p"}}
WINDOW = {"after": "2024-01-01", "before": "2024-01-02"}
UNPACED = php.PacingSettings(analytics_per_minute=10**9, other_per_minute=10**9)


def mocked(
    body: Any, *, cache_dir: Path | None = None, responses: list[dict[str, Any]] | None = None
) -> tuple[php.PostHog, requests_mock.Adapter]:
    """A connection whose every list and query answer is `body` (or the `responses` in turn)."""
    session = requests.Session()
    adapter = requests_mock.Adapter()
    session.mount("https://", adapter)
    # The stdlib encoder: it writes integers beyond 64 bits, as PostHog (Python) does.
    answer: Any = responses if responses is not None else [{"text": json.dumps(body)}]
    for method in ("GET", "POST", "DELETE"):  # DELETE: a query given up on is cancelled
        adapter.register_uri(method, requests_mock.ANY, answer)
    adapter.register_uri("GET", f"{HOST}/api/users/@me/", json=ME)
    adapter.register_uri("GET", re.compile(r".*/property_definitions/"), json=NONE_DEFINED)
    options: dict[str, Any] = {"cache": False} if cache_dir is None else {"cache_dir": cache_dir}
    retry = php.RetrySettings(attempts=1, backoff_factor=0.0, jitter=0.0)
    ph = php.connect("phx_" + "q" * 40, session=session, progress=False, dotenv=False,
                     prompt=False, retry=retry, pacing=UNPACED, **options)  # fmt: skip
    return ph, adapter


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    | st.text(max_size=6)
    | st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01 10:00:00.123456", "", "nan"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
records = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "uuid": json_values,
        "distinct_ids": json_values,
        "properties": json_values,
        "created_at": json_values,
        "name": json_values,
        "result": json_values,
    },
)
list_envelopes = json_values | st.fixed_dictionaries(
    {"results": st.lists(records | json_values, max_size=4) | json_values},
    optional={
        "next": st.none() | st.sampled_from(["", "?page=2", f"{HOST}/api/x/"]) | json_values,
        "count": json_values,
        "previous": json_values,
    },
)
ch_types = st.sampled_from(
    ["String", "Int64", "Float64", "Bool", "UUID", "DateTime64(6, 'UTC')", "Nullable(String)"]
)
query_envelopes = json_values | st.fixed_dictionaries(
    {},
    optional={
        "results": st.lists(st.lists(json_values, max_size=3) | json_values, max_size=4)
        | json_values,
        "columns": st.lists(st.text(max_size=4), max_size=3) | json_values,
        "types": st.lists(ch_types | json_values, max_size=3) | json_values,
        "hasMore": st.booleans(),
        "query_status": st.none()
        | json_values
        | st.fixed_dictionaries({"complete": st.just(True)}),
    },
)

LIST_CALLS: dict[str, Callable[[php.PostHog], Any]] = {
    "persons": lambda ph: ph.persons(),
    "cohorts": lambda ph: ph.cohorts(),
    "fetch": lambda ph: ph.fetch("annotations"),
    "insight": lambda ph: ph.insight(1),
}
QUERY_CALLS: dict[str, Callable[[php.PostHog], Any]] = {
    "query": lambda ph: ph.query("select a from t limit 5"),
    "events": lambda ph: ph.events(**WINDOW),
    "events-columns": lambda ph: ph.events(columns=["event", "properties.$os"], **WINDOW),
}


def frame_or_posthog_error(body: Any, call: Callable[[php.PostHog], Any]) -> None:
    ph, _ = mocked(body)
    try:
        result = call(ph)
    except php.PostHogError:
        return
    assert isinstance(result, pd.DataFrame)
    result.to_csv()  # and it is a frame one can use


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(body=list_envelopes, name=st.sampled_from(sorted(LIST_CALLS)))
@example(body={"results": [[1, 2]]}, name="persons")
def test_any_list_envelope_gives_a_frame_or_a_posthog_error(body: Any, name: str) -> None:
    frame_or_posthog_error(body, LIST_CALLS[name])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(body=query_envelopes, name=st.sampled_from(sorted(QUERY_CALLS)))
@example(body={"results": [1, 2], "columns": ["a"]}, name="query")
def test_any_query_envelope_gives_a_frame_or_a_posthog_error(body: Any, name: str) -> None:
    frame_or_posthog_error(body, QUERY_CALLS[name])


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    page=st.lists(
        st.fixed_dictionaries(
            {"id": st.uuids().map(str), "properties": json_values},
            optional={"created_at": json_values, "distinct_ids": json_values},
        ),
        max_size=5,
    )
)
def test_any_person_property_values_give_a_frame(page: list[dict[str, Any]]) -> None:
    """Well-formed pages with arbitrary values always make a frame, one row per person."""
    ph, _ = mocked({"results": page, "next": None})
    frame = ph.persons()
    assert len(frame) == len(page)
    assert frame["id"].tolist() == [p["id"] for p in page]


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    rows=st.lists(
        st.tuples(st.uuids().map(str), st.text(max_size=6), json_values | st.text(max_size=8)),
        max_size=5,
    )
)
def test_any_event_property_values_give_a_frame(rows: list[tuple[str, str, Any]]) -> None:
    body = {
        "results": [
            [uuid, event, "2024-01-01T10:00:00Z", orjson.dumps({"p": value}).decode()]
            for uuid, event, value in rows
        ],
        "columns": ["uuid", "event", "timestamp", "properties"],
        "types": ["UUID", "String", "DateTime64(6, 'UTC')", "String"],
        "hasMore": False,
    }
    ph, _ = mocked(body)
    frame = ph.events(**WINDOW)
    assert frame["uuid"].tolist() == [r[0] for r in rows]


# -- the specific failures the property tests find ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "call"),
    [
        pytest.param({"results": [[1, 2]]}, "persons", id="list-rows-are-arrays"),
        pytest.param({"results": ["a", ""]}, "persons", id="list-rows-are-strings"),
        pytest.param([[1, 2]], "cohorts", id="list-body-of-arrays"),
        pytest.param([1], "insight", id="insight-body-is-a-list"),
        pytest.param({"results": [1, 2], "columns": ["a"]}, "query", id="query-rows-not-arrays"),
        pytest.param({"results": [{"a": 1}], "columns": ["a"]}, "query", id="query-rows-objects"),
        pytest.param({"results": [[1]], "columns": 5}, "query", id="query-columns-not-a-list"),
        pytest.param(
            {"results": [[1]], "columns": ["a"], "types": 7}, "query", id="query-types-not-a-list"
        ),
        pytest.param(
            {"results": [], "query_status": {"complete": False}}, "query", id="status-without-id"
        ),
        pytest.param({"results": [1, 2], "columns": ["a"]}, "events", id="events-rows-not-arrays"),
    ],
)
def test_malformed_envelopes_raise_response_format_error(body: Any, call: str) -> None:
    ph, _ = mocked(body)
    with pytest.raises(php.ResponseFormatError):
        {**LIST_CALLS, **QUERY_CALLS}[call](ph)


@pytest.mark.parametrize(
    ("bad", "good", "call"),
    [
        pytest.param(
            {"results": 5}, {"results": [{"id": 1}], "next": None}, "cohorts", id="list-page"
        ),
        pytest.param(
            {"detail": "no results here"},
            {"results": [[1]], "columns": ["a"], "types": ["Int64"]},
            "query",
            id="query-answer",
        ),
    ],
)
def test_a_200_that_is_not_a_page_is_never_cached(
    bad: Any, good: Any, call: str, tmp_path: Path
) -> None:
    responses = [{"content": orjson.dumps(bad)}, {"content": orjson.dumps(good)}]
    ph, adapter = mocked(None, cache_dir=tmp_path / "cache", responses=responses)
    with pytest.raises(php.ResponseFormatError):
        {**LIST_CALLS, **QUERY_CALLS}[call](ph)
    frame = {**LIST_CALLS, **QUERY_CALLS}[call](ph)  # the rerun asks PostHog again
    assert len(frame) == 1
    assert adapter.call_count == 3  # @me, the bad answer, the good one


class FakeTime:
    """Stands in for the `time` module in _polling.py: sleeping advances the clock, instantly."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.now > 1_000_000.0 + 3600:
            raise AssertionError("still polling after an hour")

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now


def test_an_async_query_that_never_completes_does_not_poll_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import posthog_pandas._polling as polling

    monkeypatch.setattr(polling, "time", FakeTime())
    ph, _ = mocked({"results": [], "query_status": {"id": "q1", "complete": False}})
    with pytest.raises(php.PostHogError):
        ph.query("select a from t limit 1")


BIG = 2**64 + 1  # beyond what orjson decodes exactly (it silently returns a float)


@pytest.mark.parametrize("where", ["person-properties", "event-properties"])
def test_an_integer_property_beyond_64_bits_keeps_its_exact_value(where: str) -> None:
    if where == "person-properties":
        ph, _ = mocked({"results": [{"id": 1, "uuid": "u1", "properties": {"n": BIG}}]})
        frame = ph.persons()
    else:
        body = {
            "results": [["u1", "e", "2024-01-01T10:00:00Z", json.dumps({"n": BIG})]],
            "columns": ["uuid", "event", "timestamp", "properties"],
            "types": ["UUID", "String", "DateTime64(6, 'UTC')", "String"],
        }
        ph, _ = mocked(body)
        frame = ph.events(**WINDOW)
    assert str(frame["properties.n"].iloc[0]) == str(BIG)


@pytest.mark.parametrize("cached", [False, True])
def test_a_query_column_wider_than_64_bits_keeps_its_exact_value(
    cached: bool, tmp_path: Path
) -> None:
    # The decoder skips its long-number scan only for answers whose types hold (U)Int64 at
    # most; a UInt256 column must still come back exact, fresh and from the cache alike.
    body = {"results": [[BIG, "x"]], "columns": ["n", "s"], "types": ["UInt256", "String"]}
    ph, adapter = mocked(body, cache_dir=tmp_path / "c" if cached else None)
    frame = ph.query("select n, s from t limit 1")
    if cached:
        frame = ph.query("select n, s from t limit 1")
        assert adapter.call_count == 2  # /users/@me/ and the one query; the rest was cached
    assert frame["n"].tolist() == [BIG]
