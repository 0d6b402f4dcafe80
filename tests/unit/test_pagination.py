"""Pagination over every PostHog list shape, driven by literal pages."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import requests_mock

from posthog_pandas import _config
from posthog_pandas._credentials import Credentials
from posthog_pandas._http import HttpClient, origin_of
from posthog_pandas._pagination import canonical_url, iter_pages, reanchor
from posthog_pandas.exceptions import PaginationError, ResponseFormatError, ServerError

BASE = "https://ph.test/api/projects/1"


class FakeServer:
    """Answers fetch(url, params) from a dict keyed by canonical URL; records every call."""

    def __init__(self, pages: dict[str, Any]) -> None:
        self.pages = {canonical_url(url, None): body for url, body in pages.items()}
        self.calls: list[str] = []

    def __call__(self, url: str, params: Mapping[str, Any] | None) -> Any:
        key = canonical_url(url, params)
        self.calls.append(key)
        return self.pages[key]


def rows(pages: list[Any]) -> list[Any]:
    return [r for p in pages for r in p.results]


def test_limit_offset_with_count() -> None:
    server = FakeServer(
        {
            f"{BASE}/cohorts/": {
                "count": 3,
                "next": f"{BASE}/cohorts/?limit=2&offset=2",
                "previous": None,
                "results": [{"id": 1}, {"id": 2}],
            },
            f"{BASE}/cohorts/?limit=2&offset=2": {
                "count": 3,
                "next": None,
                "previous": f"{BASE}/cohorts/?limit=2",
                "results": [{"id": 3}],
            },
        }
    )
    pages = list(iter_pages(server, f"{BASE}/cohorts/"))
    assert rows(pages) == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [p.count for p in pages] == [3, 3]
    assert len(server.calls) == 2


def test_persons_short_pages_with_next_are_followed_to_the_end() -> None:
    server = FakeServer(
        {
            f"{BASE}/persons/?limit=3": {
                "next": f"{BASE}/persons/?limit=3&offset=3",
                "results": [{"id": "a"}],
            },
            f"{BASE}/persons/?limit=3&offset=3": {
                "next": f"{BASE}/persons/?limit=3&offset=6",
                "results": [],
            },
            f"{BASE}/persons/?limit=3&offset=6": {
                "next": None,
                "results": [{"id": "b"}, {"id": "c"}],
            },
        }
    )
    pages = list(iter_pages(server, f"{BASE}/persons/", {"limit": 3}))
    assert rows(pages) == [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    assert pages[0].count is None


def test_events_before_cursor_and_relative_next() -> None:
    server = FakeServer(
        {
            f"{BASE}/events/?limit=2": {
                "next": "/api/projects/1/events/?limit=2&before=2024-01-02T00%3A00%3A00Z",
                "results": [{"id": "e1"}, {"id": "e2"}],
            },
            f"{BASE}/events/?limit=2&before=2024-01-02T00:00:00Z": {
                "next": None,
                "results": [{"id": "e3"}],
            },
        }
    )
    assert rows(list(iter_pages(server, f"{BASE}/events/", {"limit": 2}))) == [
        {"id": "e1"},
        {"id": "e2"},
        {"id": "e3"},
    ]


def test_groups_opaque_cursor() -> None:
    server = FakeServer(
        {
            f"{BASE}/groups/?group_type_index=0": {
                "next": f"{BASE}/groups/?cursor=cD0yMDI0&group_type_index=0",
                "previous": None,
                "results": [{"group_key": "g1"}],
            },
            f"{BASE}/groups/?cursor=cD0yMDI0&group_type_index=0": {
                "next": None,
                "previous": None,
                "results": [{"group_key": "g2"}],
            },
        }
    )
    pages = list(iter_pages(server, f"{BASE}/groups/", {"group_type_index": 0}))
    assert rows(pages) == [{"group_key": "g1"}, {"group_key": "g2"}]


def test_session_recordings_has_next_pages_by_offset() -> None:
    server = FakeServer(
        {
            f"{BASE}/session_recordings/?limit=2": {
                "results": [{"id": 1}, {"id": 2}],
                "has_next": True,
                "version": 3,
            },
            f"{BASE}/session_recordings/?limit=2&offset=2": {
                "results": [{"id": 3}],
                "has_next": False,
                "version": 3,
            },
        }
    )
    pages = list(iter_pages(server, f"{BASE}/session_recordings/", {"limit": 2}))
    assert rows(pages) == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_a_single_object_or_a_bare_list_is_one_page() -> None:
    server = FakeServer(
        {f"{BASE}/x/": {"id": 9}, f"{BASE}/y/": [{"id": 1}, {"id": 2}], f"{BASE}/z/": [1, 2]}
    )
    assert rows(list(iter_pages(server, f"{BASE}/x/"))) == [{"id": 9}]
    assert rows(list(iter_pages(server, f"{BASE}/y/"))) == [{"id": 1}, {"id": 2}]
    with pytest.raises(ResponseFormatError, match="are not JSON objects"):
        list(iter_pages(server, f"{BASE}/z/"))


def test_repeated_next_raises_instead_of_looping() -> None:
    server = FakeServer(
        {
            f"{BASE}/cohorts/": {"next": f"{BASE}/cohorts/?offset=2", "results": [{"id": 1}]},
            f"{BASE}/cohorts/?offset=2": {
                "next": f"{BASE}/cohorts/?offset=2",
                "results": [{"id": 3}],
            },
        }
    )
    with pytest.raises(PaginationError, match="repeats an earlier page"):
        list(iter_pages(server, f"{BASE}/cohorts/"))
    assert len(server.calls) == 2


def test_bad_envelopes_are_format_errors() -> None:
    server = FakeServer(
        {f"{BASE}/a/": {"results": {"x": 1}}, f"{BASE}/b/": {"results": [], "next": 5}}
    )
    with pytest.raises(ResponseFormatError, match="not a list"):
        list(iter_pages(server, f"{BASE}/a/"))
    with pytest.raises(ResponseFormatError, match="not a URL"):
        list(iter_pages(server, f"{BASE}/b/"))


def test_canonical_url_ignores_param_order_and_trailing_slash() -> None:
    assert canonical_url("https://h/a?b=1&a=2", None) == canonical_url(
        "https://h/a/", {"a": 2, "b": 1}
    )


def test_prefetch_yields_in_order_and_reraises_in_the_caller() -> None:
    from posthog_pandas._pagination import prefetch

    def pages():
        yield 1
        yield 2
        raise PaginationError("boom after two")

    seen = []
    with pytest.raises(PaginationError, match="boom after two"):
        for item in prefetch(pages()):
            seen.append(item)
    assert seen == [1, 2]


def test_prefetch_stops_the_producer_when_the_caller_stops() -> None:
    import threading

    from posthog_pandas._pagination import prefetch

    produced = []
    closed = threading.Event()

    def pages():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    stream = prefetch(pages())
    assert next(stream) == 0
    stream.close()
    assert closed.wait(5)
    assert len(produced) <= 3  # at most one page ahead (plus the one being handed over)


# --- look-ahead on limit/offset lists ------------------------------------------------------------


def offset_pages(total: int, limit: int, path: str = "persons") -> dict[str, Any]:
    """PostHog's persons shape: `next` = this URL with offset += limit while a page is full."""
    pages: dict[str, Any] = {}
    for offset in range(0, total + 2 * limit, limit):
        url = f"{BASE}/{path}/?limit={limit}" + (f"&offset={offset}" if offset else "")
        chunk = [{"id": i} for i in range(offset, min(offset + limit, total))]
        full = len(chunk) == limit
        nxt = f"{BASE}/{path}/?limit={limit}&offset={offset + limit}" if full else None
        pages[url] = {"next": nxt, "results": chunk}
    return pages


def test_look_ahead_requests_each_page_once_and_one_past_the_end() -> None:
    server = FakeServer(offset_pages(total=7, limit=2))
    pages = list(iter_pages(server, f"{BASE}/persons/", {"limit": 2}, ahead=True))
    assert rows(pages) == [{"id": i} for i in range(7)]
    offsets = sorted(int(dict(parse_qsl(urlsplit(c).query)).get("offset", 0)) for c in server.calls)
    assert offsets == [0, 2, 4, 6, 8]  # the four pages, then one guess past the end
    assert len(set(server.calls)) == len(server.calls)  # nothing was requested twice


@pytest.mark.parametrize("pair", [(2, 4), (4, 6), (6, 8)])
def test_look_ahead_keeps_two_requests_in_flight(pair: tuple[int, int]) -> None:
    # (2, 4): page 2 is fetched directly while the first guess is sent; (4, 6) and (6, 8):
    # two guesses in a row, which a single look-ahead worker would have run one after another.
    both_sent = threading.Barrier(2, timeout=5)
    server = FakeServer(offset_pages(total=10, limit=2))
    overlapped: list[bool] = []
    waiting_for = {f"offset={offset}" for offset in pair}

    def fetch(url: str, params: Mapping[str, Any] | None) -> Any:
        if any(url.endswith(marker) for marker in waiting_for):
            try:
                both_sent.wait()
                overlapped.append(True)
            except threading.BrokenBarrierError:
                overlapped.append(False)
        return server(url, params)

    pages = list(iter_pages(fetch, f"{BASE}/persons/", {"limit": 2}, ahead=True))
    assert rows(pages) == [{"id": i} for i in range(10)]
    assert overlapped == [True, True]  # the two pages were being fetched at once


def test_cursor_lists_are_never_guessed() -> None:
    server = FakeServer(
        {
            f"{BASE}/groups/?group_type_index=0&limit=2": {
                "next": f"{BASE}/groups/?cursor=abc", "results": [{"id": 1}, {"id": 2}],
            },
            f"{BASE}/groups/?cursor=abc": {"next": None, "results": [{"id": 3}]},
        }
    )  # fmt: skip
    params = {"group_type_index": 0, "limit": 2}
    pages = list(iter_pages(server, f"{BASE}/groups/", params, ahead=True))
    assert rows(pages) == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert len(server.calls) == 2


def test_a_wrong_guess_is_dropped_and_look_ahead_stops() -> None:
    pages_by_url = offset_pages(total=8, limit=2)
    # Like PostHog's short persons pages (ph#24787): page 2 is short and points at offset 3.
    pages_by_url[f"{BASE}/persons/?limit=2&offset=2"] = {
        "next": f"{BASE}/persons/?limit=2&offset=3", "results": [{"id": 2}],
    }  # fmt: skip
    pages_by_url[f"{BASE}/persons/?limit=2&offset=3"] = {
        "next": f"{BASE}/persons/?limit=2&offset=5", "results": [{"id": 3}, {"id": 4}],
    }  # fmt: skip
    pages_by_url[f"{BASE}/persons/?limit=2&offset=5"] = {
        "next": None, "results": [{"id": 5}],
    }  # fmt: skip
    server = FakeServer(pages_by_url)
    pages = list(iter_pages(server, f"{BASE}/persons/", {"limit": 2}, ahead=True))
    assert rows(pages) == [{"id": i} for i in range(6)]
    offsets = [int(dict(parse_qsl(urlsplit(c).query)).get("offset", 0)) for c in server.calls]
    assert sorted(offsets) == [0, 2, 3, 4, 5]  # offset 4 was the one wrong guess


def test_an_error_in_a_used_guess_is_that_pages_error_and_an_unused_one_is_ignored() -> None:
    server = FakeServer(offset_pages(total=5, limit=2))

    def failing_at(offset: str) -> Any:
        def fetch(url: str, params: Mapping[str, Any] | None) -> Any:
            if f"offset={offset}" in url:
                raise PaginationError(f"boom at {offset}")
            return server(url, params)

        return fetch

    with pytest.raises(PaginationError, match="boom at 4"):
        list(iter_pages(failing_at("4"), f"{BASE}/persons/", {"limit": 2}, ahead=True))
    # offset 6 is only ever a guess past the last page (offset 4 has one row)
    pages = list(iter_pages(failing_at("6"), f"{BASE}/persons/", {"limit": 2}, ahead=True))
    assert rows(pages) == [{"id": i} for i in range(5)]


# --- growing pages ---------------------------------------------------------------------------


class OffsetServer:
    """A persons-like list of `total` rows answering any limit/offset: `next` = offset +=
    limit while a page is full. `cap` clamps the limit as DRF's max_limit does (its `next`
    then carries the clamped limit); `fail_above` answers a ServerError above that limit."""

    def __init__(self, total: int, cap: int | None = None, fail_above: int | None = None):
        self.total, self.cap, self.fail_above = total, cap, fail_above
        self.calls: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def __call__(self, url: str, params: Mapping[str, Any] | None) -> Any:
        query = {**dict(parse_qsl(urlsplit(url).query)), **(params or {})}
        offset, limit = int(query.get("offset", 0)), int(query["limit"])
        with self._lock:
            self.calls.append((offset, limit))
        if self.fail_above is not None and limit > self.fail_above:
            raise ServerError("PostHog had a server-side problem", status=504, url=url)
        limit = min(limit, self.cap or limit)
        chunk = [{"id": i} for i in range(offset, min(offset + limit, self.total))]
        full = len(chunk) == limit
        nxt = f"{BASE}/persons/?limit={limit}&offset={offset + limit}" if full else None
        return {"next": nxt, "results": chunk}


def test_pages_grow_from_the_first_limit_to_grow_to() -> None:
    server = OffsetServer(total=25)
    pages = list(iter_pages(server, f"{BASE}/persons/", {"limit": 2}, ahead=True, grow_to=8))
    assert rows(pages) == [{"id": i} for i in range(25)]
    assert [len(p.results) for p in pages] == [2, 4, 8, 8, 3]
    # each page once, then the look-ahead request past the last page
    assert sorted(server.calls) == [(0, 2), (2, 4), (6, 8), (14, 8), (22, 8), (30, 8)]


def test_without_grow_to_pages_keep_their_size() -> None:
    server = OffsetServer(total=7)
    pages = list(iter_pages(server, f"{BASE}/persons/", {"limit": 2}, ahead=True))
    assert [len(p.results) for p in pages] == [2, 2, 2, 1]
    assert {limit for _, limit in server.calls} == {2}


def test_a_server_that_caps_the_limit_is_followed_from_where_it_stopped() -> None:
    server = OffsetServer(total=19, cap=3)
    pages = list(iter_pages(server, f"{BASE}/persons/", {"limit": 2}, ahead=True, grow_to=16))
    assert rows(pages) == [{"id": i} for i in range(19)]  # no row skipped, none twice
    # (2, 4) came back with 3 rows and `next` at offset 5: growing stops, `next` is followed.
    # (6, 8) was the guess for the grown page after it: sent, then dropped.
    assert [len(p.results) for p in pages] == [2, 3, 3, 3, 3, 3, 2]
    assert sorted(server.calls) == [
        (0, 2),
        (2, 4),
        (5, 3),
        (6, 8),
        (8, 3),
        (11, 3),
        (14, 3),
        (17, 3),
    ]


def test_a_grown_page_the_server_fails_on_is_asked_for_again_at_the_first_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = OffsetServer(total=11, fail_above=4)
    pages = list(iter_pages(server, f"{BASE}/persons/", {"limit": 2}, ahead=True, grow_to=8))
    assert rows(pages) == [{"id": i} for i in range(11)]
    # 0:2, 2:4, then 6:8 fails (its guess 14:8 as well) and the rest comes 2 rows at a time
    assert [len(p.results) for p in pages] == [2, 4, 2, 2, 1]
    assert (6, 8) in server.calls and (6, 2) in server.calls
    assert max(limit for offset, limit in server.calls if offset > 6) == 8  # only the guess
    assert [r.getMessage() for r in caplog.records] == [
        "PostHog had a server-side problem; asking for the same rows in smaller pages."
    ]


def test_a_failure_at_the_first_size_is_raised() -> None:
    server = OffsetServer(total=12, fail_above=1)
    with pytest.raises(ServerError, match="server-side problem"):
        list(iter_pages(server, f"{BASE}/persons/", {"limit": 2}, ahead=True, grow_to=8))
    assert server.calls == [(0, 2)]


# -- `next` links on another scheme (PostHog behind a TLS proxy) ---------------------------------

KEY = "phx_pagination_test_key_0123456789abcdefghijk"
ORIGIN = "https://ph.test"
COHORTS = f"{ORIGIN}/api/projects/1/cohorts/"


def transport() -> tuple[HttpClient, requests_mock.Adapter]:
    """An HttpClient for ORIGIN whose every request, on any scheme or host, reaches `adapter`."""
    session = requests.Session()
    adapter = requests_mock.Adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client = HttpClient(_config.Settings(host=ORIGIN), Credentials(api_key=KEY), session=session)
    return client, adapter


def cohorts_linking_to(link_origin: str, adapter: requests_mock.Adapter, total: int = 5) -> None:
    """Cohort pages of 2 on ORIGIN (and on link_origin, to catch a request that goes there),
    whose `next` links are absolute on `link_origin`."""

    def page(request: Any, context: Any) -> dict[str, Any]:
        offset = int(request.qs.get("offset", ["0"])[0])
        ids = range(offset, min(offset + 2, total))
        following = offset + 2 < total
        link = f"{link_origin}/api/projects/1/cohorts/?limit=2&offset={offset + 2}"
        return {
            "count": total,
            "next": link if following else None,
            "results": [{"id": i} for i in ids],
        }

    for origin in {ORIGIN, link_origin}:
        adapter.register_uri("GET", re.compile(re.escape(origin) + "/api/"), json=page)


def fetch_with(client: HttpClient) -> Callable[[str, Mapping[str, Any] | None], Any]:
    return lambda url, params: client.send("GET", url, params=params).data


@pytest.mark.parametrize("ahead", [False, True])
def test_an_http_next_link_for_an_https_origin_is_followed_on_the_origin(ahead: bool) -> None:
    client, adapter = transport()
    cohorts_linking_to("http://ph.test", adapter)
    pages = list(iter_pages(fetch_with(client), f"{COHORTS}?limit=2", ahead=ahead))
    assert rows(pages) == [{"id": i} for i in range(5)]
    sent = adapter.request_history
    offsets = sorted(int(r.qs.get("offset", ["0"])[0]) for r in sent)
    # three pages; with the look-ahead, its guesses matched the re-anchored links (one past the end)
    assert offsets == ([0, 2, 4, 6] if ahead else [0, 2, 4])
    assert {origin_of(r.url) for r in sent} == {ORIGIN}
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in sent)


@pytest.mark.parametrize(
    "link_origin",
    ["http://evil.test", "https://evil.test", "http://ph.test:8080", "https://ph.test:8443"],
)
def test_a_next_link_to_another_host_or_port_is_refused_before_sending(link_origin: str) -> None:
    client, adapter = transport()
    cohorts_linking_to(link_origin, adapter)
    with pytest.raises(PaginationError, match="outside the configured PostHog origin"):
        list(iter_pages(fetch_with(client), f"{COHORTS}?limit=2"))
    assert [r.url for r in adapter.request_history] == [f"{COHORTS}?limit=2"]


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("http://ph.test/a/?x=1", "https://ph.test/a/?x=1"),
        ("http://PH.test:80/a/", "https://ph.test/a/"),  # the default port is no port
        ("http://ph.test:8443/a/", "http://ph.test:8443/a/"),  # another port: left to refuse
        ("http://evil.test/a/", "http://evil.test/a/"),
        ("http://user@ph.test/a/", "http://user@ph.test/a/"),
        ("https://ph.test/a/?x=1", "https://ph.test/a/?x=1"),
    ],
)
def test_reanchor_changes_only_the_scheme(link: str, expected: str) -> None:
    assert reanchor(link, "https://ph.test/api/") == expected


# --- limited pulls (rows=N) ------------------------------------------------------------------


def test_a_small_limit_is_one_small_request() -> None:
    server = OffsetServer(total=100)
    params = {"limit": 1000}
    pages = list(iter_pages(server, f"{BASE}/persons/", params, ahead=True, grow_to=5000, rows=3))
    assert rows(pages) == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert server.calls == [(0, 3)]  # no look-ahead guess past the three rows
    assert params == {"limit": 1000}  # the caller's parameters are left alone


def test_a_limit_cuts_grown_overlapping_pages_and_their_guesses() -> None:
    server = OffsetServer(total=100)
    pages = list(
        iter_pages(
            server, f"{BASE}/persons/", {"limit": 2}, ahead=True, grow_to=8, overlap=1, rows=11
        )
    )
    assert sorted({r["id"] for r in rows(pages)}) == list(range(11))
    # 0:2, then grown to 4 and moved back a row (1:4); the guess for the page after it is
    # grown to 8 from offset 4 but cut at row 11 (4:7), and nothing is asked past it.
    assert sorted(server.calls) == [(0, 2), (1, 4), (4, 7)]


def test_a_limit_past_the_end_reads_the_list_as_without_one() -> None:
    limited, full = OffsetServer(total=7), OffsetServer(total=7)
    got = list(iter_pages(limited, f"{BASE}/persons/", {"limit": 2}, ahead=True, rows=50))
    assert rows(got) == rows(list(iter_pages(full, f"{BASE}/persons/", {"limit": 2}, ahead=True)))
    assert sorted(limited.calls) == sorted(full.calls)


def test_a_limit_on_has_next_pages_stops_at_its_rows() -> None:
    calls: list[dict[str, str]] = []

    def fetch(url: str, params: Mapping[str, Any] | None) -> Any:
        query = {
            **dict(parse_qsl(urlsplit(url).query)),
            **{k: str(v) for k, v in (params or {}).items()},
        }
        calls.append(query)
        offset, limit = int(query.get("offset", 0)), int(query["limit"])
        return {"results": [{"id": i} for i in range(offset, offset + limit)], "has_next": True}

    pages = list(iter_pages(fetch, f"{BASE}/session_recordings/", {"limit": 100}, rows=5))
    assert rows(pages) == [{"id": i} for i in range(5)]
    assert calls == [{"limit": "5"}]


def test_a_cursor_list_cannot_be_cut_and_is_read_on() -> None:
    # Its `next` names no offset: iter_pages follows it, and the reader stops (first_rows).
    server = FakeServer(
        {
            f"{BASE}/groups/?group_type_index=0": {
                "next": f"{BASE}/groups/?cursor=abc", "results": [{"id": 1}, {"id": 2}],
            },
            f"{BASE}/groups/?cursor=abc": {"next": None, "results": [{"id": 3}]},
        }
    )  # fmt: skip
    pages = list(iter_pages(server, f"{BASE}/groups/", {"group_type_index": 0}, rows=1))
    assert rows(pages) == [{"id": 1}, {"id": 2}, {"id": 3}]
