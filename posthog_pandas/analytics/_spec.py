"""The contract shared by PostHog's insights (`ph.trends(...)`) and their local twins
(`events.posthog.trends(...)`): the accepted arguments, the day range, and each result's columns
and dtypes. Both sides build their frames through `typed_frame`, so they cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from posthog_pandas.exceptions import ConfigurationError

MATHS = ("total", "dau")
INTERVALS = ("day", "week", "month")
RETENTION_PERIODS = ("day", "week")
RETENTION_TYPES = ("first_time", "recurring")

# Each analytics result: its columns in order, with their dtypes. Docs and tests derive from it.
COLUMNS: Mapping[str, Mapping[str, str]] = {
    "trends": {
        "date": "datetime64[ns, UTC]",  # the bucket's start
        "series": "string",  # the event name
        "breakdown_value": "string",  # only with breakdown=; NA where the property is missing
        "value": "Int64",
    },
    "funnel": {
        "step": "Int64",  # 1-based
        "event": "string",
        "breakdown_value": "string",  # only with breakdown=
        "count": "Int64",  # persons who reached the step
        "conversion_rate": "Float64",  # count / step 1's count
        "step_conversion_rate": "Float64",  # count / the previous step's count (1.0 for step 1)
    },
    "retention": {
        "cohort": "datetime64[ns, UTC]",  # the cohort period's start
        "period": "Int64",  # 0 .. periods-1
        "persons": "Int64",
        "cohort_size": "Int64",
        "rate": "Float64",  # persons / cohort_size
    },
    "stickiness": {
        "series": "string",
        "intervals": "Int64",  # active on exactly this many intervals of the range (1..N)
        "persons": "Int64",
    },
    "lifecycle": {
        "date": "datetime64[ns, UTC]",
        "status": "string",  # new, returning, resurrecting, dormant
        "value": "Int64",  # dormant counts are negative, as PostHog reports them
    },
    "paths": {
        "step": "Int64",  # the source's step number
        "source": "string",
        "target": "string",
        "persons": "Int64",
    },
}


def columns_for(kind: str, *, breakdown: bool = False) -> dict[str, str]:
    """The columns of one kind's result; `breakdown_value` only when a breakdown was asked."""
    return {
        name: dtype
        for name, dtype in COLUMNS[kind].items()
        if breakdown or name != "breakdown_value"
    }


def typed_frame(
    kind: str, data: Mapping[str, Sequence[Any]], *, breakdown: bool = False
) -> pd.DataFrame:
    """A result frame with exactly the kind's columns, in order, with their dtypes (empty
    columns when `data` lacks them, so an empty result has the same shape as a full one)."""
    columns = columns_for(kind, breakdown=breakdown)
    out: dict[str, pd.Series] = {}
    for name, dtype in columns.items():
        values = list(data.get(name, []))
        if dtype.startswith("datetime64"):
            stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
            out[name] = stamps.astype(pd.DatetimeTZDtype("ns", "UTC"))
        else:
            out[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(out)


@dataclass(frozen=True)
class DayRange:
    """Whole days: `after` is the first day included, `before` the first day excluded."""

    after: date
    before: date

    @property
    def days(self) -> int:
        return (self.before - self.after).days

    def date_range(self) -> dict[str, str]:
        """PostHog's `dateRange`, whose `date_to` day is included."""
        last = self.before - timedelta(days=1)
        return {"date_from": self.after.isoformat(), "date_to": last.isoformat()}


def day_range(
    after: date | datetime | str | None, before: date | datetime | str | None
) -> DayRange:
    """Check and parse `after`/`before` (dates or ISO dates, whole days, after < before)."""
    first = _whole_day(after, "after")
    end = _whole_day(before, "before")
    if first >= end:
        raise ConfigurationError(
            f"after={first.isoformat()} must be before before={end.isoformat()}: `after` is the "
            "first day included and `before` the first day excluded (after='2024-01-01', "
            "before='2024-01-08' is the 7 days of Jan 1-7)."
        )
    return DayRange(first, end)


def _whole_day(value: date | datetime | str | None, name: str) -> date:
    if value is None:
        raise ConfigurationError(
            f"{name}= is required: pass a day such as '2024-01-01' (after is the first day "
            "included, before the first day excluded)."
        )
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        moment = value if value.tzinfo is None else value.astimezone(UTC)
        if moment.time() != datetime.min.time():
            raise ConfigurationError(
                f"{name}={value!r} is not a whole day; analytics count whole days: pass a date "
                "such as '2024-01-01'."
            )
        return moment.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigurationError(
        f"{name}={value!r} is not a day; pass an ISO date such as '2024-01-01' or a datetime.date."
    )


def choice(value: str, name: str, allowed: Sequence[str]) -> str:
    """`value` when it is one of `allowed`; otherwise an error that lists them."""
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ConfigurationError(f"{name}={value!r} is not supported; use one of {listed}.")
    return value


def event_list(events: str | Sequence[str], name: str = "events") -> list[str]:
    """One event name or a non-empty list of them, as a list."""
    names = [events] if isinstance(events, str) else list(events)
    if not names or not all(isinstance(e, str) and e for e in names):
        raise ConfigurationError(
            f"{name} must be an event name or a non-empty list of event names; got {events!r}."
        )
    return names
