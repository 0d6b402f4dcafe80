"""Events and HogQL results as Dask DataFrames: one partition per time window, each pulled on
whichever worker runs it, through the same cache as `ph.events()` and `ph.query()`.

The task graph holds the host, the project, the driver connection's settings and the filters,
never the key: a worker finds the key as `connect()` does (POSTHOG_PERSONAL_API_KEY in its
environment, or a `.env` file). On a `distributed` cluster a cluster-wide semaphore keeps every
worker together within PostHog's 3 concurrent queries per project; elsewhere a process-wide one
does. Needs the `dask` extra:
``pip install "posthog-pandas[dask]"``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from posthog_pandas._checks import hogql_text, opt_names
from posthog_pandas._config import Settings
from posthog_pandas._dates import DateLike, to_duration, to_utc
from posthog_pandas._extras import MissingExtraError
from posthog_pandas.exceptions import ConfigurationError, CredentialsError
from posthog_pandas.query import QUERIES_PER_HOUR

if TYPE_CHECKING:
    import dask.dataframe as dd

    from posthog_pandas.client import PostHog

__all__ = ["read_events", "read_hogql"]

DASK_INSTALL = 'pip install "posthog-pandas[dask]"'
QUERY_SLOTS = 3  # PostHog's concurrent queries per project (posthog-api.md, docs/posthog-compat.md)
# Every partition costs at least one query: more partitions than PostHog answers a team in an
# hour is a slip (a partition of minutes over months), not a plan.
MAX_PARTITIONS = QUERIES_PER_HOUR
# Lengths suggested when `partition` cuts the range too fine: the first that fits.
_SUGGESTED_PARTITIONS = ("1h", "6h", "1d", "7d", "30d")

# Connections opened on this process (a worker's), one per source and thread.
_connections: dict[tuple[Source, int], PostHog] = {}
_connections_lock = threading.Lock()
# Outside a distributed cluster, the partitions this process runs share PostHog's slots here.
_local_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
# The partitions' connections decode a page, or build its frame, one at a time in this process
# (HttpClient.parse_gate). Both hold the GIL, so a worker's threads gain no speed from doing
# them at once, only the memory of two pages at their largest; their network waits still
# overlap. Re-entrant: a frame build never decodes through the connection, but if it did, it
# would not wait on itself.
_PARSE_GATE = threading.RLock()


def _require_dask() -> Any:
    """dask.dataframe, or MissingExtraError naming the extra."""
    try:
        import dask.dataframe
    except ImportError as exc:
        raise MissingExtraError(
            f"posthog_pandas.dask needs dask[dataframe], which cannot be imported here "
            f"({exc}). Install the dask extra: {DASK_INSTALL}"
        ) from None
    return dask.dataframe


@dataclass(frozen=True)
class Source:
    """Where partitions read from: what a worker needs to connect, and no secret.

    `settings` are the driver connection's (timeout, retries, pacing, TLS verification,
    compression), so workers talk to PostHog as the driver does; the key is not among them.
    """

    host: str
    project_id: int
    cache_dir: str | None  # None: the worker's default cache directory
    settings: Settings

    @classmethod
    def of(cls, ph: PostHog) -> Source:
        try:
            cache_dir: str | None = str(ph.cache.directory)
        except Exception:  # a connection without a cache: workers use their default one
            cache_dir = None
        return cls(ph.settings.host, ph.project_id, cache_dir, ph.settings)

    def connection(self) -> PostHog:
        """This thread's connection for the source, opened once (key from the environment).

        Each of its queries holds one of the project's query slots (`project_slots`) while it
        runs, and only then: building the frame, caching it and handing the partition back
        leave the slot to another partition. It runs one query at a time, so a partition
        holds at most one slot; one connection per thread, since a worker runs partitions on
        several threads. Its pages are decoded and built into frames under the process-wide
        `_PARSE_GATE`.
        """
        key = (self, threading.get_ident())
        with _connections_lock:
            if key not in _connections:
                _connections[key] = self._connect()
                http = _connections[key]._conn.http
                http.parse_gate = _PARSE_GATE
                http.query_slots.shared = project_slots(self)
            return _connections[key]

    def _connect(self) -> PostHog:
        """connect() with the driver's settings and the worker's own key, saying where the
        key is looked for when the worker has none."""
        import posthog_pandas as php

        try:
            ph: PostHog = php.connect(
                host=self.host,
                project_id=self.project_id,
                cache_dir=self.cache_dir,
                timeout=self.settings.timeout,
                retry=self.settings.retry,
                pacing=replace(self.settings.pacing, max_concurrent_queries=1),
                verify=self.settings.verify,
                compression=self.settings.compression,
                progress=False,
                prompt=False,
            )
        except CredentialsError as exc:
            raise CredentialsError(
                "posthog_pandas.dask: a worker found no usable key of its own. The driver's "
                "key is never sent to the workers: each finds one as connect() does, in its "
                "environment (POSTHOG_PERSONAL_API_KEY; a LocalCluster's workers inherit the "
                "driver's environment when the cluster starts, or take LocalCluster(env=...)) "
                f"or in a .env file in its working directory. On the worker: {exc}"
            ) from None
        return ph


def project_slots(source: Source) -> Callable[[], AbstractContextManager[Any]]:
    """What one query takes to hold one of the project's query slots: a lease of a
    cluster-wide semaphore on a distributed worker, else the process-wide semaphore.

    Looked up once, on the task's thread, where the worker is known: the connection's queries
    may run on its prefetch thread."""
    lease = _cluster_semaphore(source)
    if lease is not None:
        return lambda: lease
    slots = _local_slots.setdefault(  # one step under the GIL: no two semaphores for a project
        (source.host, source.project_id), threading.BoundedSemaphore(QUERY_SLOTS)
    )
    return lambda: slots


def _cluster_semaphore(source: Source) -> Any:
    """A distributed.Semaphore named after the project, when running on a distributed worker."""
    try:
        from distributed import Semaphore, get_worker
    except ImportError:
        return None
    try:
        get_worker()
    except ValueError:  # not on a worker: the threaded or process scheduler
        return None
    name = f"posthog-pandas:{source.host}:{source.project_id}"
    return Semaphore(max_leases=QUERY_SLOTS, name=name)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class EventsWindow:
    """One partition of `read_events`: the events of [after, before) with the filters."""

    source: Source
    columns: tuple[str, ...] | None
    event: tuple[str, ...] | None
    where: str | None
    meta: pd.DataFrame

    def __call__(self, window: tuple[datetime, datetime]) -> pd.DataFrame:
        frame = self.source.connection().events(
            after=window[0],
            before=window[1],
            columns=list(self.columns) if self.columns else None,
            event=list(self.event) if self.event else None,
            where=self.where,
        )
        return conform(frame, self.meta)


@dataclass(frozen=True)
class HogQLWindow:
    """One partition of `read_hogql`: the query with {after} and {before} bound to a window."""

    source: Source
    hogql: str
    values: tuple[tuple[str, Any], ...]
    meta: pd.DataFrame

    def __call__(self, window: tuple[datetime, datetime]) -> pd.DataFrame:
        bound = {**dict(self.values), **_window_values(window)}
        frame = self.source.connection().query(self.hogql, bound)
        return conform(frame, self.meta)


def read_events(
    after: DateLike,
    before: DateLike,
    *,
    partition: str | timedelta = "1d",
    columns: Sequence[str] | None = None,
    event: str | Sequence[str] | None = None,
    where: str | None = None,
    ph: PostHog | None = None,
    max_partitions: int | None = MAX_PARTITIONS,
) -> dd.DataFrame:
    """Events in [after, before) as a Dask DataFrame, one partition per `partition` window
    ("1d", "6h", a timedelta), in time order; each partition is `ph.events()` over its window.
    More windows than `max_partitions` (default 2,400: PostHog's queries an hour, one query
    a partition at least) is refused with a longer partition to use; None lifts the bound.

    The partitions' columns and dtypes (Dask's `meta`) come from the events schema, not from
    data: with `columns=`, those columns (plus `uuid` and `timestamp`) as `ph.events(columns=...)`
    types them, so `read_events(..., columns=c).compute()` equals `ph.events(..., columns=c)`;
    without, the events columns and one `properties.<key>` column per event property PostHog
    defines, typed by its definition (Numeric: Float64, Boolean: boolean, DateTime: UTC
    datetime, anything else: string). A partition lacks none of them: a property its events
    never set is all missing. `ph` is the connection whose host, project
    and cache the workers use (default: `connect()`); its key is not sent to them.
    """
    dd_module = _require_dask()
    windows = time_windows(after, before, partition, max_partitions)
    ph = ph or _driver_connection()
    names = opt_names(columns, "columns")
    picked = tuple(names) if names else None
    meta = _events_meta(ph, picked, event, where)
    events = (event,) if isinstance(event, str) else tuple(event) if event else None
    reader = EventsWindow(Source.of(ph), picked, events, where, meta)
    return _from_map(dd_module, reader, windows, meta)


def read_hogql(
    hogql: str,
    *,
    after: DateLike,
    before: DateLike,
    partition: str | timedelta = "1d",
    values: Mapping[str, Any] | None = None,
    ph: PostHog | None = None,
    max_partitions: int | None = MAX_PARTITIONS,
) -> dd.DataFrame:
    """A HogQL query run once per time window, as a Dask DataFrame of one partition each.

    The query must use the placeholders `{after}` and `{before}` for its window, e.g.
    ``select event, count() from events where timestamp >= toDateTime64({after}, 6, 'UTC')
    and timestamp < toDateTime64({before}, 6, 'UTC') group by event``; each partition binds
    them to its window's bounds as UTC text. Wrap them in toDateTime64(..., 6, 'UTC'): a bare
    string compared with a DateTime is read in the project's time zone. Each window's
    result is `ph.query()`'s, so a large one is pageable the same way (ORDER BY ..., uuid).
    The columns and types are read once from the query over an empty window (no rows).
    `max_partitions` bounds the windows as in `read_events`.
    """
    dd_module = _require_dask()
    hogql_text(hogql, "read_hogql")
    for name in ("{after}", "{before}"):
        if name not in hogql:
            raise ConfigurationError(
                f"read_hogql needs the placeholder {name} in the query, to bind each "
                "partition's window (UTC text): ... where timestamp >= toDateTime64({after}, 6, "
                "'UTC') and timestamp < toDateTime64({before}, 6, 'UTC')"
            )
    given = dict(values or {})
    bound_by_windows = sorted({"after", "before"} & set(given))
    if bound_by_windows:
        raise ConfigurationError(
            f"read_hogql binds {{after}} and {{before}} to each partition's window itself; "
            f"values cannot set {', '.join(bound_by_windows)}. Give the range as "
            "read_hogql(..., after=..., before=...) and name other values differently."
        )
    windows = time_windows(after, before, partition, max_partitions)
    ph = ph or _driver_connection()
    extra = tuple(sorted(given.items()))
    empty = (windows[0][0], windows[0][0])
    meta = ph.query(hogql, {**dict(extra), **_window_values(empty)}).iloc[:0]
    reader = HogQLWindow(Source.of(ph), hogql, extra, meta)
    return _from_map(dd_module, reader, windows, meta)


def _from_map(
    dd_module: Any, reader: Any, windows: list[tuple[datetime, datetime]], meta: pd.DataFrame
) -> dd.DataFrame:
    """`dd.from_map` keeping the dtypes of `meta`: on pandas 2, Dask converts text columns to
    string[pyarrow] by default (its `dataframe.convert-string`), and the partitions must have
    ph.events()' dtypes whatever the pandas version."""
    import dask

    with dask.config.set({"dataframe.convert-string": False}):
        frame: dd.DataFrame = dd_module.from_map(reader, windows, meta=meta, enforce_metadata=False)
    return frame


def time_windows(
    after: DateLike,
    before: DateLike,
    partition: str | timedelta,
    max_partitions: int | None = MAX_PARTITIONS,
) -> list[tuple[datetime, datetime]]:
    """[after, before) cut into consecutive windows of `partition` (the last may be shorter),
    refused when there would be more than `max_partitions` (None: no bound)."""
    start = to_utc(after, name="after")
    end = to_utc(before, name="before")
    assert start is not None and end is not None
    step = to_duration(partition, name="partition")
    if step <= timedelta(0):
        raise ConfigurationError(f"partition must be longer than zero; got {partition!r}.")
    if start >= end:
        raise ConfigurationError(
            f"after ({start.isoformat()}) must be before before ({end.isoformat()})."
        )
    _check_partition_count(end - start, step, max_partitions, partition)
    windows = []
    while start < end:
        windows.append((start, min(start + step, end)))
        start += step
    return windows


def _window_count(span: timedelta, step: timedelta) -> int:
    return -(-span // step)  # the last window may be shorter


def _check_partition_count(
    span: timedelta, step: timedelta, max_partitions: int | None, partition: str | timedelta
) -> None:
    """Refuse more windows than `max_partitions`, naming a partition length that fits."""
    if max_partitions is None:
        return
    if isinstance(max_partitions, bool) or not isinstance(max_partitions, int):
        raise ConfigurationError(
            f"max_partitions must be a whole number or None; got {max_partitions!r}."
        )
    if max_partitions < 1:
        raise ConfigurationError(f"max_partitions must be at least 1; got {max_partitions!r}.")
    count = _window_count(span, step)
    if count <= max_partitions:
        return
    fits = (
        text
        for text in _SUGGESTED_PARTITIONS
        if _window_count(span, to_duration(text, name="partition")) <= max_partitions
    )
    longer = next(fits, _SUGGESTED_PARTITIONS[-1])
    bound = (
        f"more than the {QUERIES_PER_HOUR:,} queries an hour PostHog answers a team"
        if max_partitions == QUERIES_PER_HOUR
        else f"more than max_partitions={max_partitions:,}"
    )
    raise ConfigurationError(
        f"partition={partition!r} cuts [after, before) into {count:,} partitions, each at least "
        f"one PostHog query: {bound}. Use a longer partition, such as partition={longer!r}, or "
        "pass max_partitions=None to read them all."
    )


def conform(frame: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """A partition with exactly meta's columns, in order, and meta's dtypes."""
    shaped = frame.reindex(columns=meta.columns)
    return shaped.astype(meta.dtypes.to_dict())


def _events_meta(
    ph: PostHog,
    columns: tuple[str, ...] | None,
    event: str | Sequence[str] | None,
    where: str | None,
) -> pd.DataFrame:
    """The partitions' empty frame: `ph.events()` over one microsecond of 1970 (no rows, the
    real types), plus, for all columns, one text column per defined event property. The probe
    carries the partitions' own filters, so a `where=` PostHog rejects fails here, not on the
    workers once the graph runs."""
    probe = ph.events(
        after=_EPOCH,
        before=_EPOCH + timedelta(microseconds=1),
        columns=list(columns or ()) or None,
        event=event,
        where=where,
        progress=False,  # a probe of no rows: no bar, no "0 rows" line in a notebook
    )
    meta = probe.iloc[:0]
    if columns is None:
        typed = {f"properties.{k}": dtype for k, dtype in _event_properties(ph).items()}
        meta = meta.assign(**{name: _empty(dtype) for name, dtype in typed.items()})
        flat = sorted(c for c in meta.columns if c.startswith("properties."))
        meta = meta[[c for c in meta.columns if c not in flat] + flat]
    return meta


def _empty(dtype: str) -> pd.Series:
    if dtype.startswith("datetime64"):
        return pd.Series([], dtype=pd.DatetimeTZDtype("ns", "UTC"))
    return pd.Series([], dtype=dtype)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# A property's dtype in the partitions, from its PostHog property_type: fixed by the definition,
# never by the rows a partition happens to hold (Numeric is Float64 even where all are whole).
_PROPERTY_DTYPES = {
    "Numeric": "Float64",
    "Boolean": "boolean",
    "DateTime": "datetime64[ns, UTC]",
}


def _event_properties(ph: PostHog) -> dict[str, str]:
    """Every event property PostHog defines for the project -> its partitions' dtype (none
    when the key may not read the definitions)."""
    from posthog_pandas.exceptions import PostHogError

    try:
        definitions = ph.property_definitions(type="event", progress=False)
    except PostHogError:
        return {}
    if "name" not in definitions.columns:
        return {}
    kinds = definitions.get("property_type", pd.Series([None] * len(definitions)))
    return {
        str(name): _PROPERTY_DTYPES.get(str(kind), "string")
        for name, kind in zip(definitions["name"], kinds, strict=True)
        if isinstance(name, str)
    }


def _window_values(window: tuple[datetime, datetime]) -> dict[str, Any]:
    from posthog_pandas._dates import hogql_literal

    return {"after": hogql_literal(window[0]), "before": hogql_literal(window[1])}


def _driver_connection() -> PostHog:
    import posthog_pandas as php

    return php.connect()
