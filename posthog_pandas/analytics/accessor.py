"""`events.posthog`: the local twins as a pandas accessor on any events frame.

    events = ph.events(after="2024-01-01")          # or read back from the cache, offline
    events.posthog.trends("$pageview", math="dau", after="2024-01-01", before="2024-02-01")

Registered when `posthog_pandas` is imported after pandas, when any of its public names is
first used (`php.connect`, ...), and by `import posthog_pandas.analytics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from posthog_pandas.analytics import twins
from posthog_pandas.analytics.twins import DayLike

ACCESSOR = "posthog"


class PostHogAccessor:
    """PostHog's insights computed locally on this events frame (see `twins`)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def trends(
        self,
        events: str | Sequence[str],
        *,
        math: str = "total",
        interval: str = "day",
        after: DayLike = None,
        before: DayLike = None,
        breakdown: str | None = None,
        timezone: str = "UTC",
    ) -> pd.DataFrame:
        """The twin of `ph.trends(...)`: see `posthog_pandas.analytics.twins.trends`."""
        return twins.trends(
            self._frame,
            events,
            math=math,
            interval=interval,
            after=after,
            before=before,
            breakdown=breakdown,
            timezone=timezone,
        )

    def funnel(
        self,
        steps: str | Sequence[str],
        *,
        window_days: int = 14,
        after: DayLike = None,
        before: DayLike = None,
        breakdown: str | None = None,
        timezone: str = "UTC",
    ) -> pd.DataFrame:
        """The twin of `ph.funnel(...)`: see `posthog_pandas.analytics.twins.funnel`."""
        return twins.funnel(
            self._frame,
            steps,
            window_days=window_days,
            after=after,
            before=before,
            breakdown=breakdown,
            timezone=timezone,
        )

    def retention(
        self,
        start_event: str,
        return_event: str | None = None,
        *,
        period: str = "day",
        periods: int = 7,
        after: DayLike = None,
        retention_type: str = "first_time",
        timezone: str = "UTC",
    ) -> pd.DataFrame:
        """The twin of `ph.retention(...)`: see `posthog_pandas.analytics.twins.retention`."""
        return twins.retention(
            self._frame,
            start_event,
            return_event,
            period=period,
            periods=periods,
            after=after,
            retention_type=retention_type,
            timezone=timezone,
        )


# Importing this module registers it (pandas warns if another library took the name).
pd.api.extensions.register_dataframe_accessor(ACCESSOR)(PostHogAccessor)
