"""Accessors: one method per PostHog resource, each "fetch every page, then build the frame".

Every accessor takes the resource's real filters as keyword-only arguments, plus the common
options in `CallOptions` (cache, refresh, progress, flatten, max_depth, dtype_backend, dtypes).
Finished frames are kept in the cache beside the raw pages, so a rerun is a file read.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import string
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, Unpack

import orjson
import pandas as pd

from posthog_pandas import _checks, _dates
from posthog_pandas._dates import DateLike
from posthog_pandas._gc import paused_gc
from posthog_pandas._live import without_repeats_or_gaps
from posthog_pandas._pagination import Page, prefetch
from posthog_pandas._progress import counted
from posthog_pandas._registry import NAMES, RESOURCES, Resource, resource_named
from posthog_pandas.exceptions import (
    CacheError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    QueryTimeoutError,
    ResponseFormatError,
)
from posthog_pandas.frames import (
    SCHEMAS,
    FrameOptions,
    concat_frames,
    hogql_events_to_frame,
    hogql_to_frame,
    records_to_frame,
)
from posthog_pandas.query import (
    MAX_PAGE_ROWS,
    EventCursor,
    EventFilter,
    QueryMixin,
    QueryPage,
    events_query,
    refresh_after,
    result_timestamp,
    split_events_window,
)


class CallOptions(TypedDict, total=False):
    """Options every accessor accepts."""

    cache: bool
    refresh: bool
    progress: bool | None
    flatten: bool
    max_depth: int
    dtype_backend: str | None
    dtypes: Mapping[str, str] | None


log = logging.getLogger("posthog_pandas")

_OPTION_NAMES = tuple(CallOptions.__annotations__)
_FRAME_OPTION_NAMES = ("flatten", "max_depth", "dtype_backend", "dtypes")
DEFAULT_EVENTS_WINDOW = "-30d"
# How far back `incremental=True` reads again, for events that arrived late (PostHog accepts
# past timestamps, posthog-api.md §12): a day covers mobile SDKs' offline queues and retries.
DEFAULT_LOOKBACK = timedelta(days=1)
INCREMENTAL_TTL = 10 * 365 * 86400.0  # the accumulated table is the user's data: keep it

# Lists that grow their pages / change while they are read, by frames schema (indexes of the
# registry's grow_to and live_key; see _pagination and _live).
GROWING_PAGES: dict[str, int] = {
    r.frame_schema: r.grow_to for r in RESOURCES if r.grow_to is not None
}
LIVE_LISTS: dict[str, str] = {
    r.frame_schema: r.live_key for r in RESOURCES if r.live_key is not None
}
ACCESSORS = NAMES


@dataclass(frozen=True)
class ListPlan:
    """What a list accessor reads: the resource, the frames schema, the URL path and query
    parameters (None values left out), and the call's options. Turned into a DataFrame by
    `_list_frame`, into pages by `_list_pages`, into a file by the exporter."""

    resource: str
    schema: str
    path: str
    params: Mapping[str, Any]
    options: Mapping[str, Any]


def check_options(options: Mapping[str, Any], accessor: str) -> None:
    """Unknown keyword arguments fail loudly with a suggestion instead of vanishing."""
    for name in options:
        if name not in _OPTION_NAMES:
            close = difflib.get_close_matches(name, _OPTION_NAMES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"{accessor}() got an unexpected keyword argument {name!r}.{hint} "
                f"Common options: {', '.join(_OPTION_NAMES)}."
            )


def suggest_resource(name: str) -> str:
    close = difflib.get_close_matches(name, ACCESSORS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown PostHog resource {name!r}.{hint} Available: {', '.join(ACCESSORS)}."


class ResourcesMixin(QueryMixin):
    """The accessors, one method per PostHog resource."""

    # -- people ----------------------------------------------------------------------------

    def persons(
        self,
        *,
        search: str | None = None,
        email: str | None = None,
        distinct_id: str | None = None,
        properties: Sequence[Mapping[str, Any]] | None = None,
        **options: Unpack[CallOptions],
    ) -> pd.DataFrame:
        """All persons, newest first (PostHog's order), one row per person.

        Filters: `search` (email or distinct id), `email`, `distinct_id`, and `properties`
        (PostHog property filters, e.g. [{"key": "plan", "value": "pro"}]).
        Columns: the person fields, then `properties.<key>` for every property.
        Pages start at 1,000 persons and grow to 5,000 (fewer requests against PostHog's rate
        limit); a grown page PostHog fails to serve is asked for again at 1,000. Persons
        created, deleted or merged during the pull shift PostHog's offset pages: each person
        that exists throughout comes exactly once all the same (see _live).
        """
        filters = {"search": search, "email": email, "distinct_id": distinct_id}
        return self._read_list("persons", {**filters, "properties": properties, **options})

    def cohort_persons(self, cohort_id: int, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """The persons in one cohort (same columns and paging as `persons()`)."""
        return self._read_list("cohort_persons", {"cohort_id": cohort_id, **options})

    def groups(
        self, group_type_index: int, *, search: str | None = None, **options: Unpack[CallOptions]
    ) -> pd.DataFrame:
        """Groups of one group type (0-4; see the group types in PostHog's settings)."""
        arguments = {"group_type_index": group_type_index, "search": search}
        return self._read_list("groups", {**arguments, **options})

    # -- product metadata ---------------------------------------------------------------------

    def cohorts(self, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """All cohorts."""
        return self._read_list("cohorts", options)

    def feature_flags(
        self,
        *,
        active: bool | None = None,
        search: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pd.DataFrame:
        """All feature flags; `active` keeps only active (True) or inactive (False) flags."""
        return self._read_list("feature_flags", {"active": active, "search": search, **options})

    def insights(
        self, *, saved: bool | None = None, **options: Unpack[CallOptions]
    ) -> pd.DataFrame:
        """All insights (their definitions; use `insight(id)` for one insight's results)."""
        return self._read_list("insights", {"saved": saved, **options})

    def dashboards(self, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """All dashboards."""
        return self._read_list("dashboards", options)

    def annotations(
        self, *, search: str | None = None, **options: Unpack[CallOptions]
    ) -> pd.DataFrame:
        """All annotations."""
        return self._read_list("annotations", {"search": search, **options})

    def actions(self, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """All actions."""
        return self._read_list("actions", options)

    def event_definitions(
        self, *, search: str | None = None, **options: Unpack[CallOptions]
    ) -> pd.DataFrame:
        """Every event name PostHog has seen, with volumes and dates."""
        return self._read_list("event_definitions", {"search": search, **options})

    def property_definitions(
        self,
        *,
        type: str = "event",
        group_type_index: int | None = None,
        search: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pd.DataFrame:
        """Property definitions of one kind: type="event" (default), "person", "session" or
        "group"; groups need `group_type_index` (0-4), PostHog lists one group type at a time."""
        arguments = {"type": type, "group_type_index": group_type_index, "search": search}
        return self._read_list("property_definitions", {**arguments, **options})

    def experiments(self, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """All experiments."""
        return self._read_list("experiments", options)

    def surveys(self, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """All surveys."""
        return self._read_list("surveys", options)

    def session_recordings(
        self,
        *,
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
        **options: Unpack[CallOptions],
    ) -> pd.DataFrame:
        """Session recordings (metadata, not the recordings themselves), newest first.

        Recordings whose start is in [date_from, date_to]. Without `date_from`, every
        recording PostHog still keeps: PostHog itself would list only the last 3 days, so
        the range starts _checks.RECORDINGS_KEPT_DAYS (5 years, PostHog's longest retention) ago.
        """
        arguments = {"date_from": date_from, "date_to": date_to}
        return self._read_list("session_recordings", {**arguments, **options})

    def projects(self, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """The projects of your organization that the key can see."""
        return self._read_list("projects", options)

    def insight(self, insight_id: int | str, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """One insight's result as a tidy table: one row per series and date.

        Columns: `series` (the series label), `breakdown_value`, `date` (UTC), `value`.
        Results that are not time series (funnels, retention) come back one row per item.
        PostHog answers from its own cache while fresh and computes the insight otherwise
        (`refresh=blocking`); `refresh=True` makes it compute now (`force_blocking`).
        """
        check_options(options, "insight")
        path = self.project_path(f"insights/{insight_id}")
        refresh = options.get("refresh", False)
        try:
            data = self.fetcher.get(
                path,
                {"refresh": "force_blocking" if refresh else "blocking"},
                resource="insights",
                cache=options.get("cache", True),
                refresh=refresh,
                validate=_has_insight_result,  # an answer without a result is never kept
            )
        finally:
            self.fetcher.flush()
        if not isinstance(data, dict):
            raise ResponseFormatError(
                f"Insight {insight_id} came back as {type(data).__name__}, not a JSON object."
            )
        if data.get("result") is None:
            raise ResponseFormatError(_no_insight_result(insight_id, data))
        return insight_result_frame(data["result"], self._options(options))

    def fetch_resource(self, name: str, **filters: Any) -> pd.DataFrame:
        """Any accessor by name: fetch_resource("persons", email=...). Used by read_posthog."""
        if resource_named(name) is None:
            raise ConfigurationError(suggest_resource(name))
        result: pd.DataFrame = getattr(self, name)(**filters)
        return result

    # -- events ----------------------------------------------------------------------------------

    def events(
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
        limit: int | None = None,
        incremental: bool = False,
        lookback: timedelta | str | None = None,
        **options: Unpack[CallOptions],
    ) -> pd.DataFrame:
        """Events in [after, before), oldest first, every row (no 1,000-row clamp, no lost ties).

        Pulled through the query API by keyset on (timestamp, uuid), 50,000 rows a page.
        `after` defaults to 30 days ago ("-30d"); `before` to now, pinned at the first call so
        that an interrupted pull resumes from the cached pages. `columns` and `where` (a HogQL
        condition) are evaluated by PostHog, so only what you need crosses the network.
        `properties` are PostHog property filters ({"key", "value", "operator", "type"}),
        compared as PostHog compares them (True matches a JSON true, 10 matches 10 and 10.0).
        When PostHog stops a page at its query time limit, the rest of the range is read in
        smaller time windows, still in order and each event once.

        `incremental=True` keeps one growing table per set of filters: each call reads again
        from `lookback` (default one day; a timedelta or text like "6h", "2d") before the
        newest event already held, and merges by uuid, so events that reach PostHog late with
        past timestamps are picked up. An event that arrives later than `lookback` after the
        newest event held is not seen (nor are deletions); use `refresh=True` to re-read all.
        """
        check_options(options, "events")
        if lookback is not None and not incremental:
            raise ConfigurationError("lookback= applies to incremental=True pulls only.")
        if self.legacy:
            filters = {
                "after": after,
                "before": before,
                "event": event,
                "person_id": person_id,
                "distinct_id": distinct_id,
                "properties": properties,
            }
            return self._list_events(self._events_list_plan("/api/event/", filters, options), limit)
        flt = self._event_filter(
            after, before, event, person_id, distinct_id, properties, where, columns, options
        )
        cap = None if limit is None else _checks.positive_int(limit, "limit")
        if incremental:
            window = _dates.to_duration(
                DEFAULT_LOOKBACK if lookback is None else lookback, name="lookback"
            )
            return self._incremental_events(flt, window, options)
        key = self._frame_key("events", _filter_params(flt, cap), options)
        try:
            return self._cached_frame(
                key, "events", options, lambda: self._events_frame(flt, cap, options)
            )
        except NotFoundError as exc:
            if "/query" not in exc.url or where is not None or columns is not None:
                raise
            warnings.warn(
                "This PostHog has no query API (/query/ answered 404); falling back to the "
                "deprecated events list, which can skip events that share a timestamp at a "
                "page boundary.",
                UserWarning,
                stacklevel=2,
            )
            filters = {
                "after": flt.after,
                "before": flt.before,
                "event": event,
                "person_id": person_id,
                "distinct_id": distinct_id,
                "properties": properties,
            }
            plan = self._events_list_plan(self.project_path("events"), filters, options)
            return self._list_events(plan, cap)

    def iter_events(
        self,
        *,
        after: DateLike | None = None,
        before: DateLike | None = None,
        event: str | Sequence[str] | None = None,
        where: str | None = None,
        columns: Sequence[str] | None = None,
        **options: Unpack[CallOptions],
    ) -> Iterator[pd.DataFrame]:
        """Events as a stream of DataFrames, one per 50,000-row page (bounded memory)."""
        check_options(options, "iter_events")
        flt = self._event_filter(after, before, event, None, None, None, where, columns, options)
        fopts = self._options(options)
        for page in self._event_pages(flt, None, options):
            yield _events_page_frame(flt, page.columns, page.types, page.results, fopts)

    def _event_filter(
        self,
        after: DateLike | None,
        before: DateLike | None,
        event: str | Sequence[str] | None,
        person_id: str | None,
        distinct_id: str | None,
        properties: Sequence[Mapping[str, Any]] | None,
        where: str | None,
        columns: Sequence[str] | None,
        options: Mapping[str, Any],
    ) -> EventFilter:
        start = _dates.to_utc(after if after is not None else DEFAULT_EVENTS_WINDOW, name="after")
        end = _dates.to_utc(before, name="before")
        if end is None:
            end = self._pinned_now(
                {"after": start, "event": event, "where": where}, options.get("refresh", False)
            )
        assert start is not None
        if start >= end:
            raise ConfigurationError(
                f"after ({_dates.iso(start)}) must be earlier than before ({_dates.iso(end)})."
            )
        if event is not None and not isinstance(event, (str, list, tuple)):
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
            columns=list(columns) if columns is not None else None,
        )

    def _event_pages(
        self,
        flt: EventFilter,
        cap: int | None,
        options: Mapping[str, Any],
        page_rows: int | None = None,
    ) -> Iterator[QueryPage]:
        """The keyset pages of `flt` (see _keyset_pages), counted on a progress bar."""
        show = options.get("progress")
        return counted(
            self._keyset_pages(flt, cap, options, page_rows),
            show=self.progress if show is None else show,
            desc="events",
            rows=lambda page: len(page.results),
        )

    def _keyset_pages(
        self,
        flt: EventFilter,
        cap: int | None,
        options: Mapping[str, Any],
        page_rows: int | None = None,
    ) -> Iterator[QueryPage]:
        """Keyset pages of events of `page_rows` rows (at most MAX_PAGE_ROWS, PostHog's cap).

        The range is one window, read oldest first. When PostHog stops a page at its time
        limit, the rest of that window becomes two halves read one after the other (halved
        again as needed), so every event still comes once and in order. Each request waits
        until the page before it is in the cache: a pull killed midway resumes at the first
        page it had not received, and asks for no page twice.
        """
        rows = min(page_rows or MAX_PAGE_ROWS, MAX_PAGE_ROWS)
        asked_refresh = options.get("refresh", False)
        cache = options.get("cache", True)
        refresh = asked_refresh
        got = 0
        windows: list[tuple[EventFilter, EventCursor | None]] = [(flt, None)]  # a stack
        while windows and (cap is None or got < cap):
            window, last = windows.pop()
            size = rows if cap is None else min(rows, cap - got)
            page = self._events_page(
                window, size, last, cache=cache, refresh=refresh, recompute=asked_refresh
            )
            if page is None:
                windows.extend(reversed(_halves(window, last)))
                continue
            refresh = refresh_after(page, asked_refresh)
            got += len(page.results)
            yield page
            if len(page.results) == size:  # a full page: the window may hold more
                ts, uuid = page.columns.index("timestamp"), page.columns.index("uuid")
                windows.append((window, (page.results[-1][ts], page.results[-1][uuid])))

    def _events_page(
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
        store = self._store if cache else None
        marker = self._frame_key("events-timeout", {"sql": sql, "values": values}, {})
        if store is not None and marker is not None and not refresh and store.get_json(marker):
            return None
        self.fetcher.flush()  # the previous page is on disk before this request leaves
        try:
            return self.run_query(
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
                store.put_json(marker, True, resource="events", ttl=self.fetcher.ttl.queries)
            return None

    def _events_frame(
        self, flt: EventFilter, cap: int | None, options: Mapping[str, Any]
    ) -> pd.DataFrame:
        # One typed frame per page while the next page is fetched in the background: peak
        # memory is the finished frame plus one page, not every page's rows at once.
        fopts = self._options(options)
        frames = [
            _events_page_frame(flt, page.columns, page.types, page.results, fopts)
            for page in prefetch(self._event_pages(flt, cap, options))
        ]
        return concat_frames(frames, fopts.sep)

    def _incremental_events(
        self, flt: EventFilter, lookback: timedelta, options: Mapping[str, Any]
    ) -> pd.DataFrame:
        """Re-read from `lookback` before the newest cached event, merge by uuid; the table is
        kept under a key without `before`."""
        store = self._store
        key = self._frame_key(
            "events-incremental", _filter_params(replace(flt, before=flt.after), None), options
        )
        previous = None
        if store is not None and key is not None and not options.get("refresh"):
            previous = store.get_frame(key)
        if previous is not None and len(previous):
            newest = previous["timestamp"].max().to_pydatetime()
            flt = replace(flt, after=max(flt.after, newest - lookback), before=datetime.now(UTC))
        with paused_gc():
            new = self._events_frame(flt, None, {**options, "cache": False})
        frame = new if previous is None else _append_unique(previous, new)
        if store is not None and key is not None and options.get("cache", True):
            store.put_frame(key, frame, resource="events", ttl=INCREMENTAL_TTL)
        return frame

    def _list_events(self, plan: ListPlan, limit: int | None) -> pd.DataFrame:
        """The deprecated events list: 1,000 rows a page, newest first, `before` cursor.

        Used only where the query API is missing (old self-hosted PostHog). Its cursor skips
        events that share the timestamp of a page boundary (posthog-api.md §4.2).
        """
        frame = self._list_frame(plan)
        return frame if limit is None else frame.head(limit).reset_index(drop=True)

    def _events_list_plan(
        self, path: str, filters: Mapping[str, Any], options: Mapping[str, Any]
    ) -> ListPlan:
        """The events list's request for events() filters (where and columns do not apply)."""
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
        return ListPlan("events", "events", path, clean, options)

    # -- shared machinery ----------------------------------------------------------------------

    def _read_list(self, name: str, arguments: Mapping[str, Any]) -> pd.DataFrame:
        """A list accessor: plan the request, then read every page into one frame."""
        plan = self._list_plan(name, arguments)
        return plan if isinstance(plan, pd.DataFrame) else self._list_frame(plan)

    def _list_plan(self, name: str, arguments: Mapping[str, Any]) -> ListPlan | pd.DataFrame:
        """The request a list accessor makes, its arguments checked and encoded, nothing
        fetched (a DataFrame when old PostHog answers without a list: see _legacy_plan)."""
        entry = resource_named(name)
        assert entry is not None and entry.path is not None, name
        filters = {k: v for k, v in arguments.items() if k in entry.arguments}
        options = {k: v for k, v in arguments.items() if k not in entry.arguments}
        if entry.id_argument is not None and entry.id_argument not in filters:
            raise TypeError(f"{name}() missing 1 required argument: {entry.id_argument!r}")
        check_options(options, name)
        if self.legacy:
            legacy = self._legacy_plan(entry, filters, options)
            if legacy is not None:
                return legacy
        params = entry.params(**filters)
        path = entry.path.format(**{k: params.pop(k) for k in _path_fields(entry.path)})
        path = path if path.startswith("/") else self.project_path(path)
        clean = {k: v for k, v in params.items() if v is not None}
        return ListPlan(name, entry.frame_schema, path, clean, options)

    def _legacy_plan(
        self, entry: Resource, filters: Mapping[str, Any], options: Mapping[str, Any]
    ) -> ListPlan | pd.DataFrame | None:
        """Old PostHog: persons at /api/person/ (filters sent as given), event and property
        names in /api/user/; None where the current API's plan applies."""
        if entry.name == "persons":
            params = {k: v for k, v in filters.items() if v is not None}
            return ListPlan("persons", "legacy_persons", "/api/person/", params, options)
        if entry.name == "event_definitions":
            return self._legacy_names("event_names", options)
        if entry.name == "property_definitions":
            kind = _checks.definitions_type(filters.get("type", "event"))
            _checks.definitions_group_index(kind, filters.get("group_type_index"))
            key = "event_properties" if kind == "event" else "person_properties"
            return self._legacy_names(key, options)
        return None

    def _list_frame(self, plan: ListPlan) -> pd.DataFrame:
        schema, options = plan.schema, plan.options
        key = self._frame_key(schema, {"path": plan.path, **plan.params}, options)

        def build() -> pd.DataFrame:
            fopts = self._options(options)
            pages = self._list_pages(plan, progress=options.get("progress"))
            # A typed frame per page while the next page is on its way (see events()).
            frames = [
                records_to_frame(p.results, SCHEMAS.get(schema), fopts) for p in prefetch(pages)
            ]
            return (
                concat_frames(frames, fopts.sep)
                if frames
                else records_to_frame([], SCHEMAS.get(schema), fopts)
            )

        try:
            return self._cached_frame(key, schema, options, build)
        except PermissionDeniedError as exc:
            exc.args = (f"{exc.args[0]}\n(raised by ph.{plan.resource}())",)
            raise
        except NotFoundError as exc:
            if self.legacy or schema not in SCHEMAS:
                raise
            exc.args = (f"{exc.args[0]}\n(raised by ph.{plan.resource}())",)
            raise

    def _list_pages(self, plan: ListPlan, *, progress: bool | None) -> Iterator[Page]:
        """Every page of a list; a list that changes while it is read (persons) comes with
        each row once and none skipped (see _live)."""
        schema, options = plan.schema, plan.options
        key = LIVE_LISTS.get(schema)
        pages = self.iter_pages(
            plan.path,
            plan.params,
            resource=schema,
            cache=options.get("cache", True),
            refresh=options.get("refresh", False),
            progress=progress,
            grow_to=GROWING_PAGES.get(schema),
            overlap=1 if key else 0,
        )
        if key is None:
            return pages

        def refetch(url: str) -> Any:
            return self.fetcher.get(url, None, resource=schema, cache=False)

        return without_repeats_or_gaps(pages, refetch, key=key)

    def _cached_frame(
        self,
        key: str | None,
        resource: str,
        options: Mapping[str, Any],
        build: Callable[[], pd.DataFrame],
    ) -> pd.DataFrame:
        """The finished frame from the cache when fresh; else build it and keep a copy."""
        store = self._store if options.get("cache", True) else None
        try:
            if store is not None and key is not None and not options.get("refresh"):
                cached = store.get_frame(key)
                if cached is not None:
                    self.fetcher.stats.hits += 1
                    return cached
            with paused_gc():  # see _gc: 0.6 s of collector work per 200,000 events otherwise
                frame = build()
            if store is not None and key is not None:
                try:  # written in the background; the pages are on disk already
                    store.put_frame_soon(key, frame, resource=resource, ttl=self.fetcher.ttl.frames)
                except CacheError as exc:
                    # A frame Parquet cannot hold only costs a rebuild from the cached pages.
                    log.warning("not keeping the %s frame in the cache: %s", resource, exc)
            return frame
        finally:
            self.fetcher.flush()  # every page of this call is on disk when it returns

    def _frame_key(
        self, resource: str, params: Mapping[str, Any], options: Mapping[str, Any]
    ) -> str | None:
        if self._store is None:
            return None
        shape = {k: options.get(k) for k in _FRAME_OPTION_NAMES if options.get(k) is not None}
        blob = orjson.dumps(
            {
                "scope": self.fetcher.scope,
                "project": self.project_id,
                "resource": resource,
                "params": params,
                "frame": shape,
                "defaults": repr(self.frame_options),
            },
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            default=str,
        )
        return "frame-" + hashlib.sha256(blob).hexdigest()

    def _pinned_now(self, params: Mapping[str, Any], refresh: bool) -> datetime:
        """`before` for an open-ended pull, fixed at the first call so cached pages stay valid."""
        now = datetime.now(UTC).replace(microsecond=0)
        store = self._store
        if store is None:
            return now
        key = self._frame_key("events-pin", params, {})
        assert key is not None
        pinned = None if refresh else store.get_json(key)
        if isinstance(pinned, dict) and "before" in pinned:
            return datetime.fromisoformat(pinned["before"])
        store.put_json(
            key, {"before": now.isoformat()}, resource="events", ttl=self.fetcher.ttl.queries
        )
        return now

    def _options(self, options: Mapping[str, Any]) -> FrameOptions:
        changes = {k: options[k] for k in _FRAME_OPTION_NAMES if options.get(k) is not None}
        return replace(self.frame_options, **changes) if changes else self.frame_options

    def _legacy_names(self, key: str, options: Mapping[str, Any]) -> pd.DataFrame:
        """Old PostHog lists event and property names in /api/user/ (one `name` column)."""
        names = self._legacy_user().get(key) or []
        return records_to_frame([{"name": n} for n in names], None, self._options(options))

    def _legacy_user(self) -> dict[str, Any]:
        data = self.fetcher.get("/api/user/", resource="user")
        return data if isinstance(data, dict) else {}


def _has_insight_result(body: Any) -> bool:
    return isinstance(body, dict) and body.get("result") is not None


def _no_insight_result(insight_id: int | str, data: Mapping[str, Any]) -> str:
    """Why an insight came back without a result, and what to do about it."""
    raw = data.get("query_status")
    status: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    name = data.get("name") or data.get("derived_name")
    what = f"Insight {insight_id}" + (f" ({name!r})" if name else "")
    if status.get("error"):
        detail = status.get("error_message") or "no message"
        return f"{what}: PostHog failed to compute it ({detail}). Open it in PostHog to see why."
    if status and not status.get("complete"):
        return (
            f"{what}: PostHog is still computing it; call ph.insight({insight_id!r}) again in "
            "a moment."
        )
    return (
        f"{what} came back without a result (PostHog computed nothing for it). Open it in "
        f"PostHog once, or call ph.insight({insight_id!r}, refresh=True) to compute it now."
    )


def insight_result_frame(result: Any, options: FrameOptions) -> pd.DataFrame:
    """Trends results (series with `days`/`data`) to one row per series and date."""
    if not isinstance(result, list) or not result:
        return pd.DataFrame(
            {
                "series": pd.Series([], dtype="string"),
                "breakdown_value": pd.Series([], dtype="string"),
                "date": pd.Series([], dtype="datetime64[ns, UTC]"),
                "value": pd.Series([], dtype="Float64"),
            }
        )
    if not all(isinstance(s, dict) and "data" in s and "days" in s for s in result):
        return records_to_frame(
            [r if isinstance(r, dict) else {"value": r} for r in result], None, options
        )
    series, breakdown, dates, values = [], [], [], []
    for s in result:
        label = s.get("label") or (s.get("action") or {}).get("name")
        value = s.get("breakdown_value")
        for day, point in zip(s["days"], s["data"], strict=False):
            series.append(label)
            breakdown.append(None if value is None else str(value))
            dates.append(day)
            values.append(point)
    return pd.DataFrame(
        {
            "series": pd.Series(series, dtype="string"),
            "breakdown_value": pd.Series(breakdown, dtype="string"),
            "date": pd.to_datetime(pd.Series(dates), utc=True, format="ISO8601").astype(
                "datetime64[ns, UTC]"
            ),
            "value": pd.Series(values, dtype="Float64"),
        }
    )


def _events_page_frame(
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


def _path_fields(path: str) -> list[str]:
    """The argument names a path template holds: "cohorts/{cohort_id}/persons" -> cohort_id."""
    return [name for _, name, _, _ in string.Formatter().parse(path) if name]
