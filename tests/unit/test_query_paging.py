"""ph.query() against a scripted PostHog query API that follows PostHog's own rules.

PostHog answers 100 rows (with hasMore) to a query without LIMIT, lowers any LIMIT to 50,000
without a word (no hasMore then), and parses a string in toDateTime64 in ClickHouse's `basic`
mode only (a `Z` or an offset is a 400). Results carry its cache facts (is_cached, ...).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests_mock

import posthog_pandas as php
from tests.conftest import MOCK_HOST, mocked_connection

HOST = MOCK_HOST
QUERY_URL = f"{HOST}/api/projects/3/query/"
START = datetime(2024, 1, 5, 18, 0, tzinfo=UTC)
BASIC = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)?")
KEYSET_ORDERED = "select timestamp, uuid from events order by timestamp, uuid"


class FakeQueryApi:
    """`n` events (three to a timestamp, so the uuid breaks ties), sorted by (timestamp, uuid),
    served as PostHog's /query/ serves a HogQL query over them."""

    def __init__(self, n: int, zone: timezone = UTC) -> None:
        self.rows = [
            (START + timedelta(microseconds=123_456 + 1000 * (i // 3)), str(uuid.UUID(int=i)))
            for i in range(n)
        ]
        self.zone = zone
        self.bodies: list[dict[str, Any]] = []

    def render(self, ts: datetime) -> str:
        # posthog/renderers.py: microseconds, `Z` in UTC projects, the offset otherwise
        text = ts.astimezone(self.zone).isoformat(timespec="microseconds")
        return text.replace("+00:00", "Z")

    def __call__(self, request: Any, context: Any) -> dict[str, Any]:
        body = request.json()
        self.bodies.append(body)
        text, values = body["query"]["query"], body["query"].get("values") or {}
        rows = self.rows
        if "__keyset_0" in values:
            bound = values["__keyset_0"]
            if not BASIC.fullmatch(bound):  # ClickHouse CANNOT_PARSE_TEXT, as PostHog words it
                context.status_code = 400
                return {
                    "type": "validation_error",
                    "code": "cannot_parse_text",
                    "detail": "Cannot parse a value as the requested type. Check your input "
                    "formats and type conversions.",
                    "attr": None,
                }
            after = (datetime.fromisoformat(bound).replace(tzinfo=UTC), values["__keyset_1"])
            rows = [row for row in rows if row > after]
        limit = re.search(r"\blimit\s+(\d+)\s*$", text, re.I)
        if limit:
            page = rows[: min(int(limit.group(1)), 50_000)]
            paging: dict[str, Any] = {"hasMore": None, "limit": None, "offset": None}
        else:
            page = rows[:100]
            paging = {"hasMore": len(rows) > 100, "limit": 100, "offset": 0}
        call = len(self.bodies)
        return {
            "columns": ["timestamp", "uuid"],
            "types": ["DateTime64(6, 'UTC')", "UUID"],
            "results": [[self.render(ts), u] for ts, u in page],
            **paging,
            "is_cached": call == 1,
            "last_refresh": f"2024-02-01T00:00:{call:02d}.000000Z",
            "cache_key": f"cache_3_{call}",
            "query_status": None,
        }

    def limits(self) -> list[int | None]:
        """The LIMIT each request asked for (None: none)."""
        found = [re.search(r"\blimit\s+(\d+)\s*$", b["query"]["query"], re.I) for b in self.bodies]
        return [int(m.group(1)) if m else None for m in found]


def connect_with_query_api(
    tmp_path: Path, api: Any, **kw: Any
) -> tuple[php.PostHog, requests_mock.Adapter]:
    """mocked_connection whose query endpoint is answered by `api` (None: left unanswered)."""
    ph, adapter = mocked_connection(tmp_path, **kw)
    if api is not None:
        adapter.register_uri("POST", QUERY_URL, json=api)
    return ph, adapter


def expected_uuids(api: FakeQueryApi, count: int) -> list[str]:
    return [u for _, u in api.rows[:count]]


# -- 1. keyset bounds ClickHouse can parse -------------------------------------------------------


@pytest.mark.parametrize(
    "zone",
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-8))],
    ids=["utc-Z", "plus-01", "minus-08"],
)
def test_keyset_pages_bind_datetimes_in_basic_form_whatever_the_project_timezone(
    tmp_path: Path, zone: timezone
) -> None:
    api = FakeQueryApi(250, zone)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    frame = ph.query(KEYSET_ORDERED)
    assert frame["uuid"].astype(str).tolist() == expected_uuids(api, 250)
    bound = api.bodies[1]["query"]["values"]
    # row 100 (0-based 99) is the 34th timestamp: 18:00:00.123456 + 33 ms, in UTC, no Z/offset
    assert bound["__keyset_0"] == "2024-01-05 18:00:00.156456"
    assert bound["__keyset_1"] == str(uuid.UUID(int=99))
    assert api.limits() == [None, 50_000]


def test_a_null_in_an_order_key_is_refused_not_skipped(tmp_path: Path) -> None:
    rows = [[None if i == 99 else f"2024-01-05T18:00:00.{i:06d}Z", str(uuid.UUID(int=i))]
            for i in range(100)]  # fmt: skip
    answer = {
        "columns": ["timestamp", "uuid"],
        "types": ["Nullable(DateTime64(6, 'UTC'))", "UUID"],
        "results": rows,
        "hasMore": True,
        "limit": 100,
    }
    # `(timestamp, uuid) > (NULL, ...)` matches nothing: PostHog would answer an empty page
    empty = {**answer, "results": [], "hasMore": None, "limit": None}
    ph, adapter = connect_with_query_api(tmp_path, None, cache=False)
    route = adapter.register_uri("POST", QUERY_URL, [{"json": answer}, {"json": empty}])
    with pytest.raises(php.TruncationError, match=r"NULL in the ORDER BY column 'timestamp'"):
        ph.query(KEYSET_ORDERED)
    assert route.call_count == 1


# -- 2. paging on the row count, never on hasMore alone ------------------------------------------


def test_no_limit_gets_posthogs_100_then_keyset_pages(tmp_path: Path) -> None:
    api = FakeQueryApi(250)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    assert len(ph.query(KEYSET_ORDERED)) == 250
    assert api.limits() == [None, 50_000]


def test_a_limit_up_to_50000_is_answered_exactly_in_one_request(tmp_path: Path) -> None:
    api = FakeQueryApi(1000)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    frame = ph.query(f"{KEYSET_ORDERED} limit 300")
    assert frame["uuid"].astype(str).tolist() == expected_uuids(api, 300)
    assert api.limits() == [300]


def test_a_limit_above_50000_is_split_into_keyset_pages(tmp_path: Path) -> None:
    api = FakeQueryApi(130_000)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    frame = ph.query(f"{KEYSET_ORDERED} limit 120000")
    assert frame["uuid"].astype(str).tolist() == expected_uuids(api, 120_000)
    assert api.limits() == [120_000, 50_000, 20_000]


def test_a_full_last_page_is_followed_by_an_empty_one(tmp_path: Path) -> None:
    api = FakeQueryApi(100_000)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    frame = ph.query(f"{KEYSET_ORDERED} limit 150000")
    assert frame["uuid"].is_unique and len(frame) == 100_000
    assert api.limits() == [150_000, 50_000, 50_000]  # the third page came back empty


def test_a_limit_above_50000_without_keyset_order_is_refused_as_truncated(tmp_path: Path) -> None:
    api = FakeQueryApi(60_000)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    with pytest.raises(php.TruncationError) as info:
        ph.query("select timestamp, uuid from events limit 60000")
    message = str(info.value)
    assert "cut this query's result at 50,000 rows" in message
    assert "lowers LIMIT 60,000 to that" in message and "ORDER BY <column(s)>, uuid" in message
    assert api.limits() == [60_000]


def test_an_aggregate_of_exactly_50000_rows_under_its_limit_is_complete(tmp_path: Path) -> None:
    api = FakeQueryApi(50_000)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    frame = ph.query("select timestamp, uuid from events group by timestamp, uuid limit 50000")
    assert len(frame) == 50_000 and api.limits() == [50_000]


def test_exactly_50000_rows_under_a_higher_limit_cannot_be_told_from_a_cut(tmp_path: Path) -> None:
    # PostHog answers the same 50,000 rows whether or not more exist: without a keyset order
    # posthog-pandas cannot tell, so it refuses rather than risk a silently cut table.
    api = FakeQueryApi(50_000)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    with pytest.raises(php.TruncationError, match="at 50,000 rows"):
        ph.query("select timestamp, uuid from events group by timestamp, uuid limit 100000")


# -- 7. refresh and PostHog's cache facts --------------------------------------------------------


def _count_answer(count: int, cached: bool, refreshed: str) -> dict[str, Any]:
    return {
        "json": {
            "columns": ["count()"],
            "types": ["UInt64"],
            "results": [[count]],
            "hasMore": False,
            "limit": 100,
            "offset": 0,
            "is_cached": cached,
            "last_refresh": refreshed,
            "cache_key": "cache_3_abc",
            "query_status": None,
        }
    }


def test_refresh_sends_force_blocking_and_replaces_our_copy(tmp_path: Path) -> None:
    ph, adapter = connect_with_query_api(tmp_path, None)
    route = adapter.register_uri(
        "POST",
        QUERY_URL,
        [
            _count_answer(7, True, "2024-01-05T10:00:00.000000Z"),
            _count_answer(9, False, "2024-01-05T12:30:00.250000Z"),
        ],
    )
    stale = ph.query("select count() from events")
    assert "refresh" not in route.request_history[0].json()  # PostHog's default: blocking
    assert stale.attrs == {
        "is_cached": True,
        "last_refresh": "2024-01-05T10:00:00.000000Z",
        "cache_key": "cache_3_abc",
    }
    fresh = ph.query("select count() from events", refresh=True)
    assert route.request_history[1].json()["refresh"] == "force_blocking"
    assert fresh.iloc[0, 0] == 9 and fresh.attrs["is_cached"] is False
    assert fresh.attrs["last_refresh"] == "2024-01-05T12:30:00.250000Z"
    again = ph.query("select count() from events")  # our cache now holds the refreshed answer
    assert again.iloc[0, 0] == 9 and route.call_count == 2


def test_refresh_applies_to_every_keyset_page_and_attrs_cover_them(tmp_path: Path) -> None:
    api = FakeQueryApi(250)
    ph, _ = connect_with_query_api(tmp_path, api, cache=False)
    frame = ph.query(KEYSET_ORDERED, refresh=True)
    assert [body.get("refresh") for body in api.bodies] == ["force_blocking"] * 2
    assert frame.attrs == {
        "is_cached": True,  # the first page came from PostHog's cache
        "last_refresh": "2024-02-01T00:00:01.000000Z",  # the oldest page
        "cache_key": "cache_3_1",
    }
    plain = FakeQueryApi(250)
    ph, _ = connect_with_query_api(tmp_path / "plain", plain, cache=False)
    ph.query(KEYSET_ORDERED)
    assert [("refresh" in body) for body in plain.bodies] == [False, False]
