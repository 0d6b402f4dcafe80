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
import numpy as np
import pandas as pd

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
        # _get_event_query applies excludeEvents only along with includeEventTypes
        "excluded": [str(e) for e in pf.get("excludeEvents") or []]
        if pf.get("includeEventTypes")
        else [],
    }
    steps, edges = _positive(pf, "stepLimit", STEP_LIMIT), _positive(pf, "edgeLimit", EDGE_LIMIT)
    events = cur.sql(_sql(_type_filter(pf)), params=params).to_arrow_table()
    rows = _reachable(_edges(events, steps, edges))
    results = [
        {"source": s, "target": t, "value": int(n), "average_conversion_time": float(ms)}
        for s, t, n, ms in rows
    ]
    return {"results": results}


def _edges(events: Any, step_limit: int, edge_limit: int) -> list[tuple[Any, ...]]:
    """(source, target, sessions, average ms) from the events, worked out on arrays: put in
    (person, time) order (ties by uuid), split in sessions, runs of one item kept once, and
    the step of each kept item in its session. Persons and uuids are ordered by their hash:
    only their grouping matters, and sorting integers is much faster than sorting text."""
    if events.num_rows == 0:
        return []
    order = np.lexsort(
        (
            events.column("u").to_numpy(),
            events.column("us").to_numpy(),
            events.column("p").to_numpy(),
        )
    )
    person = events.column("p").to_numpy()[order]
    seconds = events.column("us").to_numpy()[order] / 1e6
    codes, names = pd.factorize(events.column("item").to_pandas())
    items = codes[order]
    starts = np.ones(len(items), dtype=bool)  # a new session: a new person, or a gap
    starts[1:] = (person[1:] != person[:-1]) | (np.diff(seconds) >= SESSION_GAP_SECONDS)
    session = np.cumsum(starts)
    last_of_run = np.ones(len(items), dtype=bool)  # kept: the next event is another item
    last_of_run[:-1] = (session[1:] != session[:-1]) | (items[1:] != items[:-1])
    session, items, seconds = session[last_of_run], items[last_of_run], seconds[last_of_run]
    first = np.ones(len(items), dtype=bool)
    first[1:] = session[1:] != session[:-1]
    position = np.arange(len(items))
    step = position - np.maximum.accumulate(np.where(first, position, 0)) + 1
    pair = (step > 1) & (step <= step_limit)
    frame = pd.DataFrame(
        {
            "step": step[pair],
            "source": items[np.flatnonzero(pair) - 1],
            "target": items[pair],
            "ms": (seconds[pair] - seconds[np.flatnonzero(pair) - 1]) * 1000.0,
        }
    )
    edges = frame.groupby(["step", "source", "target"], sort=False)["ms"].agg(["size", "mean"])
    labels = names.to_numpy(dtype=object)
    out = [
        (f"{k - 1}_{labels[a]}", f"{k}_{labels[b]}", int(n), float(ms))
        for (k, a, b), n, ms in zip(edges.index, edges["size"], edges["mean"], strict=True)
    ]
    out.sort(key=lambda e: (-e[2], e[0], e[1]))
    return out[:edge_limit]


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
    SELECT hash(person_id) AS p, epoch_us(timestamp) AS us, hash(uuid) AS u, item FROM (
        SELECT person_id, timestamp, uuid, {ITEM} AS item FROM events
        WHERE timestamp >= $start AND timestamp < $end AND ({type_filter})
    ) WHERE item NOT IN (SELECT unnest($excluded::VARCHAR[]))
    """
