"""pandas-style entry points: read_posthog("persons", ...) and read_hogql("select ...")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from posthog_pandas.client import PostHog, connect


def read_posthog(
    resource: str, *, connection: PostHog | None = None, **filters: Any
) -> pd.DataFrame:
    """Read one PostHog resource into a DataFrame, in the manner of pandas.read_gbq.

    `resource` is an accessor name ("persons", "events", "cohorts", ...); `filters` are that
    accessor's arguments. Without `connection`, credentials come from connect()'s usual chain.
    """
    ph = connection if connection is not None else connect()
    return ph.read(resource, **filters)


def read_hogql(
    hogql: str,
    values: Mapping[str, Any] | None = None,
    *,
    connection: PostHog | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Run a HogQL query and return every row as a typed DataFrame (see PostHog.query)."""
    ph = connection if connection is not None else connect()
    return ph.query(hogql, values, **options)
