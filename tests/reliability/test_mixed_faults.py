"""Full-size pulls under the local server's mixed faults: exact rows, clear errors, clean cache.

20,000 persons (1,000-row pages, short pages with `next`) and 200,000 events (50,000-row query
pages) with 10% 429 (Retry-After 1), 5% 503, 2% resets mid-body, 1% malformed JSON with 200 and
1% HTML login pages. The result must be exactly the server's rows, or, past the retry budget, a
clear error; the cache must hold only valid envelopes afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import posthog_pandas as php
from posthog_pandas.server import Faults, LocalPostHog
from tests.reliability.helpers import (
    api_requests,
    assert_cache_holds_only_valid_envelopes,
    cached_pages,
    connector,
)

pytestmark = pytest.mark.integration

PERSONS, EVENTS = 20_000, 200_000
MIXED = Faults(
    rate_429=0.10,
    retry_after=1,
    rate_503=0.05,
    reset_mid_body=0.02,
    malformed_json=0.01,
    html_login=0.01,
    short_pages=True,
    seed=9,
)


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    """The full-size server; conftest's `server` hands it to each test without faults."""
    with LocalPostHog(persons=PERSONS, events=EVENTS, seed=5) as server:
        yield server


def test_20k_persons_under_mixed_faults_are_exactly_the_servers(
    server: LocalPostHog, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    ph = connector(server, cache)
    server.set_faults(MIXED)
    frame = ph.persons()

    expected = server.dataset().persons["id"]
    assert len(frame) == PERSONS
    assert frame["id"].is_unique  # no duplicates ...
    assert set(frame["id"]) == set(expected)  # ... and no gaps
    sent = api_requests(server, "/persons/")
    statuses = {r.status for r in sent}
    assert {429, 503} <= statuses  # the faults really happened
    pages = len([r for r, _, _ in cached_pages(cache) if r == "persons"])
    # short pages: 800 of the 1,000 asked for, with `next`; each page after the first starts
    # a row early (see _live), so it brings 799 new rows
    assert pages == 1 + -(-(PERSONS - 800) // 799)
    # Every request either produced a page (or the one page of person property definitions)
    # or was retried, and nothing else.
    definitions = api_requests(server, "/property_definitions/")
    assert len(sent) + len(definitions) == pages + 1 + ph.request_stats.retries
    assert ph.request_stats.retries >= 3
    assert 1.0 in ph.request_stats.waits  # Retry-After: 1 was honoured
    assert assert_cache_holds_only_valid_envelopes(cache) == pages + 2  # and @me, definitions

    # Read everything back offline: the cached pages alone give the same rows.
    server.clear_log()
    offline = connector(server, cache, offline=True)
    again = offline.persons(refresh=True)
    assert sorted(again["id"]) == sorted(frame["id"])
    assert server.requests == []


def test_200k_events_under_mixed_faults_are_exactly_the_servers(
    server: LocalPostHog, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    start, end = server.time_range()
    # The requests of the same pull without faults: the first page, the count, the windows.
    clean = connector(server, tmp_path / "clean")
    clean.events(after=start, before=end, columns=["event", "distinct_id"])
    sequence = {query_key(r) for r in api_requests(server, "/query/")}
    server.clear_log()
    ph = connector(server, cache)
    server.set_faults(MIXED)
    frame = ph.events(after=start, before=end, columns=["event", "distinct_id"])

    expected = server.dataset().events["uuid"]
    assert len(frame) == EVENTS
    assert frame["uuid"].is_unique
    assert set(frame["uuid"]) == set(expected)
    assert frame["timestamp"].is_monotonic_increasing
    queries = api_requests(server, "/query/")
    answered = [r for r in queries if r.status == 200]
    assert len(sequence) >= 5  # a full first page, the count and at least 3 windows
    # Each request of the clean pull, and retries only: no window asked twice once answered.
    assert {query_key(r) for r in queries} == sequence
    assert len(queries) == len(sequence) + ph.request_stats.retries
    assert len(answered) >= len(sequence)  # a reset or malformed body is logged as 200
    assert assert_cache_holds_only_valid_envelopes(cache) == len(sequence) + 1  # definitions

    server.clear_log()
    offline = connector(server, cache, offline=True)
    again = offline.events(after=start, before=end, columns=["event", "distinct_id"], refresh=True)
    assert sorted(again["uuid"]) == sorted(frame["uuid"])
    assert server.requests == []


def query_key(request: Any) -> str:
    """A query request's HogQL with its values."""
    return f"{request.hogql} {sorted((request.values or {}).items())}"


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (
            Faults(rate_429=1.0, retry_after=1, paths=("/persons",)),
            php.RateLimitError,
            "Request was throttled. Expected available in 1 second. (PostHog answered 429 to GET",
        ),
        (
            Faults(rate_503=1.0, paths=("/persons",)),
            php.ServerError,
            "Service temporarily unavailable, try again later. (PostHog answered 503 to GET",
        ),
        (
            Faults(reset_mid_body=1.0, paths=("/persons",)),
            php.TransportError,
            "failed before PostHog answered: ChunkedEncodingError",
        ),
        (
            Faults(malformed_json=1.0, paths=("/persons",)),
            php.ResponseFormatError,
            "returned a body that is not valid JSON",
        ),
        (
            Faults(html_login=1.0, paths=("/persons",)),
            php.ResponseFormatError,
            "returned an HTML page instead of PostHog's JSON",
        ),
    ],
    ids=["429", "503", "reset", "malformed", "html"],
)
def test_past_the_retry_budget_a_clear_error_and_nothing_cached(
    server: LocalPostHog,
    tmp_path: Path,
    fault: Faults,
    error: type[php.PostHogError],
    message: str,
) -> None:
    cache = tmp_path / "cache"
    retry = php.RetrySettings(attempts=2, backoff_factor=0.01, jitter=0.0)
    ph = connector(server, cache, retry=retry)
    server.set_faults(fault)
    with pytest.raises(error) as info:
        ph.persons()
    text = str(info.value)
    assert f"GET {server.url}/api/projects/1/persons/" in text
    assert message in text
    assert text.endswith("(gave up after 3 attempts)")
    assert len(api_requests(server, "/persons/")) == 3
    assert [r for r, _, _ in cached_pages(cache)] == ["me"]  # no persons page, nothing broken


def test_a_next_link_that_repeats_is_a_clear_error(server: LocalPostHog, tmp_path: Path) -> None:
    ph = connector(server, tmp_path / "cache")
    server.set_faults(Faults(repeat_next=True, paths=("/persons",)))
    with pytest.raises(php.PaginationError) as info:
        ph.persons()
    assert str(info.value) == (
        "PostHog returned a `next` link that repeats an earlier page "
        f"({server.url}/api/projects/1/persons/?limit=1000); stopping instead of looping "
        "forever. The rows fetched so far are incomplete."
    )
    assert len(api_requests(server, "/persons/")) == 1


def test_a_server_that_stops_answering_mid_pull_is_retried_then_a_transport_error(
    server: LocalPostHog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    retry = php.RetrySettings(attempts=1, backoff_factor=0.01, jitter=0.0)
    ph = connector(server, tmp_path / "cache", timeout=(2.0, 0.5), retry=retry)
    # By offset, not by count: the look-ahead sends pages two at a time, so which request
    # arrives fourth depends on thread scheduling.
    server.set_faults(Faults(hang_from_offset=6997, paths=("/persons",)))
    with pytest.raises(php.TransportError) as info:
        ph.persons()
    # Persons pages grow 1,000 -> 2,000 -> 4,000 -> 5,000 rows (see _pagination), each
    # starting a row early (see _live). The first request to hang is the grown page at
    # offset 6997: retried, then asked for again at 1,000 rows, which hangs too and is the error.
    url = f"{server.url}/api/projects/1/persons/?limit=1000&offset=6997"
    assert str(info.value) == (
        f"GET {url} timed out after 2 s (connect) / 0.5 s (read). PostHog may be slow or "
        "unreachable; try again, or pass timeout=... to connect(). (gave up after 2 attempts)"
    )
    assert info.value.url == url
    grown = f"{server.url}/api/projects/1/persons/?limit=5000&offset=6997"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"GET {grown} timed out after 2 s (connect) / 0.5 s (read). PostHog may be slow or "
        "unreachable; try again, or pass timeout=... to connect(). (gave up after 2 attempts)"
        "; asking for the same rows in smaller pages."
    ]
    hung = [r for r in api_requests(server, "/persons/") if r.status == 0]
    # Each hung request is sent twice (the retry). Beside offset 6997 at 5,000 and 1,000 rows,
    # the look-ahead requests sent alongside them (11996 at 5,000 rows, 7996 at 1,000) hang
    # too, and the pull waits for them before raising, so nothing is left running.
    assert sorted((int(r.params["offset"]), int(r.params["limit"])) for r in hung) == [
        (6997, 1000), (6997, 1000), (6997, 5000), (6997, 5000),
        (7996, 1000), (7996, 1000), (11996, 5000), (11996, 5000),
    ]  # fmt: skip
    assert ph.request_stats.retries == 4
