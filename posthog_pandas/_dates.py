"""Date arguments: datetimes, dates, ISO strings and relative forms ("-7d") to UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from posthog_pandas.exceptions import ConfigurationError

_RELATIVE = re.compile(r"^\s*-\s*(\d+)\s*([smhdwy]|mo|min)\s*$", re.I)
_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhdwy]|mo|min)\s*$", re.I)
_UNITS = {
    "s": timedelta(seconds=1),
    "min": timedelta(minutes=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "mo": timedelta(days=30),
    "y": timedelta(days=365),
}

DateLike = datetime | date | str | pd.Timestamp


def to_utc(value: DateLike | None, *, name: str, now: datetime | None = None) -> datetime | None:
    """Parse one date argument; naive values are taken as UTC. Raises naming the argument."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{name} must be a datetime, a date, an ISO string or a relative form like '-7d'; "
            f"got {type(value).__name__} {value!r}."
        )
    return _parse_text(value, name=name, now=now)


def _parse_text(text: str, *, name: str, now: datetime | None) -> datetime:
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return (now or datetime.now(UTC)) - amount * _UNITS[unit]
    if text.strip().lower() in ("now", "today"):
        current = now or datetime.now(UTC)
        if text.strip().lower() == "today":
            return current.replace(hour=0, minute=0, second=0, microsecond=0)
        return current
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{name}={text!r} is not a date. Use an ISO date or datetime ('2024-01-31', "
            "'2024-01-31T12:00:00Z'), a relative form ('-7d', '-24h', '-2w', '-3mo'), or a "
            "datetime/date object."
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_duration(value: timedelta | pd.Timedelta | str, *, name: str) -> timedelta:
    """A length of time: a timedelta, or text like "1d", "6h", "30min", "2w". Raises naming
    the argument when it is anything else, or negative."""
    given = value
    if isinstance(value, pd.Timedelta):
        value = value.to_pytimedelta()
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            value = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if not isinstance(value, timedelta):
        raise ConfigurationError(
            f"{name} must be a length of time: a whole number and a unit such as '1d', '6h', "
            f"'30min', or a datetime.timedelta; got {given!r}."
        )
    if value < timedelta(0):
        raise ConfigurationError(f"{name} must not be negative; got {given!r}.")
    return value


def iso(value: datetime) -> str:
    """ISO-8601 in UTC with microseconds and a Z, as PostHog writes timestamps."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hogql_literal(value: datetime) -> str:
    """The form HogQL's toDateTime64(..., 6, 'UTC') accepts: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
