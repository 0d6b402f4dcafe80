"""`limit=N` on the list accessors, against requests-mock: PostHog is asked for N rows, no page
past them is requested, and a limited pull never stands in for a full one in the cache."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import requests_mock

import posthog_pandas as php
from tests.conftest import MOCK_HOST, MockConnect

PERSONS_URL = f"{MOCK_HOST}/api/projects/3/persons/"
GROUPS_URL = f"{MOCK_HOST}/api/projects/3/groups/"
TOTAL = 2_500


def person(i: int) -> dict[str, Any]:
    # Newest first, as PostHog orders persons (created_at DESC).
    uuid = f"00000000-0000-0000-0000-{i:012d}"
    created = pd.Timestamp("2024-06-01", tz="UTC") - pd.Timedelta(minutes=i)
    return {"id": uuid, "uuid": uuid, "distinct_ids": [f"d{i}"], "created_at": created.isoformat()}


def persons_page(request: Any, context: Any) -> dict[str, Any]:
    """PostHog's persons list: limit/offset, `next` only when the page came back full."""
    limit = int(request.qs.get("limit", ["100"])[0])
    offset = int(request.qs.get("offset", ["0"])[0])
    rows = [person(i) for i in range(offset, min(offset + limit, TOTAL))]
    nxt = f"{PERSONS_URL}?limit={limit}&offset={offset + limit}" if len(rows) == limit else None
    return {"results": rows, "next": nxt, "previous": None}


def sent(adapter: requests_mock.Adapter, url: str) -> list[tuple[int, int]]:
    """(offset, limit) of each request to `url`, in order."""
    return [
        (int(r.qs.get("offset", ["0"])[0]), int(r.qs["limit"][0]))
        for r in adapter.request_history
        if r.url.split("?")[0] == url
    ]


@pytest.fixture()
def persons(mock_connect: MockConnect) -> tuple[php.PostHog, requests_mock.Adapter]:
    ph, adapter = mock_connect()
    adapter.register_uri("GET", PERSONS_URL, json=persons_page)
    return ph, adapter


def test_persons_limit_3_is_one_request_for_3_rows(
    persons: tuple[php.PostHog, requests_mock.Adapter],
) -> None:
    ph, adapter = persons
    df = ph.persons(limit=3)
    assert sent(adapter, PERSONS_URL) == [(0, 3)]
    assert list(df["id"]) == [person(i)["id"] for i in range(3)]


def test_a_limit_past_the_first_page_stops_where_its_rows_end(
    persons: tuple[php.PostHog, requests_mock.Adapter],
) -> None:
    ph, adapter = persons
    df = ph.persons(limit=1_200, cache=False)
    # 1,000 rows, then the page that would grow to 2,000 starts a row early (the persons
    # overlap) and asks only for the 201 rows up to the 1,200th; nothing is guessed past it.
    assert sorted(sent(adapter, PERSONS_URL)) == [(0, 1000), (999, 201)]
    full = ph.persons(cache=False)
    assert len(full) == TOTAL
    pd.testing.assert_frame_equal(df, full.head(1_200))


def test_a_limited_pull_and_a_full_pull_keep_apart_in_the_cache(
    persons: tuple[php.PostHog, requests_mock.Adapter],
) -> None:
    ph, adapter = persons
    assert len(ph.persons(limit=2)) == 2
    full = ph.persons()
    assert len(full) == TOTAL  # not the two rows cached by the limited pull
    before = len(adapter.request_history)
    again = ph.persons(limit=2)  # from the cache: its own frame
    assert len(adapter.request_history) == before
    pd.testing.assert_frame_equal(again, full.head(2))
    pd.testing.assert_frame_equal(ph.persons(), full)
    assert len(adapter.request_history) == before


def test_a_cursor_list_stops_after_the_page_that_holds_the_limit(
    mock_connect: MockConnect,
) -> None:
    ph, adapter = mock_connect()
    first = [{"group_type_index": 0, "group_key": f"g{i}"} for i in range(2)]
    adapter.register_uri(
        "GET",
        GROUPS_URL,
        [
            {"json": {"next": f"{GROUPS_URL}?cursor=abc", "results": first}},
            {"json": {"next": f"{GROUPS_URL}?cursor=def", "results": first}},
        ],
    )
    df = ph.groups(0, limit=2)
    assert list(df["group_key"]) == ["g0", "g1"]
    requests = [r for r in adapter.request_history if r.url.startswith(GROUPS_URL)]
    assert len(requests) == 1 and "limit" not in requests[0].qs  # groups take no limit


def test_lists_without_a_limit_parameter_send_one_when_limited(
    mock_connect: MockConnect,
) -> None:
    ph, adapter = mock_connect()
    url = f"{MOCK_HOST}/api/projects/3/cohorts/"

    def cohorts_page(request: Any, context: Any) -> dict[str, Any]:  # DRF's limit/offset
        limit = int(request.qs.get("limit", ["100"])[0])
        offset = int(request.qs.get("offset", ["0"])[0])
        rows = [{"id": i, "name": f"c{i}"} for i in range(offset, min(offset + limit, 250))]
        more = offset + limit < 250
        nxt = f"{url}?limit={limit}&offset={offset + limit}" if more else None
        return {"count": 250, "next": nxt, "previous": None, "results": rows}

    adapter.register_uri("GET", url, json=cohorts_page)
    assert list(ph.cohorts(limit=3)["id"]) == [0, 1, 2]
    assert sent(adapter, url) == [(0, 3)]
    assert list(ph.cohorts(limit=150)["id"]) == list(range(150))
    # PostHog's own page size (100), then the rest of the 150 rows; no guess past them.
    assert sorted(sent(adapter, url)[1:]) == [(0, 100), (100, 50)]
    assert list(ph.cohorts()["id"]) == list(range(250))


@pytest.mark.parametrize("bad", [0, -1, "3", 2.5, True])
def test_a_bad_limit_names_the_argument_before_anything_is_sent(
    persons: tuple[php.PostHog, requests_mock.Adapter], bad: Any
) -> None:
    ph, adapter = persons
    with pytest.raises(php.ConfigurationError, match="limit must be a positive integer"):
        ph.persons(limit=bad)
    assert sent(adapter, PERSONS_URL) == []


def test_a_misspelled_limit_gets_a_did_you_mean(
    persons: tuple[php.PostHog, requests_mock.Adapter],
) -> None:
    ph, _ = persons
    with pytest.raises(TypeError, match="Did you mean 'limit'"):
        ph.persons(limt=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'limit'"):
        ph.insight(1, limit=3)  # type: ignore[call-arg]
