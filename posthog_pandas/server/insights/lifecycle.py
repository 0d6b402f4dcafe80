"""LifecycleQuery: per bucket, the persons who did the event as new, returning or resurrecting,
and those who became dormant (negative), as `LifecycleQueryRunner.events_query` and
`format_results` define them (posthog/hogql_queries/insights/lifecycle/lifecycle_query_runner.py).

For each person, the buckets with the event (read from one bucket before the range to its end):
the first is `new` when it is the bucket of the person's `created_at`, else `resurrecting`; a
later one is `returning` when the bucket before it was active too, else `resurrecting`; the
bucket after an active one that is not active is `dormant`."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

from posthog_pandas.server.insights import dates
from posthog_pandas.server.insights.errors import InsightError
from posthog_pandas.server.insights.events import LOCAL_DAY, event_name

__all__ = ["STATUSES", "lifecycle"]

STATUSES = ("new", "returning", "resurrecting", "dormant")  # format_results' order


def lifecycle(
    cur: duckdb.DuckDBPyConnection, node: dict[str, Any], timezone: str
) -> dict[str, Any]:
    series = node.get("series")
    if not isinstance(series, list) or not series:
        raise InsightError("series must be a list with one EventsNode.", attr="series")
    event = event_name(series[0], "series[0]")  # PostHog reads the first series only
    interval = dates.interval_of(node)
    days = dates.day_range(node, timezone)
    buckets = dates.buckets(days, interval)
    counts = _counts(cur, event, interval, days, buckets)
    name = "All events" if event is None else event
    results = []
    for status in STATUSES:
        sign = -1 if status == "dormant" else 1
        data = [float(sign * counts.get((b, status), 0)) for b in buckets]
        results.append(
            {
                "action": {
                    "id": event,
                    "name": name,
                    "type": "events",
                    "order": 0,
                    "math": "total",
                },
                "data": data,
                "count": float(sum(data)),
                "labels": [dates.bucket_label(b, interval, days) for b in buckets],
                "days": [b.isoformat() for b in buckets],
                "label": f"{name} - {status}",
                "status": status,
            }
        )
    return {
        "results": results,
        "resolved_date_range": dates.resolved(days),
    }


def _counts(
    cur: duckdb.DuckDBPyConnection,
    event: str | None,
    interval: str,
    days: dates.DayRange,
    buckets: list[date],
) -> dict[tuple[date, str], int]:
    first = buckets[0]
    params: dict[str, Any] = {
        "tz": days.timezone,
        "start": days.start_utc(dates.add_periods(first, interval, -1)),
        "end": days.start_utc(dates.add_periods(buckets[-1], interval, 1)),
        "first": first,
        "last": buckets[-1],
    }
    match = "TRUE"
    if event is not None:
        match, params["event"] = "event = $event", event
    bucket = dates.bucket_sql(LOCAL_DAY, interval)
    created = dates.bucket_sql(LOCAL_DAY.replace("timestamp", "p.created_at"), interval)
    step = {"day": "INTERVAL 1 DAY", "week": "INTERVAL 7 DAY", "month": "INTERVAL 1 MONTH"}[
        interval
    ]
    sql = f"""
        WITH active AS (
            SELECT DISTINCT person_id, {bucket} AS period FROM events
            WHERE {match} AND timestamp >= $start AND timestamp < $end
              AND coalesce(json_extract_string(properties, '/$process_person_profile'), '')
                  != 'false'
        ), ordered AS (
            SELECT a.person_id, a.period,
                   lag(a.period) OVER w AS previous, lead(a.period) OVER w AS following,
                   row_number() OVER w AS position, {created} AS created
            FROM active a LEFT JOIN persons p ON p.id = a.person_id
            WINDOW w AS (PARTITION BY a.person_id ORDER BY a.period)
        ), statuses AS (
            SELECT person_id, period, CASE
                WHEN position = 1 AND created = period THEN 'new'
                WHEN position > 1 AND CAST(previous + {step} AS DATE) = period THEN 'returning'
                ELSE 'resurrecting' END AS status
            FROM ordered
            UNION ALL
            SELECT person_id, CAST(period + {step} AS DATE), 'dormant' FROM ordered
            WHERE following IS NULL OR following != CAST(period + {step} AS DATE)
        )
        SELECT period, status, count(DISTINCT person_id) FROM statuses
        WHERE period >= $first AND period <= $last GROUP BY period, status
    """
    return {(p, s): int(n) for p, s, n in cur.execute(sql, params).fetchall()}
