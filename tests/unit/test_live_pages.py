"""Overlapping offset pages of a list that changes while it is read (persons), joined without
repeats or gaps: scripted lists, exact requests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from posthog_pandas._live import without_repeats_or_gaps
from posthog_pandas._pagination import Page, iter_pages
from posthog_pandas.exceptions import PaginationError

URL = "https://ph.test/api/projects/1/persons/"


class LiveList:
    """A persons list served by offset from its current rows (newest first); `changes[k]`
    runs after the k-th request is answered, like a write between two page requests."""

    def __init__(self, ids: list[str]) -> None:
        self.rows = list(ids)
        self.requests: list[tuple[int, int]] = []
        self.changes: dict[int, Any] = {}

    def __call__(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        query = {**dict(parse_qsl(urlsplit(url).query)), **(params or {})}
        limit, offset = int(query["limit"]), int(query.get("offset", 0))
        self.requests.append((offset, limit))
        page = [{"id": i} for i in self.rows[offset : offset + limit]]
        full = len(page) >= limit
        nxt = f"{URL}?limit={limit}&offset={offset + limit}" if full else None
        change = self.changes.pop(len(self.requests), None)
        if change is not None:
            change(self)
        return {"next": nxt, "results": page}


def pull(server: LiveList, limit: int = 4, **kwargs: Any) -> list[str]:
    pages: Iterator[Page] = iter_pages(server, URL, {"limit": limit}, overlap=1, **kwargs)
    joined = without_repeats_or_gaps(pages, lambda url: server(url, None))
    return [row["id"] for page in joined for row in page.results]


def people(n: int, prefix: str = "p") -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(n)]


def test_pages_overlap_by_one_row_and_each_row_comes_once() -> None:
    server = LiveList(people(10))
    assert pull(server) == people(10)
    assert server.requests == [(0, 4), (3, 4), (6, 4), (9, 4)]


def test_rows_created_meanwhile_are_not_repeated() -> None:
    server = LiveList(people(10))
    server.changes[1] = lambda s: s.rows.__setitem__(slice(0, 0), ["new1", "new2"])
    assert pull(server) == people(10)  # the new ones are ahead of the pages still to come
    assert server.requests == [(0, 4), (3, 4), (6, 4), (9, 4)]  # page two repeated 3 rows


def test_rows_removed_meanwhile_are_read_again_from_a_bridge() -> None:
    server = LiveList(people(12))
    server.changes[1] = lambda s: s.rows.__delitem__(slice(0, 3))  # three gone at the head
    assert pull(server) == people(12)
    # page two started three rows late: one bridge around its start filled the gap
    assert server.requests == [(0, 4), (3, 4), (0, 54), (6, 4)]


def test_an_empty_last_page_after_removals_is_bridged_to_the_end() -> None:
    server = LiveList(people(8))
    server.changes[2] = lambda s: s.rows.__delitem__(slice(0, 2))
    assert pull(server) == people(8)
    assert server.requests == [(0, 4), (3, 4), (6, 4), (0, 57)]


def test_a_list_that_changed_beyond_every_bridge_is_an_error() -> None:
    server = LiveList(people(3000))
    server.changes[1] = lambda s: s.rows.__delitem__(slice(0, 2500))
    with pytest.raises(PaginationError, match="changed too much while it was read"):
        pull(server, limit=100)
    assert server.requests[2:] == [(49, 101), (0, 600), (0, 2100)]


def test_look_ahead_and_growing_pages_overlap_too() -> None:
    server = LiveList(people(40))
    assert pull(server, limit=5, ahead=True, grow_to=20) == people(40)
    assert sorted(server.requests) == [(0, 5), (4, 10), (13, 20), (32, 20), (51, 20)]
