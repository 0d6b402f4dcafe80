"""The connector: `connect()` and the `PostHog` object, the user's API over composed parts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Self, Unpack

import pandas as pd
import requests

from posthog_pandas import _config, _credentials, _session
from posthog_pandas._core import Connection
from posthog_pandas._credentials import Credentials, Prompter
from posthog_pandas._dates import DateLike
from posthog_pandas._display import connection_html, connection_summary
from posthog_pandas._fetcher import CacheStats, CacheTTL
from posthog_pandas._frame_cache import FrameCache
from posthog_pandas._http import RequestStats
from posthog_pandas._registry import resource_named
from posthog_pandas.analytics.runner import InsightOptions, Insights
from posthog_pandas.cache import CacheStore, default_cache_dir
from posthog_pandas.events import Events
from posthog_pandas.exceptions import ConfigurationError, CredentialsError
from posthog_pandas.export import Exporter, ExportSummary
from posthog_pandas.frames import FrameOptions
from posthog_pandas.query import QueryRunner
from posthog_pandas.resources import (
    CallOptions,
    ListOptions,
    Lists,
    check_options,
    suggest_resource,
)


def connect(
    api_key: str | None = None,
    *,
    host: str | None = None,
    project_id: int | str | None = None,
    key_in: str = "header",
    username: str | None = None,
    password: str | None = None,
    session: requests.Session | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    cache_ttl: CacheTTL | None = None,
    offline: bool = False,
    progress: bool | None = None,
    timeout: float | tuple[float, float] | None = None,
    retry: _config.RetrySettings | None = None,
    pacing: _config.PacingSettings | None = None,
    max_concurrent_queries: int | None = None,
    verify: bool | str = True,
    compression: str = "auto",
    legacy: bool | None = None,
    dotenv: bool | str | Path = True,
    prompt: bool | Prompter = True,
    login: bool = True,
) -> PostHog:
    """Connect to PostHog and return the connector that the accessors hang off.

    The personal API key is looked up in this order, first found wins: `api_key` (or
    `username`/`password` for old self-hosted instances), the environment
    (POSTHOG_PERSONAL_API_KEY, POSTHOG_HOST, POSTHOG_PROJECT_ID), a `.env` file in the working
    directory or a parent, then a prompt (a widget in notebooks, getpass in terminals).

    Args:
        api_key: a personal API key (phx_...). Project keys (phc_...) are refused: they cannot read.
        host: https://us.posthog.com (default), https://eu.posthog.com, "us", "eu", or your
            self-hosted origin.
        project_id: the project to read; when omitted, your user's current project is used,
            read from /api/users/@me/, which needs the key's user:read scope.
        key_in: "header" (Authorization: Bearer, default) or "body": personal_api_key in the
            JSON body of GET requests. PostHog's query body (QueryRequest) forbids extra
            fields, so query POSTs carry the key in the Authorization header in both modes.
        username: HTTP Basic user, for old self-hosted PostHog only (current PostHog accepts
            personal API keys only); also POSTHOG_USERNAME.
        password: the HTTP Basic password that goes with `username`; also POSTHOG_PASSWORD.
        session: a prepared requests.Session (proxies, test adapters).
        cache: keep responses on disk (default).
        cache_dir: where the cache lives (default: POSTHOG_PANDAS_CACHE_DIR, else the OS user
            cache directory).
        cache_ttl: how long cached answers stay fresh, per kind (`CacheTTL`).
        offline: answer only from the cache; a miss raises CacheError naming what is missing.
        progress: show progress bars (default: on in notebooks and terminals).
        timeout: seconds, or (connect, read).
        retry: retry policy for reads (`RetrySettings`: attempts, backoff, longest wait).
        pacing: request pacing under PostHog's rate limits (`PacingSettings`).
        max_concurrent_queries: HogQL queries this connection runs at once, 1 to 3 (default
            3, PostHog's limit): an events pull or export reads that many time windows at
            once; every query of the connection (`ph.query` too) shares the limit. By
            default a loopback host (a server on this machine, sharing its cores) is read
            one window at a time; through a tunnel to a remote PostHog pass 3.
        verify: TLS verification (default on); a path names a CA bundle (a PostHog whose
            certificate a private CA signed: verify="/path/ca.pem"); False warns.
        compression: "auto" (default: plain bodies from a loopback host, where gzip only costs
            CPU; gzip from any other), "gzip" or "identity" (never compressed).
        legacy: force (True) or forbid (False) the old /api/person/ and /api/user/ API; by
            default it is used with HTTP Basic or when the server lacks /api/users/@me/.
        dotenv: read a .env file (True: the nearest one upward from the working directory; a
            path: that file; False: none). It never overrides the environment.
        prompt: ask for the key when none is found (True: a form in notebooks, getpass in a
            terminal; False: raise CredentialsError instead; or your own prompter, a callable that
            returns the `Credentials`).
        login: False returns the connection without credentials (settings and cache only),
            for a login form to complete with `ph.login(...)`.

    In a notebook with no key anywhere, a login form is shown and the connection is returned
    unconnected: accessors raise CredentialsError pointing at the form until you connect.
    """
    resolved = _credentials.resolve(
        api_key=api_key,
        username=username,
        password=password,
        host=host,
        project_id=project_id,
        key_in=key_in,
        dotenv=dotenv,
        prompt=prompt,
    )
    settings = _config.Settings(
        host=resolved.host,
        project_id=resolved.project_id,
        timeout=_timeout(timeout),
        retry=retry or _config.RetrySettings(),
        pacing=_pacing(pacing, max_concurrent_queries),
        verify=verify,
        compression=_config.check_compression(compression),
    )
    store = _open_store(cache, cache_dir)
    conn = Connection(
        settings=settings,
        store=store,
        session=session,
        cache_ttl=cache_ttl or CacheTTL(),
        offline=offline,
        progress=progress,
        legacy=legacy,
        host_source=resolved.host_source,
    )
    ph = PostHog(conn)
    if not login:
        return ph
    if resolved.credentials is not None:
        return ph.login(credentials=resolved.credentials)
    saved = _session.remembered()  # the login form's "Remember for this session"
    if saved is not None:
        return ph.login(credentials=saved.credentials, host=saved.host, project_id=saved.project_id)
    if _credentials._in_notebook() and prompt:
        from posthog_pandas.widgets import show_login

        show_login(ph)
        return ph
    raise CredentialsError(_credentials.missing_credentials_message(settings.host))


def _pacing(
    pacing: _config.PacingSettings | None, max_concurrent_queries: int | None
) -> _config.PacingSettings:
    chosen = pacing or _config.PacingSettings()
    if max_concurrent_queries is None:
        return chosen
    checked = _config.check_concurrent_queries(max_concurrent_queries)
    return dataclasses.replace(chosen, max_concurrent_queries=checked)


def _timeout(value: float | tuple[float, float] | None) -> tuple[float, float]:
    if value is None:
        return (_config.DEFAULT_CONNECT_TIMEOUT, _config.DEFAULT_READ_TIMEOUT)
    parts = value if isinstance(value, tuple) else (value, value)
    try:
        connect, read = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"timeout={value!r}: give seconds as a number (e.g. 30) or a (connect, read) pair "
            "(e.g. (10, 120))."
        ) from None
    if connect <= 0 or read <= 0:
        raise ConfigurationError(f"timeout={value!r}: seconds must be positive.")
    return (connect, read)


def _open_store(cache: bool, cache_dir: str | Path | None) -> CacheStore | None:
    if not cache:
        return None
    return CacheStore(Path(cache_dir) if cache_dir is not None else default_cache_dir())


class PostHog:
    """A connection to one PostHog project. Create it with `posthog_pandas.connect()`.

    It holds one part per job and hands each the parts it needs: the transport
    (_core.Connection: login, project, GETs and paged lists, the cache under them), the frame
    cache (_frame_cache), the query runner (query), the lists (resources, planned from the
    registry in _registry), the events pipeline (events) and the exporter (export). The
    methods here are the user's API; each passes its arguments to the part that does the work.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._frames = FrameCache(self._conn)
        self._queries = QueryRunner(self._conn)
        self._lists = Lists(self._conn, self._frames)
        self._events = Events(self._conn, self._queries, self._frames, self._lists)
        self._insights = Insights(self._conn, self._queries)
        self._exporter = Exporter(
            self._conn, self._frames, self._lists, self._events, self._queries
        )

    # -- the connection ----------------------------------------------------------------------

    def login(
        self,
        api_key: str | None = None,
        *,
        credentials: Credentials | None = None,
        project_id: int | str | None = None,
        host: str | None = None,
    ) -> Self:
        """Attach credentials (used by connect() and by the notebook login form)."""
        self._conn.login(api_key, credentials=credentials, project_id=project_id, host=host)
        return self

    @property
    def settings(self) -> _config.Settings:
        """Host, project, timeouts, retry and pacing of this connection."""
        return self._conn.settings

    @property
    def project_id(self) -> int:
        """The project read (raises CredentialsError before a login)."""
        return self._conn.project_id

    @property
    def legacy(self) -> bool:
        """True on old self-hosted PostHog (the /api/person/ and /api/user/ API)."""
        return self._conn.legacy

    @property
    def cache(self) -> CacheStore:
        """The on-disk cache: `ph.cache.info()`, `ph.cache.clear(resource=..., older_than=...)`."""
        return self._conn.cache

    @property
    def progress(self) -> bool | None:
        """Progress bars by default (None: on in notebooks and terminals)."""
        return self._conn.progress

    @progress.setter
    def progress(self, value: bool | None) -> None:
        self._conn.progress = value

    @property
    def frame_options(self) -> FrameOptions:
        """The default shape of frames (flattening, depth, dtype backend, dtypes)."""
        return self._conn.frame_options

    @frame_options.setter
    def frame_options(self, value: FrameOptions) -> None:
        self._conn.frame_options = value

    @property
    def request_stats(self) -> RequestStats:
        """Requests sent, retries, waits and bytes received by this connection so far."""
        return self._conn.http.stats

    @property
    def cache_stats(self) -> CacheStats:
        """Answers served from the cache (hits), fetched (misses), written, served stale."""
        return self._conn.fetcher.stats

    def me(self, *, refresh: bool = False) -> dict[str, Any]:
        """The authenticated user (/api/users/@me/, needs the user:read scope), as a dict."""
        return self._conn.me(refresh=refresh)

    def fetch(
        self,
        path: str,
        *,
        cache: bool = True,
        refresh: bool = False,
        progress: bool | None = None,
        **params: Any,
    ) -> pd.DataFrame:
        """All pages of any list endpoint as a DataFrame, e.g. ph.fetch("annotations").

        A bare resource name is taken as relative to the project (/api/projects/<id>/<name>/);
        a path starting with / is used as it is.
        """
        return self._lists.fetch_path(path, params, cache=cache, refresh=refresh, progress=progress)

    # -- HogQL -------------------------------------------------------------------------------

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
        """Run a HogQL query and return every row as a typed DataFrame.

        `values` fills `{name}` placeholders safely (PostHog binds them; nothing is pasted into
        the SQL). Columns are typed from PostHog's ClickHouse types. PostHog returns 100 rows
        for a query without LIMIT and lowers any LIMIT to 50,000 without a word; a page that
        comes back full is continued by keyset when the query ends in
        `ORDER BY <...>, uuid` (or `id`), so `LIMIT 200000` gives up to 200,000 rows; otherwise
        TruncationError explains how to fix the query. A result is never silently cut.

        PostHog answers a query it ran recently from its own cache (`refresh: "blocking"`, its
        default, which posthog-pandas sends by leaving `refresh` out). `refresh=True` skips our
        cache and sends `refresh: "force_blocking"`, so PostHog computes the answer afresh.
        `df.attrs` says what PostHog said: `is_cached` (any page came from PostHog's cache),
        `last_refresh` (when PostHog computed the oldest page: ISO-8601 text in UTC, or None) and
        `cache_key` (PostHog's key of the first page).
        """
        return self._queries.query(
            hogql, values, cache=cache, refresh=refresh, name=name, dtype_backend=dtype_backend
        )

    # -- product analytics -----------------------------------------------------------------

    def trends(
        self,
        events: str | Sequence[str],
        *,
        math: str = "total",
        interval: str = "day",
        after: DateLike | None = None,
        before: DateLike | None = None,
        breakdown: str | None = None,
        **options: Unpack[InsightOptions],
    ) -> pd.DataFrame:
        """PostHog's trends insight (TrendsQuery) as a tidy frame: one row per series,
        breakdown value and interval bucket.

        `events`: an event name or a list (one series each). `math`: "total" counts events,
        "dau" distinct persons in each bucket (per week or month for those intervals).
        `interval`: "day", "week" (weeks start on Sunday, PostHog's default) or "month".
        `after` is the first day included, `before` the first day excluded: whole days of
        the project's time zone, as PostHog counts them. `breakdown`: an event property
        ("$browser"); PostHog keeps its 25 biggest values and sums the rest as "Other".
        Columns: `date` (the bucket's start, a UTC instant), `series` (the event),
        `breakdown_value` (with `breakdown`; missing values are NA), `value` (Int64); every
        bucket appears, 0 where nothing happened. Options: `cache`, `refresh`, `progress`,
        `run_async` (see docs/analytics.md).
        """
        return self._insights.trends(
            events,
            math=math,
            interval=interval,
            after=after,
            before=before,
            breakdown=breakdown,
            options=options,
        )

    def funnel(
        self,
        steps: Sequence[str],
        *,
        window_days: int = 14,
        after: DateLike | None = None,
        before: DateLike | None = None,
        breakdown: str | None = None,
        **options: Unpack[InsightOptions],
    ) -> pd.DataFrame:
        """PostHog's funnel insight (FunnelsQuery, ordered steps) as one row per step.

        A person reaches step k when they did steps 1..k in that order, every step inside
        [after, before) and step k at most `window_days` days after step 1; each person
        counts once per step. `breakdown` splits by an event property's value on the person's
        earliest funnel event that has one (PostHog's first-touch attribution). Columns:
        `step` (1-based), `event`, `breakdown_value` (with `breakdown`), `count` (persons),
        `conversion_rate` (count / step 1's count), `step_conversion_rate` (count / the
        previous step's; 1.0 for step 1).
        """
        return self._insights.funnel(
            steps,
            window_days=window_days,
            after=after,
            before=before,
            breakdown=breakdown,
            options=options,
        )

    def retention(
        self,
        start_event: str,
        return_event: str | None = None,
        *,
        period: str = "day",
        periods: int = 7,
        after: DateLike | None = None,
        retention_type: str = "first_time",
        **options: Unpack[InsightOptions],
    ) -> pd.DataFrame:
        """PostHog's retention insight (RetentionQuery) as one row per cohort and period.

        Cohorts are the `periods` periods ("day" or "week"; weeks start on Sunday) starting
        with the one holding `after`. "first_time": a person belongs to the cohort of their
        first-ever `start_event`; "recurring": to every period in which they did it. Period
        0 is the cohort itself; period i counts the cohort's persons with a `return_event`
        (default: `start_event`) i periods later. Cells past the last cohort period are left
        out. Columns: `cohort` (its start, a UTC instant), `period`, `persons`,
        `cohort_size`, `rate` (persons / cohort_size).
        """
        return self._insights.retention(
            start_event,
            return_event,
            period=period,
            periods=periods,
            after=after,
            retention_type=retention_type,
            options=options,
        )

    def stickiness(
        self,
        events: str | Sequence[str],
        *,
        interval: str = "day",
        after: DateLike | None = None,
        before: DateLike | None = None,
        **options: Unpack[InsightOptions],
    ) -> pd.DataFrame:
        """PostHog's stickiness insight (StickinessQuery): for each series, how many persons
        did the event on exactly 1, 2, ... N of the range's intervals (days, weeks or months,
        PostHog's buckets). Columns: `series`, `intervals`, `persons` (Int64); every count
        from 1 to N appears."""
        return self._insights.stickiness(
            events, interval=interval, after=after, before=before, options=options
        )

    def lifecycle(
        self,
        event: str,
        *,
        interval: str = "day",
        after: DateLike | None = None,
        before: DateLike | None = None,
        **options: Unpack[InsightOptions],
    ) -> pd.DataFrame:
        """PostHog's lifecycle insight (LifecycleQuery): per bucket, the persons doing `event`
        for the first time (`new`: in the bucket of their person's creation), again after
        the previous bucket (`returning`), again after a gap (`resurrecting`), and those
        active in the previous bucket but not this one (`dormant`, a negative count, as
        PostHog reports it). Columns: `date` (bucket start, UTC), `status`, `value`."""
        return self._insights.lifecycle(
            event, interval=interval, after=after, before=before, options=options
        )

    def paths(
        self,
        *,
        event_type: str = "$pageview",
        start_point: str | None = None,
        end_point: str | None = None,
        step_limit: int = 5,
        after: DateLike | None = None,
        before: DateLike | None = None,
        **options: Unpack[InsightOptions],
    ) -> pd.DataFrame:
        """PostHog's paths insight (PathsQuery): the edges of persons' paths through page
        URLs (`event_type="$pageview"`), screens ("$screen") or custom events
        ("custom_event"), at most `step_limit` steps, optionally from `start_point` or to
        `end_point`. PostHog keeps its 50 heaviest edges. Columns: `step` (the source's step
        number), `source`, `target`, `persons` (PostHog's count of paths taking the edge).
        """
        return self._insights.paths(
            event_type=event_type,
            start_point=start_point,
            end_point=end_point,
            step_limit=step_limit,
            after=after,
            before=before,
            options=options,
        )

    # -- people ----------------------------------------------------------------------------

    def persons(
        self,
        *,
        search: str | None = None,
        email: str | None = None,
        distinct_id: str | None = None,
        properties: Sequence[Mapping[str, Any]] | None = None,
        **options: Unpack[ListOptions],
    ) -> pd.DataFrame:
        """All persons, newest first (PostHog's order), one row per person.

        Filters: `search` (email or distinct id), `email`, `distinct_id`, and `properties`
        (PostHog property filters, e.g. [{"key": "plan", "value": "pro"}]).
        Columns: `id` (the person UUID), `distinct_ids`, `name`, `created_at`, `last_seen_at`,
        `is_identified`, then `properties.<key>` for every property; `raw=True` adds the
        fields PostHog repeats or fills with one value (`uuid`, `type`, `matched_recordings`,
        `value_at_data_point`).
        Pages start at 1,000 persons and grow to 5,000 (fewer requests against PostHog's rate
        limit); a grown page PostHog fails to serve is asked for again at 1,000. Persons
        created, deleted or merged during the pull shift PostHog's offset pages: each person
        that exists throughout comes exactly once all the same (see _live).

        `limit=N` (on every list accessor) gives the first N rows and requests no page past
        them: `persons(limit=3)` is one request for three persons.
        """
        filters = {"search": search, "email": email, "distinct_id": distinct_id}
        return self._lists.read("persons", {**filters, "properties": properties, **options})

    def cohort_persons(self, cohort_id: int, **options: Unpack[ListOptions]) -> pd.DataFrame:
        """The persons in one cohort (same columns and paging as `persons()`)."""
        return self._lists.read("cohort_persons", {"cohort_id": cohort_id, **options})

    def groups(
        self, group_type_index: int, *, search: str | None = None, **options: Unpack[ListOptions]
    ) -> pd.DataFrame:
        """Groups of one group type (0-4; see the group types in PostHog's settings)."""
        arguments = {"group_type_index": group_type_index, "search": search}
        return self._lists.read("groups", {**arguments, **options})

    # -- product metadata ---------------------------------------------------------------------

    def cohorts(self, **options: Unpack[ListOptions]) -> pd.DataFrame:
        """All cohorts."""
        return self._lists.read("cohorts", options)

    def feature_flags(
        self,
        *,
        active: bool | None = None,
        search: str | None = None,
        **options: Unpack[ListOptions],
    ) -> pd.DataFrame:
        """All feature flags; `active` keeps only active (True) or inactive (False) flags."""
        return self._lists.read("feature_flags", {"active": active, "search": search, **options})

    def insights(
        self, *, saved: bool | None = None, **options: Unpack[ListOptions]
    ) -> pd.DataFrame:
        """All insights (their definitions; use `insight(id)` for one insight's results)."""
        return self._lists.read("insights", {"saved": saved, **options})

    def dashboards(self, **options: Unpack[ListOptions]) -> pd.DataFrame:
        """All dashboards."""
        return self._lists.read("dashboards", options)

    def annotations(
        self, *, search: str | None = None, **options: Unpack[ListOptions]
    ) -> pd.DataFrame:
        """All annotations."""
        return self._lists.read("annotations", {"search": search, **options})

    def actions(self, **options: Unpack[ListOptions]) -> pd.DataFrame:
        """All actions."""
        return self._lists.read("actions", options)

    def event_definitions(
        self, *, search: str | None = None, **options: Unpack[ListOptions]
    ) -> pd.DataFrame:
        """Every event name PostHog has seen, with volumes and dates."""
        return self._lists.read("event_definitions", {"search": search, **options})

    def property_definitions(
        self,
        *,
        type: str = "event",
        group_type_index: int | None = None,
        search: str | None = None,
        **options: Unpack[ListOptions],
    ) -> pd.DataFrame:
        """Property definitions of one kind: type="event" (default), "person", "session" or
        "group"; groups need `group_type_index` (0-4), PostHog lists one group type at a time."""
        arguments = {"type": type, "group_type_index": group_type_index, "search": search}
        return self._lists.read("property_definitions", {**arguments, **options})

    def experiments(self, **options: Unpack[ListOptions]) -> pd.DataFrame:
        """All experiments."""
        return self._lists.read("experiments", options)

    def surveys(self, **options: Unpack[ListOptions]) -> pd.DataFrame:
        """All surveys."""
        return self._lists.read("surveys", options)

    def session_recordings(
        self,
        *,
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
        **options: Unpack[ListOptions],
    ) -> pd.DataFrame:
        """Session recordings (metadata, not the recordings themselves), newest first.

        Recordings whose start is in [date_from, date_to]. Without `date_from`, every
        recording PostHog still keeps: PostHog itself would list only the last 3 days, so
        the range starts RECORDINGS_KEPT_DAYS (5 years, PostHog's longest retention) ago.
        """
        arguments = {"date_from": date_from, "date_to": date_to}
        return self._lists.read("session_recordings", {**arguments, **options})

    def projects(self, **options: Unpack[ListOptions]) -> pd.DataFrame:
        """The projects of your organization that the key can see."""
        return self._lists.read("projects", options)

    def insight(self, insight_id: int | str, **options: Unpack[CallOptions]) -> pd.DataFrame:
        """One insight's result as a tidy table: one row per series and date.

        Columns: `series` (the series label), `breakdown_value`, `date` (UTC), `value`.
        Results that are not time series (funnels, retention) come back one row per item.
        PostHog answers from its own cache while fresh and computes the insight otherwise
        (`refresh=blocking`); `refresh=True` makes it compute now (`force_blocking`).
        A saved trends, funnel or retention insight comes back as the same tidy frame as
        `ph.trends()`, `ph.funnel()` or `ph.retention()` (dates as UTC instants of the
        project's local days).
        """
        return self._lists.insight(insight_id, options, tidy=self._insights.saved)

    def read(self, name: str, **filters: Any) -> pd.DataFrame:
        """Any accessor by name: read("persons", email=...), as read_posthog does."""
        if resource_named(name) is None:
            raise ConfigurationError(suggest_resource(name))
        result: pd.DataFrame = getattr(self, name)(**filters)
        return result

    # -- events ---------------------------------------------------------------------------------

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
        that an interrupted pull resumes from the cached pages. `columns` (a name or a list of
        names) and `where` (a HogQL condition) are evaluated by PostHog, so only what you need
        crosses the network.
        `properties` are PostHog property filters ({"key", "value", "operator", "type"}),
        compared as PostHog compares them (True matches a JSON true, 10 matches 10 and 10.0).
        When PostHog stops a page at its query time limit, the rest of the range is read in
        smaller time windows, still in order and each event once. `limit=n` gives the n oldest
        events: it is the LIMIT of the HogQL, so a small limit is one small query.

        `df.attrs` holds the window read (`after`, `before`: ISO-8601 text in UTC, which
        `pd.Timestamp()` reads; text so that `df.to_parquet()` can keep attrs) and whether it was
        the default one (`default_window`: neither after nor before given); an empty default
        window also warns (EmptyWindowWarning), naming the window.

        `incremental=True` keeps one growing table per set of filters: each call reads again
        from `lookback` (default one day; a timedelta or text like "6h", "2d") before the
        newest event already held, and merges by uuid, so events that reach PostHog late with
        past timestamps are picked up. An event that arrives later than `lookback` after the
        newest event held is not seen (nor are deletions); use `refresh=True` to re-read all.
        """
        check_options(options, "events")
        return self._events.read(
            after=after,
            before=before,
            event=event,
            person_id=person_id,
            distinct_id=distinct_id,
            properties=properties,
            where=where,
            columns=columns,
            limit=limit,
            incremental=incremental,
            lookback=lookback,
            options=options,
        )

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
        flt = self._events.filter(
            after=after,
            before=before,
            event=event,
            where=where,
            columns=columns,
            refresh=options.get("refresh", False),
        )
        yield from self._events.frames(flt, None, options)

    # -- files -------------------------------------------------------------------------------

    def export(
        self,
        resource: str,
        path: str | Path,
        *,
        format: str | None = None,
        partition_by: str | None = None,
        progress: bool | None = None,
        **filters: Any,
    ) -> ExportSummary:
        """Write every row of a resource to CSV, CSV.gz, Parquet or a Parquet dataset.

        `resource` is an accessor name ("events", "persons", "cohorts", ...) and `filters`
        are that accessor's own arguments (events: after, before, event, where, columns,
        properties, ...; cohort_persons: cohort_id; groups: group_type_index), plus the
        frame options (flatten, max_depth, dtypes, cache, refresh). Pages are streamed;
        the full table is never in memory. See posthog_pandas.export for the file rules.
        """
        return self._exporter.export(
            resource,
            path,
            format=format,
            partition_by=partition_by,
            progress=progress,
            filters=filters,
        )

    def export_query(
        self,
        hogql: str,
        path: str | Path,
        *,
        values: Mapping[str, Any] | None = None,
        format: str | None = None,
        partition_by: str | None = None,
        progress: bool | None = None,
    ) -> ExportSummary:
        """Write a HogQL query's result, every page of it, to a file or dataset.

        Results over 50,000 rows need ``ORDER BY <...>, uuid`` (see `ph.query()`), so that
        they are paged by keyset. Columns are typed from PostHog's ClickHouse types.
        """
        return self._exporter.export_query(
            hogql, path, values=values, format=format, partition_by=partition_by, progress=progress
        )

    # -- display -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        lines = [f"  {k}: {v}" for k, v in connection_summary(self._conn).items()]
        return "PostHog(\n" + "\n".join(lines) + "\n)"

    def _repr_html_(self) -> str:
        return connection_html(connection_summary(self._conn))

    def __reduce__(self) -> Any:
        raise TypeError(
            "A PostHog connection cannot be pickled: it holds your key. Pickle the DataFrames "
            "instead, and call posthog_pandas.connect() again where you need it."
        )
