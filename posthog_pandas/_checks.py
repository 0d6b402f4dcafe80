"""Checks of accessor arguments, each turning a user's value into what PostHog is sent.

A wrong value raises ConfigurationError naming the argument, before any request is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from posthog_pandas import _dates
from posthog_pandas._dates import DateLike
from posthog_pandas.exceptions import ConfigurationError

# How far back session_recordings() looks by default: PostHog's longest recording retention,
# "5y" (RETENTION_PERIOD_DAYS in posthog/session_recordings/data_retention.py); PostHog drops
# anything older itself (Cloud: 30 or 90 days; self-hosted: RECORDINGS_TTL_WEEKS, 3 weeks).
RECORDINGS_KEPT_DAYS = 5 * 365


def opt_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, got {type(value).__name__} {value!r}.")
    return value


def opt_bool(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {value!r}.")
    return "true" if value else "false"


def opt_iso(value: DateLike | None, name: str) -> str | None:
    parsed = _dates.to_utc(value, name=name)
    return None if parsed is None else _dates.iso(parsed)


def hogql_text(value: Any, caller: str) -> str:
    """A HogQL statement: text that is not blank."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{caller}() needs a HogQL SELECT statement as a string.")
    return value


def opt_names(value: Any, name: str) -> list[str] | None:
    """A name or names (a list, a tuple, a pandas Index...) as a list: columns=, like event=,
    takes either."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    names = None
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        names = list(value)
    if names is None or not all(isinstance(n, str) for n in names):
        raise ConfigurationError(
            f"{name} must be a name or a list of names like ['event', 'timestamp'], got {value!r}."
        )
    return names


def opt_filter_list(value: Any) -> list[Mapping[str, Any]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(
            "properties must be a list of filters like [{'key': 'plan', 'value': 'pro'}]."
        )
    return list(value)


def opt_filters(value: Any) -> str | None:
    filters = opt_filter_list(value)
    return None if filters is None else orjson.dumps(filters).decode()


def definitions_group_index(kind: str, index: Any) -> int | None:
    """PostHog lists group properties of one group type: required for groups, refused
    (a 400 there) for the other kinds."""
    if kind != "group":
        if index is not None:
            raise ConfigurationError(
                f"property_definitions(type={kind!r}) takes no group_type_index: it applies "
                "to type='group' only."
            )
        return None
    if index is None:
        raise ConfigurationError(
            "property_definitions(type='group') needs group_type_index=0..4, the group type "
            "whose properties to list (PostHog lists one group type at a time; the group "
            "types are in your project settings)."
        )
    return int_in(index, "group_type_index", 0, 4)


def recordings_default_start() -> str:
    """The start of the UTC day RECORDINGS_KEPT_DAYS ago (a day, not a second: the frame's
    cache key stays the same all day)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return _dates.iso(today - timedelta(days=RECORDINGS_KEPT_DAYS))


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}.")
    return value


def int_in(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be an integer from {low} to {high}, got {value!r}.")
    return value


def definitions_type(kind: Any) -> str:
    """The kind of property definitions PostHog lists: event, person, group or session."""
    if kind not in ("event", "person", "group", "session"):
        raise ConfigurationError(
            f"property_definitions(type={kind!r}): use 'event', 'person', 'group' or 'session'."
        )
    return str(kind)
