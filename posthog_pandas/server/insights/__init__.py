"""PostHog's insight query kinds computed over the local server's DuckDB tables: one table of
kinds, each a function (cursor, query node, project timezone) -> the kind's response fields.

This is a model of PostHog, written from its source; it never imports the client's analytics
code, so the tests comparing the two compare independent computations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import duckdb

from posthog_pandas.server.insights.errors import InsightError
from posthog_pandas.server.insights.funnels import funnels
from posthog_pandas.server.insights.lifecycle import lifecycle
from posthog_pandas.server.insights.paths import paths
from posthog_pandas.server.insights.retention import retention
from posthog_pandas.server.insights.stickiness import stickiness
from posthog_pandas.server.insights.trends import trends

__all__ = ["INSIGHT_KINDS", "InsightError", "compute_insight"]

Compute = Callable[[duckdb.DuckDBPyConnection, dict[str, Any], str], dict[str, Any]]

INSIGHT_KINDS: Mapping[str, Compute] = {
    "TrendsQuery": trends,
    "FunnelsQuery": funnels,
    "RetentionQuery": retention,
    "StickinessQuery": stickiness,
    "LifecycleQuery": lifecycle,
    "PathsQuery": paths,
}


def compute_insight(
    cur: duckdb.DuckDBPyConnection, node: dict[str, Any], timezone: str
) -> dict[str, Any]:
    """The response fields (`results` and the kind's extras) of an insight query node."""
    return INSIGHT_KINDS[str(node["kind"])](cur, node, timezone)
