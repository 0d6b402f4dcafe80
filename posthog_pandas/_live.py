"""Offset lists read while they change: PostHog's persons and cohort persons lists.

PostHog pages persons by offset over `created_at DESC, id DESC` (posthog/api/person.py). A
person created during a pull moves every later row one place down, so the next page repeats
a row; a person deleted (or merged away) moves them up, so the next page starts a row late
and one row is never seen. The look-ahead (two pages in flight, answered in either order)
turns creations into skipped rows as well.

The order of two persons never changes (`created_at` and `id` are fixed), so a page that
shares a row with the rows read before it continues them: every row between is on one of
them. Pages are requested overlapping by one row (`overlap=1` in _pagination), so a page
normally repeats exactly the last row of the one before and no request is added. Each row
is kept once, by id.

A page that shares no row with what came before means rows were removed in between. A bridge
is then read fresh (never from the cache) around the page's start, wider each time, until it
shares a row with the rows before and with the page (or reaches the end of the list); its
new rows fill the gap. When no bridge does, the pull stops with PaginationError instead of
returning a table with holes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from posthog_pandas._pagination import Page, _at, _limit_offset, to_page
from posthog_pandas._urls import redact_url
from posthog_pandas.exceptions import PaginationError

log = logging.getLogger("posthog_pandas")

# How many rows before and after a page's start a bridge reads, tried in turn. The widest
# stays under 5,000 rows, the largest persons page PostHog serves whole (see GROWING_PAGES).
BRIDGE_REACH = (50, 500, 2_000)

# refetch(url) -> the parsed body of that page, read fresh
Refetch = Callable[[str], Any]


def without_repeats_or_gaps(
    pages: Iterator[Page], refetch: Refetch, *, key: str = "id"
) -> Iterator[Page]:
    """The pages of an overlapping offset list with the rows earlier pages already gave
    (same `key`) left out, and the rows a shift made the pages skip read again."""
    seen: set[Any] = set()
    for page in pages:
        idents = _idents(page, key)
        limit, offset = _limit_offset(page.url, {})
        # Only offset pages overlap; a cursor (keyset) page cannot shift, it is only deduped.
        if seen and limit is not None and offset > 0 and seen.isdisjoint(idents):
            bridge = _bridge(page, offset, set(idents), seen, key, refetch)
            yield _keep_new(bridge, _idents(bridge, key), seen)
        yield _keep_new(page, idents, seen)


def _idents(page: Page, key: str) -> list[Any]:
    """Each row's identity, or None where it has none a set can hold."""
    return [
        value if isinstance(value, str | int) and not isinstance(value, bool) else None
        for value in (row.get(key) for row in page.results)
    ]


def _keep_new(page: Page, idents: list[Any], seen: set[Any]) -> Page:
    """The page without the rows an earlier page gave (a page's own rows are the server's
    answer, kept as they are); the page's ids join `seen`."""
    fresh = [row for row, ident in zip(page.results, idents, strict=True) if ident not in seen]
    seen.update(idents)
    seen.discard(None)
    return page if len(fresh) == len(page.results) else replace(page, results=fresh)


def _bridge(
    page: Page, offset: int, wanted: set[Any], seen: set[Any], key: str, refetch: Refetch
) -> Page:
    """Rows around `page`'s start (`offset`), read now, that join the rows read before
    (`seen`) to the page (`wanted`, its ids)."""
    wanted.discard(None)
    for reach in BRIDGE_REACH:
        start = max(0, offset - reach)
        size = offset - start + reach + 1
        url, _ = _at(page.url, {}, start, size)
        bridge = to_page(refetch(url), url)
        found = set(_idents(bridge, key))
        reaches_page = not wanted.isdisjoint(found) or len(bridge.results) < size
        if reaches_page and not seen.isdisjoint(found):
            log.info(
                "the list changed while it was read: rows %d-%d read again", start, start + size
            )
            return bridge
    raise PaginationError(
        f"The list at {redact_url(page.url)} changed too much while it was read (rows were "
        "deleted or merged away between two page requests), so some rows may be missing; "
        "nothing was returned. Run the pull again with refresh=True."
    )
