"""FunnelsQuery (ordered steps): how many persons reached each step, in PostHog's step shape
(`FunnelBase._format_single_funnel` and `_serialize_step`,
posthog/hogql_queries/insights/funnels/base.py).

A person reaches step k when events of steps 1..k at t1 < t2 < ... < tk all lie in the date
range, with tk - t1 within the conversion window; each person counts once, by their best
attempt. The earliest next event is always the best continuation, so each step-1 event is one
attempt, followed through the steps with DuckDB's ASOF joins (the first later event)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb

from posthog_pandas.server.insights import dates
from posthog_pandas.server.insights.errors import InsightError
from posthog_pandas.server.insights.events import (
    breakdown_limit,
    breakdown_of,
    event_name,
    property_pointer,
    property_sql,
)

__all__ = ["funnels"]

DEFAULT_WINDOW = 14  # FunnelQueryContext.funnelWindowInterval
WINDOW_UNITS = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
OTHER = "Other"  # FunnelBase._breakdown_other_subquery: ['Other'] past the breakdown limit


def funnels(cur: duckdb.DuckDBPyConnection, node: dict[str, Any], timezone: str) -> dict[str, Any]:
    series = node.get("series")
    if not isinstance(series, list) or len(series) < 2:
        raise InsightError("A funnel needs at least two steps in series.", attr="series")
    steps = [event_name(entity, f"series[{i}]") for i, entity in enumerate(series)]
    window = _window(node.get("funnelsFilter") or {})
    days = dates.day_range(node, timezone)
    breakdown = breakdown_of(node)
    rows = _step_counts(cur, steps, window, days, breakdown)
    if breakdown is None:
        results: list[Any] = _steps(series, steps, rows[0], None) if rows else []
    else:
        results = [_steps(series, steps, row, [row[0]]) for row in _limited(rows, node)]
    return {"results": results, "isUdf": True}


def _window(ff: dict[str, Any]) -> timedelta:
    if not isinstance(ff, dict):
        raise InsightError("funnelsFilter must be an object.")
    for key, allowed in (("funnelOrderType", "ordered"), ("funnelVizType", "steps")):
        value = ff.get(key) or allowed
        if value != allowed:
            raise InsightError(
                f"{key}={value!r} is not supported by this local server; use '{allowed}'."
            )
    if (ff.get("breakdownAttributionType") or "first_touch") != "first_touch":
        raise InsightError(
            "Only breakdownAttributionType 'first_touch' (the default) is supported here."
        )
    if ff.get("exclusions"):
        raise InsightError("funnelsFilter.exclusions are not supported by this local server.")
    amount = ff.get("funnelWindowInterval") or DEFAULT_WINDOW
    unit = ff.get("funnelWindowIntervalUnit") or "day"
    if unit not in WINDOW_UNITS or not isinstance(amount, int) or amount < 1:
        listed = ", ".join(WINDOW_UNITS)
        raise InsightError(
            "funnelWindowInterval must be a positive integer and funnelWindowIntervalUnit "
            f"one of {listed}."
        )
    return WINDOW_UNITS[unit] * amount


def _step_counts(
    cur: duckdb.DuckDBPyConnection,
    steps: list[str | None],
    window: timedelta,
    days: dates.DayRange,
    breakdown: str | None,
) -> list[tuple[Any, ...]]:
    """Rows (breakdown value, persons at step 1..n, then per step 2..n the average and median
    seconds from the previous step), the most persons first."""
    params: dict[str, Any] = {
        "start": days.start_utc(),
        "end": days.end_utc(),
        "window": int(window.total_seconds() * 1_000_000),
    }
    value_sql = "''"
    if breakdown is not None:
        params["key"] = property_pointer(breakdown)
        value_sql = f"coalesce({property_sql('key')}, '')"  # funnels: ifNull(toString(p), '')
    named = "" if None in steps else "AND event IN (SELECT unnest($names))"
    if named:
        params["names"] = sorted({str(s) for s in steps})
    ctes = [
        f"""ev AS (SELECT person_id, event, epoch_us(timestamp) AS us, {value_sql} AS value
                   FROM events WHERE timestamp >= $start AND timestamp < $end {named})"""
    ]
    for i, event in enumerate(steps):
        params[f"e{i}"] = event
        match = "TRUE" if event is None else f"event = $e{i}"
        ctes.append(f"s{i} AS (SELECT person_id, us, value FROM ev WHERE {match})")
    ctes.append("a0 AS (SELECT person_id, us AS t0, value FROM s0)")
    for i in range(1, len(steps)):
        ctes.append(
            f"""a{i} AS (SELECT a.*, s.us AS t{i} FROM a{i - 1} a
                ASOF LEFT JOIN s{i} s ON a.person_id = s.person_id AND a.t{i - 1} < s.us)"""
        )
    last = len(steps) - 1
    reached = " + ".join(
        f"(t{i} IS NOT NULL AND t{i} - t0 <= $window)::INTEGER" for i in range(1, len(steps))
    )
    ctes.append(
        f"""best AS (SELECT * FROM (SELECT *, 1 + {reached} AS depth,
                row_number() OVER (PARTITION BY person_id ORDER BY 1 + {reached} DESC, t0) AS rank
                FROM a{last}) WHERE rank = 1)"""
    )
    counts = [f"count(*) FILTER (WHERE depth >= {k})" for k in range(1, len(steps) + 1)]
    times = [
        f"{fn}((t{k} - t{k - 1}) / 1e6) FILTER (WHERE depth > {k})"
        for fn in ("avg", "median")
        for k in range(1, len(steps))
    ]
    sql = (
        f"WITH {', '.join(ctes)} SELECT value, {', '.join(counts + times)} FROM best "
        "GROUP BY value ORDER BY 2 DESC, value"
    )
    return [tuple(row) for row in cur.execute(sql, params).fetchall()]


def _limited(rows: list[tuple[Any, ...]], node: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The first `breakdown_limit` values; the rest summed into "Other" (its times unknown)."""
    limit = breakdown_limit(node)
    if len(rows) <= limit:
        return rows
    rest = rows[limit:]
    steps = (len(rows[0]) + 1) // 3
    summed = [sum(r[k] for r in rest) for k in range(1, steps + 1)]
    return [*rows[:limit], (OTHER, *summed, *[None] * (2 * (steps - 1)))]


def _steps(
    series: list[dict[str, Any]],
    steps: list[str | None],
    row: tuple[Any, ...],
    breakdown_value: list[str] | None,
) -> list[dict[str, Any]]:
    n = len(steps)
    out = []
    for i, (entity, event) in enumerate(zip(series, steps, strict=True)):
        step: dict[str, Any] = {
            "action_id": event,
            "name": event if event is not None else "All events",
            "custom_name": entity.get("custom_name"),
            "order": i,
            "people": [],
            "count": int(row[1 + i]),
            "type": "events",
            "average_conversion_time": _seconds(row[n + i]) if i else None,
            "median_conversion_time": _seconds(row[2 * n - 1 + i]) if i else None,
        }
        if breakdown_value is not None:
            step["breakdown"] = breakdown_value
            step["breakdown_value"] = breakdown_value
        out.append(step)
    return out


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)
