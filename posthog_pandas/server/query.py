"""The `/query/` endpoint: HogQLQuery requests and the insight kinds (server/insights),
PostHog's refresh modes over its result cache, asynchronous queries and their status, 3
concurrent queries per project, PostHog's JSON."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import duckdb
import orjson

from posthog_pandas.server.insights import INSIGHT_KINDS, InsightError, compute_insight
from posthog_pandas.server.query_cache import CachedAnswer, ResultCache
from posthog_pandas.server.state import Context
from posthog_pandas.server.web import ApiError, Response, json_response

__all__ = ["create_engine", "query_endpoint", "query_status_endpoint"]

SLOT_WAIT_SECONDS = 0.5  # PostHog queues for up to 30 s; a local test server should fail fast
# PostHog's answer when ClickHouse stops a query at max_execution_time (TIMEOUT_EXCEEDED, 159):
# posthog/errors.py wraps it as ClickHouseQueryTimeOut (posthog/exceptions.py), an APIException
# with status 504 and no code of its own, which drf-exceptions-hog renders as below.
QUERY_TIMEOUT_DETAIL = (
    "Query has hit the max execution time before completing. See our docs for how to improve "
    "your query performance. You may need to materialize."
)
# Rows an ORDER BY may sort before the local model of that time limit stops the query.
DEFAULT_MAX_SCAN_ROWS = 5_000_000
# posthog/schema.py QueryRequest has extra="forbid": any other top-level field is a parse_error.
QUERY_REQUEST_FIELDS = (
    "async",
    "client_query_id",
    "filters_override",
    "limit_context",
    "name",
    "query",
    "refresh",
    "variables_override",
)
REFRESH_MODES = (  # posthog/schema.py RefreshType
    "async",
    "async_except_on_cache_miss",
    "blocking",
    "force_async",
    "force_blocking",
    "force_cache",
    "lazy_async",
)
PYDANTIC_ERRORS = "https://errors.pydantic.dev/2.12/v/"  # PostHog pins pydantic~=2.12
NEXT_REFRESH_AFTER = timedelta(minutes=1)  # QueryRunner._refresh_frequency
CACHE_TARGET_AGE = timedelta(hours=6)  # HogQLQueryRunner.cache_target_age: like a "day" insight


class _Result(Protocol):
    columns: list[str]
    types: list[str]
    results: list[list[Any]]
    has_more: bool
    limit: int
    hogql: str
    clickhouse: str
    paginated: bool


class _Engine(Protocol):
    def run(self, query: str, values: dict[str, Any] | None = None) -> _Result: ...


def create_engine(conn: duckdb.DuckDBPyConnection, timezone: str = "UTC") -> _Engine:
    """The HogQL engine over one DuckDB cursor, reading DateTimes in the project's timezone
    (tests may monkeypatch this factory)."""
    from posthog_pandas.server.hogql import HogQLEngine

    engine: _Engine = HogQLEngine(conn, timezone=timezone)
    return engine


# ---- the request ---------------------------------------------------------------------------


def _pydantic_repr(value: Any) -> str:
    """pydantic's `input_value`: the Python repr, cut to 25 + 24 characters past 50."""
    text = repr(value)
    return text if len(text) <= 50 else f"{text[:25]}...{text[-24:]}"


def _pydantic_line(field: str, message: str, kind: str, value: Any) -> str:
    return (
        f"{field}\n  {message} [type={kind}, input_value={_pydantic_repr(value)}, "
        f"input_type={type(value).__name__}]\n    For further information visit "
        f"{PYDANTIC_ERRORS}{kind}"
    )


def _request_problems(body: dict[str, Any]) -> list[str]:
    """pydantic's complaints about a QueryRequest, in its order: the fields, then extras."""
    problems = []
    refresh = body.get("refresh")
    if refresh is not None and (not isinstance(refresh, str) or refresh not in REFRESH_MODES):
        allowed = ", ".join(map(repr, REFRESH_MODES[:-1])) + f" or {REFRESH_MODES[-1]!r}"
        problems.append(_pydantic_line("refresh", f"Input should be {allowed}", "enum", refresh))
    for name, value in body.items():
        if name not in QUERY_REQUEST_FIELDS:
            problems.append(
                _pydantic_line(name, "Extra inputs are not permitted", "extra_forbidden", value)
            )
    return problems


def _parse_request(body: Any) -> None:
    """PostHog's `get_model(request.data, QueryRequest)`: a pydantic error is a ParseError, which
    drf-exceptions-hog answers as 400 invalid_request / parse_error. It echoes the values."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "parse_error", "JSON parse error.")
    problems = _request_problems(body)
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''}"
        detail = f"JSON parse error - {count} for QueryRequest\n" + "\n".join(problems)
        raise ApiError(400, "invalid_request", "parse_error", detail)


def _validate(body: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    node = body.get("query")
    if not isinstance(node, dict):
        raise ApiError.validation("This field is required.", attr="query", code="required")
    kind = node.get("kind")
    if kind in INSIGHT_KINDS:
        return node, "", None
    if kind != "HogQLQuery":
        answered = ", ".join(("HogQLQuery", *INSIGHT_KINDS))
        raise ApiError.validation(
            f"Unsupported query kind: {kind!r}. This local server answers {answered} only.",
            attr="query",
        )
    text = node.get("query")
    if not isinstance(text, str) or not text.strip():
        raise ApiError.validation("Field required: query.query", attr="query")
    values = node.get("values")
    if values is not None and not isinstance(values, dict):
        raise ApiError.validation("`values` must be an object.", attr="query")
    return node, text, values


def _enforce_scan_budget(cur: duckdb.DuckDBPyConnection, sql: str, ctx: Context) -> None:
    """The local model of PostHog's short max_execution_time for personal-key queries
    (hogql_query_runner.py: 10 s for some teams): a query that must sort more than
    `max_scan_rows` rows (those its WHERE keeps, before its ORDER BY ... LIMIT) takes too long
    and is answered with PostHog's timeout. ClickHouse sorts the events table by date and
    event, not by timestamp, so an `ORDER BY timestamp` page reads and sorts its whole range.
    Skipped while the events table is no larger than the budget (the default is 5 million)."""
    budget = ctx.state.max_scan_rows
    if budget is None or len(ctx.dataset.events) <= budget:
        return
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    if not isinstance(tree, exp.Select) or tree.args.get("order") is None:
        return
    inner = tree.copy()
    inner.set("order", None)
    inner.set("limit", None)
    row = cur.execute(f"SELECT count(*) FROM ({inner.sql(dialect='duckdb')})").fetchone()
    if row is not None and row[0] > budget:
        raise ApiError(504, "server_error", "error", QUERY_TIMEOUT_DETAIL)


def _execution_mode(body: dict[str, Any]) -> str:
    """`_process_query_request` in posthog/api/query.py: legacy `async: true` is `async`, and the
    query endpoint computes where `force_cache` (or no refresh) would never calculate."""
    if body.get("async"):
        return "async"
    mode = body.get("refresh", "blocking")
    return "blocking" if mode in (None, "force_cache") else str(mode)


def cache_key(project_id: int, node: dict[str, Any]) -> str:
    """The cache key of a query node in one project (PostHog hashes the node, the team, ...)."""
    digest = hashlib.sha256(orjson.dumps(node, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"cache_{project_id}_{digest[:32]}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- answering -----------------------------------------------------------------------------


class _Query:
    """One POST /query/: the node, its cache and how PostHog may answer it."""

    def __init__(self, ctx: Context, body: dict[str, Any]) -> None:
        self.ctx = ctx
        self.node, self.text, self.values = _validate(body)
        self.project_id = ctx.store.project_id
        self.cache: ResultCache = ctx.state.query_cache[self.project_id]
        self.key = cache_key(self.project_id, self.node)
        self.query_id = str(body.get("client_query_id") or uuid.uuid4().hex)

    def compute(self) -> dict[str, Any]:
        """Run the query now, and keep the answer in the cache."""
        fields = self._insight() if self.node.get("kind") in INSIGHT_KINDS else self._hogql()
        now = self.cache.clock()
        answer = {
            **fields,
            "timings": [],
            "modifiers": {},
            "query": self.node,
            "error": None,
            "is_cached": False,
            "last_refresh": _iso(now),
            "next_allowed_client_refresh": _iso(now + NEXT_REFRESH_AFTER),
            "cache_key": self.key,
            "timezone": self.ctx.state.team(self.project_id)["timezone"],
            "cache_target_age": _iso(now + CACHE_TARGET_AGE),
            "query_status": None,
        }
        self.cache.put(self.key, CachedAnswer(answer, now))
        return answer

    def _hogql(self) -> dict[str, Any]:
        result = self._run()
        paged = result.paginated  # only PostHog's paginator (no LIMIT) says hasMore and limit
        return {
            "results": result.results,
            "columns": result.columns,
            "types": result.types,
            "hasMore": result.has_more if paged else None,
            "limit": result.limit if paged else None,
            "offset": 0 if paged else None,
            "hogql": result.hogql,
            "clickhouse": result.clickhouse,
        }

    def _insight(self) -> dict[str, Any]:
        """An insight kind (TrendsQuery, ...), computed by server/insights in a query slot."""
        with self._slot():
            cur = self.ctx.store.cursor()
            try:
                return compute_insight(cur, self.node, self.ctx.store.timezone)
            except InsightError as exc:
                raise ApiError.validation(exc.detail, attr=exc.attr) from None
            finally:
                cur.close()

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of the project's 3 query slots, or PostHog's 429 when none frees up in time.
        The gauge counts a query from its arrival, so a 4th sent at once shows in the peak."""
        slot = self.ctx.state.query_slots[self.project_id]
        with self.ctx.state.queries:
            if not slot.acquire(timeout=SLOT_WAIT_SECONDS):
                detail = (
                    "Exceeded maximum concurrency limit: 3 for key: "
                    f"api-query-per-team:{self.project_id}"
                )
                raise ApiError(429, "throttled_error", "throttled", detail)
            try:
                yield
            finally:
                slot.release()

    def _run(self) -> _Result:
        from posthog_pandas.server.hogql import HogQLError  # lazy: sqlglot is slow to import

        state = self.ctx.state
        with self._slot():
            cur = self.ctx.store.cursor()
            try:
                result = create_engine(cur, self.ctx.store.timezone).run(self.text, self.values)
                _enforce_scan_budget(cur, result.clickhouse, self.ctx)
                # A remote PostHog's ClickHouse time, spent holding the slot (see latency.py).
                state.stopping.wait(state.latency.query_delay(len(result.results)))
                return result
            except HogQLError as exc:
                raise ApiError(400, "validation_error", exc.code, exc.detail) from None
            finally:
                cur.close()

    def enqueue(self) -> dict[str, Any]:
        """Start an asynchronous calculation: the status PostHog answers at once (incomplete).
        The local server finishes it before answering, so the first poll finds it done."""
        start = _iso(self.cache.clock())
        status: dict[str, Any] = {
            "id": self.query_id,
            "team_id": self.project_id,
            "query_async": True,
            "complete": False,
            "error": False,
            "error_message": None,
            "results": None,
            "start_time": start,
            "pickup_time": None,
            "end_time": None,
            "expiration_time": None,
            "task_id": None,
            "query_progress": None,
            "insight_id": None,
            "dashboard_id": None,
        }
        try:
            done = {**status, "complete": True, "results": self.compute(), "pickup_time": start}
        except ApiError as exc:
            if exc.status != 400:
                raise
            done = {**status, "complete": True, "error": True, "error_message": exc.detail}
        self.cache.set_status(self.query_id, {**done, "end_time": _iso(self.cache.clock())})
        return status

    def from_cache(self, mode: str) -> Response | None:
        """`handle_cache_and_async_logic`: a cached answer, or an async start; None to compute."""
        hit = self.cache.get(self.key)
        if hit is None:
            if mode in ("async", "lazy_async"):
                return _accepted({"cache_key": self.key, "query_status": self.enqueue()})
            return None  # blocking, async_except_on_cache_miss: compute now
        cached = {**hit.response, "is_cached": True}
        if not self.cache.is_stale(hit):
            return json_response(cached)
        if mode in ("async", "async_except_on_cache_miss"):
            return _accepted({**cached, "query_status": self.enqueue()})
        if mode == "lazy_async":
            if self.cache.is_stale(hit, lazy=True):
                return _accepted({**cached, "query_status": self.enqueue()})
            return json_response(cached)
        return None  # blocking: a stale answer is computed again


def _accepted(body: dict[str, Any]) -> Response:
    return json_response(body, 202)  # PostHog: 202 while query_status.complete is false


def query_endpoint(ctx: Context) -> Response:
    """POST /api/projects/{id}/query/ with {"query": {"kind": "HogQLQuery", ...}}.

    `refresh` (PostHog's execution modes): `blocking` (the default; `force_cache` too, here)
    answers from the cache while the answer is fresh, `force_blocking` always computes, `async`
    and its kin answer a query_status to poll at GET query/{id}/."""
    body = ctx.request.json
    _parse_request(body)
    query = _Query(ctx, body)
    mode = _execution_mode(body)
    if mode == "force_async":
        return _accepted({"query_status": query.enqueue()})
    if mode != "force_blocking":
        answered = query.from_cache(mode)
        if answered is not None:
            return answered
    return json_response(query.compute())


def query_status_endpoint(ctx: Context, query_id: str) -> Response:
    """GET /api/projects/{id}/query/{query_id}/: 200 when complete, 202 while running, 400 with
    the error message (posthog/api/query.py `retrieve`)."""
    status = ctx.state.query_cache[ctx.store.project_id].status(query_id)
    if status is None:
        raise ApiError.not_found(f"Query {query_id} not found for team {ctx.store.project_id}")
    code = 400 if status["error"] else 200 if status["complete"] else 202
    return json_response({"query_status": status}, code)


def query_id_endpoint(ctx: Context, query_id: str) -> Response:
    """GET (the status, above) or DELETE (cancel) /api/projects/{id}/query/{query_id}/."""
    if ctx.request.method == "DELETE":
        return query_cancel_endpoint(ctx, query_id)
    return query_status_endpoint(ctx, query_id)


def query_cancel_endpoint(ctx: Context, query_id: str) -> Response:
    """DELETE /api/projects/{id}/query/{query_id}/: 200 {"message"} (posthog/api/query.py
    `destroy`; posthog/clickhouse/client/execute_async.py `cancel_query`). A complete query is
    left alone; any other id, known or not, is cancelled and its status forgotten."""
    cache = ctx.state.query_cache[ctx.store.project_id]
    status = cache.status(query_id)
    if status is not None and status["complete"]:
        return json_response({"message": "Query already complete"})
    cache.drop_status(query_id)
    return json_response({"message": "Cancelled query on clickhouse"})
