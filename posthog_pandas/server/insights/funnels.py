"""FunnelsQuery (ordered steps): how many persons reached each step, in PostHog's step shape
(`FunnelBase._format_single_funnel` and `_serialize_step`,
posthog/hogql_queries/insights/funnels/base.py).

A person reaches step k when distinct events of steps 1..k at t1 <= t2 <= ... <= tk all lie in
the date range, with tk - t1 within the conversion window (PostHog's funnel UDF,
funnel-udf/src/steps.rs, chains the events of one timestamp in step order); each person counts
once, by their best attempt. The earliest next event is always the best continuation, so each
step-1 time is one attempt, followed through the steps with DuckDB's ASOF joins."""

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
    steps = [_step_event(entity, i) for i, entity in enumerate(series)]
    window = _window(node.get("funnelsFilter") or {})
    days = dates.day_range(node, timezone)
    breakdown = breakdown_of(node)
    rows = _step_counts(cur, steps, window, days, breakdown)
    if breakdown is None:
        results: list[Any] = _steps(series, steps, rows[0], None) if rows else []
    else:
        results = [_steps(series, steps, row, [row[0]]) for row in _limited(rows, node)]
    return {"results": results, "isUdf": True}


def _step_event(entity: Any, index: int) -> str:
    event = event_name(entity, f"series[{index}]")
    if event is None:
        raise InsightError(
            f"series[{index}]: a funnel step of all events is not supported by this local "
            "server; name the event."
        )
    return event


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
    steps: list[str],
    window: timedelta,
    days: dates.DayRange,
    breakdown: str | None,
) -> list[tuple[Any, ...]]:
    """Rows (breakdown value, persons at step 1..n, then per step 2..n the average and median
    seconds from the previous step), in PostHog's order: most persons at the last step first."""
    params: dict[str, Any] = {
        "start": days.start_utc(),
        "end": days.end_utc(),
        "window": int(window.total_seconds() * 1_000_000),
        "names": sorted(set(steps)),
    }
    value_sql = "''"
    if breakdown is not None:
        params["key"] = property_pointer(breakdown)
        value_sql = f"coalesce({property_sql('key')}, '')"  # funnels: ifNull(toString(p), '')
    ctes = [
        f"""ev AS (SELECT person_id, event, uuid, epoch_us(timestamp) AS us, {value_sql} AS value
                   FROM events WHERE timestamp >= $start AND timestamp < $end
                   AND event IN (SELECT unnest($names)))""",
    ]
    if breakdown is not None:
        # first_touch: the value of the person's earliest funnel event that has one
        # (argMinIf(prop, timestamp, notEmpty(...)) in funnel_udf.py); ties by uuid
        ctes.append(
            """touch AS (SELECT person_id, coalesce(
                first(value ORDER BY us, uuid) FILTER (WHERE value != ''), '') AS value
                FROM ev GROUP BY person_id)"""
        )
    for i, event in enumerate(steps):
        params[f"e{i}"] = event
        ctes.append(
            f"""c{i} AS (SELECT *, lead(us) OVER (PARTITION BY person_id ORDER BY us) AS next_us
                FROM (SELECT person_id, us, count(*) AS n FROM ev WHERE event = $e{i}
                GROUP BY person_id, us))"""
        )
    ctes.append("a0 AS (SELECT person_id, us AS t0 FROM c0)")
    for k in range(1, len(steps)):
        ctes.append(_next_step(steps, k))
    last = len(steps) - 1
    reached = " + ".join(
        f"(t{k} IS NOT NULL AND t{k} - t0 <= $window)::INTEGER" for k in range(1, len(steps))
    )
    final = " ".join(f"WHEN {k + 1} THEN t{k}" for k in range(len(steps)))
    ctes.append(
        f"""attempts AS (SELECT *, 1 + {reached} AS depth FROM a{last})""",
    )
    # The attempt whose timings PostHog reports: the first to reach the furthest step, and of
    # those the latest start (its UDF extends the latest start that reached each step).
    ctes.append(
        f"""best AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY person_id
                ORDER BY depth DESC, CASE depth {final} END, t0 DESC) AS rank FROM attempts)
                WHERE rank = 1)"""
    )
    counts = [f"count(*) FILTER (WHERE depth >= {k})" for k in range(1, len(steps) + 1)]
    times = [
        f"{fn}((t{k} - t{k - 1}) / 1e6) FILTER (WHERE depth > {k} AND t{k} > t{k - 1})"
        for fn in ("avg", "median")
        for k in range(1, len(steps))
    ]
    order = ", ".join(f"{k + 1} DESC" for k in range(len(steps), 0, -1))
    value, join = ("touch.value", "JOIN touch USING (person_id)") if breakdown else ("''", "")
    sql = (
        f"WITH {', '.join(ctes)} SELECT {value}, {', '.join(counts + times)} FROM best "
        f"{join} GROUP BY 1 ORDER BY {order}, 1"
    )
    return [tuple(row) for row in cur.execute(sql, params).fetchall()]


def _next_step(steps: list[str], k: int) -> str:
    """Follow each attempt to step k+1: the earliest step-(k+1) event not before step k's. One
    at the same instant counts (PostHog's UDF chains the events of one timestamp in step
    order) unless the attempt already used every such event (the same event never fills two
    steps)."""
    used = (
        " + ".join(f"(t{j} = a.t{k - 1})::INTEGER" for j in range(k) if steps[j] == steps[k]) or "0"
    )
    return f"""a{k} AS (SELECT a.*, CASE WHEN ge.us > a.t{k - 1} THEN ge.us
            WHEN ge.n > {used} THEN ge.us ELSE ge.next_us END AS t{k}
        FROM a{k - 1} a
        ASOF LEFT JOIN c{k} ge ON a.person_id = ge.person_id AND a.t{k - 1} <= ge.us)"""


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
    steps: list[str],
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
