"""The query part: HogQL through PostHog's query API, keyset paging of large results.

PostHog's query API silently cuts results: 100 rows without LIMIT, any LIMIT lowered to 50,000,
and OFFSET is refused for personal keys (posthog-api.md §5, §12). `hasMore` is set only for queries
without LIMIT. So:
- `ph.query()` never returns a cut result. When a page comes back full (as many rows as PostHog
  returns for it, `hasMore` or not) it pages by keyset if the query orders by a unique key
  (`ORDER BY timestamp, uuid`), else raises TruncationError saying how to fix it.
- `QueryRunner.run` sends one query (and polls an asynchronous answer); the events pipeline
  (events.py) builds its keyset pages on it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from posthog_pandas._checks import hogql_text
from posthog_pandas._core import Connection
from posthog_pandas._dates import hogql_literal, iso
from posthog_pandas._gc import paused_gc
from posthog_pandas._polling import await_completion, cancelled_on_interrupt, incomplete_status
from posthog_pandas.exceptions import (
    ResponseFormatError,
    TruncationError,
)
from posthog_pandas.frames import FrameOptions, hogql_to_frame

MAX_PAGE_ROWS = 50_000  # PostHog's MAX_SELECT_RETURNED_ROWS: any LIMIT above is lowered to it
# PostHog's APIQueriesSustainedThrottle on /query/ (docs/posthog-compat.md, rate.limits)
QUERIES_PER_HOUR = 2_400
FORCE_BLOCKING = "force_blocking"  # QueryRequest.refresh: compute even if PostHog has it cached
ASYNC = "async"  # run in the background unless PostHog has a fresh answer cached
FORCE_ASYNC = "force_async"  # run in the background even if PostHog has it cached
_LIMIT = re.compile(r"\blimit\s+(\d+)\s*(?:,\s*\d+\s*)?;?\s*$", re.I)
_ORDER_BY = re.compile(r"\border\s+by\s+(.+?)\s*(?:\blimit\s+\d+\s*)?;?\s*$", re.I | re.S)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ClickHouse types that can carry integers beyond 64 bits (Int128/UInt256, decimals, and the
# schemaless JSON/Dynamic/Variant/Object kinds): answers with such a column are scanned.
_WIDE_NUMBER_TYPES = re.compile(r"Int128|Int256|Decimal|JSON|Object|Dynamic|Variant", re.I)
_UNIQUE_KEYS = ("uuid", "id")


@dataclass
class QueryPage:
    """One answer of the query API: column names, ClickHouse types and rows.

    `fresh` is True when PostHog answered just now (False for an answer from the cache).
    """

    columns: list[str]
    types: list[str]
    results: list[list[Any]]
    has_more: bool = False
    limit: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False


class QueryRunner:
    """The query part: `ph.query()`, and one query or its keyset pages for the other parts."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def query(
        self,
        hogql: str,
        values: Mapping[str, Any] | None = None,
        *,
        cache: bool = True,
        refresh: bool = False,
        name: str | None = None,
        dtype_backend: str | None = None,
    ) -> pd.DataFrame:
        """Every row of a HogQL query as one typed DataFrame (see PostHog.query)."""
        hogql_text(hogql, "query")
        with paused_gc():  # see _gc: the collector would re-scan every row many times
            try:
                pages = list(self.pages(hogql, values, cache=cache, refresh=refresh, name=name))
            finally:
                self._conn.fetcher.flush()
            columns, types = pages[0].columns, pages[0].types
            rows = [row for page in pages for row in page.results]
            options = self._conn.frame_options
            if dtype_backend is not None:
                options = FrameOptions(**{**options.__dict__, "dtype_backend": dtype_backend})
            frame = hogql_to_frame(columns, types, rows, options)
            frame.attrs.update(cache_attrs(pages))
            return frame

    def pages(
        self,
        hogql: str,
        values: Mapping[str, Any] | None = None,
        *,
        cache: bool = True,
        refresh: bool = False,
        name: str | None = None,
    ) -> Iterator[QueryPage]:
        """The pages of one query: the answer itself, then keyset pages while a page is full.

        A page holding as many rows as PostHog returns for it may have more behind it (PostHog
        sets `hasMore` only without LIMIT); a short page, or the user's LIMIT reached, ends it.
        `refresh` asks PostHog to compute every page afresh (`force_blocking`)."""
        first = self.run(
            hogql, values, cache=cache, refresh=refresh, name=name, force_blocking=refresh
        )
        yield first
        wanted = user_limit(hogql)
        if not may_continue(first, wanted):
            return
        keys = keyset_columns(hogql, first.columns)
        if keys is None:
            raise TruncationError(truncation_message(hogql, first))
        last, got = first, len(first.results)
        while True:
            size = MAX_PAGE_ROWS if wanted is None else min(MAX_PAGE_ROWS, wanted - got)
            sql, page_values = keyset_query(hogql, keys, last, size, values)
            again = refresh_after(last, refresh)
            last = self.run(
                sql, page_values, cache=cache, refresh=again, name=name, force_blocking=refresh
            )
            got += len(last.results)
            yield last
            if len(last.results) < size or (wanted is not None and got >= wanted):
                return

    def run(
        self,
        hogql: str,
        values: Mapping[str, Any] | None = None,
        *,
        cache: bool = True,
        refresh: bool = False,
        name: str | None = None,
        force_blocking: bool = False,
    ) -> QueryPage:
        """POST one HogQL query; poll if PostHog answers asynchronously.

        `refresh` skips our cache. `force_blocking` also sends `refresh: "force_blocking"`, so
        PostHog computes the answer instead of serving its own cached one; without it the
        request leaves `refresh` out (PostHog's default, `blocking`). The field is not part of
        our cache key: a refreshed answer replaces the cached one."""
        node: dict[str, Any] = {"kind": "HogQLQuery", "query": hogql}
        if values:
            node["values"] = dict(values)
        body: dict[str, Any] = {"query": node}
        if name:
            body["name"] = name[:128]
        url = self._conn.project_path("query")
        checked: list[QueryPage] = []  # a fresh answer is parsed once, to decide caching
        data = self._conn.fetcher.post_query(
            url,
            body,
            cache=cache,
            refresh=refresh,
            validate=lambda d: _cacheable(d, url, checked),
            exact_if=parsed_exactly,
            unkeyed={"refresh": FORCE_BLOCKING} if force_blocking else None,
        )
        data = self._await_completion(url, data)
        if checked and checked[-1].raw is data:
            return checked[-1]
        return parse_query_response(data, url)

    def _await_completion(self, url: str, data: Any) -> Any:
        """Poll an asynchronous answer until PostHog says it is complete (see _polling)."""
        return await_completion(self._conn, url, data, progress=self._conn.progress)

    def run_node(
        self,
        node: Mapping[str, Any],
        *,
        validate: Callable[[Any], object],
        cache: bool = True,
        refresh: bool = False,
        run_async: bool = False,
        progress: bool | None = None,
        desc: str = "query",
    ) -> Any:
        """POST one query node of any kind (TrendsQuery, ...) and return PostHog's complete
        answer, from our cache when we have it.

        Every request carries a fresh `client_query_id`, so Ctrl-C can cancel the query on
        PostHog (DELETE query/{id}/) even before PostHog has answered. `run_async` asks
        PostHog to run it in the background (`refresh: "async"`, `"force_async"` with
        `refresh`) and polls it with a progress bar. `validate(answer)` raises on a malformed
        answer, which is then never cached; an answer still running is never cached either,
        and the one polled to completion is stored in its place."""
        url = self._conn.project_path("query")
        body: dict[str, Any] = {"query": dict(node)}
        query_id = uuid.uuid4().hex
        unkeyed: dict[str, Any] = {"client_query_id": query_id}
        if run_async:
            unkeyed["refresh"] = FORCE_ASYNC if refresh else ASYNC
        elif refresh:
            unkeyed["refresh"] = FORCE_BLOCKING
        fetcher = self._conn.fetcher

        def complete(data: Any) -> bool:
            if incomplete_status(data) is not None:
                return False
            validate(data)
            return True

        with cancelled_on_interrupt(self._conn, url, query_id):
            data = fetcher.post_query(
                url, body, cache=cache, refresh=refresh, validate=complete, unkeyed=unkeyed
            )
        if incomplete_status(data) is None:
            return data
        data = await_completion(self._conn, url, data, progress=progress, desc=desc)
        validate(data)
        if cache:
            fetcher.keep_query_answer(url, body, data)
        return data


def refresh_after(previous: QueryPage, refresh: bool) -> bool:
    """`refresh` for the keyset page after `previous`. When PostHog has just answered
    `previous`, the next page's cache key holds a row the cache has not seen, so it is all but
    never cached (pages are stored in order): skip the lookup, a SQLite read per page that
    would delay the request while the previous page becomes a DataFrame."""
    return refresh or previous.fresh


def parse_query_response(data: Any, url: str) -> QueryPage:
    """Check and unpack one query answer; anything malformed is a ResponseFormatError."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ResponseFormatError(f"The query API at {url} answered without a `results` list.")
    for field_name in ("columns", "types"):
        if data.get(field_name) is not None and not isinstance(data[field_name], list):
            raise ResponseFormatError(
                f"The query API at {url} answered with `{field_name}` that is not a list."
            )
    if not set(map(type, data["results"])) <= {list}:  # one pass in C, not a Python loop
        raise ResponseFormatError(f"The query API at {url} answered with rows that are not arrays.")
    columns = [str(c) for c in data.get("columns") or []]
    types = [_type_name(t) for t in data.get("types") or []]
    if len(types) != len(columns):
        types = ["String"] * len(columns) if not types else types[: len(columns)]
    return QueryPage(
        columns=columns,
        types=types,
        results=data["results"],
        has_more=bool(data.get("hasMore")),
        limit=data["limit"] if type(data.get("limit")) is int else None,
        raw=data,
    )


def _cacheable(data: Any, url: str, parsed: list[QueryPage]) -> bool:
    """A complete, well-formed answer is cached (and its parsed page appended to `parsed`);
    a 'still running' one is not (nor raised)."""
    status = data.get("query_status") if isinstance(data, dict) else None
    if isinstance(status, dict) and status.get("complete") is False:
        return False
    parsed.append(replace(parse_query_response(data, url), fresh=True))
    return True


def parsed_exactly(data: Any) -> bool:
    """Whether orjson read this query answer exactly, so no scan for long numbers is needed:
    every column has a type, and none can hold an integer beyond 64 bits. ClickHouse sends
    (U)Int64 as numbers orjson keeps exactly, and String columns (JSON text included) stay
    text here; the frame builder checks such text before parsing it."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        return False
    columns, types = data.get("columns"), data.get("types")
    if not isinstance(columns, list) or not isinstance(types, list):
        return False
    names = list(map(_unpaired, types))
    return len(names) == len(columns) and all(
        isinstance(name, str) and name and not _WIDE_NUMBER_TYPES.search(name) for name in names
    )


def _unpaired(value: Any) -> Any:
    # Some PostHog versions send [name, type] pairs in `types`.
    return value[1] if isinstance(value, list) and len(value) == 2 else value


def _type_name(value: Any) -> str:
    return str(_unpaired(value))


def user_limit(hogql: str) -> int | None:
    match = _LIMIT.search(hogql.strip())
    return int(match.group(1)) if match else None


def may_continue(page: QueryPage, wanted: int | None) -> bool:
    """Whether rows may follow this first answer to a query whose LIMIT is `wanted`.

    PostHog answers at most `limit` rows (it says so, with `hasMore`, only for a query without
    LIMIT: 100) and lowers any LIMIT to 50,000 silently, so a page holding that many rows may
    have more behind it. Reaching the user's own LIMIT is a complete answer."""
    got = len(page.results)
    if wanted is not None and got >= wanted:
        return False
    if page.limit is not None:  # PostHog paged it: a query without LIMIT
        return page.has_more or got >= page.limit
    return page.has_more or got >= min(wanted or MAX_PAGE_ROWS, MAX_PAGE_ROWS)


def cache_attrs(pages: Sequence[QueryPage]) -> dict[str, Any]:
    """What PostHog said about its cache, for `df.attrs`: whether any page came from it, when
    the oldest page was computed (ISO-8601 text in UTC), and the first page's cache key."""
    refreshed = [_utc_timestamp(page.raw.get("last_refresh")) for page in pages]
    known = [stamp for stamp in refreshed if stamp is not None]
    key = pages[0].raw.get("cache_key")
    return {
        "is_cached": any(page.raw.get("is_cached") is True for page in pages),
        # Text, as every value in attrs: df.to_parquet() writes attrs as JSON, and refuses
        # a frame whose attrs hold a Timestamp.
        "last_refresh": iso(min(known)) if known else None,
        "cache_key": key if isinstance(key, str) else None,
    }


def _utc_timestamp(value: Any) -> pd.Timestamp | None:
    if not isinstance(value, str) or not value:
        return None
    stamp = pd.to_datetime(value, utc=True, errors="coerce")
    return None if pd.isna(stamp) else stamp


def keyset_columns(hogql: str, columns: Sequence[str]) -> list[str] | None:
    """The ORDER BY keys when they allow keyset paging: ascending, output columns, unique last."""
    match = _ORDER_BY.search(hogql.strip())
    if not match:
        return None
    keys = []
    for part in match.group(1).split(","):
        tokens = part.strip().split()
        if not tokens or len(tokens) > 2 or (len(tokens) == 2 and tokens[1].upper() != "ASC"):
            return None
        name = tokens[0].strip('`"')
        if not IDENTIFIER.match(name) or name not in columns:
            return None
        keys.append(name)
    return keys if keys and keys[-1] in _UNIQUE_KEYS else None


def keyset_query(
    hogql: str,
    keys: Sequence[str],
    last: QueryPage,
    limit: int,
    values: Mapping[str, Any] | None,
) -> tuple[str, dict[str, Any]]:
    """Wrap the query so it continues after the last row of the previous page."""
    inner = _LIMIT.sub("", hogql.strip().rstrip(";")).strip()
    inner = _ORDER_BY.sub("", inner).strip()
    last_row = last.results[-1]
    bound_values = dict(values or {})
    literals = []
    for i, key in enumerate(keys):
        index = last.columns.index(key)
        placeholder = f"__keyset_{i}"
        bound_values[placeholder] = _keyset_value(key, last_row[index], last.types[index])
        literals.append(_typed_placeholder(placeholder, last.types[index]))
    key_list = ", ".join(keys)
    condition = f"({key_list}) > ({', '.join(literals)})"
    if len(keys) > 1:  # the implied bound on the first key prunes; the tuple does not
        condition = f"{keys[0]} >= {literals[0]} AND {condition}"
    sql = f"SELECT * FROM ({inner}) WHERE {condition} ORDER BY {key_list} LIMIT {limit}"
    return sql, bound_values


def _keyset_value(key: str, value: Any, ch_type: str) -> Any:
    """The last row's key as the next page binds it. A DateTime is bound in the one form
    ClickHouse parses in `toDateTime64` (basic mode: no `Z`, no offset), as the same instant
    in UTC, whatever timezone PostHog wrote it in."""
    if value is None:  # NULLs sort last, and `(a, b) > (NULL, ...)` matches nothing
        raise TruncationError(
            f"Cannot page past a NULL in the ORDER BY column {key!r}: the rows after it would be "
            f"lost. Filter NULLs out (WHERE {key} IS NOT NULL) or order by a column without NULLs."
        )
    return hogql_timestamp(value) if "DateTime" in ch_type else value


def _typed_placeholder(name: str, ch_type: str) -> str:
    """A placeholder cast to the column's type, so the comparison is exact on PostHog too."""
    if "DateTime" in ch_type:
        return f"toDateTime64({{{name}}}, 6, 'UTC')"
    if "UUID" in ch_type:
        return f"toUUID({{{name}}})"
    return f"{{{name}}}"


def truncation_message(hogql: str, page: QueryPage) -> str:
    shown = len(page.results)
    wanted = user_limit(hogql)
    if page.limit is not None:
        why = f"queries without LIMIT return only {shown} rows"
    elif wanted is None:
        why = f"PostHog returns at most {MAX_PAGE_ROWS:,} rows per query"
    else:
        why = (
            f"PostHog returns at most {MAX_PAGE_ROWS:,} rows per query and lowers "
            f"LIMIT {wanted:,} to that without a word"
        )
    return (
        f"PostHog cut this query's result at {shown:,} rows ({why}); posthog-pandas will not "
        "hand you a silently truncated table. Either aggregate or add LIMIT n (n ≤ 50,000), or "
        "end the query with ORDER BY <column(s)>, uuid (a unique key that is in the SELECT "
        "list) so that posthog-pandas can page through every row by keyset."
    )


def hogql_timestamp(value: Any) -> str:
    """A result row's timestamp ("2024-01-01T11:00:00+01:00", "...Z") as UTC for toDateTime64.

    PostHog may answer in the project's timezone; the keyset bound must be the same instant.
    """
    return hogql_literal(result_timestamp(value))


def result_timestamp(value: Any) -> datetime:
    """A timestamp from a result row as an aware datetime (naive ones are UTC)."""
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
