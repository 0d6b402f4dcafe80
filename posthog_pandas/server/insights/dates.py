"""Insight date ranges as PostHog reads them: whole days of the project's timezone, and the day,
week (Sunday) and month buckets of `posthog/hogql_queries/utils/query_date_range.py`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from posthog_pandas.server.insights.errors import InsightError

__all__ = [
    "DEFAULT_DATE_FROM_DAYS",
    "DayRange",
    "add_periods",
    "bucket_label",
    "bucket_start",
    "bucket_sql",
    "day_range",
    "local_iso",
]

DEFAULT_DATE_FROM_DAYS = 7  # posthog/utils.py: a range without date_from is the last 7 days
INTERVALS = ("day", "week", "month")
_RELATIVE = re.compile(r"^-(\d+)([dwmy])$")


@dataclass(frozen=True)
class DayRange:
    """Whole local days `first` .. `last` (both included) in `timezone`."""

    first: date
    last: date
    timezone: str

    def start_utc(self, day: date | None = None) -> datetime:
        """The instant local midnight of `day` (default `first`) begins, in UTC."""
        return local_midnight(day or self.first, self.timezone)

    def end_utc(self) -> datetime:
        """The instant after the last day: local midnight of the day after `last`."""
        return local_midnight(self.last + timedelta(days=1), self.timezone)


def local_midnight(day: date, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def local_iso(day: date, timezone: str) -> str:
    """Local midnight of `day` as PostHog's JSON writes a zoned datetime: `Z` for a zero offset,
    else `+HH:MM` (orjson with OPT_UTC_Z, posthog/renderers.py)."""
    moment = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def resolved(days: DayRange) -> dict[str, str]:
    """`resolved_date_range`: the first day's first and the last day's last microsecond."""
    end = datetime.combine(days.last, time.max, tzinfo=ZoneInfo(days.timezone)).isoformat()
    return {
        "date_from": local_iso(days.first, days.timezone),
        "date_to": end[:-6] + "Z" if end.endswith("+00:00") else end,
    }


def today_in(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def _parse_day(value: Any, field: str, today: date) -> date:
    """An absolute date (`2024-01-01`, or a datetime string, whose day counts) or PostHog's
    relative `-7d`/`-2w`/`-1m`/`-1y` (that many units before today, at local midnight)."""
    if not isinstance(value, str) or not value.strip():
        raise InsightError(f"dateRange.{field} must be a date such as '2024-01-01' or '-7d'.")
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        if unit in "my":
            return _add_months(today, -amount * (12 if unit == "y" else 1))
        return today - timedelta(days=amount * (7 if unit == "w" else 1))
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InsightError(
            f"dateRange.{field}={value!r} is not a date this local server reads: use an ISO "
            "date such as '2024-01-01' or a relative one such as '-7d'."
        ) from None


def day_range(
    node: dict[str, Any], timezone: str, *, earliest: date | None = None, today: date | None = None
) -> DayRange:
    """`dateRange` of a query node: `date_from` (default 7 days ago; `all` is the first day with
    events) to `date_to` (default today), both days included."""
    now = today or today_in(timezone)
    raw = node.get("dateRange") or {}
    if not isinstance(raw, dict):
        raise InsightError("dateRange must be an object with date_from and date_to.")
    date_to = raw.get("date_to")
    last = now if date_to is None else _parse_day(date_to, "date_to", now)
    date_from = raw.get("date_from")
    if date_from is None:
        first = now - timedelta(days=DEFAULT_DATE_FROM_DAYS)
    elif date_from == "all":
        first = earliest or last
    else:
        first = _parse_day(date_from, "date_from", now)
    return DayRange(first, last, timezone)


def bucket_start(day: date, interval: str) -> date:
    """The first day of the bucket holding `day`: weeks start on Sunday (PostHog's default
    `week_start_day`), months on the 1st."""
    if interval == "week":
        return day - timedelta(days=day.isoweekday() % 7)
    if interval == "month":
        return day.replace(day=1)
    return day


def add_periods(day: date, interval: str, count: int) -> date:
    if interval == "month":
        return _add_months(day, count)
    return day + timedelta(days=count * (7 if interval == "week" else 1))


def _add_months(day: date, count: int) -> date:
    """`day` moved by whole calendar months, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + count
    year, month = divmod(index, 12)
    following = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return date(year, month + 1, min(day.day, (following - timedelta(days=1)).day))


def buckets(days: DayRange, interval: str) -> list[date]:
    """Every bucket start from the one holding the first day through the last day
    (`QueryDateRange.all_values`)."""
    out, current = [], bucket_start(days.first, interval)
    while current <= days.last:
        out.append(current)
        current = add_periods(current, interval, 1)
    return out


def bucket_label(bucket: date, interval: str, days: DayRange) -> str:
    """`format_label_date` (posthog/hogql_queries/utils/timestamp_utils.py)."""
    if interval == "month":
        return bucket.strftime("%b %Y")
    if interval == "week":
        first = max(bucket, days.first)
        last = max(min(add_periods(bucket, "day", 6), days.last), first)
        return _date_span(first, last)
    return f"{bucket.day}-{bucket:%b-%Y}"


def _date_span(first: date, last: date) -> str:
    if first == last:
        return f"{first.day}-{first:%b-%Y}"
    if first.year != last.year:
        return f"{first.day}-{first:%b-%Y} – {last.day}-{last:%b-%Y}"
    if first.month != last.month:
        return f"{first.day}-{first:%b} – {last.day}-{last:%b}"
    return f"{first.day}–{last.day} {last:%b}"


def bucket_sql(day_column: str, interval: str) -> str:
    """DuckDB SQL for the bucket start of a DATE column."""
    if interval == "week":
        return f"CAST({day_column} - CAST(dayofweek({day_column}) AS INTEGER) AS DATE)"
    if interval == "month":
        return f"CAST(date_trunc('month', {day_column}) AS DATE)"
    return day_column


def interval_of(node: dict[str, Any], field: str = "interval") -> str:
    interval = node.get(field) or "day"
    if interval not in INTERVALS:
        listed = ", ".join(INTERVALS)
        raise InsightError(
            f"{field}={interval!r} is not supported by this local server; use one of {listed}."
        )
    return str(interval)
