"""StickinessQuery: for each series, how many persons did the event on exactly 1, 2, ..., N of
the range's N intervals (posthog/hogql_queries/insights/stickiness/stickiness_query_runner.py)."""

from __future__ import annotations

from typing import Any

import duckdb

from posthog_pandas.server.insights import dates
from posthog_pandas.server.insights.errors import InsightError
from posthog_pandas.server.insights.events import LOCAL_DAY, event_name

__all__ = ["stickiness"]


def stickiness(
    cur: duckdb.DuckDBPyConnection, node: dict[str, Any], timezone: str
) -> dict[str, Any]:
    series = node.get("series")
    if not isinstance(series, list) or not series:
        raise InsightError("series must be a non-empty list of EventsNode.", attr="series")
    interval = dates.interval_of(node)
    days = dates.day_range(node, timezone)
    total = len(dates.buckets(days, interval))
    unit = interval
    results = []
    for order, entity in enumerate(series):
        event = event_name(entity, f"series[{order}]")
        persons = _persons_by_intervals(cur, event, interval, days)
        data = [persons.get(n, 0) for n in range(1, total + 1)]
        label = "All events" if event is None else event
        results.append(
            {
                "count": sum(data),
                "data": data,
                "days": list(range(1, total + 1)),
                "label": label,
                "labels": [f"{n} {unit}{'' if n == 1 else 's'}" for n in range(1, total + 1)],
                "action": {
                    "order": order,
                    "type": "events",
                    "name": label,
                    "id": event,
                    "custom_name": entity.get("custom_name"),
                },
            }
        )
    return {"results": results}


def _persons_by_intervals(
    cur: duckdb.DuckDBPyConnection, event: str | None, interval: str, days: dates.DayRange
) -> dict[int, int]:
    """{number of intervals with the event: persons}. Like trends, the range starts at the
    first bucket's start (`date_from_with_adjusted_start_of_interval`)."""
    params: dict[str, Any] = {
        "tz": days.timezone,
        "start": days.start_utc(dates.bucket_start(days.first, interval)),
        "end": days.end_utc(),
    }
    match = "TRUE"
    if event is not None:
        match, params["event"] = "event = $event", event
    rows = cur.execute(
        f"""
        SELECT n, count(*) FROM (
            SELECT person_id, count(DISTINCT {dates.bucket_sql(LOCAL_DAY, interval)}) AS n
            FROM events WHERE {match} AND timestamp >= $start AND timestamp < $end
            GROUP BY person_id
        ) GROUP BY n
        """,
        params,
    ).fetchall()
    return {int(n): int(c) for n, c in rows}
