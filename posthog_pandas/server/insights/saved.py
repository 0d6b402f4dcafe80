"""Saved insights: what computing one gives (its `result`), from its `query` (an insight kind,
or an InsightVizNode around one) or, for an old insight, from its legacy `filters`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from posthog_pandas.server.insights import INSIGHT_KINDS, InsightError, compute_insight

if TYPE_CHECKING:
    from posthog_pandas.server.data import ProjectStore

__all__ = ["insight_query", "saved_insight_result"]


def saved_insight_result(store: ProjectStore, row: dict[str, Any]) -> Any:
    """The insight's `result`: the `results` of its query, computed now over the project's
    data (`Dataset.insight_results` may stand in for it); None when it has no query this
    server computes."""
    overrides = store.dataset.insight_results
    insight_id = int(row["id"])
    if insight_id in overrides:
        return overrides[insight_id]
    node = insight_query(row)
    if node is None:
        return None
    cur = store.cursor()
    try:
        return compute_insight(cur, node, store.timezone)["results"]
    except InsightError:
        return None
    finally:
        cur.close()


def insight_query(row: dict[str, Any]) -> dict[str, Any] | None:
    """The query node an insight computes."""
    query = row.get("query")
    if isinstance(query, dict) and query.get("kind") == "InsightVizNode":
        query = query.get("source")
    if isinstance(query, dict) and query.get("kind") in INSIGHT_KINDS:
        return query
    filters = row.get("filters")
    return _trends_from_filters(filters) if isinstance(filters, dict) and filters else None


def _trends_from_filters(filters: dict[str, Any]) -> dict[str, Any] | None:
    """A legacy trends filter as the TrendsQuery PostHog converts it to (its `filter_to_query`
    in posthog/hogql_queries/legacy_compatibility/), for the keys this server knows."""
    if (filters.get("insight") or "TRENDS") != "TRENDS":
        return None
    series = [
        {"kind": "EventsNode", "event": e.get("id"), "math": e.get("math") or "total"}
        for e in filters.get("events") or []
        if isinstance(e, dict)
    ]
    node: dict[str, Any] = {"kind": "TrendsQuery", "series": series}
    node["interval"] = filters.get("interval") or "day"
    node["dateRange"] = {"date_from": filters.get("date_from"), "date_to": filters.get("date_to")}
    if filters.get("breakdown"):
        node["breakdownFilter"] = {
            "breakdown": filters["breakdown"],
            "breakdown_type": filters.get("breakdown_type") or "event",
        }
    return node if series else None
