"""Local twins of PostHog's trends, funnels and retention, computed in pandas on an events frame.

Each twin takes the arguments of its `ph.<kind>(...)` insight and returns the same frame
(`_spec.typed_frame`), from the columns `uuid`, `event`, `person_id`, `timestamp` (and
`properties.<key>` for a breakdown). The definitions are PostHog's, read in its source:

- buckets and ranges: `_buckets` (project timezone, Sunday weeks, whole first week/month);
- funnels: the ordered-funnel UDF (funnel-udf/src/steps.rs): a step-k event extends the chain
  with the latest start among earlier-or-simultaneous step-(k-1) events, and counts when
  tk - t1 <= the window (inclusive). Different steps at the same timestamp DO convert (PostHog
  sorts them by step); one event never fills two steps of a chain (persons for whom that can
  happen, with a repeated step name, go through a port of the UDF's state machine);
- funnel breakdowns, `first_touch`: the value on the person's earliest funnel event in range
  that has one (PostHog boxes an event breakdown into a list, funnel_query_context.py, and
  takes `argMinIf(prop, timestamp, notEmpty(arrayFilter(x -> notEmpty(x), prop)))`,
  funnel_udf.py `_prop_vals`); NA when none has;
- retention `first_time`: the cohort of the person's first-ever start event in the frame.

Everything is vectorised (numpy codes, groupby, bincount): a million events take about a second.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from posthog_pandas.analytics._buckets import (
    Buckets,
    buckets_for,
    check_timezone,
    local_midnight,
    periods_for,
)
from posthog_pandas.analytics._spec import (
    COLUMNS,
    INTERVALS,
    MATHS,
    RETENTION_PERIODS,
    RETENTION_TYPES,
    _whole_day,
    choice,
    day_range,
    event_list,
    typed_frame,
)
from posthog_pandas.exceptions import ConfigurationError

__all__ = ["funnel", "retention", "trends"]

DayLike = date | datetime | str | None
_MICROS_PER_DAY = 86_400_000_000
_NAT = np.iinfo("int64").min  # a missing timestamp, as int64 nanoseconds


def trends(
    frame: pd.DataFrame,
    events: str | Sequence[str],
    *,
    math: str = "total",
    interval: str = "day",
    after: DayLike = None,
    before: DayLike = None,
    breakdown: str | None = None,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Events (`math="total"`) or distinct persons (`"dau"`) per bucket, one series per event.

    Every bucket of [after, before) appears, 0 where nothing happened; with `breakdown=`, one
    row per (series, value seen in that series' events, bucket), NA for events without it.
    """
    names = event_list(events)
    choice(math, "math", MATHS)
    choice(interval, "interval", INTERVALS)
    buckets = buckets_for(day_range(after, before), interval, check_timezone(timezone))
    needed = ["event", "timestamp", *(["person_id"] if math == "dau" else [])]
    columns = _require(frame, needed, breakdown, "trends")
    index = buckets.index_of(_stamps(frame))
    keep = (index >= 0) & (index < buckets.count) & frame["event"].isin(names).to_numpy()
    rows = frame.loc[keep, columns]
    bucket = index[keep]
    data: dict[str, list[Any]] = {"date": [], "series": [], "breakdown_value": [], "value": []}
    labels = list(buckets.labels())
    for name in names:
        mine = (rows["event"] == name).to_numpy()
        values, groups = _groups(rows.loc[mine], breakdown)
        counts = _counts(rows.loc[mine], bucket[mine], values, len(groups), buckets.count, math)
        for g, group in enumerate(groups):
            data["date"] += labels
            data["series"] += [name] * buckets.count
            data["breakdown_value"] += [group] * buckets.count
            data["value"] += counts[g].tolist()
    return typed_frame("trends", data, breakdown=breakdown is not None)


def funnel(
    frame: pd.DataFrame,
    steps: str | Sequence[str],
    *,
    window_days: int = 14,
    after: DayLike = None,
    before: DayLike = None,
    breakdown: str | None = None,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Persons reaching each step of an ordered funnel within `window_days` of step 1.

    Every step's event must lie in [after, before). A person counts once per step (their
    best attempt). With `breakdown=`, one block of steps per first-touch value (NA last).
    """
    names = event_list(steps, "steps")
    window = _positive_int(window_days, "window_days")
    days = day_range(after, before)
    check_timezone(timezone)
    _require(frame, ["uuid", "event", "person_id", "timestamp"], breakdown, "funnel")
    lo, hi = local_midnight(days.after, timezone), local_midnight(days.before, timezone)
    rows = FunnelRows.of(frame, names, lo, hi)
    reached = _reached_steps(rows, names, window * _MICROS_PER_DAY)
    persons = pd.Series(_first_touch(rows, breakdown), dtype="string")
    groups = _sorted_groups(persons.iloc[reached[0]]) if breakdown else [pd.NA]
    data: dict[str, list[Any]] = {k: [] for k in ("step", "event", "breakdown_value", "count")}
    for group in groups:
        for k, name in enumerate(names):
            who = persons.iloc[reached[k]]
            count = int(who.isna().sum() if group is pd.NA else (who == group).sum())
            data["step"].append(k + 1)
            data["event"].append(name)
            data["breakdown_value"].append(group)
            data["count"].append(count)
    data["conversion_rate"], data["step_conversion_rate"] = _rates(data["count"], len(names))
    return typed_frame("funnel", data, breakdown=breakdown is not None)


def retention(
    frame: pd.DataFrame,
    start_event: str,
    return_event: str | None = None,
    *,
    period: str = "day",
    periods: int = 7,
    after: DayLike = None,
    retention_type: str = "first_time",
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Cohorts of the `periods` periods from the one holding `after`, and who came back.

    `first_time`: a person's cohort is the period of their first-ever `start_event` in the
    frame (so pull enough history); `recurring`: every period in which they did it. Period 0
    is the cohort itself; period i counts its members with a `return_event` i periods later.
    """
    start_name = event_list(start_event, "start_event")[0]
    return_name = start_name if return_event is None else event_list(return_event)[0]
    choice(period, "period", RETENTION_PERIODS)
    choice(retention_type, "retention_type", RETENTION_TYPES)
    count = _positive_int(periods, "periods")
    first_day = _whole_day(after, "after")
    buckets = periods_for(first_day, period, count, check_timezone(timezone))
    _require(frame, ["event", "person_id", "timestamp"], None, "retention")
    persons = pd.factorize(frame["person_id"])[0]  # NA → -1
    stamps = _stamps(frame)
    index = buckets.index_of(stamps)
    usable = (persons >= 0) & (stamps != _NAT)
    starts = _named(frame, start_name) & usable
    if retention_type == "first_time":
        firsts = pd.Series(stamps[starts]).groupby(persons[starts]).min()
        cohorts = _pairs(firsts.index.to_numpy(), buckets.index_of(firsts.to_numpy()), count)
    else:
        cohorts = _pairs(persons[starts], index[starts], count)
    returns = _named(frame, return_name) & usable
    returned = _pairs(persons[returns], index[returns], count)
    return _retention_table(cohorts, returned, buckets, count)


# ---------------------------------------------------------------- inputs


def _require(
    frame: pd.DataFrame, columns: list[str], breakdown: str | None, kind: str
) -> list[str]:
    """The columns a twin reads; an error naming the missing ones and how to pull them."""
    if not isinstance(frame, pd.DataFrame):
        raise ConfigurationError(f"{kind} needs an events DataFrame; got {type(frame).__name__}.")
    if breakdown is not None:
        columns = [*columns, _breakdown_column(breakdown)]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        listed = ", ".join(repr(c) for c in missing)
        wanted = ", ".join(repr(c) for c in columns if c not in ("uuid", "timestamp"))
        raise ConfigurationError(
            f"The events frame has no {listed} column: the {kind} twin reads {columns}. "
            f"Pull them with ph.events(columns=[{wanted}]) (uuid and timestamp always come)."
        )
    return columns


def _breakdown_column(breakdown: str) -> str:
    if not isinstance(breakdown, str) or not breakdown:
        raise ConfigurationError(
            f"breakdown must be an event property name such as '$browser'; got {breakdown!r}."
        )
    return breakdown if breakdown.startswith("properties.") else f"properties.{breakdown}"


def _stamps(frame: pd.DataFrame) -> np.ndarray:
    """`timestamp` as int64 ns since the epoch, UTC (naive stamps are read as UTC)."""
    stamps = pd.DatetimeIndex(frame["timestamp"])
    stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    return np.asarray(stamps.as_unit("ns").asi8)


def _named(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Whether each event is `name` (False where the name is missing)."""
    return np.asarray(frame["event"].eq(name).to_numpy(dtype=bool, na_value=False))


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigurationError(f"{name} must be a positive whole number; got {value!r}.")
    return int(value)


def _as_text(value: Any) -> Any:
    """A property value as PostHog's breakdown shows it: its JSON text (true, 3, 2.5, 3.0,
    {"a":1}); missing or "" is NA (PostHog's null breakdown value)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value == "" or value != value:  # NaN != NaN
        return pd.NA
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _texts(column: pd.Series) -> pd.Series:
    """A breakdown property column as PostHog's breakdown values (see `_as_text`)."""
    if isinstance(column.dtype, pd.StringDtype):
        text = column.astype("string")
        return text.mask(text == "")
    return column.map(_as_text).astype("string")


def _sorted_groups(values: pd.Series) -> list[Any]:
    """Distinct breakdown values, sorted, NA (events without the property) last."""
    present = sorted(set(values.dropna().tolist()))
    return [*present, pd.NA] if values.isna().any() else present


# ---------------------------------------------------------------- trends


def _groups(rows: pd.DataFrame, breakdown: str | None) -> tuple[np.ndarray, list[Any]]:
    """Each row's group number and the groups: one (NA) without a breakdown."""
    if breakdown is None:
        return np.zeros(len(rows), dtype="int64"), [pd.NA]
    values = _texts(rows[_breakdown_column(breakdown)])
    groups = _sorted_groups(values)
    codes = pd.Categorical(values, categories=[g for g in groups if g is not pd.NA]).codes
    return np.where(codes < 0, len(groups) - 1, codes).astype("int64"), groups


def _counts(
    rows: pd.DataFrame, bucket: np.ndarray, group: np.ndarray, groups: int, buckets: int, math: str
) -> np.ndarray:
    """A (groups x buckets) table of events, or of distinct persons for `dau`."""
    cell = group * buckets + bucket
    if math == "dau":
        persons, people = pd.factorize(rows["person_id"])
        known = persons >= 0
        pairs = _distinct(cell[known] * max(len(people), 1) + persons[known])
        cell = pairs // max(len(people), 1)
    return np.bincount(cell, minlength=groups * buckets).reshape(groups, buckets)


# ---------------------------------------------------------------- funnels


@dataclass(frozen=True)
class FunnelRows:
    """A funnel's events in [lo, hi) as arrays in (person, time) order: person code, µs
    since `lo`, which distinct step name each is, and their positions in the frame."""

    person: np.ndarray
    micros: np.ndarray
    name: np.ndarray  # index into `names`
    names: list[str]  # the distinct step names
    position: np.ndarray
    frame: pd.DataFrame

    @classmethod
    def of(cls, frame: pd.DataFrame, names: list[str], lo: int, hi: int) -> FunnelRows:
        distinct = list(dict.fromkeys(names))
        name = pd.Index(distinct).get_indexer(pd.Index(frame["event"]))
        person = pd.factorize(frame["person_id"])[0]
        stamps = _stamps(frame)
        position = np.flatnonzero((name >= 0) & (person >= 0) & (stamps >= lo) & (stamps < hi))
        micros = (stamps[position] - lo) // 1000
        # Ties keep the frame's order: same-named events are interchangeable there, and
        # first_touch breaks its own ties by uuid.
        order = np.lexsort((micros, person[position]))
        position = position[order]
        return cls(person[position], micros[order], name[position], distinct, position, frame)

    def is_step(self, step_name: str) -> np.ndarray:
        return np.asarray(self.name == self.names.index(step_name))


def _reached_steps(rows: FunnelRows, steps: list[str], window: int) -> list[np.ndarray]:
    """For each step, the person codes who reached it: by the vectorised chains, except for
    the few persons whose events of different steps tie at one instant while a step name
    repeats, who are followed with PostHog's own state machine (`_udf_max_step`)."""
    reached = _reached_by_chains(rows, steps, window)
    tied = _tied_repeats(rows, steps)
    if not len(tied):
        return reached
    exact = np.array([_udf_max_step(rows, steps, window, person) for person in tied])
    return [
        np.union1d(np.setdiff1d(persons, tied), tied[exact > k])
        for k, persons in enumerate(reached)
    ]


def _reached_by_chains(rows: FunnelRows, steps: list[str], window: int) -> list[np.ndarray]:
    """For each step, the person codes who reached it.

    `start` holds, per row, the latest chain start (a rank into the distinct times, -1 for
    none) of a chain ending with that row's event as step k; a step-k event takes the best
    start among step-(k-1) events at or before it, and keeps it while within the window.
    """
    times, rank = _ranks(rows.micros)
    start = np.where(rows.is_step(steps[0]), rank, -1)
    reached = [_distinct(rows.person[start >= 0])]
    for previous, step in itertools.pairwise(steps):
        best = _best_prior_start(rows, start, len(times) + 1, same_event=previous == step)
        found = rows.is_step(step) & (best >= 0)
        found[found] = rows.micros[found] - times[best[found]] <= window
        start = np.where(found, best, -1)
        reached.append(_distinct(rows.person[found]))
    return reached


def _tied_repeats(rows: FunnelRows, steps: list[str]) -> np.ndarray:
    """Person codes with events of different step names at one instant, when a step name
    repeats: there one event may match two steps of a chain, which PostHog forbids."""
    if len(set(steps)) == len(steps) or not len(rows.person):
        return np.zeros(0, dtype="int64")
    instants = pd.DataFrame({"p": rows.person, "us": rows.micros, "name": rows.name})
    names = instants.groupby(["p", "us"], sort=False)["name"].nunique()
    return _distinct(names[names > 1].index.get_level_values("p").to_numpy(dtype="int64"))


def _udf_max_step(rows: FunnelRows, steps: list[str], window: int, person: int) -> int:
    """How many steps one person reached, by PostHog's ordered-funnel state machine
    (funnel-udf/src/steps.rs): per step, the latest chain start (and the events it used) that
    reached it; events of one instant with different steps are tried in step order, and a
    chain never uses one event twice."""
    mine = np.flatnonzero(rows.person == person)
    entered: list[tuple[int, tuple[int, ...]] | None] = [None] * (len(steps) + 1)
    best = 0
    for instant, group in itertools.groupby(mine.tolist(), key=lambda i: int(rows.micros[i])):
        events = [(i, _step_numbers(steps, rows.names[rows.name[i]])) for i in group]
        entered[0] = (instant, ())
        if all(numbers == events[0][1] for _, numbers in events):
            tries = [(i, n, False) for i, numbers in events for n in reversed(numbers)]
        else:  # one try per (event, step), in step order
            tries = sorted(((i, n, True) for i, numbers in events for n in numbers), key=_step)
        for event, step, tied in tries:
            previous, current = entered[step - 1], entered[step]
            if previous is None or instant - previous[0] > window:
                continue
            if current is not None and current[0] == previous[0]:
                continue  # this start already reached the step
            if tied and event in previous[1]:
                continue  # the chain used this event for an earlier step
            entered[step] = (previous[0], (*previous[1], event))
            best = max(best, step)
        if entered[-1] is not None:
            break
    return best


def _step_numbers(steps: list[str], name: str) -> tuple[int, ...]:
    return tuple(k + 1 for k, step in enumerate(steps) if step == name)


def _step(attempt: tuple[int, int, bool]) -> int:
    return attempt[1]


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values, and each value's rank among them."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.ones(len(values), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    rank = np.empty(len(values), dtype="int64")
    rank[order] = np.cumsum(new) - 1
    return ordered[new], rank


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (by sorting: faster here than numpy's hashed unique)."""
    ordered = np.sort(values)
    keep = np.ones(len(ordered), dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def _best_prior_start(
    rows: FunnelRows, start: np.ndarray, span: int, *, same_event: bool
) -> np.ndarray:
    """Per row, the max `start` among the person's earlier rows, and among their rows at the
    same instant (PostHog chains steps of one timestamp), never the row itself; -1 for none.

    One cumulative max over all persons: each person's values (ranks below `span`) are lifted
    above every earlier person's by person * span, so it never crosses persons."""
    if not len(start):
        return start
    base = rows.person.astype("int64") * span
    running = np.maximum.accumulate(np.where(start >= 0, base + start, base - 1))
    if same_event:  # strictly earlier rows (ties among same-named events in frame order)
        running = np.concatenate(([-1], running[:-1]))
    else:  # the whole instant: a row sees the other step's rows tied with it
        new = np.ones(len(start), dtype=bool)
        new[1:] = (rows.person[1:] != rows.person[:-1]) | (rows.micros[1:] != rows.micros[:-1])
        last = np.append(np.flatnonzero(new)[1:] - 1, len(new) - 1)
        running = running[last[np.cumsum(new) - 1]]
    return np.asarray(np.maximum(running - base, -1))


def _first_touch(rows: FunnelRows, breakdown: str | None) -> np.ndarray:
    """Per person code, the breakdown value of their earliest funnel event that has one (NA
    when none has): PostHog boxes an event breakdown into a one-item list and takes
    argMinIf(prop, timestamp, notEmpty(arrayFilter(x -> notEmpty(x), prop)))."""
    people = int(rows.person.max()) + 1 if len(rows.person) else 0
    values = np.full(people, pd.NA, dtype=object)
    if breakdown is None or not people:
        return values
    texts = _texts(rows.frame[_breakdown_column(breakdown)].take(rows.position))
    valued = texts.notna().to_numpy()
    candidates = pd.DataFrame(
        {
            "p": rows.person[valued],
            "us": rows.micros[valued],
            "uuid": rows.frame["uuid"].take(rows.position[valued]).to_numpy(),
            "value": texts.to_numpy()[valued],
        }
    )
    # Ties at one instant (PostHog leaves them to chance) go to the smaller uuid.
    firsts = candidates.sort_values(["p", "us", "uuid"]).drop_duplicates("p")
    values[firsts["p"].to_numpy()] = firsts["value"].to_numpy()
    return values


def _rates(counts: list[int], steps: int) -> tuple[list[Any], list[Any]]:
    """count / step 1's count and count / the previous step's count (NA over zero; step 1's
    step rate is 1.0, as the issue defines it)."""
    overall: list[Any] = []
    stepwise: list[Any] = []
    for i, count in enumerate(counts):
        first = counts[i - i % steps]
        overall.append(count / first if first else pd.NA)
        if i % steps == 0:
            stepwise.append(1.0)
        else:
            stepwise.append(count / counts[i - 1] if counts[i - 1] else pd.NA)
    return overall, stepwise


# ---------------------------------------------------------------- retention


def _pairs(persons: np.ndarray, periods: np.ndarray, count: int) -> np.ndarray:
    """Distinct (person, period) pairs inside the periods, as person * count + period."""
    inside = (periods >= 0) & (periods < count)
    return _distinct(persons[inside].astype("int64") * count + periods[inside])


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each key is in `sorted_keys` (sorted and distinct)."""
    at = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
    return sorted_keys[at] == keys if len(sorted_keys) else np.zeros(len(keys), bool)


def _retention_table(
    cohorts: np.ndarray, returned: np.ndarray, buckets: Buckets, count: int
) -> pd.DataFrame:
    """Rows (cohort, period) for period < count - cohort: who of each cohort came back."""
    cohort_of = cohorts % count
    sizes = np.bincount(cohort_of, minlength=count)
    back = np.zeros((count, count), dtype="int64")  # [cohort, period]
    back[:, 0] = sizes
    for offset in range(1, count):
        later = cohort_of + offset < count
        came = _contains(returned, cohorts[later] + offset)
        back[:, offset] = np.bincount(cohort_of[later][came], minlength=count)
    labels = list(buckets.labels())
    data: dict[str, list[Any]] = {k: [] for k in COLUMNS["retention"]}
    for c in range(count):
        for offset in range(count - c):
            data["cohort"].append(labels[c])
            data["period"].append(offset)
            data["persons"].append(int(back[c, offset]))
            data["cohort_size"].append(int(sizes[c]))
            data["rate"].append(back[c, offset] / sizes[c] if sizes[c] else pd.NA)
    return typed_frame("retention", data)
