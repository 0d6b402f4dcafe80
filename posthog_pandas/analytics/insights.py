"""PostHog's insight query kinds, one table: each kind's request node (built from the accessor's
checked arguments) and its answer turned into the tidy frame of `_spec.COLUMNS`.

Nothing here sends a request: `runner.Insights` posts the node through the query runner and
hands the answer back to `KINDS[name].parse`. Facts about the request fields and the answer
shapes are rows of docs/posthog-compat.md ("Insight query kinds"), each with its source file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from posthog_pandas.analytics._spec import DayRange, typed_frame
from posthog_pandas.exceptions import ResponseFormatError

# PostHog's stand-ins for a missing breakdown value and for the values past its breakdown limit
# (posthog/hogql_queries/insights/trends/breakdown.py).
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
OTHER_LABEL = "Other"
RETENTION_PERIOD_NAMES = {"day": "Day", "week": "Week"}
RETENTION_TYPE_NAMES = {"first_time": "retention_first_time", "recurring": "retention_recurring"}


@dataclass(frozen=True)
class Answer:
    """What a parser needs besides PostHog's `results`: the arguments the request was built
    from and the project's time zone (PostHog's days are the project's local days)."""

    arguments: Mapping[str, Any]
    timezone: str


# -- request nodes ---------------------------------------------------------------------------


def events_node(event: str, math: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "EventsNode", "event": event, "name": event}
    if math is not None:
        node["math"] = math
    return node


def breakdown_filter(breakdown: str | None) -> dict[str, Any]:
    if breakdown is None:
        return {}
    return {"breakdownFilter": {"breakdown": breakdown, "breakdown_type": "event"}}


def trends_node(args: Mapping[str, Any]) -> dict[str, Any]:
    days: DayRange = args["days"]
    return {
        "kind": "TrendsQuery",
        "series": [events_node(e, args["math"]) for e in args["events"]],
        "interval": args["interval"],
        "dateRange": days.date_range(),
        **breakdown_filter(args.get("breakdown")),
    }


def funnel_node(args: Mapping[str, Any]) -> dict[str, Any]:
    days: DayRange = args["days"]
    return {
        "kind": "FunnelsQuery",
        "series": [events_node(e) for e in args["steps"]],
        "funnelsFilter": {
            "funnelWindowInterval": args["window_days"],
            "funnelWindowIntervalUnit": "day",
            "funnelOrderType": "ordered",
            "funnelVizType": "steps",
        },
        "dateRange": days.date_range(),
        **breakdown_filter(args.get("breakdown")),
    }


def retention_cohorts(after: date, period: str, periods: int) -> tuple[date, date]:
    """The first cohort's start and the last cohort's last day. A week cohort starts on the
    Sunday on or before `after` (PostHog's default week_start_day): PostHog moves date_from
    back to the start of its period (`date_to_start_of_interval`)."""
    if period == "week":
        first = after - timedelta(days=after.isoweekday() % 7)
        return first, first + timedelta(days=7 * periods - 1)
    return after, after + timedelta(days=periods - 1)


def retention_node(args: Mapping[str, Any]) -> dict[str, Any]:
    first, last = retention_cohorts(args["after"], args["period"], args["periods"])
    return {
        "kind": "RetentionQuery",
        "retentionFilter": {
            "targetEntity": {"id": args["start_event"], "type": "events"},
            "returningEntity": {"id": args["return_event"], "type": "events"},
            "period": RETENTION_PERIOD_NAMES[args["period"]],
            "totalIntervals": args["periods"],
            "retentionType": RETENTION_TYPE_NAMES[args["retention_type"]],
        },
        "dateRange": {"date_from": args["after"].isoformat(), "date_to": last.isoformat()},
    }


def stickiness_node(args: Mapping[str, Any]) -> dict[str, Any]:
    days: DayRange = args["days"]
    return {
        "kind": "StickinessQuery",
        "series": [events_node(e) for e in args["events"]],
        "interval": args["interval"],
        "dateRange": days.date_range(),
    }


def lifecycle_node(args: Mapping[str, Any]) -> dict[str, Any]:
    days: DayRange = args["days"]
    return {
        "kind": "LifecycleQuery",
        "series": [events_node(args["event"])],
        "interval": args["interval"],
        "dateRange": days.date_range(),
    }


def paths_node(args: Mapping[str, Any]) -> dict[str, Any]:
    days: DayRange = args["days"]
    paths_filter: dict[str, Any] = {
        "includeEventTypes": [args["event_type"]],
        "stepLimit": args["step_limit"],
    }
    if args.get("start_point") is not None:
        paths_filter["startPoint"] = args["start_point"]
    if args.get("end_point") is not None:
        paths_filter["endPoint"] = args["end_point"]
    return {"kind": "PathsQuery", "pathsFilter": paths_filter, "dateRange": days.date_range()}


# -- answers ----------------------------------------------------------------------------------


def local_day_starts(days: Sequence[Any], timezone: str) -> pd.DatetimeIndex:
    """PostHog's `days` ("2024-01-01", the project's local dates) as the UTC instants at which
    those days begin in the project's time zone."""
    naive = pd.to_datetime(pd.Series(list(days), dtype=object), format="ISO8601")
    local = pd.DatetimeIndex(naive).tz_localize(
        timezone, ambiguous=False, nonexistent="shift_forward"
    )
    return local.tz_convert("UTC")


def local_instants(values: Sequence[Any], timezone: str) -> pd.DatetimeIndex:
    """Datetimes PostHog wrote with their offset (or without one: the project's wall time)."""
    out = []
    for value in values:
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward")
        out.append(stamp.tz_convert("UTC"))
    return pd.DatetimeIndex(out, dtype="datetime64[ns, UTC]")


def whole(value: Any, what: str) -> int:
    """A count PostHog sends as a number (often a float such as 3.0) as an int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ResponseFormatError(f"PostHog answered {what} with {value!r}, not a number.")
    if isinstance(value, float) and not value.is_integer():
        raise ResponseFormatError(f"PostHog answered {what} with {value!r}, not a whole count.")
    return int(value)


def breakdown_text(value: Any) -> str | None:
    """A breakdown value as text: PostHog's null stand-in (and an empty value) is missing,
    its stand-in for the values past the breakdown limit is "Other"; a one-item list (the
    multiple-breakdowns shape) is its item."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None or value == "" or value == BREAKDOWN_NULL:
        return None
    if value == BREAKDOWN_OTHER:
        return OTHER_LABEL
    # PostHog breaks down by the property's JSON text (true, 3, 2.5); numbers and booleans
    # that arrive as JSON values read the same way.
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _results_list(results: Any, kind: str) -> list[Any]:
    if not isinstance(results, list):
        raise ResponseFormatError(f"PostHog answered the {kind} query without a results list.")
    return results


def _series_name(item: Mapping[str, Any], events: Sequence[str]) -> str:
    """The series' event: PostHog numbers series by their place in the request
    (`action.order`); the label holds "event - breakdown value" with several series."""
    action = item.get("action") if isinstance(item.get("action"), dict) else {}
    order = action.get("order") if action else None
    if isinstance(order, int) and 0 <= order < len(events):
        return events[order]
    name = action.get("id") if action else None
    return str(name if name is not None else item.get("label"))


def parse_trends(results: Any, answer: Answer) -> pd.DataFrame:
    """One row per series, breakdown value and bucket (`days` are bucket starts)."""
    events = list(answer.arguments["events"])
    has_breakdown = answer.arguments.get("breakdown") is not None
    rows: dict[str, list[Any]] = {"date": [], "series": [], "breakdown_value": [], "value": []}
    for item in _results_list(results, "trends"):
        if not isinstance(item, dict) or not isinstance(item.get("days"), list):
            raise ResponseFormatError("PostHog answered a trends series without `days`.")
        days, data = item["days"], item.get("data") or []
        if len(days) != len(data):
            raise ResponseFormatError(
                "PostHog answered a trends series whose days and data differ."
            )
        series = _series_name(item, events)
        value = breakdown_text(item.get("breakdown_value")) if has_breakdown else None
        rows["date"].extend(local_day_starts(days, answer.timezone))
        rows["series"].extend([series] * len(days))
        rows["breakdown_value"].extend([value] * len(days))
        rows["value"].extend(whole(v, "a trends value") for v in data)
    frame = typed_frame("trends", rows, breakdown=has_breakdown)
    order = {name: i for i, name in enumerate(events)}
    keys = ["_order", "breakdown_value", "date"] if has_breakdown else ["_order", "date"]
    return _sorted(frame.assign(_order=frame["series"].map(order)), keys)


def parse_funnel(results: Any, answer: Answer) -> pd.DataFrame:
    """One row per step (per breakdown value): a list of steps, or a list of such lists."""
    steps = list(answer.arguments["steps"])
    has_breakdown = answer.arguments.get("breakdown") is not None
    items = _results_list(results, "funnel")
    funnels = items if items and all(isinstance(i, list) for i in items) else [items]
    rows: dict[str, list[Any]] = {key: [] for key in ("step", "event", "breakdown_value", "count")}
    for funnel in funnels:
        counts = _funnel_counts(funnel, len(steps))
        value = breakdown_text(funnel[0].get("breakdown_value")) if funnel else None
        if has_breakdown and not funnel:
            continue
        rows["step"].extend(range(1, len(steps) + 1))
        rows["event"].extend(steps)
        rows["breakdown_value"].extend([value] * len(steps))
        rows["count"].extend(counts)
    frame = typed_frame("funnel", rows, breakdown=has_breakdown)
    frame = _with_conversion_rates(frame, has_breakdown)
    return _sorted(frame, ["breakdown_value", "step"] if has_breakdown else ["step"])


def _funnel_counts(funnel: list[Any], n_steps: int) -> list[int]:
    """Persons per step, by PostHog's 0-based `order`; an empty answer (nobody did step 1)
    is zeros."""
    counts = [0] * n_steps
    for step in funnel:
        if not isinstance(step, dict) or not isinstance(step.get("order"), int):
            raise ResponseFormatError("PostHog answered a funnel step without its `order`.")
        if not 0 <= step["order"] < n_steps:
            raise ResponseFormatError(
                f"PostHog answered a funnel step {step['order']} of {n_steps}."
            )
        counts[step["order"]] = whole(step.get("count"), "a funnel step count")
    return counts


def _with_conversion_rates(frame: pd.DataFrame, has_breakdown: bool) -> pd.DataFrame:
    """count / step 1's count, and count / the previous step's count (1.0 for step 1, as
    PostHog shows it); a ratio over zero persons is missing."""
    counts = frame["count"].astype("Float64")
    keys = frame["breakdown_value"] if has_breakdown else pd.Series(0, index=frame.index)
    groups = counts.groupby(keys, dropna=False, sort=False)
    step_rate = _ratio(counts, groups.shift(1)).mask(frame["step"] == 1, 1.0)
    return frame.assign(
        conversion_rate=_ratio(counts, groups.transform("first")),
        step_conversion_rate=step_rate.astype("Float64"),
    )


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator != 0)).astype("Float64")


def parse_retention(results: Any, answer: Answer) -> pd.DataFrame:
    """One row per cohort and period. PostHog answers every cohort with every period; the
    cells past the last cohort's period (cohort i, period k with i + k beyond the cohorts)
    are not yet known, and are left out."""
    rows: dict[str, list[Any]] = {key: [] for key in ("cohort", "period", "persons", "cohort_size")}
    cohorts = _results_list(results, "retention")
    starts = local_instants(
        [c.get("date") for c in cohorts if isinstance(c, dict)], answer.timezone
    )
    if len(starts) != len(cohorts):
        raise ResponseFormatError("PostHog answered a retention cohort that is not an object.")
    for index, (cohort, start) in enumerate(zip(cohorts, starts, strict=True)):
        values = cohort.get("values")
        if not isinstance(values, list) or not values:
            raise ResponseFormatError("PostHog answered a retention cohort without `values`.")
        counts = [
            whole(v.get("count") if isinstance(v, dict) else v, "a retention count") for v in values
        ]
        for period in range(min(len(counts), len(cohorts) - index)):
            rows["cohort"].append(start)
            rows["period"].append(period)
            rows["persons"].append(counts[period])
            rows["cohort_size"].append(counts[0])
    frame = typed_frame("retention", rows)
    size = frame["cohort_size"].astype("Float64")
    frame["rate"] = (frame["persons"].astype("Float64") / size.where(size != 0)).astype("Float64")
    return _sorted(frame, ["cohort", "period"])


def parse_stickiness(results: Any, answer: Answer) -> pd.DataFrame:
    """One row per series and number of intervals: `days` are 1..N, `data` the persons
    active on exactly that many intervals of the range."""
    events = list(answer.arguments["events"])
    rows: dict[str, list[Any]] = {"series": [], "intervals": [], "persons": []}
    for item in _results_list(results, "stickiness"):
        if not isinstance(item, dict) or not isinstance(item.get("days"), list):
            raise ResponseFormatError("PostHog answered a stickiness series without `days`.")
        data = item.get("data") or []
        if len(data) != len(item["days"]):
            raise ResponseFormatError(
                "PostHog answered a stickiness series with unequal days/data."
            )
        rows["series"].extend([_series_name(item, events)] * len(data))
        rows["intervals"].extend(whole(d, "a stickiness interval") for d in item["days"])
        rows["persons"].extend(whole(v, "a stickiness count") for v in data)
    frame = typed_frame("stickiness", rows)
    order = {name: i for i, name in enumerate(events)}
    return _sorted(frame.assign(_order=frame["series"].map(order)), ["_order", "intervals"])


LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")


def parse_lifecycle(results: Any, answer: Answer) -> pd.DataFrame:
    """One row per bucket and status (dormant counts are negative, as PostHog sends them)."""
    rows: dict[str, list[Any]] = {"date": [], "status": [], "value": []}
    for item in _results_list(results, "lifecycle"):
        if not isinstance(item, dict) or item.get("status") not in LIFECYCLE_STATUSES:
            raise ResponseFormatError("PostHog answered a lifecycle series without its status.")
        days, data = item.get("days") or [], item.get("data") or []
        if len(days) != len(data):
            raise ResponseFormatError("PostHog answered a lifecycle series with unequal days/data.")
        rows["date"].extend(local_day_starts(days, answer.timezone))
        rows["status"].extend([item["status"]] * len(days))
        rows["value"].extend(whole(v, "a lifecycle count") for v in data)
    frame = typed_frame("lifecycle", rows)
    order = {status: i for i, status in enumerate(LIFECYCLE_STATUSES)}
    return _sorted(frame.assign(_order=frame["status"].map(order)), ["date", "_order"])


def parse_paths(results: Any, answer: Answer) -> pd.DataFrame:
    """One row per edge: PostHog names path items "<step>_<item>" (`1_/home`)."""
    rows: dict[str, list[Any]] = {"step": [], "source": [], "target": [], "persons": []}
    for edge in _results_list(results, "paths"):
        if not isinstance(edge, dict):
            raise ResponseFormatError("PostHog answered a paths edge that is not an object.")
        step, source = _path_item(edge.get("source"))
        rows["step"].append(step)
        rows["source"].append(source)
        rows["target"].append(_path_item(edge.get("target"))[1])
        rows["persons"].append(whole(edge.get("value"), "a paths edge count"))
    return _sorted(typed_frame("paths", rows), ["step", "source", "target"])


def _path_item(value: Any) -> tuple[int, str]:
    step, sep, item = str(value).partition("_")
    if not sep or not step.isdigit():
        raise ResponseFormatError(f"PostHog answered a path item {value!r} without its step.")
    return int(step), item


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    return out.drop(columns=[c for c in out.columns if c.startswith("_")])


@dataclass(frozen=True)
class Kind:
    """One insight kind: the accessor's name, PostHog's query kind, the request node built
    from the checked arguments, and the parser of the answer's `results`."""

    name: str
    query_kind: str
    node: Callable[[Mapping[str, Any]], dict[str, Any]]
    parse: Callable[[Any, Answer], pd.DataFrame]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("trends", "TrendsQuery", trends_node, parse_trends),
        Kind("funnel", "FunnelsQuery", funnel_node, parse_funnel),
        Kind("retention", "RetentionQuery", retention_node, parse_retention),
        Kind("stickiness", "StickinessQuery", stickiness_node, parse_stickiness),
        Kind("lifecycle", "LifecycleQuery", lifecycle_node, parse_lifecycle),
        Kind("paths", "PathsQuery", paths_node, parse_paths),
    )
}
BY_QUERY_KIND: dict[str, Kind] = {kind.query_kind: kind for kind in KINDS.values()}
