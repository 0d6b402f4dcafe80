"""Pagination: a generator over the pages of any PostHog list endpoint, and nothing else.

Shapes handled (posthog-api.md §4), all by one rule: follow what the server says.
- `next` link (limit/offset with `count`, persons without `count`, events' `before` cursor,
  groups' opaque `cursor`, the legacy `/api/person/?cursor=`): follow `next` until it is null.
  A short page is never taken as the end (PostHog's persons endpoint returns short pages
  mid-stream).
- `has_next` without `next` (session recordings): advance `offset` by the rows received.
- no envelope: a single page.
A `next` that repeats an earlier URL, or that leaves the configured origin, raises
PaginationError (the HTTP layer checks the origin before any credential is attached). A `next`
that differs from the page it came from only in scheme (http:// for an https:// origin: PostHog
behind a TLS proxy without IS_BEHIND_PROXY builds it so) is followed on the page's origin: its
path and query, the configured scheme, host and port.

Look-ahead (`ahead=True`): when the server's `next` turns out to be "this URL with offset +=
limit" (PostHog's limit/offset lists), the page after the one being fetched is requested at
the same time, so two requests are in flight instead of one round trip after another. A guess
is used only when it is exactly the URL the server then names; the first time it is not, the
look-ahead stops for that pull. The cost is one request past the last page, which is awaited
(never left running) before the pages end.

Growing pages (`grow_to=N`, with the look-ahead): once the server has shown it pages exactly as
asked (its `next` is offset += limit with the limit requested), each following request asks for
twice the rows, up to N. The rows a request starts at are the ones the server named; only how
many come back changes, and every grown page is checked the same way, so a server that caps
the limit is followed from where it actually stopped. The first page stays small, so building
a DataFrame starts early; later pages are big, so a long list costs few requests against
PostHog's rate limit (180 a minute for persons). A grown page the server fails to serve (a 5xx,
a timeout, a 400 or a broken body, after the HTTP layer's retries) is asked for again at the
first page's size, and the pages stop growing for that pull.

Overlapping pages (`overlap=N`): each limit/offset page after the first starts N rows before
where the server's `next` says, so consecutive pages share rows. A reader of a list that
changes while it is read (see _live) checks that they do: a page that shares nothing with the
rows before it means rows were added or removed in between, and some may have been skipped.

Limited pulls (`rows=N`): on a limit/offset list only the rows at offsets [first, first + N)
are requested. The first page asks for at most N rows, every later request (the server's
`next`, a grown page, a look-ahead guess, a page asked for again smaller) is cut where those
rows end, and no request starts past them: `persons(limit=3)` is one request for three rows.
A cursor list (no offset in its `next`) cannot be cut; its reader stops after N rows.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from posthog_pandas._urls import canonical_url, redact_url
from posthog_pandas.exceptions import (
    BadRequestError,
    PaginationError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

log = logging.getLogger("posthog_pandas")

# What a page too big for the server looks like once the HTTP layer has given up retrying.
_TOO_BIG_SYMPTOMS = (ServerError, TransportError, ResponseFormatError, BadRequestError)

T = TypeVar("T")


@dataclass
class Page:
    """One page of a list: its rows, the total if the server said, and the URL it came from."""

    results: list[Any]
    count: int | None
    url: str
    raw: dict[str, Any]


# fetch(url, params) -> parsed JSON body of one page
FetchPage = Callable[[str, Mapping[str, Any] | None], Any]


def iter_pages(
    fetch: FetchPage,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    max_pages: int | None = None,
    ahead: bool = False,
    grow_to: int | None = None,
    overlap: int = 0,
    rows: int | None = None,
) -> Iterator[Page]:
    """Yield every page of a list endpoint, starting at `url` with `params`.

    With `ahead=True`, limit/offset lists request the following page while the current one
    is in flight (see the module docstring); `fetch` must then be safe to call from two
    threads at once. With `grow_to` as well, their pages grow to that many rows. With
    `overlap`, each limit/offset page repeats that many rows of the one before. With
    `rows`, a limit/offset list is read only as far as its first `rows` rows.
    """
    seen: set[str] = set()
    current_url, current_params = url, dict(params or {})
    pages = 0
    first_limit, first_offset = _limit_offset(url, current_params)
    end = None if rows is None or first_limit is None else first_offset + rows
    if end is not None:
        current_url, current_params = _cut((current_url, current_params), end, first=True)
    first_limit = _limit_offset(current_url, current_params)[0]
    looker = _LookAhead(fetch, grow_to, first_limit, overlap, end) if ahead else None
    try:
        while True:
            marker = canonical_url(current_url, current_params)
            if marker in seen:
                shown = redact_url(_with_params(current_url, current_params))
                raise PaginationError(
                    f"PostHog returned a `next` link that repeats an earlier page ({shown}); "
                    "stopping instead of looping forever. The rows fetched so far are incomplete."
                )
            seen.add(marker)
            try:
                if looker is not None:
                    body = looker.fetch(current_url, current_params)
                else:
                    body = fetch(current_url, current_params or None)
            except _TOO_BIG_SYMPTOMS as exc:
                smaller = looker.shrink(current_url, current_params) if looker else None
                if smaller is None:
                    raise
                log.warning("%s; asking for the same rows in smaller pages.", exc)
                current_url, current_params = smaller if end is None else _cut(smaller, end)
                continue
            page = to_page(body, current_url)
            yield page
            pages += 1
            if max_pages is not None and pages >= max_pages:
                return
            following = next_request(body, current_url, current_params, len(page.results))
            if following is None:
                return
            if looker is not None:
                following = looker.learn(current_url, current_params, following)
            shaped = _continuation(following, current_url, current_params, overlap, end)
            if shaped is None:
                return
            current_url, current_params = shaped
    finally:
        if looker is not None:
            looker.close()


class _LookAhead:
    """Fetches pages for iter_pages, one guessed page ahead once the list is limit/offset,
    with pages growing to `grow_to` rows (see the module docstring)."""

    def __init__(
        self,
        fetch: FetchPage,
        grow_to: int | None = None,
        first_limit: int | None = None,
        overlap: int = 0,
        end: int | None = None,
    ) -> None:
        self._fetch = fetch
        self._overlap = overlap  # rows each page repeats of the one before (iter_pages)
        self._end = end  # a limited pull: the offset past its last row (iter_pages)
        self._active = False  # set when the server's `next` matched offset += limit
        self._stopped = False  # set for good the first time it did not
        self._grow_to = grow_to  # None once a grown page has failed
        self._first_limit = first_limit  # the first page's size: a failed grown page's fallback
        self._guess: tuple[str, Future[Any]] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def fetch(self, url: str, params: dict[str, Any]) -> Any:
        """The body of (url, params): from the guess made for it, else fetched now; a guess
        for the page after it is sent before waiting."""
        marker = canonical_url(url, params)
        guessed = self._take_guess(marker)
        successor = self._successor(url, params) if self._active else None
        if successor is not None:
            if self._pool is None:
                # Two workers: the guess for this page may still be running on one when the
                # guess for the next is sent; a single worker would queue it behind.
                self._pool = ThreadPoolExecutor(2, "posthog-pandas-lookahead")
            future = self._pool.submit(self._fetch, successor[0], successor[1] or None)
            self._guess = (canonical_url(*successor), future)
        if guessed is not None:
            return guessed.result()  # its error, if any, is this page's error
        return self._fetch(url, params or None)

    def learn(
        self, url: str, params: Mapping[str, Any], following: tuple[str, dict[str, Any]]
    ) -> tuple[str, dict[str, Any]]:
        """Compare the server's `next` with offset += limit: start, or stop, guessing.
        Returns the request for the next page: the server's `next`, or the same start with
        a grown limit."""
        successor = _offset_successor(url, params)
        matches = successor is not None and canonical_url(*successor) == canonical_url(*following)
        if not matches:
            self._active, self._stopped = False, True
        elif not self._stopped:
            self._active = True
            grown = self._grown_limit(url, params)
            if grown is not None:
                return _offset_successor(url, params, grown) or following
        return following

    def shrink(self, url: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The same rows at the first page's size, after a grown page failed (None if it was
        not grown); the pages stop growing."""
        limit, offset = _limit_offset(url, params)
        first = self._first_limit
        if first is None or limit is None or limit <= first:
            return None
        self._grow_to = None
        return _at(url, params, offset, first)

    def close(self) -> None:
        """Let a guess in flight finish (its request was sent), then stop the workers."""
        self._take_guess(None)
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _successor(self, url: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The page after this one as it will be requested (offset += limit, grown, then
        moved back by the overlap and cut at the limit as iter_pages will); None when there
        is none to guess (not limit/offset, or past a limited pull's rows)."""
        following = _offset_successor(url, params, self._grown_limit(url, params))
        if following is None:
            return None
        return _continuation(following, url, params, self._overlap, self._end)

    def _grown_limit(self, url: str, params: Mapping[str, Any]) -> int | None:
        """Twice this page's limit, at most grow_to; None when not growing."""
        limit, _ = _limit_offset(url, params)
        if self._grow_to is None or limit is None or limit >= self._grow_to:
            return None
        return min(2 * limit, self._grow_to)

    def _take_guess(self, marker: str | None) -> Future[Any] | None:
        guess, self._guess = self._guess, None
        if guess is None:
            return None
        if guess[0] == marker:
            return guess[1]
        wait([guess[1]])  # a wrong or unused guess: finished, and its outcome ignored
        return None


def _query(url: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The URL's query parameters with `params` on top."""
    return {**dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)), **params}


def _limit_offset(url: str, params: Mapping[str, Any]) -> tuple[int | None, int]:
    """(limit, offset) of a request; limit None when it has no positive integer limit."""
    query = _query(url, params)
    try:
        limit, offset = int(query["limit"]), int(query.get("offset") or 0)
    except (KeyError, TypeError, ValueError):
        return None, 0
    return (limit if limit > 0 else None), offset


def _offset_successor(
    url: str, params: Mapping[str, Any], limit: int | None = None
) -> tuple[str, dict[str, Any]] | None:
    """(url, params) of the page after this one if the list pages by limit/offset, asking
    for `limit` rows instead of this page's number when given."""
    current, offset = _limit_offset(url, params)
    if current is None:
        return None
    return _at(url, params, offset + current, limit or current)


def _overlapping(
    following: tuple[str, dict[str, Any]], url: str, params: Mapping[str, Any], overlap: int
) -> tuple[str, dict[str, Any]]:
    """The following limit/offset request started `overlap` rows earlier, so that it repeats
    the last rows of this one; unchanged if that would not move past this page's start."""
    limit, offset = _limit_offset(*following)
    _, current = _limit_offset(url, params)
    if limit is None or offset - overlap <= current:
        return following
    return _at(*following, offset - overlap, limit)


def _continuation(
    following: tuple[str, dict[str, Any]],
    url: str,
    params: Mapping[str, Any],
    overlap: int,
    end: int | None,
) -> tuple[str, dict[str, Any]] | None:
    """The request after (url, params) as it is sent: moved back by `overlap`, and for a
    limited pull cut at offset `end`; None when its new rows would start at or past `end`."""
    start = _starts_at(following)
    if end is not None and start is not None and start >= end:
        return None
    if overlap:
        following = _overlapping(following, url, params, overlap)
    return following if end is None else _cut(following, end)


def _starts_at(request: tuple[str, Mapping[str, Any]]) -> int | None:
    """The offset a request names (None when it names none: a first page, a cursor)."""
    query = _query(*request)
    return _limit_offset(*request)[1] if "offset" in query else None


def _cut(
    request: tuple[str, dict[str, Any]], end: int, *, first: bool = False
) -> tuple[str, dict[str, Any]]:
    """A limit/offset request asking for no rows at or past offset `end` (the first page of
    a list, which names no offset yet, counts as offset 0); others unchanged."""
    limit, offset = _limit_offset(*request)
    if limit is None or offset + limit <= end or (_starts_at(request) is None and not first):
        return request
    url, params = request
    if "limit" in params:  # keep the caller's parameters where they were
        return url, {**params, "limit": end - offset}
    return _at(url, params, offset, end - offset)


def _at(url: str, params: Mapping[str, Any], offset: int, limit: int) -> tuple[str, dict[str, Any]]:
    """This request moved to `offset` and `limit`, as one URL carrying every parameter, like
    the `next` links it stands in for (and error texts)."""
    following = urlencode({**_query(url, params), "offset": offset, "limit": limit})
    return urlunsplit(urlsplit(url)._replace(query=following)), {}


def to_page(body: Any, url: str) -> Page:
    """Validate one page's envelope; a list body is a page on its own."""
    if isinstance(body, list):
        _check_rows(body, url)
        return Page(results=body, count=len(body), url=url, raw={"results": body})
    if not isinstance(body, dict):
        raise ResponseFormatError(
            f"Expected a JSON object or list from {url}, got {type(body).__name__}."
        )
    if "results" not in body:
        return Page(results=[body], count=1, url=url, raw=body)
    results = body["results"]
    if not isinstance(results, list):
        raise ResponseFormatError(
            f"`results` from {url} is a {type(results).__name__}, not a list."
        )
    _check_rows(results, url)
    count = body.get("count")
    return Page(
        results=results,
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        url=url,
        raw=body,
    )


def _check_rows(rows: list[Any], url: str) -> None:
    if not all(isinstance(row, dict) for row in rows):
        raise ResponseFormatError(f"The rows of {url} are not JSON objects.")


def next_request(
    body: Any, url: str, params: Mapping[str, Any], received: int
) -> tuple[str, dict[str, Any]] | None:
    """Where the following page is, or None when the server says there is none."""
    if not isinstance(body, dict):
        return None
    if "next" in body:
        nxt = body["next"]
        if not nxt:
            return None
        if not isinstance(nxt, str):
            raise ResponseFormatError(f"`next` from {url} is not a URL: {nxt!r}.")
        # `next` carries every parameter itself; a relative link resolves against this page.
        return reanchor(urljoin(url, nxt), url), {}
    if body.get("has_next") and received:
        merged = {**dict(parse_qsl(urlsplit(url).query)), **params}
        offset = int(merged.get("offset", 0) or 0) + received
        base = urlunsplit(urlsplit(url)._replace(query=""))
        return base, {**merged, "offset": offset}
    return None


def reanchor(link: str, page_url: str) -> str:
    """`link` moved onto the scheme of `page_url` when that is all that differs between them.

    PostHog builds `next` with `request.build_absolute_uri`; behind a TLS-terminating proxy
    without IS_BEHIND_PROXY that is an http:// link for an https:// origin. Any other difference
    (host, port, userinfo) is left alone, for the HTTP layer to refuse.
    """
    target, page = urlsplit(link), urlsplit(page_url)
    if target.scheme == page.scheme or target.scheme not in _DEFAULT_PORTS:
        return link
    same_place = (
        target.username is None
        and (target.hostname or "").lower() == (page.hostname or "").lower()
        and _shown_port(target) == _shown_port(page)
    )
    if not same_place:
        return link
    log.debug("following a %s:// `next` link on the %s:// origin", target.scheme, page.scheme)
    return urlunsplit(page._replace(path=target.path, query=target.query, fragment=""))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _shown_port(parts: SplitResult) -> int | None:
    """The port written in the URL, None when absent or its scheme's default."""
    port = parts.port
    return None if port == _DEFAULT_PORTS.get(parts.scheme) else port


def _with_params(url: str, params: Mapping[str, Any]) -> str:
    """The URL a request goes to: its own query followed by `params` (None values dropped)."""
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    if not extra:
        return url
    return f"{url}{'&' if urlsplit(url).query else '?'}{extra}"


def prefetch(items: Iterator[T]) -> Iterator[T]:
    """Run `items` one step ahead in a background thread.

    While the caller works on page N, page N+1 is already being requested, computed by the
    server and read off the socket, so network time and client CPU overlap. Exceptions are
    re-raised in the caller, in order; closing the generator stops the producer after the
    request in flight.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _offer(handoff, ("item", item), stop):
                    return
            _offer(handoff, ("done", None), stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, re-raised there
            _offer(handoff, ("error", exc), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="posthog-pandas-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "item":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()


def _offer(
    handoff: queue.Queue[tuple[str, Any]], entry: tuple[str, Any], stop: threading.Event
) -> bool:
    """Put `entry` unless the consumer has gone away; False means stop producing."""
    while not stop.is_set():
        try:
            handoff.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
