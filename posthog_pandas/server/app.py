"""LocalPostHog: HTTP listeners (main and foreign origin), request log, gzip, fault delivery."""

from __future__ import annotations

import gzip
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from posthog_pandas.server.auth import ApiKey
from posthog_pandas.server.data import Dataset, ProjectStore, ingested_events, new_persons
from posthog_pandas.server.faults import Faults
from posthog_pandas.server.insights.saved import saved_insight_result
from posthog_pandas.server.latency import Latency, latency_named
from posthog_pandas.server.query import DEFAULT_MAX_SCAN_ROWS
from posthog_pandas.server.routes import dispatch
from posthog_pandas.server.state import ServerState, default_key
from posthog_pandas.server.web import ApiError, Request, Response, dumps

__all__ = ["ForeignRequest", "LocalPostHog", "LoggedRequest"]

_GZIP_MIN_BYTES = 200  # Django's GZipMiddleware skips tiny bodies
_HANG_SECONDS = 60.0
_REDACTED = "[redacted]"


@dataclass(frozen=True)
class LoggedRequest:
    """One request the main listener answered; `key_fingerprint` is sha256[:12], never the key."""

    method: str
    path: str
    params: dict[str, str]
    auth: Literal["bearer", "body", "query", "basic"] | None
    key_fingerprint: str | None
    status: int  # 0 when the server hung instead of answering
    project_id: int | None
    hogql: str | None = None  # the HogQL text of /query/ requests
    values: dict[str, Any] | None = None  # and their placeholder values
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # without Authorization


@dataclass(frozen=True)
class ForeignRequest:
    """A request that reached the foreign-origin listener (it should never carry credentials)."""

    method: str
    path: str
    params: dict[str, str]
    had_credentials: bool


def _redacted_params(query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        out.setdefault(k, _REDACTED if k in ("personal_api_key", "token", "api_key") else v)
    return out


def _read_request(handler: BaseHTTPRequestHandler) -> Request:
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length > 0 else b""
    split = urlsplit(handler.path)
    headers = {k.lower(): v for k, v in handler.headers.items()}
    return Request(handler.command, split.path, split.query, headers, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_sockets: set[socket.socket] = set()
        self.handler_threads: set[threading.Thread] = set()
        self.lock = threading.Lock()
        self.owner: LocalPostHog | None = None

    def close_open_sockets(self) -> None:
        with self.lock:
            socks = list(self.open_sockets)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away, or stop() cut the connection: nothing to report
        super().handle_error(request, client_address)

    def wait_for_handlers(self, timeout: float) -> None:
        """Cut every connection until no request handler runs (at most `timeout` seconds).

        Handler threads are daemons; one still inside a DuckDB query when the interpreter
        exits aborts the process (duckdb/duckdb#13904), so `stop()` waits for them.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.close_open_sockets()  # again: a connection accepted just before shutdown()
            me = threading.current_thread()  # stop() from a handler must not wait for itself
            with self.lock:
                running = [t for t in self.handler_threads if t.is_alive() and t is not me]
            if not running or time.monotonic() >= deadline:
                return
            running[0].join(min(0.05, max(0.0, deadline - time.monotonic())))


class _BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_version = "LocalPostHog/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.open_sockets.add(self.connection)
            threads = self.server.handler_threads  # kept until they end: stop() joins them
            threads.difference_update([t for t in threads if not t.is_alive()])
            threads.add(threading.current_thread())

    def finish(self) -> None:
        with self.server.lock:
            self.server.open_sockets.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the request log replaces stderr noise

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        raise NotImplementedError

    def _send(
        self, response: Response, fault: str | None = None, latency: Latency | None = None
    ) -> None:
        body = response.body
        gz = (
            "gzip" in self.headers.get("Accept-Encoding", "")
            and len(body) >= _GZIP_MIN_BYTES
            and fault != "malformed"
        )
        if gz:
            body = gzip.compress(body, compresslevel=1)
        declared = len(body)
        if fault == "malformed":
            body = body[: max(1, len(body) // 2)]
            declared = len(body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(declared))
        if gz:
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if fault == "reset":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if latency is None:
            self.wfile.write(body)
        else:
            latency.write(self.wfile.write, body)


class _MainHandler(_BaseHandler):
    def _serve(self) -> None:
        owner = self.server.owner
        assert owner is not None
        request = _read_request(self)
        owner._handle(self, request)


class _ForeignHandler(_BaseHandler):
    def _serve(self) -> None:
        owner = self.server.owner
        assert owner is not None
        request = _read_request(self)
        body = request.json
        had = (
            "authorization" in request.headers
            or (isinstance(body, dict) and "personal_api_key" in body)
            or "personal_api_key" in request.params
        )
        owner._log_foreign(
            ForeignRequest(request.method, request.path, _redacted_params(request.query), had)
        )
        page: dict[str, Any] = {"count": 0, "next": None, "previous": None, "results": []}
        self._send(Response(200, dumps(page)))


def _parse_start(start: str | datetime) -> datetime:
    value = start if isinstance(start, datetime) else datetime.fromisoformat(start)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check_timezone(name: str) -> str:
    """An IANA zone name, as PostHog's Team.timezone holds (e.g. "America/Los_Angeles")."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone={name!r} is not an IANA time zone; use a name like 'UTC', "
            "'America/Los_Angeles' or 'Asia/Kolkata'."
        ) from None
    return name


class LocalPostHog:
    """An embedded PostHog-compatible HTTP server with deterministic demo data.

    >>> with LocalPostHog(persons=500, events=5000) as srv:  # doctest: +SKIP
    ...     requests.get(f"{srv.url}/api/projects/1/persons/",
    ...                  headers={"Authorization": f"Bearer {srv.api_key}"})

    `timezone` is every project's Team.timezone (default `default_timezone`, "UTC"): as in
    PostHog, HogQL reads DateTime columns in that zone (day functions group by local day,
    results carry its offset), while REST lists keep UTC timestamps.

    `max_scan_rows` models PostHog's query time limit: a HogQL query whose ORDER BY must sort
    more rows than this (those its WHERE keeps) is answered with PostHog's 504 timeout, as a
    personal-key query over too wide a range is. The default (5,000,000) is above any demo or
    test data set; tests lower it (also at run time: `srv.max_scan_rows = 2000`).

    `persons_throttle` keeps PostHog's per-user break-glass throttles on the persons
    endpoints (180 requests a minute, 1,200 an hour, posthog/api/person.py): past them a
    persons request gets PostHog's 429 with `Retry-After`. Only the benchmarks turn it off,
    so that third-party clients' 100-row pages are timed, not throttled.

    `latency` ("cloud", "none" or a `Latency`) makes the server answer as a remote PostHog
    would: each computed query holds its slot for a fixed delay plus a delay per row, every
    other API request waits a round trip, and bodies are sent no faster than a bandwidth cap
    (server/latency.py). Off by default, so tests and the demo keep loopback speed.
    """

    default_timezone: ClassVar[str] = "UTC"  # the test suite may switch it (tests/conftest.py)

    def __init__(
        self,
        persons: int = 2000,
        events: int = 20000,
        seed: int = 42,
        keys: list[ApiKey] | None = None,
        faults: Faults | None = None,
        legacy: bool = False,
        users: dict[str, str] | None = None,
        start: str | datetime = "2024-01-01",
        days: int = 30,
        *,
        port: int = 0,
        timezone: str | None = None,
        max_scan_rows: int | None = DEFAULT_MAX_SCAN_ROWS,
        persons_throttle: bool = True,
        latency: Latency | str | None = None,
    ) -> None:
        self.api_key = default_key(seed)
        self.project_id = 1
        self.timezone = _check_timezone(timezone or self.default_timezone)
        self._port = port
        all_keys = [ApiKey(self.api_key), *(keys or [])]
        self._state = ServerState(
            seed=seed,
            persons=persons,
            events=events,
            start=_parse_start(start),
            days=days,
            keys=all_keys,
            users=users or {},
            legacy=legacy,
            faults=faults,
            timezone=self.timezone,
        )
        self._state.max_scan_rows = max_scan_rows
        self._state.persons_throttle = persons_throttle
        self._state.latency = latency_named(latency)
        self._log: list[LoggedRequest] = []
        self._foreign_log: list[ForeignRequest] = []
        self._log_lock = threading.Lock()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.url = ""
        self.foreign_url = ""
        self.server_errors: list[str] = []  # tracebacks of unexpected handler exceptions
        self._on_served: Callable[[LoggedRequest], None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalPostHog:
        """Generate project 1's data, bind 127.0.0.1 (main + foreign ports) and serve."""
        if self._servers:
            return self
        self._state.stopping.clear()
        _ = self._state.projects[1].dataset  # build before the first request, not during it
        main = _Server(("127.0.0.1", self._port), _MainHandler)
        foreign = _Server(("127.0.0.1", 0), _ForeignHandler)
        for server in (main, foreign):
            server.owner = self
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        self.url = f"http://127.0.0.1:{main.server_address[1]}"
        self.foreign_url = f"http://127.0.0.1:{foreign.server_address[1]}"
        self._state.foreign_url = self.foreign_url
        return self

    def stop(self) -> None:
        """Stop both listeners, cut open keep-alive connections, release hung requests and wait
        (up to 5 s) until no request is being handled."""
        self._state.stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for server in self._servers:
            server.wait_for_handlers(timeout=5)  # cuts the open connections first
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def close(self) -> None:
        """Stop and release the DuckDB connections (``start()`` reopens them on demand)."""
        self.stop()
        for store in self._state.projects.values():
            store.close()

    def __enter__(self) -> LocalPostHog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- inspection -------------------------------------------------------------------------

    def _project(self, project_id: int) -> ProjectStore:
        """A project's store, or KeyError naming the projects there are."""
        store = self._state.projects.get(project_id)
        if store is None:
            raise KeyError(f"no project {project_id}; projects: {sorted(self._state.projects)}")
        return store

    def dataset(self, project_id: int = 1) -> Dataset:
        """The generated data of a project (pandas frames + record lists) for exact-row tests."""
        store = self._project(project_id)
        return store.dataset

    def insight_result(self, insight_id: int, project_id: int = 1) -> Any:
        """What computing a saved insight gives now (its `result`), for exact-row tests."""
        store = self._state.projects[project_id]
        row = next(r for r in store.dataset.insights if int(r["id"]) == insight_id)
        return saved_insight_result(store, row)

    def time_range(self, project_id: int = 1) -> tuple[datetime, datetime]:
        """[start, end) of the generated events (UTC), i.e. `start` and `start + days`."""
        ds = self.dataset(project_id)
        return ds.start, ds.start + timedelta(days=ds.days)

    @property
    def project_ids(self) -> list[int]:
        return sorted(self._state.projects)

    def project_token(self, project_id: int = 1) -> str:
        """The project's public `phc_` token (what /api/users/@me/ shows as `api_token`)."""
        return self._state.project_token(project_id)

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._log_lock:
            return list(self._log)

    @property
    def foreign_requests(self) -> list[ForeignRequest]:
        with self._log_lock:
            return list(self._foreign_log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()
            self._foreign_log.clear()

    @property
    def latency(self) -> Latency:
        """The delays this server adds (see server/latency.py); Latency() is loopback speed."""
        return self._state.latency

    @latency.setter
    def latency(self, value: Latency | str | None) -> None:
        self._state.latency = latency_named(value)

    @property
    def query_peak(self) -> int:
        """The most queries this server has computed at once since start (or reset)."""
        return self._state.queries.peak

    def reset_query_peak(self) -> None:
        """Start counting `query_peak` again from the queries in flight now."""
        self._state.queries.reset_peak()

    def set_faults(self, faults: Faults | None) -> None:
        """Switch failure modes at run time (resets the fault RNG and the hang counter)."""
        self._state.set_faults(faults)

    @property
    def max_scan_rows(self) -> int | None:
        """Rows a query may sort before it gets PostHog's timeout (None: no limit)."""
        return self._state.max_scan_rows

    @max_scan_rows.setter
    def max_scan_rows(self, rows: int | None) -> None:
        self._state.max_scan_rows = rows

    def reset_rate_limits(self) -> None:
        self._state.limiter.reset()

    # --- live data --------------------------------------------------------------------------

    def create_persons(
        self,
        count: int = 1,
        *,
        created_at: datetime | None = None,
        properties: Mapping[str, Any] | None = None,
        project_id: int = 1,
    ) -> list[str]:
        """Add `count` persons while the server runs, as ingestion does; returns their ids.

        They are in every list and query at once. Persons lists are offsets over created_at
        DESC, so a person created now (the default) shifts every later page by one.
        """
        store = self._state.projects[project_id]
        ds = store.dataset
        first = int(ds.persons["numeric_id"].max()) + 1 if len(ds.persons) else 1
        persons, distinct_ids = new_persons(
            first,
            count,
            created_at=created_at or datetime.now(UTC),
            properties=dict(properties or {}),
            seed=self._state.seed,
            project_id=project_id,
        )
        store.add_persons(persons, distinct_ids)
        return persons["id"].astype(str).tolist()

    def delete_persons(self, ids: Iterable[str], *, project_id: int = 1) -> None:
        """Remove persons while the server runs (a deletion, or the person a merge removes):
        every later offset page of the persons lists shifts back."""
        self._state.projects[project_id].delete_persons([str(i) for i in ids])

    def on_served(self, hook: Callable[[LoggedRequest], None] | None) -> None:
        """Call `hook(request)` after each request is answered and logged, before the answer
        is sent (so the client sees nothing until it returns); None removes it. Tests use it
        to change the data between two page requests."""
        self._on_served = hook

    def ingest_events(self, events: Sequence[Mapping[str, Any]], project_id: int = 1) -> list[str]:
        """Add events while the server runs, as PostHog's ingestion does; returns their uuids.

        Each event is {"event", "distinct_id", "timestamp" (datetime or ISO text), and
        optionally "properties" (dict) and "uuid"}. PostHog accepts timestamps in the past, so
        this is how tests make a late event. `person_id` is the distinct id's person (a new
        id when unknown); `created_at` is now.
        """
        store = self._project(project_id)
        frame = ingested_events(events, store.dataset)
        store.add_events(frame)
        return [str(uuid) for uuid in frame["uuid"]]

    def replace_events(self, events: Sequence[Mapping[str, Any]], project_id: int = 1) -> list[str]:
        """Drop every event of the project and ingest these instead (as `ingest_events`): one
        running server serves many event sets, as the twins' agreement tests need. PostHog's
        query cache is not told (as in PostHog), so ask again with `refresh=True`."""
        store = self._project(project_id)
        frame = ingested_events(events, store.dataset)
        store.replace_events(frame)
        return [str(uuid) for uuid in frame["uuid"]]

    # --- request handling -------------------------------------------------------------------

    def _log_foreign(self, entry: ForeignRequest) -> None:
        with self._log_lock:
            self._foreign_log.append(entry)

    def _record(self, request: Request, outcome_status: int, **fields: Any) -> LoggedRequest:
        body = request.json
        hogql, values = None, None
        if isinstance(body, dict) and isinstance(body.get("query"), dict):
            text = body["query"].get("query")
            hogql = text if isinstance(text, str) else None
            given = body["query"].get("values")
            values = given if isinstance(given, dict) else None
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        entry = LoggedRequest(
            method=request.method,
            path=request.path,
            params=_redacted_params(request.query),
            status=outcome_status,
            hogql=hogql,
            values=values,
            headers=headers,
            **fields,
        )
        with self._log_lock:
            self._log.append(entry)
        return entry

    def _handle(self, handler: _BaseHandler, request: Request) -> None:
        state = self._state
        injector = state.injector  # one snapshot per request, even if faults switch meanwhile
        from posthog_pandas.server.auth import find_credentials

        if injector.should_hang(request.path, request.params, request.json):
            creds = find_credentials(request)
            self._record(
                request, 0, auth=creds.source, key_fingerprint=creds.fingerprint, project_id=None
            )
            state.stopping.wait(_HANG_SECONDS)
            handler.close_connection = True
            return
        latency = state.latency
        if latency.per_list and request.path.startswith("/api/") and "/query" not in request.path:
            state.stopping.wait(latency.per_list)  # a remote list request's round trip
        faults_on = injector.applies(request.path)
        if faults_on and injector.faults.slow > 0:
            state.stopping.wait(injector.faults.slow)
        early = injector.early_response(request.path)
        if early is not None:
            creds = find_credentials(request)
            self._record(
                request,
                early.status,
                auth=creds.source,
                key_fingerprint=creds.fingerprint,
                project_id=None,
            )
            handler._send(early)
            return
        try:
            outcome = dispatch(state, request, faults_on)
            response = outcome.response
        except Exception:  # a bug in a handler must still produce PostHog's 500 JSON
            with self._log_lock:
                self.server_errors.append(traceback.format_exc())
            response = ApiError(500, "server_error", "error", "A server error occurred.").response()
            outcome = None
        creds = outcome.credentials if outcome else find_credentials(request)
        entry = self._record(
            request,
            response.status,
            auth=creds.source,
            key_fingerprint=creds.fingerprint,
            project_id=outcome.project_id if outcome else None,
        )
        self._run_hook(entry)
        fault = injector.body_fault(request.path) if response.status == 200 else None
        handler._send(response, fault, latency if latency.bandwidth else None)

    def _run_hook(self, entry: LoggedRequest) -> None:
        hook = self._on_served
        if hook is None:
            return
        try:
            hook(entry)
        except Exception:  # a broken test hook is reported, the answer still goes out
            with self._log_lock:
                self.server_errors.append(traceback.format_exc())
