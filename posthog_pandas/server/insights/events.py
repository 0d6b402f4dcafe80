"""SQL pieces the insight kinds share over the server's DuckDB `events` table: the local day of
an event, an event property as PostHog's `toString(properties.key)`, and the series filter."""

from __future__ import annotations

from typing import Any

from posthog_pandas.server.insights.errors import InsightError

__all__ = ["LOCAL_DAY", "event_name", "property_pointer", "property_sql"]

# The event's day in the project's timezone; the query binds the zone as `$tz`.
LOCAL_DAY = "CAST(timezone($tz, timestamp) AS DATE)"


def property_pointer(key: str) -> str:
    """A JSON pointer to a top-level property (RFC 6901 escapes `~` and `/`)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def property_sql(param: str) -> str:
    """An event property's text (JSON text for numbers, booleans and objects), NULL when absent;
    `param` names the bound pointer."""
    return f"json_extract_string(properties, ${param})"


def event_name(entity: Any, where: str) -> str | None:
    """The event an EventsNode (or RetentionEntity of type events) selects; None is every event.
    Actions are not in the local server's data, so they are refused."""
    if not isinstance(entity, dict):
        raise InsightError(f"{where} must be an object such as {{'kind': 'EventsNode', ...}}.")
    kind = entity.get("kind")
    if kind is not None and kind != "EventsNode":
        raise InsightError(
            f"{where}: {kind} is not supported by this local server; use EventsNode."
        )
    entity_type = entity.get("type")
    if entity_type is not None and entity_type != "events":
        raise InsightError(f"{where}: type {entity_type!r} is not supported; use 'events'.")
    name = entity.get("event", entity.get("id"))
    if name is not None and not isinstance(name, str):
        raise InsightError(f"{where}: the event must be a name (a string) or null for all events.")
    return name


def breakdown_of(node: dict[str, Any]) -> str | None:
    """The event property of `breakdownFilter` (breakdown_type "event", the default), or None."""
    bf = node.get("breakdownFilter")
    if not bf:
        return None
    if not isinstance(bf, dict):
        raise InsightError("breakdownFilter must be an object.")
    if bf.get("breakdowns"):
        raise InsightError("breakdownFilter.breakdowns (several breakdowns) is not supported here.")
    key = bf.get("breakdown")
    if key is None:
        return None
    kind = bf.get("breakdown_type") or "event"
    if kind != "event" or not isinstance(key, str):
        raise InsightError(
            f"breakdown_type {kind!r} is not supported by this local server; break down by an "
            "event property (breakdown_type 'event')."
        )
    return key


def breakdown_limit(node: dict[str, Any]) -> int:
    """`breakdownFilter.breakdown_limit`, else PostHog's 25 (BREAKDOWN_VALUES_LIMIT)."""
    bf = node.get("breakdownFilter") or {}
    limit = bf.get("breakdown_limit") if isinstance(bf, dict) else None
    return int(limit) if isinstance(limit, int) and limit > 0 else 25
