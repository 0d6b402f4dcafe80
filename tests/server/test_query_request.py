"""POST /query/ as PostHog answers it: QueryRequest validation, LIMIT and hasMore, DateTime
strings in ClickHouse's basic mode, and the refresh modes over PostHog's result cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from posthog_pandas.server import LocalPostHog
from posthog_pandas.server.query_cache import CachedAnswer, ResultCache

pytestmark = pytest.mark.integration

CANNOT_PARSE_TEXT = {
    "type": "validation_error",
    "code": "cannot_parse_text",
    "detail": "Cannot parse a value as the requested type. Check your input formats and type "
    "conversions.",
    "attr": None,
}


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=50, events=300, seed=3) as server:
        yield server


@pytest.fixture()
def fresh_srv() -> Iterator[LocalPostHog]:
    """A server of its own: these tests change its data and its result cache."""
    with LocalPostHog(persons=50, events=300, seed=4) as server:
        yield server


def post(
    srv: LocalPostHog, sql: str, *, auth: bool = True, values: Any = None, **fields: Any
) -> requests.Response:
    node: dict[str, Any] = {"kind": "HogQLQuery", "query": sql}
    if values is not None:
        node["values"] = values
    headers = {"Authorization": f"Bearer {srv.api_key}"} if auth else {}
    return requests.post(
        f"{srv.url}/api/projects/1/query/", json={"query": node, **fields}, headers=headers
    )


def add_event(srv: LocalPostHog) -> None:
    """An event arrives: written straight into project 1's tables."""
    cur = srv._state.projects[1].cursor()
    try:
        cur.execute(
            "INSERT INTO events (uuid, event, distinct_id, timestamp, properties, elements_chain, "
            "created_at, person_id) VALUES (?, 'late', 'd', ?, '{}', '', ?, NULL)",
            [str(uuid.uuid4()), datetime(2024, 1, 2, tzinfo=UTC), datetime.now(UTC)],
        )
    finally:
        cur.close()


# ---- QueryRequest --------------------------------------------------------------------------


def test_a_key_in_the_body_authenticates_then_fails_as_an_extra_field(srv: LocalPostHog) -> None:
    r = post(srv, "SELECT 1", auth=False, personal_api_key=srv.api_key)
    assert r.status_code == 400
    assert r.json() == {
        "type": "invalid_request",
        "code": "parse_error",
        "detail": "JSON parse error - 1 validation error for QueryRequest\npersonal_api_key\n"
        "  Extra inputs are not permitted [type=extra_forbidden, "
        f"input_value='{srv.api_key}', input_type=str]\n"
        "    For further information visit https://errors.pydantic.dev/2.12/v/extra_forbidden",
        "attr": None,
    }
    wrong = post(srv, "SELECT 1", auth=False, personal_api_key="phx_" + "0" * 40)
    # PostHog authenticates before it parses the body (403: the query viewset allows sharing)
    assert (wrong.status_code, wrong.json()["type"]) == (403, "authentication_error")


def test_every_queryrequest_field_is_accepted(srv: LocalPostHog) -> None:
    r = post(
        srv,
        "SELECT 2",
        client_query_id="my-query",
        filters_override=None,
        limit_context=None,
        name="a name",
        refresh="blocking",
        variables_override=None,
        **{"async": False},
    )
    assert r.status_code == 200 and r.json()["results"] == [[2]]


def test_an_unknown_refresh_and_an_extra_field_are_two_pydantic_errors(srv: LocalPostHog) -> None:
    r = post(srv, "SELECT 1", refresh="sometimes", cache=False)
    assert r.status_code == 400 and r.json()["code"] == "parse_error"
    assert r.json()["detail"] == (
        "JSON parse error - 2 validation errors for QueryRequest\nrefresh\n  Input should be "
        "'async', 'async_except_on_cache_miss', 'blocking', 'force_async', 'force_blocking', "
        "'force_cache' or 'lazy_async' [type=enum, input_value='sometimes', input_type=str]\n"
        "    For further information visit https://errors.pydantic.dev/2.12/v/enum\ncache\n"
        "  Extra inputs are not permitted [type=extra_forbidden, input_value=False, "
        "input_type=bool]\n"
        "    For further information visit https://errors.pydantic.dev/2.12/v/extra_forbidden"
    )


# ---- LIMIT and hasMore ---------------------------------------------------------------------


def test_has_more_only_without_limit_and_any_limit_lowered_to_50000(srv: LocalPostHog) -> None:
    paged = post(srv, "SELECT uuid FROM events ORDER BY uuid").json()
    assert (paged["hasMore"], paged["limit"], paged["offset"], len(paged["results"])) == (
        True,
        100,
        0,
        100,
    )
    five = post(srv, "SELECT uuid FROM events ORDER BY uuid LIMIT 5").json()
    assert (five["hasMore"], five["limit"], five["offset"], len(five["results"])) == (
        None,
        None,
        None,
        5,
    )
    # 300 x 300 rows exist; LIMIT 60000 gets 50,000 of them and no sign of the rest
    capped = post(srv, "SELECT a.uuid FROM events a CROSS JOIN events b LIMIT 60000").json()
    assert (capped["hasMore"], capped["limit"], len(capped["results"])) == (None, None, 50_000)


# ---- DateTime strings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-05 10:00:00.123456", "2024-01-05T10:00:00.123456Z"),
        ("2024-01-05T10:00:00", "2024-01-05T10:00:00Z"),
        ("2024-01-05", "2024-01-05T00:00:00Z"),
    ],
)
def test_todatetime64_parses_basic_datetime_text(
    srv: LocalPostHog, text: str, expected: str
) -> None:
    r = post(srv, "SELECT toDateTime64({t}, 6, 'UTC')", values={"t": text})
    assert r.status_code == 200
    got = datetime.fromisoformat(r.json()["results"][0][0].replace("Z", "+00:00"))
    assert got == datetime.fromisoformat(expected.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT toDateTime64('2024-01-05T10:00:00.123456Z', 6, 'UTC')",
        "SELECT toDateTime64('2024-01-05 11:00:00+01:00', 6, 'UTC')",
        "SELECT uuid FROM events WHERE timestamp > toDateTime64({t}, 6, 'UTC')",
        "SELECT toDateTime64(concat('2024-01-05 10:00:00', 'Z'), 6, 'UTC')",  # at run time
    ],
)
def test_todatetime64_refuses_a_z_or_an_offset_like_clickhouse(srv: LocalPostHog, sql: str) -> None:
    r = post(srv, sql, values={"t": "2024-01-05T10:00:00-08:00"})
    assert (r.status_code, r.json()) == (400, CANNOT_PARSE_TEXT)


def test_todatetime_parses_best_effort_and_is_null_otherwise(srv: LocalPostHog) -> None:
    r = post(srv, "SELECT toDateTime('2024-01-05T11:00:00+01:00'), toDateTime('not a date')")
    assert r.status_code == 200
    first, second = r.json()["results"][0]
    assert datetime.fromisoformat(first.replace("Z", "+00:00")) == datetime(
        2024, 1, 5, 10, tzinfo=UTC
    )
    assert second is None


# ---- refresh modes and PostHog's cache -----------------------------------------------------

COUNT = "SELECT count() FROM events"


def test_blocking_answers_from_the_cache_until_force_blocking(fresh_srv: LocalPostHog) -> None:
    first = post(fresh_srv, COUNT).json()
    assert (first["results"], first["is_cached"]) == ([[300]], False)
    add_event(fresh_srv)
    stale = post(fresh_srv, COUNT).json()  # refresh absent: blocking, PostHog's default
    assert (stale["results"], stale["is_cached"]) == ([[300]], True)
    assert (stale["last_refresh"], stale["cache_key"]) == (
        first["last_refresh"],
        first["cache_key"],
    )
    fresh = post(fresh_srv, COUNT, refresh="force_blocking").json()
    assert (fresh["results"], fresh["is_cached"]) == ([[301]], False)
    assert fresh["last_refresh"] > first["last_refresh"]
    assert post(fresh_srv, COUNT, refresh="blocking").json()["results"] == [[301]]


def test_a_cached_answer_goes_stale_after_five_minutes(fresh_srv: LocalPostHog) -> None:
    post(fresh_srv, COUNT)
    add_event(fresh_srv)
    cache = fresh_srv._state.query_cache[1]
    later = datetime.now(UTC) + timedelta(minutes=5, seconds=10)
    cache.clock = lambda: later
    again = post(fresh_srv, COUNT).json()
    assert (again["results"], again["is_cached"]) == ([[301]], False)


def test_force_cache_computes_on_the_query_endpoint(fresh_srv: LocalPostHog) -> None:
    # posthog/api/query.py maps force_cache (never calculate) to blocking on this endpoint
    r = post(fresh_srv, COUNT, refresh="force_cache")
    assert (r.status_code, r.json()["results"], r.json()["is_cached"]) == (200, [[300]], False)


def test_async_starts_a_query_to_poll_and_answers_a_fresh_cache(fresh_srv: LocalPostHog) -> None:
    started = post(fresh_srv, COUNT, refresh="async", client_query_id="q-1")
    assert started.status_code == 202
    body = started.json()
    assert set(body) == {"cache_key", "query_status"}
    assert body["query_status"]["id"] == "q-1" and body["query_status"]["complete"] is False
    polled = requests.get(
        f"{fresh_srv.url}/api/projects/1/query/q-1/",
        headers={"Authorization": f"Bearer {fresh_srv.api_key}"},
    )
    assert polled.status_code == 200
    status = polled.json()["query_status"]
    assert status["complete"] is True and status["error"] is False
    assert status["results"]["results"] == [[300]]
    cached = post(fresh_srv, COUNT, refresh="async")
    assert (cached.status_code, cached.json()["is_cached"]) == (200, True)
    forced = post(fresh_srv, COUNT, refresh="force_async")
    assert forced.status_code == 202 and set(forced.json()) == {"query_status"}


def test_a_failing_async_query_polls_as_a_400(fresh_srv: LocalPostHog) -> None:
    started = post(fresh_srv, "SELECT nope FROM events", refresh="force_async")
    query_id = started.json()["query_status"]["id"]
    url = f"{fresh_srv.url}/api/projects/1/query/"
    headers = {"Authorization": f"Bearer {fresh_srv.api_key}"}
    polled = requests.get(f"{url}{query_id}/", headers=headers)
    assert polled.status_code == 400
    status = polled.json()["query_status"]
    assert status["error"] is True and "nope" in status["error_message"]
    missing = requests.get(f"{url}no-such-query/", headers=headers)
    assert missing.status_code == 404


def test_the_cache_keeps_the_most_recently_used_answers_within_its_rows() -> None:
    cache = ResultCache(max_rows=5)
    now = datetime.now(UTC)

    def answer(rows: int) -> CachedAnswer:
        return CachedAnswer({"results": [[i] for i in range(rows)]}, now)

    cache.put("a", answer(2))
    cache.put("b", answer(2))
    assert cache.get("a") is not None  # now the most recently used
    cache.put("c", answer(2))  # 6 rows: "b" goes
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    cache.put("big", answer(6))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("big") is None
    assert cache.get("a") is not None and cache.get("c") is not None
