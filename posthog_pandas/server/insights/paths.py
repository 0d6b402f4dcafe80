"""PathsQuery: the most common transitions between consecutive path items within a person's
sessions, as `PathsQueryRunner` computes them
(posthog/hogql_queries/insights/paths/paths_query_runner.py).

A path item is the page (`$current_url` without its trailing slash) for `$pageview`, the
screen name for `$screen`, else the event name. A person's events, in time order, are split
into sessions where 30 minutes or more pass between two events; within a session a run of the
same item counts once (its last event), and only the first `stepLimit` items are kept. Each
pair of neighbours is an edge `{i}_{item}` -> `{i+1}_{item}`; edges are counted over all
sessions, with the average seconds between the two (reported in milliseconds)."""

from __future__ import annotations

from typing import Any

import duckdb

from posthog_pandas.server.insights import dates
from posthog_pandas.server.insights.errors import InsightError

__all__ = ["paths"]

STEP_LIMIT = 5  # EVENT_IN_SESSION_LIMIT_DEFAULT
EDGE_LIMIT = 50  # EDGE_LIMIT_DEFAULT
SESSION_GAP_SECONDS = 30 * 60  # SESSION_TIME_THRESHOLD_DEFAULT_SECONDS
EVENT_TYPES = {
    "$pageview": "event = '$pageview'",
    "$screen": "event = '$screen'",
    "custom_event": "NOT starts_with(event, '$')",
}
_UNSUPPORTED = (
    "startPoint",
    "endPoint",
    "pathGroupings",
    "pathReplacements",
    "localPathCleaningFilters",
    "minEdgeWeight",
    "maxEdgeWeight",
    "pathsHogQLExpression",
)
# the path item, as construct_event_hogql builds it (replaceRegexpAll(url, '(.)/$', '\\1'))
ITEM = """CASE
    WHEN event = '$pageview' THEN regexp_replace(
        coalesce(json_extract_string(properties, '/$current_url'), ''), '(.)/$', '\\1')
    WHEN event = '$screen' THEN coalesce(json_extract_string(properties, '/$screen_name'), '')
    ELSE event END"""


def paths(cur: duckdb.DuckDBPyConnection, node: dict[str, Any], timezone: str) -> dict[str, Any]:
    pf = node.get("pathsFilter") or {}
    if not isinstance(pf, dict):
        raise InsightError("pathsFilter must be an object.")
    if node.get("funnelPathsFilter"):
        raise InsightError("funnelPathsFilter is not supported by this local server.")
    for key in _UNSUPPORTED:
        if pf.get(key):
            raise InsightError(f"pathsFilter.{key} is not supported by this local server.")
    days = dates.day_range(node, timezone)
    params: dict[str, Any] = {
        "start": days.start_utc(),
        "end": days.end_utc(),
        "steps": _positive(pf, "stepLimit", STEP_LIMIT),
        "edges": _positive(pf, "edgeLimit", EDGE_LIMIT),
        "gap": SESSION_GAP_SECONDS,
        # _get_event_query applies excludeEvents only along with includeEventTypes
        "excluded": [str(e) for e in pf.get("excludeEvents") or []]
        if pf.get("includeEventTypes")
        else [],
    }
    rows = _reachable(cur.execute(_sql(_type_filter(pf)), params).fetchall())
    results = [
        {"source": s, "target": t, "value": int(n), "average_conversion_time": float(ms)}
        for s, t, n, ms in rows
    ]
    return {"results": results}


def _reachable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`validate_results`: only edges reachable from a first step survive the edge limit."""
    edges: dict[str, list[str]] = {}
    for source, target, *_ in rows:
        edges.setdefault(source, []).append(target)
    stack = [source for source, *_ in rows if source.startswith("1_")]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        seen.add(node)
        stack.extend(t for t in edges.get(node, []) if t not in seen)
    return [row for row in rows if row[0] in seen]


def _positive(pf: dict[str, Any], key: str, default: int) -> int:
    value = pf.get(key) or default
    if not isinstance(value, int) or value < 1:
        raise InsightError(f"pathsFilter.{key} must be a positive integer.")
    return value


def _type_filter(pf: dict[str, Any]) -> str:
    """`includeEventTypes` (none: every event), as `_get_event_query`."""
    types = pf.get("includeEventTypes") or []
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        listed = ", ".join(EVENT_TYPES)
        raise InsightError(f"includeEventTypes {unknown} are not supported here; use {listed}.")
    return " OR ".join(EVENT_TYPES[t] for t in types) if types else "TRUE"


def _sql(type_filter: str) -> str:
    return f"""
    WITH ev AS (
        SELECT person_id, timestamp, uuid, {ITEM} AS item FROM events
        WHERE timestamp >= $start AND timestamp < $end AND ({type_filter})
    ), gaps AS (
        SELECT *, epoch(timestamp) - epoch(lag(timestamp) OVER w) AS gap FROM ev
        WHERE item NOT IN (SELECT unnest($excluded::VARCHAR[]))
        WINDOW w AS (PARTITION BY person_id ORDER BY timestamp, uuid)
    ), sessions AS (
        SELECT *, sum(CASE WHEN gap IS NULL OR gap >= $gap THEN 1 ELSE 0 END)
                  OVER (PARTITION BY person_id ORDER BY timestamp, uuid) AS session
        FROM gaps
    ), kept AS (  -- the last event of each run of one item
        SELECT * FROM (
            SELECT *, lead(item) OVER (PARTITION BY person_id, session ORDER BY timestamp, uuid)
                      AS following FROM sessions
        ) WHERE following IS NULL OR following != item
    ), steps AS (
        SELECT *, row_number() OVER w AS step, lag(item) OVER w AS previous,
               epoch(timestamp) - epoch(lag(timestamp) OVER w) AS seconds
        FROM kept WINDOW w AS (PARTITION BY person_id, session ORDER BY timestamp, uuid)
    )
    SELECT (step - 1) || '_' || previous AS source, step || '_' || item AS target,
           count(*) AS value, avg(seconds) * 1000.0 AS ms
    FROM steps WHERE step > 1 AND step <= $steps
    GROUP BY source, target ORDER BY value DESC, source, target LIMIT $edges
    """
