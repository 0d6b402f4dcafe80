"""The `/query/` endpoint: HogQLQuery requests, 3 concurrent queries per project, PostHog's JSON."""

from __future__ import annotations

from typing import Any, Protocol

import duckdb

from posthog_pandas.server.state import Context
from posthog_pandas.server.web import ApiError, Response, json_response

__all__ = ["create_engine", "query_endpoint"]

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


class _Result(Protocol):
    columns: list[str]
    types: list[str]
    results: list[list[Any]]
    has_more: bool
    limit: int
    hogql: str
    clickhouse: str


class _Engine(Protocol):
    def run(self, query: str, values: dict[str, Any] | None = None) -> _Result: ...


def create_engine(conn: duckdb.DuckDBPyConnection, timezone: str = "UTC") -> _Engine:
    """The HogQL engine over one DuckDB cursor, reading DateTimes in the project's timezone
    (tests may monkeypatch this factory)."""
    from posthog_pandas.server.hogql import HogQLEngine

    engine: _Engine = HogQLEngine(conn, timezone=timezone)
    return engine


def _validate(body: Any) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "parse_error", "JSON parse error.")
    node = body.get("query")
    if not isinstance(node, dict):
        raise ApiError.validation("This field is required.", attr="query", code="required")
    kind = node.get("kind")
    if kind != "HogQLQuery":
        raise ApiError.validation(
            f"Unsupported query kind: {kind!r}. This local server answers HogQLQuery only.",
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


def query_endpoint(ctx: Context) -> Response:
    """POST /api/projects/{id}/query/ with {"query": {"kind": "HogQLQuery", ...}}."""
    node, text, values = _validate(ctx.request.json)
    pid = ctx.store.project_id
    slot = ctx.state.query_slots[pid]
    if not slot.acquire(timeout=SLOT_WAIT_SECONDS):
        detail = f"Exceeded maximum concurrency limit: 3 for key: api-query-per-team:{pid}"
        raise ApiError(429, "throttled_error", "throttled", detail)
    from posthog_pandas.server.hogql import HogQLError  # lazy: sqlglot is slow to import

    try:
        cur = ctx.store.cursor()
        try:
            result = create_engine(cur, ctx.store.timezone).run(text, values)
            _enforce_scan_budget(cur, result.clickhouse, ctx)
        except HogQLError as exc:
            raise ApiError(400, "validation_error", exc.code, exc.detail) from None
        finally:
            cur.close()
    finally:
        slot.release()
    return json_response(
        {
            "results": result.results,
            "columns": result.columns,
            "types": result.types,
            "hasMore": result.has_more,
            "limit": result.limit,
            "offset": 0,
            "hogql": result.hogql,
            "clickhouse": result.clickhouse,
            "timings": [],
            "modifiers": {},
            "query": node,
            "error": None,
            "is_cached": False,
            "query_status": None,
        }
    )
