"""Time buckets of the project's timezone as UTC instants, as PostHog buckets insights.

PostHog truncates timestamps in the project's timezone (`toStartOfDay`, `toStartOfWeek` with
Sunday first, its default `week_start_day`, `toStartOfMonth`) and, for an absolute `date_from`,
starts reading at the start of the interval holding it (`date_from_with_adjusted_start_of_interval`
in posthog/hogql_queries/utils/query_date_range.py): the first week or month is whole and
labelled with its own start, which may precede `after`. The last bucket ends at `before`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from posthog_pandas.analytics._spec import DayRange
from posthog_pandas.exceptions import ConfigurationError


def bucket_start(day: date, interval: str) -> date:
    """The first day of the day, week (Sunday first) or month holding `day`."""
    if interval == "week":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if interval == "month":
        return day.replace(day=1)
    return day


def next_start(start: date, interval: str) -> date:
    if interval == "week":
        return start + timedelta(days=7)
    if interval == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


@dataclass(frozen=True)
class Buckets:
    """Consecutive buckets: `starts` (UTC instants, ns) and the end of the last one."""

    starts: np.ndarray  # int64 ns since the epoch, UTC
    end: int

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def first(self) -> int:
        return int(self.starts[0])

    def labels(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.starts.astype("datetime64[ns]"), tz="UTC")

    def index_of(self, stamps: np.ndarray) -> np.ndarray:
        """Each stamp's bucket (0-based); -1 before the first, `count` from the end on."""
        index = np.searchsorted(self.starts, stamps, side="right") - 1
        return np.where(stamps >= self.end, self.count, index)


def local_midnight(day: date, timezone: str) -> int:
    """The UTC instant (ns) at which `day` starts in `timezone`."""
    stamp = pd.Timestamp(day).tz_localize(timezone, nonexistent="shift_forward")
    return int(stamp.tz_convert("UTC").value)


def buckets_for(days: DayRange, interval: str, timezone: str) -> Buckets:
    """The buckets covering [after, before): whole days, or weeks/months from the one
    holding `after`, the last one cut at `before`."""
    starts = []
    start = bucket_start(days.after, interval)
    while start < days.before:
        starts.append(local_midnight(start, timezone))
        start = next_start(start, interval)
    return Buckets(np.array(starts, dtype="int64"), local_midnight(days.before, timezone))


def periods_for(after: date, period: str, count: int, timezone: str) -> Buckets:
    """`count` whole periods (days or weeks), the first holding `after`."""
    start = bucket_start(after, period)
    days: list[date] = []
    for _ in range(count + 1):
        days.append(start)
        start = next_start(start, period)
    stamps = [local_midnight(d, timezone) for d in days]
    return Buckets(np.array(stamps[:-1], dtype="int64"), stamps[-1])


def check_timezone(timezone: str) -> str:
    try:
        pd.Timestamp("2024-01-01").tz_localize(timezone)
    except (KeyError, ValueError) as error:  # zoneinfo's and pytz's "unknown zone" errors
        raise ConfigurationError(
            f"timezone={timezone!r} is not a known IANA timezone; pass the project's "
            "timezone, such as 'UTC' or 'America/Los_Angeles'."
        ) from error
    return timezone
