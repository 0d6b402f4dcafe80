"""RetentionQuery: cohorts of persons by the period of their start event, and how many of each
came back in each later period, in `RetentionQueryRunner.format_results`'s shape
(posthog/hogql_queries/insights/retention/retention_query_runner.py).

The cohorts are the `totalIntervals` periods that END with the period holding
`dateRange.date_to` (`QueryDateRangeWithIntervals`: date_to plus one period, minus N periods,
a week aligned back to its Sunday); `date_from` is not read."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb

from posthog_pandas.server.insights import dates
from posthog_pandas.server.insights.errors import InsightError
from posthog_pandas.server.insights.events import LOCAL_DAY, event_name

__all__ = ["retention"]

DEFAULT_INTERVALS = 7  # DEFAULT_TOTAL_INTERVALS
DEFAULT_ENTITY = {"id": "$pageview", "type": "events"}  # RetentionQueryRunner's DEFAULT_ENTITY
PERIODS = {"Day": ("day", 1), "Week": ("week", 7)}
TYPES = ("retention_first_time", "retention_recurring")


def retention(
    cur: duckdb.DuckDBPyConnection, node: dict[str, Any], timezone: str
) -> dict[str, Any]:
    rf = node.get("retentionFilter")
    if not isinstance(rf, dict):
        raise InsightError("retentionFilter is required.", attr="retentionFilter")
    period = rf.get("period") or "Day"
    if period not in PERIODS:
        raise InsightError(f"period {period!r} is not supported here; use Day or Week.")
    total = rf.get("totalIntervals") or DEFAULT_INTERVALS
    if not isinstance(total, int) or total < 1:
        raise InsightError("totalIntervals must be a positive integer.")
    kind = rf.get("retentionType") or "retention_recurring"
    if kind not in TYPES:
        listed = ", ".join(TYPES)
        raise InsightError(f"retentionType {kind!r} is not supported here; use one of {listed}.")
    start_event = event_name(rf.get("targetEntity") or DEFAULT_ENTITY, "targetEntity")
    return_event = event_name(rf.get("returningEntity") or DEFAULT_ENTITY, "returningEntity")
    name, length = PERIODS[period]
    first = _first_period(node, timezone, name, total)
    cells = _cells(cur, timezone, first, length, total, start_event, return_event, kind)
    title = name.title()
    results = []
    for k in range(total):
        values = [{"count": cells.get((k, i), 0.0), "label": f"{title} {i}"} for i in range(total)]
        start = first + timedelta(days=k * length)
        results.append(
            {
                "values": values,
                "label": f"{title} {k}",
                "date": dates.local_iso(start, timezone),
                "breakdown_value": None,
            }
        )
    return {"results": results}


def _first_period(node: dict[str, Any], timezone: str, name: str, total: int) -> date:
    last = dates.day_range(node, timezone).last
    first = last + timedelta(days=(1 - total) * (7 if name == "week" else 1))
    return dates.bucket_start(first, name)


def _cells(
    cur: duckdb.DuckDBPyConnection,
    timezone: str,
    first: date,
    length: int,
    total: int,
    start_event: str | None,
    return_event: str | None,
    kind: str,
) -> dict[tuple[int, int], int]:
    """{(cohort index, period offset): persons}; offset 0 is the cohort's size."""
    end = first + timedelta(days=total * length)
    params: dict[str, Any] = {
        "tz": timezone,
        "first": first,
        "len": length,
        "n": total,
        "start": dates.local_midnight(first, timezone),
        "end": dates.local_midnight(end, timezone),
    }
    index = _period_index("timestamp")
    in_range = "timestamp >= $start AND timestamp < $end"
    start_match = _match(start_event, "s", params)
    return_match = _match(return_event, "r", params)
    if kind == "retention_first_time":
        cohorts = f"""SELECT person_id, {_period_index("first_at")} AS k FROM (
            SELECT person_id, min(timestamp) AS first_at FROM events WHERE {start_match}
            GROUP BY person_id) WHERE first_at >= $start AND first_at < $end"""
    else:
        cohorts = f"""SELECT DISTINCT person_id, {index} AS k FROM events
            WHERE {start_match} AND {in_range}"""
    returns = f"""SELECT DISTINCT person_id, {index} AS q FROM events
        WHERE {return_match} AND {in_range}"""
    sql = f"""
        WITH cohorts AS ({cohorts}), returns AS ({returns})
        SELECT k, 0 AS i, count(*) FROM cohorts GROUP BY k
        UNION ALL
        SELECT c.k, r.q - c.k AS i, count(*) FROM cohorts c
        JOIN returns r ON r.person_id = c.person_id AND r.q > c.k
        WHERE r.q - c.k < $n GROUP BY c.k, i
    """
    return {(int(k), int(i)): int(n) for k, i, n in cur.execute(sql, params).fetchall()}


def _period_index(column: str) -> str:
    """The period (0-based from `$first`) holding the local day of a timestamp column."""
    day = LOCAL_DAY.replace("timestamp", column)
    return f"CAST(floor(date_diff('day', $first, {day}) / $len) AS INTEGER)"


def _match(event: str | None, name: str, params: dict[str, Any]) -> str:
    if event is None:
        return "TRUE"
    params[name] = event
    return f"event = ${name}"
