"""TrendsQuery: events (math total) or distinct persons (math dau) per day, week or month bucket,
one result per series and breakdown value, as `TrendsQueryRunner.build_series_response` shapes
them (posthog/hogql_queries/insights/trends/trends_query_runner.py, trends_query_builder.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import duckdb

from posthog_pandas.server.insights import dates
from posthog_pandas.server.insights.errors import InsightError
from posthog_pandas.server.insights.events import (
    LOCAL_DAY,
    breakdown_limit,
    breakdown_of,
    event_name,
    property_pointer,
    property_sql,
)

__all__ = ["BREAKDOWN_NULL", "BREAKDOWN_OTHER", "trends"]

# posthog/hogql_queries/insights/trends/breakdown.py: a missing or empty value, and the values
# past the breakdown limit, summed.
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
MATHS = {"total": "count(*)", "dau": "count(DISTINCT person_id)"}


def trends(cur: duckdb.DuckDBPyConnection, node: dict[str, Any], timezone: str) -> dict[str, Any]:
    series = node.get("series")
    if not isinstance(series, list) or not series:
        raise InsightError("series must be a non-empty list of EventsNode.", attr="series")
    interval = dates.interval_of(node)
    everything = (node.get("dateRange") or {}).get("date_from") == "all"
    days = dates.day_range(
        node, timezone, earliest=_earliest(cur, timezone) if everything else None
    )
    breakdown = breakdown_of(node)
    buckets = dates.buckets(days, interval)
    results: list[dict[str, Any]] = []
    for order, entity in enumerate(series):
        event = event_name(entity, f"series[{order}]")
        math = entity.get("math") or "total"
        if math not in MATHS:
            raise InsightError(
                f"math {math!r} is not supported by this local server; use 'total' or 'dau'."
            )
        counts = _counts(cur, event, math, interval, days, breakdown)
        for value, data in _series_rows(counts, buckets, breakdown, breakdown_limit(node)):
            result = _series_object(node, entity, order, event, math, buckets, data, days)
            if breakdown is not None:
                result["label"] = _breakdown_label(value, event, len(series))
                result["breakdown_value"] = value
            results.append(result)
    return {
        "results": results,
        "hasMore": any(r.get("breakdown_value") == BREAKDOWN_OTHER for r in results),
        "resolved_date_range": dates.resolved(days),
    }


def _earliest(cur: duckdb.DuckDBPyConnection, timezone: str) -> date | None:
    row = cur.execute(f"SELECT min({LOCAL_DAY}) FROM events", {"tz": timezone}).fetchone()
    return row[0] if row else None


def _counts(
    cur: duckdb.DuckDBPyConnection,
    event: str | None,
    math: str,
    interval: str,
    days: dates.DayRange,
    breakdown: str | None,
) -> dict[str | None, dict[date, int]]:
    """{breakdown value (None without a breakdown): {bucket start: value}}. The range starts at
    the first bucket's start (PostHog filters `timestamp >= toStartOfInterval(date_from)` for an
    absolute date_from), so a first week or month counts its days before date_from too."""
    start = dates.bucket_start(days.first, interval)
    params: dict[str, Any] = {"tz": days.timezone, "start": days.start_utc(start)}
    params["end"] = days.end_utc()
    where = "timestamp >= $start AND timestamp < $end"
    if event is not None:
        where += " AND event = $event"
        params["event"] = event
    value_sql = "NULL"
    if breakdown is not None:
        params["key"] = property_pointer(breakdown)
        value_sql = f"coalesce(nullif({property_sql('key')}, ''), '{BREAKDOWN_NULL}')"
    rows = cur.execute(
        f"""
        SELECT bucket, value, {MATHS[math]} FROM (
            SELECT {dates.bucket_sql(LOCAL_DAY, interval)} AS bucket, {value_sql} AS value,
                   person_id
            FROM events WHERE {where}
        ) GROUP BY bucket, value
        """,
        params,
    ).fetchall()
    counts: dict[str | None, dict[date, int]] = defaultdict(dict)
    for bucket, value, count in rows:
        counts[value][bucket] = int(count)
    return counts


def _series_rows(
    counts: dict[str | None, dict[date, int]],
    buckets: list[date],
    breakdown: str | None,
    limit: int,
) -> list[tuple[str | None, list[int]]]:
    """(breakdown value, data) in PostHog's order: values by their total, largest first (ties by
    value), the null value after them and "other" (past `limit`) last. Without a breakdown, one
    row, zero-filled even when nothing happened; with one, no row when nothing happened."""
    if breakdown is None:
        only = counts.get(None, {})
        return [(None, [only.get(b, 0) for b in buckets])]
    ranked = sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0] or ""))
    ranked = sorted(ranked, key=lambda kv: kv[0] == BREAKDOWN_NULL)  # stable: null after values
    rows: list[tuple[str | None, list[int]]] = [
        (str(v), [c.get(b, 0) for b in buckets]) for v, c in ranked[:limit]
    ]
    if len(ranked) > limit:
        other = [sum(c.get(b, 0) for _, c in ranked[limit:]) for b in buckets]
        rows.append((BREAKDOWN_OTHER, other))
    return rows


def _series_object(
    node: dict[str, Any],
    entity: dict[str, Any],
    order: int,
    event: str | None,
    math: str,
    buckets: list[date],
    data: list[int],
    days: dates.DayRange,
) -> dict[str, Any]:
    label = "All events" if event is None else event
    interval = dates.interval_of(node)
    day_strings = [b.isoformat() for b in buckets]
    return {
        "data": data,
        "labels": [dates.bucket_label(b, interval, days) for b in buckets],
        "days": day_strings,
        "count": float(sum(data)),
        "label": label,
        "filter": _filter(node, days, interval),
        "action": {
            "days": day_strings,
            "id": event,
            "type": "events",
            "order": order,
            "name": label,
            "custom_name": entity.get("custom_name"),
            "math": math,
            "math_property": None,
            "math_hogql": None,
            "math_group_type_index": None,
            "properties": {},
        },
        "order": order,
    }


def _breakdown_label(value: str | None, event: str | None, series_count: int) -> str:
    shown = {
        BREAKDOWN_NULL: "None (i.e. no value)",
        BREAKDOWN_OTHER: "Other (i.e. all remaining values)",
    }
    text = shown.get(str(value), str(value))
    return f"{event or 'All events'} - {text}" if series_count > 1 else text


def _filter(node: dict[str, Any], days: dates.DayRange, interval: str) -> dict[str, Any]:
    """The legacy filter echo (`_query_to_filter`), with the keys this server knows."""
    out: dict[str, Any] = {
        "insight": "TRENDS",
        "date_from": dates.local_iso(days.first, days.timezone),
        "date_to": dates.local_iso(days.last, days.timezone),
        "entity_type": "events",
        "interval": interval,
    }
    for extra in ("breakdownFilter", "trendsFilter"):
        if isinstance(node.get(extra), dict):
            out.update({k: v for k, v in node[extra].items() if v is not None})
    return out
