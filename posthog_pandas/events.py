"""Events: the whole pipeline from the filters a user gives to typed frames, in one module.

    filters ─▶ EventFilter ─▶ HogQL keyset pages ─▶ windows split on timeouts ─▶ frames
                 (checked,      (ORDER BY timestamp,    (halves of a window       (one typed
                 `before`       uuid; `(timestamp,      PostHog stopped at its    frame per
                 pinned)        uuid) > last`)          time limit)               page)

PostHog's events list pages by a `before` cursor that skips events sharing a timestamp at a
page boundary, and clamps at 1,000 rows a page; so events are read through the query API,
50,000 rows a page inside a fixed time range, by keyset on (timestamp, uuid): ties at a page
boundary are neither lost nor repeated. Each page also says `timestamp >= last`, which the
tuple implies, so the database skips the part of the range earlier pages read.
`incremental=True` keeps one growing table per set of filters; old PostHog without a query
API gets the deprecated list (see `Events.read`).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

import pandas as pd

from posthog_pandas import _checks, _dates
from posthog_pandas._config import windows_at_once
from posthog_pandas._core import Connection
from posthog_pandas._dates import DateLike, hogql_literal, iso
from posthog_pandas._frame_cache import FrameCache
from posthog_pandas._gc import paused_gc
from posthog_pandas._pagination import prefetch
from posthog_pandas._progress import counted
from posthog_pandas._registry import EVENTS
from posthog_pandas._windows import Window, in_window_order, plan_windows
from posthog_pandas.exceptions import ConfigurationError, NotFoundError, QueryTimeoutError
from posthog_pandas.frames import FrameOptions, concat_frames, hogql_events_to_frame, hogql_to_frame
from posthog_pandas.query import (
    IDENTIFIER,
    MAX_PAGE_ROWS,
    QueryPage,
    QueryRunner,
    hogql_timestamp,
    refresh_after,
    result_timestamp,
)
from posthog_pandas.resources import ListPlan, Lists

__all__ = [
    "EVENT_COLUMNS",
    "EmptyWindowWarning",
    "EventCursor",
    "EventFilter",
    "Events",
    "events_query",
    "property_condition",
    "split_events_window",
    "window_count_query",
    "window_note",
]

log = logging.getLogger("posthog_pandas")

DEFAULT_EVENTS_DAYS = 30
DEFAULT_EVENTS_WINDOW = f"-{DEFAULT_EVENTS_DAYS}d"
DEFAULT_WINDOW_NOTE = f"the default window: the last {DEFAULT_EVENTS_DAYS} days"
# How far back `incremental=True` reads again, for events that arrived late (PostHog accepts
# past timestamps, posthog-api.md §12): a day covers mobile SDKs' offline queues and retries.
DEFAULT_LOOKBACK = timedelta(days=1)
INCREMENTAL_TTL = 10 * 365 * 86400.0  # the accumulated table is the user's data: keep it
EVENT_COLUMNS = (
    "uuid",
    "event",
    "distinct_id",
    "timestamp",
    "properties",
    "elements_chain",
    "person_id",
)
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_$]+$")


@dataclass(frozen=True)
class EventFilter:
    """The server-side part of an events pull, rendered as HogQL with bound values."""

    after: datetime
    before: datetime
    event: str | Sequence[str] | None = None
    distinct_id: str | None = None
    person_id: str | None = None
    properties: Sequence[Mapping[str, Any]] | None = None
    where: str | None = None
    columns: Sequence[str] | None = None

    def select_list(self) -> list[str]:
        if not self.columns:
            return list(EVENT_COLUMNS)
        chosen = ["uuid", "timestamp"]
        for column in self.columns:
            expression = _column_expression(column)
            if expression not in chosen:
                chosen.append(expression)
        return chosen

    def conditions(self) -> tuple[list[str], dict[str, Any]]:
        clauses = [
            "timestamp >= toDateTime64({__after}, 6, 'UTC')",
            "timestamp < toDateTime64({__before}, 6, 'UTC')",
        ]
        values: dict[str, Any] = {
            "__after": hogql_literal(self.after),
            "__before": hogql_literal(self.before),
        }
        if self.event is not None:
            events = [self.event] if isinstance(self.event, str) else list(self.event)
            clauses.append("event IN {__events}")
            values["__events"] = events
        if self.distinct_id is not None:
            clauses.append("distinct_id = {__distinct_id}")
            values["__distinct_id"] = self.distinct_id
        if self.person_id is not None:
            clauses.append("person_id = {__person_id}")
            values["__person_id"] = str(self.person_id)
        for i, prop in enumerate(self.properties or ()):
            clause, prop_values = property_condition(prop, i)
            clauses.append(clause)
            values.update(prop_values)
        if self.where:
            clauses.append(f"({self.where})")
        return clauses, values


def _column_expression(column: str) -> str:
    """`properties.$browser` → HogQL selecting it under that name; plain names as they are."""
    if column.startswith("properties."):
        key = column[len("properties.") :]
        access = f"properties.{key}" if _PROPERTY_NAME.match(key) else f"properties.`{key}`"
        return f"{access} AS `{column}`"
    if not IDENTIFIER.match(column):
        raise ConfigurationError(
            f"columns: {column!r} is not an events column; use names like 'event', "
            "'timestamp', 'distinct_id' or 'properties.$browser'."
        )
    return column


# PostHog's property operators that ph.events() can send (posthog/hogql/property.py).
_OPERATORS = (
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_set",
    "is_not_set",
)
_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def property_condition(prop: Mapping[str, Any], index: int) -> tuple[str, dict[str, Any]]:
    """One PostHog property filter ({key, value, operator, type}) as a HogQL condition.

    Values are compared as PostHog compares them (posthog/hogql/property.py): property access
    yields the value's JSON text, so True is matched as 'true', numbers as numbers
    (toFloat, as PostHog does for numeric properties), strings as they are. A property that is
    not set matches `is_not` and `not_icontains` (PostHog wraps those in ifNull(..., 1)).
    """
    if not isinstance(prop, Mapping) or "key" not in prop:
        raise ConfigurationError(
            f"properties[{index}] must be a dict like {{'key': '$browser', 'value': 'Chrome'}}; "
            f"got {prop!r}."
        )
    operator = str(prop.get("operator") or "exact")
    if operator not in _OPERATORS:
        raise ConfigurationError(
            f"properties[{index}]: operator {operator!r} is not supported; use one of "
            f"{', '.join(_OPERATORS)}."
        )
    key = str(prop["key"])
    owner = "person.properties" if prop.get("type") == "person" else "properties"
    field_expr = f"{owner}.{key}" if _PROPERTY_NAME.match(key) else f"{owner}.`{key}`"
    name = f"__prop_{index}"
    value = prop.get("value")
    if operator == "is_set":
        return f"{field_expr} IS NOT NULL", {}
    if operator == "is_not_set":
        return f"{field_expr} IS NULL", {}
    if operator in _COMPARISONS:
        number = _property_number(value, index, operator)
        return f"toFloat({field_expr}) {_COMPARISONS[operator]} {{{name}}}", {name: number}
    if operator in ("icontains", "not_icontains"):
        return _contains_condition(field_expr, name, value, index, operator == "icontains")
    matched, values = _equality_condition(field_expr, name, value, index)
    return (matched if operator == "exact" else f"NOT ({matched})"), values


def _equality_condition(
    field_expr: str, name: str, value: Any, index: int
) -> tuple[str, dict[str, Any]]:
    """`exact` for one value or a list: never NULL, so that NOT of it is `is_not`."""
    texts, numbers, unset = _equality_values(value, index)
    terms: list[str] = []
    values: dict[str, Any] = {}
    if texts:
        terms.append(f"({field_expr} IS NOT NULL AND {field_expr} IN {{{name}}})")
        values[name] = texts
    if numbers:
        number = f"toFloat({field_expr})"
        terms.append(f"({number} IS NOT NULL AND {number} IN {{{name}_n}})")
        values[f"{name}_n"] = numbers
    if unset:
        terms.append(f"{field_expr} IS NULL")
    return f"({' OR '.join(terms)})", values


def _equality_values(value: Any, index: int) -> tuple[list[str], list[float], bool]:
    """The JSON texts, the numbers, and whether None (not set) is among the values."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ConfigurationError(
            f"properties[{index}]: value is an empty list; give at least one value."
        )
    texts: list[str] = []
    numbers: list[float] = []
    unset = False
    for item in items:
        if item is None:
            unset = True
        elif isinstance(item, bool):
            texts.append("true" if item else "false")  # the JSON text HogQL reads
        elif isinstance(item, (int, float)):
            numbers.append(_finite(float(item), index))
        elif isinstance(item, str):
            texts.append(item)
        else:
            raise ConfigurationError(
                f"properties[{index}]: value {item!r} is a {type(item).__name__}; use a string, "
                "a number, True/False, None (not set) or a list of those."
            )
    return texts, numbers, unset


def _contains_condition(
    field_expr: str, name: str, value: Any, index: int, positive: bool
) -> tuple[str, dict[str, Any]]:
    """`icontains` (any of the values) and `not_icontains` (none of them), on the text."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(v, (dict, list, tuple)) or v is None for v in items):
        raise ConfigurationError(
            f"properties[{index}]: icontains and not_icontains need a text (or a list of "
            f"texts) to look for; got {value!r}."
        )
    texts = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]
    values = {f"{name}_{i}": text for i, text in enumerate(texts)}
    found = " OR ".join(
        f"{field_expr} ILIKE concat('%', {{{placeholder}}}, '%')" for placeholder in values
    )
    matched = f"({field_expr} IS NOT NULL AND ({found}))"
    return (matched if positive else f"NOT {matched}"), values


def _property_number(value: Any, index: int, operator: str) -> float:
    """The number a gt/gte/lt/lte filter compares with (a number, or a numeric string)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(float(value), index)
    if isinstance(value, str):
        try:
            return _finite(float(value), index)
        except ValueError:
            pass
    raise ConfigurationError(
        f"properties[{index}]: operator {operator!r} compares numbers; got {value!r}. "
        "Give a number, e.g. {'key': 'revenue', 'operator': 'gt', 'value': 10}."
    )


def _finite(number: float, index: int) -> float:
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigurationError(f"properties[{index}]: {number} is not a finite number.")
    return number


def events_query(
    flt: EventFilter, page_size: int, last: EventCursor | None
) -> tuple[str, dict[str, Any]]:
    """The HogQL for one keyset page of events; `last` is the previous page's (timestamp, uuid)."""
    clauses, values = flt.conditions()
    if last is not None:
        # The tuple comparison alone prunes nothing: ClickHouse (ClickHouse/ClickHouse#75086)
        # and DuckDB use no index, partition or zone map for `(a, b) > (x, y)`, so every page
        # would read the whole time range again. The implied `timestamp >=` bound lets both
        # skip what earlier pages returned.
        clauses.append("timestamp >= toDateTime64({__last_ts}, 6, 'UTC')")
        clauses.append(
            "(timestamp, uuid) > (toDateTime64({__last_ts}, 6, 'UTC'), toUUID({__last_uuid}))"
        )
        values["__last_ts"] = hogql_timestamp(last[0])
        values["__last_uuid"] = str(last[1])
    sql = (
        f"SELECT {', '.join(flt.select_list())} FROM events WHERE {' AND '.join(clauses)} "
        f"ORDER BY timestamp, uuid LIMIT {page_size}"
    )
    return sql, values


# A window of events PostHog stops at its time limit is read as two halves; one shorter than
# this is not split again (a second of events that cannot be sorted in time will not be either).
MIN_EVENTS_WINDOW = timedelta(seconds=1)

EventCursor = tuple[Any, Any]  # the (timestamp, uuid) of the last row read


# -- the window a frame covers ------------------------------------------------------------------


class EmptyWindowWarning(UserWarning):
    """`ph.events()` without after/before found no event in the default window."""


def window_text(after: datetime, before: datetime) -> str:
    """ "between 2026-11-07 06:20 and 2026-12-07 06:20 UTC" (minutes; whole days as dates)."""
    midnight = all(t.astimezone(UTC).time() == datetime.min.time() for t in (after, before))
    shape = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"
    shown = [t.astimezone(UTC).strftime(shape) for t in (after, before)]
    return f"between {shown[0]} and {shown[1]} UTC"


def window_note(frame: pd.DataFrame, how: str) -> str | None:
    """One line on the window an events frame covers (its `attrs`): which one the default
    window was, and why an empty frame is empty; None when there is nothing to say. `how`
    names the arguments that choose another window ("after=/before=", "--after/--before")."""
    after, before = frame.attrs.get("after"), frame.attrs.get("before")
    if not isinstance(after, str) or not isinstance(before, str):
        return None
    default = bool(frame.attrs.get("default_window"))
    window = window_text(pd.Timestamp(after), pd.Timestamp(before))
    if len(frame) == 0 and default:
        return f"no events {window} ({DEFAULT_WINDOW_NOTE}); pass {how} for another range."
    if len(frame) == 0:
        return f"no events {window}."
    if default:
        return f"events {window} ({DEFAULT_WINDOW_NOTE}; pass {how} for another range)."
    return None


def with_window(frame: pd.DataFrame, flt: EventFilter, *, default: bool) -> pd.DataFrame:
    """`frame` with the window it covers in `attrs` (after, before, default_window); an
    empty default window is an EmptyWindowWarning, so that nobody reads "no events" as
    "PostHog has none"."""
    # ISO text, not Timestamps: df.to_parquet() writes attrs as JSON and refuses a Timestamp.
    frame.attrs.update(after=iso(flt.after), before=iso(flt.before), default_window=default)
    if default and len(frame) == 0:
        note = window_note(frame, "after=/before=")
        warnings.warn(note or "", EmptyWindowWarning, stacklevel=4)
    return frame


def split_events_window(
    flt: EventFilter, last: EventCursor | None
) -> tuple[tuple[EventFilter, EventCursor | None], tuple[EventFilter, None]] | None:
    """The rest of a window (after the cursor `last`) as two halves [start, mid) and
    [mid, before), each event in exactly one; None when it is shorter than MIN_EVENTS_WINDOW.
    The first half keeps the cursor, so its pages go on where the window stopped."""
    start = flt.after if last is None else max(flt.after, result_timestamp(last[0]))
    start = start.astimezone(UTC)
    span = flt.before - start
    if span < MIN_EVENTS_WINDOW:
        return None
    middle = start + timedelta(microseconds=span // timedelta(microseconds=1) // 2)
    return (replace(flt, before=middle), last), (replace(flt, after=middle), None)


# -- the part ---------------------------------------------------------------------------------


class Events:
    """`ph.events()`, `ph.iter_events()` and the events side of `ph.export("events")`."""

    def __init__(
        self, conn: Connection, queries: QueryRunner, frames: FrameCache, lists: Lists
    ) -> None:
        self._conn = conn
        self._queries = queries
        self._frames = frames
        self._lists = lists

    def read(
        self,
        *,
        after: DateLike | None,
        before: DateLike | None,
        event: str | Sequence[str] | None,
        person_id: str | None,
        distinct_id: str | None,
        properties: Sequence[Mapping[str, Any]] | None,
        where: str | None,
        columns: Sequence[str] | None,
        limit: int | None,
        incremental: bool,
        lookback: timedelta | str | None,
        options: Mapping[str, Any],
    ) -> pd.DataFrame:
        """Every event of the filters as one frame (see PostHog.events)."""
        if lookback is not None and not incremental:
            raise ConfigurationError("lookback= applies to incremental=True pulls only.")
        if incremental and limit is not None:
            raise ConfigurationError(
                "limit= does not apply to incremental=True pulls, which keep the whole table; "
                "drop one of them."
            )
        list_filters: dict[str, Any] = {
            "after": after,
            "before": before,
            "event": event,
            "person_id": person_id,
            "distinct_id": distinct_id,
            "properties": properties,
        }
        if self._conn.legacy:
            legacy = {**list_filters, "limit": limit}
            return self._lists.frame(self.list_plan("/api/event/", legacy, options))
        flt = self.filter(
            after=after,
            before=before,
            event=event,
            person_id=person_id,
            distinct_id=distinct_id,
            properties=properties,
            where=where,
            columns=columns,
            refresh=options.get("refresh", False),
        )
        cap = None if limit is None else _checks.positive_int(limit, "limit")
        if incremental:
            window = _dates.to_duration(
                DEFAULT_LOOKBACK if lookback is None else lookback, name="lookback"
            )
            return self._incremental(flt, window, options)
        key = self._frames.key("events", _filter_params(flt, cap), options)
        default = after is None and before is None
        try:
            frame = self._frames.frame(
                key, "events", options, lambda: self._frame(flt, cap, options)
            )
            return with_window(frame, flt, default=default)
        except NotFoundError as exc:
            if "/query" not in exc.url or where is not None or columns is not None:
                raise
            warnings.warn(
                "This PostHog has no query API (/query/ answered 404); falling back to the "
                "deprecated events list, which can skip events that share a timestamp at a "
                "page boundary.",
                UserWarning,
                stacklevel=3,
            )
            list_filters.update(after=flt.after, before=flt.before, limit=cap)
            plan = self.list_plan(self._conn.project_path("events"), list_filters, options)
            return with_window(self._lists.frame(plan), flt, default=default)

    def filter(
        self,
        *,
        after: DateLike | None = None,
        before: DateLike | None = None,
        event: str | Sequence[str] | None = None,
        person_id: str | None = None,
        distinct_id: str | None = None,
        properties: Sequence[Mapping[str, Any]] | None = None,
        where: str | None = None,
        columns: Sequence[str] | None = None,
        refresh: bool = False,
    ) -> EventFilter:
        """The user's filters checked, as an EventFilter; an open `before` is pinned (see
        FrameCache.pinned_now) unless `refresh`."""
        start = _dates.to_utc(after if after is not None else DEFAULT_EVENTS_WINDOW, name="after")
        end = _dates.to_utc(before, name="before")
        if end is None:
            end = self._frames.pinned_now({"after": start, "event": event, "where": where}, refresh)
        assert start is not None
        if start >= end:
            raise ConfigurationError(
                f"after ({_dates.iso(start)}) must be earlier than before ({_dates.iso(end)})."
            )
        if event is not None and not (
            isinstance(event, str)
            or (isinstance(event, (list, tuple)) and all(isinstance(e, str) for e in event))
        ):
            raise ConfigurationError(f"event must be a name or a list of names, got {event!r}.")
        if where is not None and not isinstance(where, str):
            raise ConfigurationError("where must be a HogQL condition string.")
        return EventFilter(
            after=start,
            before=end,
            event=event,
            distinct_id=_checks.opt_str(distinct_id, "distinct_id"),
            person_id=_checks.opt_str(person_id, "person_id"),
            properties=_checks.opt_filter_list(properties),
            where=where,
            columns=_checks.opt_names(columns, "columns"),
        )

    def frames(
        self,
        flt: EventFilter,
        cap: int | None,
        options: Mapping[str, Any],
        *,
        page_rows: int | None = None,
        ahead: bool = False,
    ) -> Iterator[pd.DataFrame]:
        """One typed frame per keyset page; `ahead` fetches the next page while the caller
        works on this one (one page ahead, bounded).

        Windows read at once build their own pages' frames, in their threads: a page waiting
        for its turn waits as its frame, a fraction of its rows as Python objects.
        """
        typed = flt.columns is None or "properties" in flt.columns  # else none to type
        gate = self._conn.http.parse_gate  # see posthog_pandas.dask: one page at a time there
        fopts: list[FrameOptions] = []  # set by the first page, before any window starts

        def build(page: QueryPage) -> pd.DataFrame:
            if not fopts:  # after the first page: a query PostHog refuses costs nothing more
                fopts.append(self._frames.options(options, EVENTS.definitions if typed else None))
            with gate:
                return page_frame(flt, page.columns, page.types, page.results, fopts[0])

        items = self.pages(flt, cap, options, page_rows=page_rows, build=build)
        # Windows read ahead already: a prefetch on top would only hold more pages in memory.
        ahead = ahead and not self.windowed(cap)
        for item in prefetch(items) if ahead else items:
            yield item if isinstance(item, pd.DataFrame) else build(item)

    def pages(
        self,
        flt: EventFilter,
        cap: int | None,
        options: Mapping[str, Any],
        *,
        page_rows: int | None = None,
        build: Callable[[QueryPage], pd.DataFrame] | None = None,
    ) -> Iterator[QueryPage | pd.DataFrame]:
        """The keyset pages of `flt` (see _keyset_pages), counted on a progress bar whose
        total is the limit, or the events counted to plan the windows. With `build`, the
        pages of windows read at once come as their frames, built in the windows' threads."""
        show = options.get("progress")
        expected: list[int] = []  # filled by _keyset_pages once it has counted
        return counted(
            self._keyset_pages(flt, cap, options, page_rows, expected, build),
            show=self._conn.progress if show is None else show,
            desc="events",
            rows=_rows_of,
            total=lambda _page: cap if cap is not None else (expected[0] if expected else None),
        )

    def list_plan(
        self, path: str, filters: Mapping[str, Any], options: Mapping[str, Any]
    ) -> ListPlan:
        """The deprecated events list's request for events() filters (where and columns do
        not apply; `limit` stops paging at that many rows): old self-hosted PostHog without
        a query API. Its `before` cursor skips events that share the timestamp of a page
        boundary (posthog-api.md §4.2)."""
        event = filters.get("event")
        if event is not None and not isinstance(event, str):
            raise ConfigurationError(
                "This PostHog has no query API, so events() can filter on one event name only."
            )
        params = {
            "after": _checks.opt_iso(filters.get("after"), "after"),
            "before": _checks.opt_iso(filters.get("before"), "before"),
            "event": event,
            "person_id": _checks.opt_str(filters.get("person_id"), "person_id"),
            "distinct_id": _checks.opt_str(filters.get("distinct_id"), "distinct_id"),
            "properties": _checks.opt_filters(filters.get("properties")),
            "limit": 1000,
        }
        clean = {k: v for k, v in params.items() if v is not None}
        limit = filters.get("limit")
        limit = None if limit is None else _checks.positive_int(limit, "limit")
        return ListPlan("events", "events", path, clean, options, limit)

    # -- machinery --

    def _keyset_pages(
        self,
        flt: EventFilter,
        cap: int | None,
        options: Mapping[str, Any],
        page_rows: int | None = None,
        expected: list[int] | None = None,
        build: Callable[[QueryPage], pd.DataFrame] | None = None,
    ) -> Iterator[QueryPage | pd.DataFrame]:
        """Keyset pages of events of `page_rows` rows (at most MAX_PAGE_ROWS, PostHog's cap),
        oldest first; `expected` receives the number of events once they are counted, and
        `build` turns the pages of windows read at once into frames in their threads.

        The first page is read alone: a pull it finishes costs nothing more. When it comes
        back full, the rest of the range is cut into windows of at most one page each, from a
        count of events per bucket (see _windows), and up to `max_concurrent_queries` windows
        are read at once, their pages handed out in window order.
        """
        rows = min(page_rows or MAX_PAGE_ROWS, MAX_PAGE_ROWS)
        workers = windows_at_once(self._conn.settings)
        if not self.windowed(cap):
            yield from self._window_pages(flt, None, cap, options, rows)  # a limit stops early
            return
        asked_refresh = options.get("refresh", False)
        cache = options.get("cache", True)
        page = self._page(
            flt, rows, None, cache=cache, refresh=asked_refresh, recompute=asked_refresh
        )
        if page is None:  # PostHog stopped the whole range at its time limit: halve it
            yield from self._window_pages(flt, None, None, options, rows)
            return
        cursor = _cursor_after(page, rows)
        # Counted before the first page is handed out: the windows' queries start as soon as
        # the page arrives, not after the caller has built its frame.
        plan = None if cursor is None else self._plan_windows(flt, cursor, rows, options)
        if cursor is not None and plan is not None and expected is not None:
            # The count starts at the cursor's instant: its ties are read again.
            expected.append(_before_instant(page, cursor[0]) + plan.counted)
        handed = [page]
        del page  # held no longer than the caller holds it, not for the whole pull
        yield handed.pop()
        if cursor is None:
            return  # one page held the whole range
        if plan is None:  # no count, no windows: the rest one page at a time
            yield from self._window_pages(flt, cursor, None, options, rows)
            return
        pulls = [
            partial(
                self._window_items,
                build,
                replace(flt, after=start, before=end),
                cursor if index == 0 else None,
                options,
                rows,
            )
            for index, (start, end) in enumerate(plan.windows)
        ]
        threads = workers + SPARE_WINDOW_THREADS
        yield from in_window_order(pulls, threads, held=2)  # as many windows ahead

    def _window_items(
        self,
        build: Callable[[QueryPage], pd.DataFrame] | None,
        flt: EventFilter,
        start: EventCursor | None,
        options: Mapping[str, Any],
        rows: int,
    ) -> Iterator[QueryPage | pd.DataFrame]:
        """A window's pages (see _window_pages), as frames when there is `build`."""
        pages = self._window_pages(flt, start, None, options, rows)
        if build is None:
            yield from pages
            return
        for page in pages:
            frame = build(page)
            del page  # its rows go before the frame waits for its turn
            yield frame

    def windowed(self, cap: int | None) -> bool:
        """Whether a pull reads windows at once: not with a limit (it stops early), nor with
        one window at a time (`windows_at_once`: the default from a loopback host)."""
        return cap is None and windows_at_once(self._conn.settings) > 1

    def _plan_windows(
        self, flt: EventFilter, cursor: EventCursor, rows: int, options: Mapping[str, Any]
    ) -> WindowPlan | None:
        """The rest of the range after `cursor`, cut by a count of its events per bucket into
        windows of fewer than `rows` events (one page each); None when PostHog stopped the
        count at its time limit. The count is cached like a page, so a rerun plans the same
        windows and finds their pages in the cache."""
        start = result_timestamp(cursor[0])
        sql, values = window_count_query(replace(flt, after=start))
        try:
            counted_page = self._queries.run(
                sql,
                values,
                cache=options.get("cache", True),
                refresh=options.get("refresh", False),
                name="posthog-pandas events count",
            )
        except QueryTimeoutError as exc:
            log.info("reading the events one page at a time: %s", exc.detail or exc)
            return None
        buckets = [(result_timestamp(b), int(n)) for b, n in counted_page.results]
        windows = plan_windows(start, flt.before, buckets, rows - 1)
        return WindowPlan(windows, sum(n for _, n in buckets))

    def _window_pages(
        self,
        flt: EventFilter,
        start: EventCursor | None,
        cap: int | None,
        options: Mapping[str, Any],
        rows: int,
    ) -> Iterator[QueryPage]:
        """Keyset pages of one window, after the cursor `start` (None: from its beginning).

        When PostHog stops a page at its time limit, the rest of the window becomes two
        halves read one after the other (halved again as needed), so every event still comes
        once and in order. Each request waits until the page before it is in the cache: a
        pull killed midway resumes at the first page it had not received.
        """
        asked_refresh = options.get("refresh", False)
        cache = options.get("cache", True)
        refresh = asked_refresh
        got = 0
        windows: list[tuple[EventFilter, EventCursor | None]] = [(flt, start)]  # a stack
        while windows and (cap is None or got < cap):
            window, last = windows.pop()
            size = rows if cap is None else min(rows, cap - got)
            page = self._page(
                window, size, last, cache=cache, refresh=refresh, recompute=asked_refresh
            )
            if page is None:
                windows.extend(reversed(_halves(window, last)))
                continue
            refresh = refresh_after(page, asked_refresh)
            got += len(page.results)
            if len(page.results) == size:  # a full page: the window may hold more
                ts, uuid = page.columns.index("timestamp"), page.columns.index("uuid")
                windows.append((window, (page.results[-1][ts], page.results[-1][uuid])))
            handed = [page]
            del page  # held no longer than the caller holds it
            yield handed.pop()

    def _page(
        self,
        window: EventFilter,
        size: int,
        last: EventCursor | None,
        *,
        cache: bool,
        refresh: bool,
        recompute: bool,
    ) -> QueryPage | None:
        """One keyset page of a window; None when PostHog stopped it at its time limit, now
        or in an earlier pull (remembered in the cache, so a rerun splits without waiting).
        `recompute` (the user's refresh=True) asks PostHog not to answer from its own cache."""
        sql, values = events_query(window, size, last)
        store = self._conn.store if cache else None
        marker = self._frames.key("events-timeout", {"sql": sql, "values": values}, {})
        if store is not None and marker is not None and not refresh and store.get_json(marker):
            return None
        fetcher = self._conn.fetcher
        fetcher.flush()  # the previous page is on disk before this request leaves
        try:
            return self._queries.run(
                sql,
                values,
                cache=cache,
                refresh=refresh,
                name="posthog-pandas events",
                force_blocking=recompute,
            )
        except QueryTimeoutError as exc:
            log.info("splitting the events window: %s", exc.detail or exc)
            if store is not None and marker is not None:
                store.put_json(marker, True, resource="events", ttl=fetcher.ttl.queries)
            return None

    def _frame(self, flt: EventFilter, cap: int | None, options: Mapping[str, Any]) -> pd.DataFrame:
        # One typed frame per page while the next page is fetched in the background: peak
        # memory is the finished frame plus one page, not every page's rows at once.
        frames = list(self.frames(flt, cap, options, ahead=True))
        return concat_frames(frames, self._frames.options(options).sep)

    def _incremental(
        self, flt: EventFilter, lookback: timedelta, options: Mapping[str, Any]
    ) -> pd.DataFrame:
        """Re-read from `lookback` before the newest cached event, merge by uuid; the table is
        kept under a key without `before`."""
        store = self._conn.store
        key = self._frames.key(
            "events-incremental", _filter_params(replace(flt, before=flt.after), None), options
        )
        previous = None
        if store is not None and key is not None and not options.get("refresh"):
            previous = store.get_frame(key)
        if previous is not None and len(previous):
            newest = previous["timestamp"].max().to_pydatetime()
            flt = replace(flt, after=max(flt.after, newest - lookback), before=datetime.now(UTC))
        with paused_gc():
            new = self._frame(flt, None, {**options, "cache": False})
        frame = new if previous is None else _append_unique(previous, new)
        if store is not None and key is not None and options.get("cache", True):
            store.put_frame(key, frame, resource="events", ttl=INCREMENTAL_TTL)
        return frame


def page_frame(
    flt: EventFilter,
    columns: list[str],
    types: list[str],
    rows: list[list[Any]],
    options: FrameOptions,
) -> pd.DataFrame:
    """Full events get the events schema; a `columns=` projection gets just those columns."""
    if flt.columns is not None and "properties" not in flt.columns:
        return hogql_to_frame(columns, types, rows, options)
    return hogql_events_to_frame(columns, types, rows, options)


def _rows_of(item: QueryPage | pd.DataFrame) -> int:
    """Events in a page, or in the frame built from one (for the progress bar)."""
    return len(item) if isinstance(item, pd.DataFrame) else len(item.results)


def _before_instant(page: QueryPage, instant: Any) -> int:
    """The page's events whose timestamp is not `instant` (its last row's)."""
    ts = page.columns.index("timestamp")
    return sum(1 for row in page.results if row[ts] != instant)


def _cursor_after(page: QueryPage, rows: int) -> EventCursor | None:
    """The (timestamp, uuid) of a full page's last row; None when the page was not full."""
    if len(page.results) < rows:
        return None
    ts, uuid = page.columns.index("timestamp"), page.columns.index("uuid")
    return page.results[-1][ts], page.results[-1][uuid]


# The count's buckets at most: PostHog's row cap, whatever the page size (a test may shrink
# pages); the buckets below stay far under it (4,320 minutes in 3 days, 2,160 hours in 90).
MAX_COUNT_BUCKETS = 50_000

# Threads reading windows beyond one per query slot. A window's thread builds its page's frame
# once the query is answered; the spare starts the next window's query meanwhile. As many
# windows run beyond the one being handed out, their pages waiting as frames (a fraction of
# their rows as Python objects), so a thread whose window is done takes the next one instead
# of waiting for its turn. More spares keep more decoded pages waiting for the GIL at once.
SPARE_WINDOW_THREADS = 1


class WindowPlan(NamedTuple):
    """The windows left after the first page, and the events the count found in them."""

    windows: list[Window]
    counted: int


def window_count_query(flt: EventFilter) -> tuple[str, dict[str, Any]]:
    """The HogQL that counts the filter's events per bucket, to plan one-page windows.

    Buckets are minutes for a range of up to three days, hours up to 90 days, else days: fine
    enough to cut windows of one page, few enough rows (at most 50,000 days is 136 years)."""
    clauses, values = flt.conditions()
    span = flt.before - flt.after
    bucket = (
        "toStartOfMinute"
        if span <= timedelta(days=3)
        else "toStartOfHour"
        if span <= timedelta(days=90)
        else "toStartOfDay"
    )
    sql = (
        f"SELECT {bucket}(timestamp) AS bucket, count() AS events FROM events "
        f"WHERE {' AND '.join(clauses)} GROUP BY bucket ORDER BY bucket LIMIT {MAX_COUNT_BUCKETS}"
    )
    return sql, values


def _halves(
    window: EventFilter, last: EventCursor | None
) -> tuple[tuple[EventFilter, EventCursor | None], tuple[EventFilter, None]]:
    """The rest of a window PostHog timed out on, as two halves; an error when too short."""
    halves = split_events_window(window, last)
    if halves is None:
        start = window.after if last is None else max(window.after, result_timestamp(last[0]))
        raise QueryTimeoutError(
            f"PostHog stopped the events query at its time limit even for the window from "
            f"{_dates.iso(start)} to {_dates.iso(window.before)}, too short to split further. "
            "Narrow what "
            "is read (event=, properties=, where=, or fewer columns=) and run it again; the "
            "pages fetched so far are cached.",
            status=504,
        )
    return halves


def _append_unique(previous: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if not len(new):
        return previous
    combined = pd.concat([previous, new], ignore_index=True)
    combined = combined.drop_duplicates(subset="uuid", keep="last")
    return combined.sort_values(["timestamp", "uuid"], kind="stable").reset_index(drop=True)


def _filter_params(flt: EventFilter, cap: int | None) -> dict[str, Any]:
    return {
        "after": _dates.iso(flt.after),
        "before": _dates.iso(flt.before),
        "event": flt.event,
        "distinct_id": flt.distinct_id,
        "person_id": flt.person_id,
        "properties": flt.properties,
        "where": flt.where,
        "columns": flt.columns,
        "limit": cap,
    }
