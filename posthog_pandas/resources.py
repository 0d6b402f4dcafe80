"""The list part: PostHog's paged lists read through plans built from the registry.

A list accessor (`ph.persons()`, `ph.cohorts()`, ...) names a registry entry (_registry) and
passes its arguments; `Lists.plan` checks and encodes them into a `ListPlan` (what to fetch,
how to page, which schema) without fetching anything. `Lists.frame` turns a plan into one
typed DataFrame (kept in the frame cache beside the raw pages, so a rerun is a file read),
`Lists.frames` into a stream of frames for the exporter. `limit=N` reads the first N rows in
PostHog's order and requests no page past them (see _pagination).
"""

from __future__ import annotations

import difflib
import logging
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

import pandas as pd

from posthog_pandas import _checks
from posthog_pandas._core import Connection
from posthog_pandas._frame_cache import FrameCache
from posthog_pandas._live import without_repeats_or_gaps
from posthog_pandas._pagination import Page, prefetch
from posthog_pandas._registry import NAMES, RESOURCES, Resource, resource_named
from posthog_pandas.exceptions import (
    NotFoundError,
    PermissionDeniedError,
    ResponseFormatError,
)
from posthog_pandas.frames import (
    SCHEMAS,
    FrameOptions,
    concat_frames,
    records_to_frame,
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
    raw: bool


class ListOptions(CallOptions, total=False):
    """Options every list accessor accepts: the common ones, and `limit`."""

    limit: int | None


log = logging.getLogger("posthog_pandas")

_OPTION_NAMES = tuple(CallOptions.__annotations__)
_LIST_OPTION_NAMES = (*_OPTION_NAMES, "limit")

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
    parameters (None values left out), the call's options, and `limit` (the first rows
    only; None: every row). Turned into a DataFrame by `Lists.frame`, into pages by
    `Lists.pages`, into a file by the exporter."""

    resource: str
    schema: str
    path: str
    params: Mapping[str, Any]
    options: Mapping[str, Any]
    limit: int | None = None


def check_options(
    options: Mapping[str, Any], accessor: str, known: tuple[str, ...] = _OPTION_NAMES
) -> None:
    """Unknown keyword arguments fail loudly with a suggestion instead of vanishing."""
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"{accessor}() got an unexpected keyword argument {name!r}.{hint} "
                f"Common options: {', '.join(known)}."
            )


def suggest_resource(name: str) -> str:
    close = difflib.get_close_matches(name, ACCESSORS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown PostHog resource {name!r}.{hint} Available: {', '.join(ACCESSORS)}."


class Lists:
    """The list part: a registry entry and the user's arguments to a plan, a plan to a frame
    or to pages, and the insight and generic-endpoint reads."""

    def __init__(self, conn: Connection, frames: FrameCache) -> None:
        self._conn = conn
        self._frames = frames

    def read(self, name: str, arguments: Mapping[str, Any]) -> pd.DataFrame:
        """A list accessor: plan the request, then read every page into one frame."""
        plan = self.plan(name, arguments)
        return plan if isinstance(plan, pd.DataFrame) else self.frame(plan)

    def plan(self, name: str, arguments: Mapping[str, Any]) -> ListPlan | pd.DataFrame:
        """The request a list accessor makes, its arguments checked and encoded, nothing
        fetched (a DataFrame when old PostHog answers without a list: see _legacy_plan)."""
        entry = resource_named(name)
        assert entry is not None and entry.path is not None, name
        filters = {k: v for k, v in arguments.items() if k in entry.arguments}
        options = {k: v for k, v in arguments.items() if k not in (*entry.arguments, "limit")}
        if entry.id_argument is not None and entry.id_argument not in filters:
            raise TypeError(f"{name}() missing 1 required argument: {entry.id_argument!r}")
        check_options(options, name, _LIST_OPTION_NAMES)
        limit = arguments.get("limit")
        limit = None if limit is None else _checks.positive_int(limit, "limit")
        if self._conn.legacy:
            legacy = self._legacy_plan(entry, filters, options, limit)
            if legacy is not None:
                return legacy
        params = entry.params(**filters)
        path = entry.path.format(**{k: params.pop(k) for k in _path_fields(entry.path)})
        path = path if path.startswith("/") else self._conn.project_path(path)
        if limit is not None and params.get("limit") is None and entry.page_size is not None:
            params["limit"] = entry.page_size  # a page size to cut (see _pagination)
        clean = {k: v for k, v in params.items() if v is not None}
        return ListPlan(name, entry.frame_schema, path, clean, options, limit)

    def frame(self, plan: ListPlan) -> pd.DataFrame:
        """Every page of the plan as one typed frame (kept in the frame cache)."""
        schema, options = plan.schema, plan.options
        # The first N rows are another frame than every row (same key as before otherwise).
        rows = {} if plan.limit is None else {"first_rows": plan.limit}
        key = self._frames.key(schema, {"path": plan.path, **plan.params, **rows}, options)

        def build() -> pd.DataFrame:
            pages = self.pages(plan, progress=options.get("progress"))
            # A typed frame per page while the next page is on its way (see events).
            frames = list(self._typed_frames(plan, prefetch(pages)))
            fopts = self._frames.options(options)
            return (
                concat_frames(frames, fopts.sep)
                if frames
                else records_to_frame([], SCHEMAS.get(schema), fopts)
            )

        try:
            return self._frames.frame(key, schema, options, build)
        except PermissionDeniedError as exc:
            exc.args = (f"{exc.args[0]}\n(raised by ph.{plan.resource}())",)
            raise
        except NotFoundError as exc:
            if self._conn.legacy or schema not in SCHEMAS:
                raise
            exc.args = (f"{exc.args[0]}\n(raised by ph.{plan.resource}())",)
            raise

    def frames(self, plan: ListPlan) -> Iterator[pd.DataFrame]:
        """One typed frame per page, the next page fetched while this one is used."""
        return self._typed_frames(plan, prefetch(self.pages(plan, progress=False)))

    def _typed_frames(self, plan: ListPlan, pages: Iterator[Page]) -> Iterator[pd.DataFrame]:
        """Each page as a frame; the property definitions are read after the first page, so
        a list PostHog refuses fails on its own request."""
        schema = SCHEMAS.get(plan.schema)
        options: FrameOptions | None = None
        for page in pages:
            if options is None:
                options = self._frames.options(plan.options, _definitions(plan))
            yield records_to_frame(page.results, schema, options)

    def pages(self, plan: ListPlan, *, progress: bool | None) -> Iterator[Page]:
        """Every page of a list (up to `plan.limit` rows); a list that changes while it is
        read (persons) comes with each row once and none skipped (see _live)."""
        schema, options = plan.schema, plan.options
        key = LIVE_LISTS.get(schema)
        pages: Iterator[Page] = self._conn.iter_pages(
            plan.path,
            plan.params,
            resource=schema,
            cache=options.get("cache", True),
            refresh=options.get("refresh", False),
            progress=progress,
            grow_to=GROWING_PAGES.get(schema),
            overlap=1 if key else 0,
            rows=plan.limit,
        )
        if key is not None:

            def refetch(url: str) -> Any:
                return self._conn.fetcher.get(url, None, resource=schema, cache=False)

            pages = without_repeats_or_gaps(pages, refetch, key=key)
        return pages if plan.limit is None else first_rows(pages, plan.limit)

    def fetch_path(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        cache: bool,
        refresh: bool,
        progress: bool | None,
    ) -> pd.DataFrame:
        """All pages of any list endpoint as a DataFrame (see PostHog.fetch)."""
        conn = self._conn
        url = path if path.startswith(("/", "http")) else conn.project_path(path)
        records: list[dict[str, Any]] = []
        try:
            pages = conn.iter_pages(url, params, cache=cache, refresh=refresh, progress=progress)
            for page in pages:
                records.extend(page.results)
        finally:
            conn.fetcher.flush()
        return records_to_frame(records, None, conn.frame_options)

    def insight(
        self,
        insight_id: int | str,
        options: Mapping[str, Any],
        *,
        tidy: Callable[[Mapping[str, Any]], pd.DataFrame | None] | None = None,
    ) -> pd.DataFrame:
        """One insight's result as a tidy table (see PostHog.insight); `tidy(insight)` gives
        the analytics frame for the query kinds it knows (None for the others)."""
        check_options(options, "insight")
        fetcher = self._conn.fetcher
        path = self._conn.project_path(f"insights/{insight_id}")
        refresh = options.get("refresh", False)
        try:
            data = fetcher.get(
                path,
                {"refresh": "force_blocking" if refresh else "blocking"},
                resource="insights",
                cache=options.get("cache", True),
                refresh=refresh,
                validate=_has_insight_result,  # an answer without a result is never kept
            )
        finally:
            fetcher.flush()
        if not isinstance(data, dict):
            raise ResponseFormatError(
                f"Insight {insight_id} came back as {type(data).__name__}, not a JSON object."
            )
        if data.get("result") is None:
            raise ResponseFormatError(_no_insight_result(insight_id, data))
        frame = tidy(data) if tidy is not None else None
        if frame is not None:
            return frame
        return insight_result_frame(data["result"], self._frames.options(options))

    # -- old PostHog --

    def _legacy_plan(
        self,
        entry: Resource,
        filters: Mapping[str, Any],
        options: Mapping[str, Any],
        limit: int | None,
    ) -> ListPlan | pd.DataFrame | None:
        """Old PostHog: persons at /api/person/ (filters sent as given), event and property
        names in /api/user/; None where the current API's plan applies."""
        if entry.name == "persons":
            params = {k: v for k, v in filters.items() if v is not None}
            return ListPlan("persons", "legacy_persons", "/api/person/", params, options, limit)
        if entry.name == "event_definitions":
            return self._legacy_names("event_names", options, limit)
        if entry.name == "property_definitions":
            kind = _checks.definitions_type(filters.get("type", "event"))
            _checks.definitions_group_index(kind, filters.get("group_type_index"))
            key = "event_properties" if kind == "event" else "person_properties"
            return self._legacy_names(key, options, limit)
        return None

    def _legacy_names(
        self, key: str, options: Mapping[str, Any], limit: int | None
    ) -> pd.DataFrame:
        """Old PostHog lists event and property names in /api/user/ (one `name` column)."""
        data = self._conn.fetcher.get("/api/user/", resource="user")
        names = ((data if isinstance(data, dict) else {}).get(key) or [])[:limit]
        return records_to_frame([{"name": n} for n in names], None, self._frames.options(options))


def first_rows(pages: Iterator[Page], limit: int) -> Iterator[Page]:
    """The pages up to the one that holds the `limit`-th row, that one cut there; no page is
    asked for after it (a cursor list, which cannot be cut by offset, stops here)."""
    left = limit
    try:
        for page in pages:
            if len(page.results) >= left:
                yield replace(page, results=page.results[:left])
                return
            left -= len(page.results)
            yield page
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # now, not when collected: a look-ahead in flight is awaited


def _definitions(plan: ListPlan) -> str | None:
    """The property definitions that type a list's `properties.*` columns, if any."""
    entry = resource_named(plan.resource)
    return entry.definitions if entry is not None else None


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


def _path_fields(path: str) -> list[str]:
    """The argument names a path template holds: "cohorts/{cohort_id}/persons" -> cohort_id."""
    return [name for _, name, _, _ in string.Formatter().parse(path) if name]
