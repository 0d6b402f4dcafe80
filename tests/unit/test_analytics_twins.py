"""The local twins of PostHog's insights, on small event sets whose answers are worked out by hand.

Each expectation is written out in full (every row, every column) so a change of definition
shows up as a diff; the definitions are PostHog's (see posthog_pandas/analytics/twins.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from posthog_pandas.analytics import twins  # the package registers DataFrame.posthog
from posthog_pandas.analytics._spec import COLUMNS, columns_for
from posthog_pandas.exceptions import ConfigurationError

NA = pd.NA


def events(
    *rows: tuple[str, str | None, str] | tuple[str, str | None, str, str | None],
) -> pd.DataFrame:
    """An events frame as ph.events() returns it: (event, person_id, UTC time[, $browser])."""
    return pd.DataFrame(
        {
            "uuid": pd.Series([f"0000-{i:04d}" for i in range(len(rows))], dtype="string"),
            "event": pd.Series([r[0] for r in rows], dtype="string"),
            "distinct_id": pd.Series([f"d{i}" for i in range(len(rows))], dtype="string"),
            "person_id": pd.Series([r[1] for r in rows], dtype="string"),
            "timestamp": pd.to_datetime([r[2] for r in rows], utc=True, format="ISO8601"),
            "properties.$browser": pd.Series(
                [r[3] if len(r) > 3 else None for r in rows],  # type: ignore[misc]
                dtype="string",
            ),
        }
    )


def utc(*stamps: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(s, tz="UTC") for s in stamps]


def expect(kind: str, breakdown: bool = False, **columns: list[Any]) -> pd.DataFrame:
    from posthog_pandas.analytics._spec import typed_frame

    return typed_frame(kind, columns, breakdown=breakdown)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want)


# ------------------------------------------------------------------------------------ trends


def test_trends_counts_events_per_day_zero_filled_with_the_range_edges_exact() -> None:
    frame = events(
        ("$pageview", "p1", "2024-01-01T00:00:00Z"),  # the first instant of `after`: in
        ("$pageview", "p1", "2024-01-01T12:00:00Z"),
        ("$pageview", "p2", "2024-01-03T23:59:59.999999Z"),  # the last instant: in
        ("$pageview", "p2", "2024-01-04T00:00:00Z"),  # `before` itself: out
        ("$pageview", "p3", "2023-12-31T23:59:59Z"),  # out
        ("signup", "p1", "2024-01-02T10:00:00Z"),  # another event: not this series
    )
    got = twins.trends(frame, "$pageview", after="2024-01-01", before="2024-01-04")
    assert_same(
        got,
        expect(
            "trends",
            date=utc("2024-01-01", "2024-01-02", "2024-01-03"),
            series=["$pageview"] * 3,
            value=[2, 0, 1],
        ),
    )


def test_trends_dau_counts_a_person_once_whatever_their_distinct_ids() -> None:
    frame = events(
        ("$pageview", "p1", "2024-01-01T01:00:00Z"),
        ("$pageview", "p1", "2024-01-01T02:00:00Z"),  # another distinct_id, same person
        ("$pageview", "p2", "2024-01-01T03:00:00Z"),
        ("$pageview", None, "2024-01-01T04:00:00Z"),  # no person: an event, not a user
        ("$pageview", "p2", "2024-01-02T03:00:00Z"),
    )
    total = twins.trends(frame, "$pageview", after="2024-01-01", before="2024-01-03")
    dau = twins.trends(frame, "$pageview", math="dau", after="2024-01-01", before="2024-01-03")
    assert total["value"].tolist() == [4, 1]
    assert dau["value"].tolist() == [2, 1]


def test_trends_series_keep_their_order_and_a_quiet_range_is_all_zeros() -> None:
    frame = events(("a", "p1", "2024-01-01T05:00:00Z"))
    got = twins.trends(frame, ["b", "a"], after="2024-01-01", before="2024-01-03")
    assert_same(
        got,
        expect(
            "trends",
            date=utc("2024-01-01", "2024-01-02") * 2,
            series=["b", "b", "a", "a"],
            value=[0, 0, 1, 0],
        ),
    )


def test_trends_weeks_start_on_sunday_and_the_first_week_is_whole() -> None:
    # 2024-01-03 is a Wednesday: its week starts on Sunday 2023-12-31, and PostHog reads that
    # whole week (date_from_with_adjusted_start_of_interval), labelled with its own start.
    frame = events(
        ("e", "p1", "2023-12-30T23:59:59Z"),  # Saturday before: out
        ("e", "p1", "2023-12-31T00:00:00Z"),  # Sunday, before `after`: in the first week
        ("e", "p2", "2024-01-06T23:59:59Z"),  # Saturday: still the first week
        ("e", "p1", "2024-01-07T00:00:00Z"),  # Sunday: the second week
        ("e", "p1", "2024-01-09T00:00:00Z"),  # `before` cuts the second week: out
    )
    got = twins.trends(
        frame, "e", math="dau", interval="week", after="2024-01-03", before="2024-01-09"
    )
    assert_same(
        got,
        expect("trends", date=utc("2023-12-31", "2024-01-07"), series=["e", "e"], value=[2, 1]),
    )


def test_trends_months_are_calendar_months_from_the_one_holding_after() -> None:
    frame = events(
        ("e", "p1", "2024-01-02T00:00:00Z"),  # before `after`, in its month: in
        ("e", "p1", "2024-02-29T12:00:00Z"),
        ("e", "p2", "2024-02-01T00:00:00Z"),
        ("e", "p2", "2024-03-10T00:00:00Z"),  # `before`: out
    )
    got = twins.trends(frame, "e", interval="month", after="2024-01-15", before="2024-03-10")
    assert got["date"].tolist() == utc("2024-01-01", "2024-02-01", "2024-03-01")
    assert got["value"].tolist() == [1, 2, 0]


def test_trends_breakdown_values_sorted_with_missing_values_last_per_series() -> None:
    frame = events(
        ("a", "p1", "2024-01-01T01:00:00Z", "Safari"),
        ("a", "p2", "2024-01-01T02:00:00Z", "Chrome"),
        ("a", "p2", "2024-01-02T02:00:00Z", None),
        ("b", "p1", "2024-01-02T01:00:00Z", "Firefox"),
    )
    got = twins.trends(
        frame, ["a", "b"], after="2024-01-01", before="2024-01-03", breakdown="$browser"
    )
    assert_same(
        got,
        expect(
            "trends",
            breakdown=True,
            date=utc("2024-01-01", "2024-01-02") * 4,
            series=["a"] * 6 + ["b"] * 2,
            breakdown_value=["Chrome", "Chrome", "Safari", "Safari", NA, NA, "Firefox", "Firefox"],
            value=[1, 0, 1, 0, 0, 1, 0, 1],
        ),
    )


def test_trends_in_a_project_timezone_bucket_local_days_labelled_as_utc_instants() -> None:
    frame = events(
        ("e", "p1", "2024-01-01T08:00:00Z"),  # 00:00 on Jan 1 in Los Angeles: in
        ("e", "p1", "2024-01-01T07:59:59Z"),  # 23:59:59 on Dec 31 there: out
        ("e", "p2", "2024-01-02T07:59:59Z"),  # still Jan 1 there
        ("e", "p2", "2024-01-02T08:00:00Z"),  # Jan 2
    )
    got = twins.trends(
        frame, "e", after="2024-01-01", before="2024-01-03", timezone="America/Los_Angeles"
    )
    assert_same(
        got,
        expect(
            "trends",
            date=utc("2024-01-01T08:00", "2024-01-02T08:00"),
            series=["e", "e"],
            value=[2, 1],
        ),
    )


def test_trends_days_across_a_daylight_saving_change_keep_local_midnights() -> None:
    # Los Angeles moves from -08:00 to -07:00 on 2024-03-10: that day lasts 23 hours.
    frame = events(
        ("e", "p1", "2024-03-10T07:59:59Z"),  # 23:59:59 on Mar 9 there
        ("e", "p1", "2024-03-11T06:59:59Z"),  # 23:59:59 on Mar 10 (now -07:00)
        ("e", "p1", "2024-03-11T07:00:00Z"),  # Mar 11
    )
    got = twins.trends(
        frame, "e", after="2024-03-09", before="2024-03-12", timezone="America/Los_Angeles"
    )
    assert got["date"].tolist() == utc("2024-03-09T08:00", "2024-03-10T08:00", "2024-03-11T07:00")
    assert got["value"].tolist() == [1, 1, 1]


def test_breakdown_values_are_the_json_text_posthog_shows_and_empty_is_missing() -> None:
    frame = events(("e", "p1", "2024-01-01T01:00:00Z"), ("e", "p1", "2024-01-01T02:00:00Z"))
    frame = pd.concat([frame] * 3, ignore_index=True)
    frame["properties.plan"] = pd.Series([True, 3, 2.5, 3.0, {"a": 1}, ""], dtype=object)
    got = twins.trends(frame, "e", after="2024-01-01", before="2024-01-02", breakdown="plan")
    assert got["breakdown_value"].tolist() == ["2.5", "3", "3.0", "true", '{"a":1}', NA]
    frame["properties.$browser"] = pd.Series(["", "Chrome"] * 3, dtype="string")
    got = twins.trends(frame, "e", after="2024-01-01", before="2024-01-02", breakdown="$browser")
    assert got["breakdown_value"].tolist() == ["Chrome", NA]  # "" is PostHog's null value too


# ------------------------------------------------------------------------------------ funnels


def funnel_frame(
    counts: list[int], names: list[str], breakdown: list[Any] | None = None
) -> pd.DataFrame:
    """The funnel result for one block of steps (or one per breakdown value)."""
    blocks = breakdown if breakdown is not None else [None]
    size = len(names)
    data: dict[str, list[Any]] = {k: [] for k in COLUMNS["funnel"]}
    for b, value in enumerate(blocks):
        block = counts[b * size : (b + 1) * size]
        for k, count in enumerate(block):
            data["step"].append(k + 1)
            data["event"].append(names[k])
            data["breakdown_value"].append(value)
            data["count"].append(count)
            data["conversion_rate"].append(count / block[0] if block[0] else NA)
            previous = block[k - 1] if k else None
            data["step_conversion_rate"].append(
                1.0 if previous is None else (count / previous if previous else NA)
            )
    return expect("funnel", breakdown=breakdown is not None, **data)


STEPS = ["view", "signup", "buy"]


def test_funnel_counts_each_person_once_at_their_best_attempt() -> None:
    frame = events(
        # p1 converts fully, with a retry of step 1 in between
        ("view", "p1", "2024-01-01T10:00:00Z"),
        ("view", "p1", "2024-01-01T11:00:00Z"),
        ("signup", "p1", "2024-01-02T10:00:00Z"),
        ("buy", "p1", "2024-01-03T10:00:00Z"),
        # p2 signs up before viewing: only step 1
        ("signup", "p2", "2024-01-01T09:00:00Z"),
        ("view", "p2", "2024-01-01T10:00:00Z"),
        # p3: two distinct_ids of one person; view, then signup from the other device
        ("view", "p3", "2024-01-02T10:00:00Z"),
        ("signup", "p3", "2024-01-02T11:00:00Z"),
        # p4 never views
        ("buy", "p4", "2024-01-02T11:00:00Z"),
    )
    got = twins.funnel(frame, STEPS, after="2024-01-01", before="2024-01-08")
    assert_same(got, funnel_frame([3, 2, 1], STEPS))
    assert got["conversion_rate"].tolist() == [1.0, 2 / 3, 1 / 3]
    assert got["step_conversion_rate"].tolist() == [1.0, 2 / 3, 0.5]


def test_funnel_window_is_inclusive_to_the_microsecond_and_counts_from_step_one() -> None:
    frame = events(
        ("view", "in", "2024-01-01T00:00:00Z"),
        ("signup", "in", "2024-01-08T00:00:00Z"),
        ("buy", "in", "2024-01-15T00:00:00Z"),  # exactly 14 days after step 1: converts
        ("view", "out", "2024-01-01T00:00:00Z"),
        ("signup", "out", "2024-01-02T00:00:00Z"),
        ("buy", "out", "2024-01-15T00:00:00.000001Z"),  # 14 days and 1 µs: too late
    )
    got = twins.funnel(frame, STEPS, window_days=14, after="2024-01-01", before="2024-02-01")
    assert got["count"].tolist() == [2, 2, 1]


def test_funnel_a_later_first_step_restarts_the_window() -> None:
    frame = events(
        ("view", "p1", "2024-01-01T00:00:00Z"),
        ("view", "p1", "2024-01-10T00:00:00Z"),
        ("signup", "p1", "2024-01-20T00:00:00Z"),  # 19 days after the first, 10 after the second
    )
    got = twins.funnel(frame, ["view", "signup"], after="2024-01-01", before="2024-02-01")
    assert got["count"].tolist() == [1, 1]


def test_funnel_steps_at_the_same_timestamp_convert_as_in_posthog() -> None:
    """The issue said they should not; PostHog's funnel UDF (funnel-udf/src/steps.rs) sorts
    different steps at one timestamp by step and chains them, so they do. One event still
    never fills two steps."""
    frame = events(
        ("signup", "p1", "2024-01-01T10:00:00Z"),  # listed first, same instant as the view
        ("view", "p1", "2024-01-01T10:00:00Z"),
        ("view", "p2", "2024-01-01T10:00:00Z"),  # alone: one event, not two steps
    )
    got = twins.funnel(frame, ["view", "signup"], after="2024-01-01", before="2024-01-02")
    assert got["count"].tolist() == [2, 1]
    repeated = events(
        ("view", "once", "2024-01-01T10:00:00Z"),
        ("view", "twice", "2024-01-01T10:00:00Z"),
        ("view", "twice", "2024-01-01T10:00:00Z"),
    )
    got = twins.funnel(repeated, ["view", "view"], after="2024-01-01", before="2024-01-02")
    assert got["count"].tolist() == [2, 1]


def test_funnel_events_at_one_instant_never_fill_two_steps_of_a_chain() -> None:
    """With a repeated step name (view, signup, view), a view and a signup at one instant:
    PostHog's UDF tries them in step order, view as step 1, signup as step 2, and then refuses
    the same view as step 3 (`already_used_event`, funnel-udf/src/steps.rs); a second view at
    that instant may be step 3."""
    frame = events(
        ("view", "one", "2024-01-01T10:00:00Z"),
        ("signup", "one", "2024-01-01T10:00:00Z"),
        ("view", "two", "2024-01-01T10:00:00Z"),
        ("view", "two", "2024-01-01T10:00:00Z"),
        ("signup", "two", "2024-01-01T10:00:00Z"),
        ("view", "later", "2024-01-01T10:00:00Z"),
        ("signup", "later", "2024-01-01T10:00:00Z"),
        ("view", "later", "2024-01-01T11:00:00Z"),  # a later view: step 3
    )
    got = twins.funnel(frame, ["view", "signup", "view"], after="2024-01-01", before="2024-01-02")
    assert got["count"].tolist() == [3, 3, 2]
    starts_with_signup = events(
        ("view", "p1", "2024-01-01T10:00:00Z"),
        ("signup", "p1", "2024-01-01T10:00:00Z"),
    )
    got = twins.funnel(
        starts_with_signup,
        ["signup", "view", "signup"],
        after="2024-01-01",
        before="2024-01-02",
    )
    assert got["count"].tolist() == [1, 1, 0]


def test_funnel_every_step_must_fall_in_the_range() -> None:
    frame = events(
        ("view", "early", "2023-12-31T23:00:00Z"),  # step 1 before `after`
        ("signup", "early", "2024-01-01T01:00:00Z"),
        ("view", "late", "2024-01-01T23:00:00Z"),
        ("signup", "late", "2024-01-02T00:00:00Z"),  # step 2 at `before`
    )
    got = twins.funnel(frame, ["view", "signup"], after="2024-01-01", before="2024-01-02")
    assert_same(got, funnel_frame([1, 0], ["view", "signup"]))


def test_funnel_range_is_whole_days_of_the_project_timezone() -> None:
    frame = events(
        ("view", "p1", "2024-01-01T07:59:59Z"),  # Dec 31 in Los Angeles: out
        ("signup", "p1", "2024-01-01T09:00:00Z"),
        ("view", "p2", "2024-01-01T08:00:00Z"),  # Jan 1 there
        ("signup", "p2", "2024-01-02T07:59:59Z"),  # still Jan 1 there
    )
    got = twins.funnel(
        frame,
        ["view", "signup"],
        after="2024-01-01",
        before="2024-01-02",
        timezone="America/Los_Angeles",
    )
    assert got["count"].tolist() == [1, 1]


def test_funnel_with_nobody_has_zero_counts_and_no_conversion_rates() -> None:
    got = twins.funnel(events(), ["view", "signup"], after="2024-01-01", before="2024-01-02")
    assert_same(got, funnel_frame([0, 0], ["view", "signup"]))
    assert got["conversion_rate"].isna().all()
    assert got["step_conversion_rate"].tolist() == [1.0, NA]


def test_funnel_breakdown_takes_the_value_on_the_earliest_funnel_event_that_has_one() -> None:
    """PostHog's first_touch: the event breakdown is boxed into a list
    (funnel_query_context.py) and the value is argMinIf(prop, timestamp,
    notEmpty(arrayFilter(x -> notEmpty(x), prop))) over ifNull(toString(property), ''):
    the earliest funnel event of the person, of any step, with a non-empty value."""
    frame = events(
        ("view", "p1", "2024-01-01T01:00:00Z", "Chrome"),
        ("signup", "p1", "2024-01-01T02:00:00Z", "Safari"),  # later: p1 stays Chrome
        ("signup", "p2", "2024-01-01T00:30:00Z", "Safari"),  # a step-2 event first: Safari
        ("view", "p2", "2024-01-01T01:00:00Z", "Chrome"),
        ("signup", "p2", "2024-01-01T03:00:00Z", "Chrome"),
        ("view", "p3", "2024-01-01T01:00:00Z", None),  # no browser first: skipped ...
        ("view", "p3", "2024-01-01T01:30:00Z", ""),  # ... as is an empty one
        ("signup", "p3", "2024-01-01T03:00:00Z", "Chrome"),  # Chrome
        ("view", "p4", "2024-01-01T01:00:00Z", "Chrome"),
        ("other", "p4", "2024-01-01T00:00:00Z", "Edge"),  # not a funnel event
        ("view", "p5", "2024-01-01T01:00:00Z", None),  # never a value: NA, listed last
        ("view", "p6", "2024-01-01T05:00:00Z", "Safari"),  # a tie at one instant: the
        ("view", "p6", "2024-01-01T05:00:00Z", "Chrome"),  # smaller uuid's value, Safari
    )
    got = twins.funnel(
        frame, ["view", "signup"], after="2024-01-01", before="2024-01-02", breakdown="$browser"
    )
    assert_same(
        got,
        funnel_frame([3, 2, 2, 1, 1, 0], ["view", "signup"], breakdown=["Chrome", "Safari", NA]),
    )


# ------------------------------------------------------------------------------------ retention


def retention_frame(cohorts: list[str], cells: list[list[int]]) -> pd.DataFrame:
    """cells[c] = [cohort size, returned after 1 period, ...] for the cohort starting cohorts[c]."""
    data: dict[str, list[Any]] = {k: [] for k in COLUMNS["retention"]}
    for cohort, row in zip(cohorts, cells, strict=True):
        for period, persons in enumerate(row):
            data["cohort"].append(pd.Timestamp(cohort, tz="UTC"))
            data["period"].append(period)
            data["persons"].append(persons)
            data["cohort_size"].append(row[0])
            data["rate"].append(persons / row[0] if row[0] else NA)
    return expect("retention", **data)


RETENTION_EVENTS = events(
    ("signup", "old", "2023-12-25T10:00:00Z"),  # first signup before the range: no cohort
    ("signup", "old", "2024-01-02T10:00:00Z"),
    ("signup", "p1", "2024-01-01T00:00:00Z"),
    ("signup", "p1", "2024-01-02T09:00:00Z"),
    ("login", "p1", "2024-01-03T23:59:59Z"),
    ("signup", "p2", "2024-01-01T23:59:59Z"),
    ("login", "p2", "2024-01-02T00:00:00Z"),
    ("signup", "p3", "2024-01-02T12:00:00Z"),
    ("login", "p3", "2024-01-03T12:00:00Z"),
    ("login", "p3", "2024-01-04T00:00:00Z"),  # after the last period: not counted
    ("signup", None, "2024-01-02T12:00:00Z"),  # no person
)


def test_retention_first_time_puts_each_person_in_their_first_ever_cohort() -> None:
    got = twins.retention(RETENTION_EVENTS, "signup", "login", periods=3, after="2024-01-01")
    # Jan 1: p1, p2 (p2 logs in on Jan 2, p1 on Jan 3); Jan 2: p3 (back on Jan 3); Jan 3: none
    assert_same(
        got,
        retention_frame(["2024-01-01", "2024-01-02", "2024-01-03"], [[2, 1, 1], [1, 1], [0]]),
    )


def test_retention_recurring_puts_a_person_in_every_cohort_they_start_in() -> None:
    got = twins.retention(
        RETENTION_EVENTS,
        "signup",
        "login",
        periods=3,
        after="2024-01-01",
        retention_type="recurring",
    )
    # Jan 2 also holds p1 (back Jan 3) and `old` (never back)
    assert_same(
        got,
        retention_frame(["2024-01-01", "2024-01-02", "2024-01-03"], [[2, 1, 1], [3, 2], [0]]),
    )


def test_retention_return_event_defaults_to_the_start_event() -> None:
    got = twins.retention(RETENTION_EVENTS, "signup", periods=2, after="2024-01-01")
    # Jan 1: p1 (signs up again Jan 2), p2; Jan 2: p3
    assert_same(got, retention_frame(["2024-01-01", "2024-01-02"], [[2, 1], [1]]))


def test_retention_weeks_start_on_sunday_holding_after() -> None:
    frame = events(
        ("signup", "p1", "2024-01-01T10:00:00Z"),  # Monday: the week of Sunday Dec 31
        ("signup", "p2", "2023-12-31T00:00:00Z"),  # that Sunday, before `after`
        ("signup", "p1", "2024-01-07T00:00:00Z"),  # the next week
        ("signup", "p3", "2024-01-13T23:59:59Z"),
    )
    got = twins.retention(frame, "signup", period="week", periods=2, after="2024-01-03")
    assert_same(got, retention_frame(["2023-12-31", "2024-01-07"], [[2, 1], [1]]))


def test_retention_in_a_project_timezone() -> None:
    frame = events(
        ("signup", "p1", "2024-01-01T07:59:59Z"),  # Dec 31 in Los Angeles: before the range
        ("signup", "p2", "2024-01-01T08:00:00Z"),  # Jan 1 there
        ("signup", "p2", "2024-01-02T09:00:00Z"),  # Jan 2 there
    )
    got = twins.retention(
        frame, "signup", periods=2, after="2024-01-01", timezone="America/Los_Angeles"
    )
    want = retention_frame(["2024-01-01T08:00", "2024-01-02T08:00"], [[1, 1], [0]])
    assert_same(got, want)


def test_rows_missing_an_event_name_a_person_or_a_time_are_skipped() -> None:
    frame = events(
        ("signup", "p1", "2024-01-01T10:00:00Z"),
        ("signup", "p1", "2024-01-02T10:00:00Z"),
        ("signup", "p2", "2024-01-01T10:00:00Z"),
        ("signup", "p2", "2024-01-02T10:00:00Z"),
    )
    frame.loc[2, "timestamp"] = pd.NaT  # p2's signups lost their time and their name:
    frame.loc[3, "event"] = pd.NA  # p2 is in no cohort
    got = twins.retention(frame, "signup", periods=2, after="2024-01-01")
    assert_same(got, retention_frame(["2024-01-01", "2024-01-02"], [[1, 1], [0]]))
    got = twins.funnel(frame, ["signup", "signup"], after="2024-01-01", before="2024-01-03")
    assert got["count"].tolist() == [1, 1]
    assert twins.trends(frame, "signup", after="2024-01-01", before="2024-01-03")[
        "value"
    ].tolist() == [1, 1]


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda f: twins.trends(f, "e", math="dau", after="2024-01-01", before="2024-01-02"),
            "The events frame has no 'person_id' column: the trends twin reads ['event', "
            "'timestamp', 'person_id']. Pull them with ph.events(columns=['event', 'person_id'])",
        ),
        (
            lambda f: twins.funnel(
                f, ["a", "b"], after="2024-01-01", before="2024-01-02", breakdown="$os"
            ),
            "The events frame has no 'person_id', 'properties.$os' column",
        ),
        (
            lambda f: twins.trends(
                f, "e", after="2024-01-01", before="2024-01-02", timezone="Mars"
            ),
            "timezone='Mars' is not a known IANA timezone",
        ),
        (
            lambda f: twins.retention(f, "e", periods=0, after="2024-01-01"),
            "periods must be a positive whole number; got 0.",
        ),
        (
            lambda f: twins.funnel(
                f, ["a"], window_days=0, after="2024-01-01", before="2024-01-02"
            ),
            "window_days must be a positive whole number; got 0.",
        ),
        (
            lambda f: twins.trends(
                f, "e", interval="hour", after="2024-01-01", before="2024-01-02"
            ),
            "interval='hour' is not supported; use one of 'day', 'week', 'month'.",
        ),
    ],
)
def test_bad_calls_say_what_to_do(call: Any, message: str) -> None:
    frame = events(("e", "p1", "2024-01-01T00:00:00Z")).drop(columns=["person_id"])
    with pytest.raises(ConfigurationError) as info:
        call(frame)
    assert message in str(info.value)


# ------------------------------------------------------------------------------------ accessor


def test_the_accessor_is_the_twins_on_the_frame() -> None:
    frame = RETENTION_EVENTS
    assert_same(
        frame.posthog.trends(
            "signup", after="2024-01-01", before="2024-01-03", breakdown="$browser"
        ),
        twins.trends(
            frame, "signup", after="2024-01-01", before="2024-01-03", breakdown="$browser"
        ),
    )
    assert_same(
        frame.posthog.funnel(
            ["signup", "login"], window_days=1, after="2024-01-01", before="2024-01-05"
        ),
        twins.funnel(
            frame, ["signup", "login"], window_days=1, after="2024-01-01", before="2024-01-05"
        ),
    )
    assert_same(
        frame.posthog.retention("signup", "login", periods=3, after="2024-01-01"),
        twins.retention(frame, "signup", "login", periods=3, after="2024-01-01"),
    )
    assert list(frame.posthog.trends("x", after="2024-01-01", before="2024-01-02").columns) == list(
        columns_for("trends")
    )


def test_importing_posthog_pandas_after_pandas_registers_the_accessor() -> None:
    """Without loading pandas itself: `import posthog_pandas` alone stays light."""
    import subprocess
    import sys

    code = (
        "import pandas as pd, posthog_pandas; print(hasattr(pd.DataFrame, 'posthog')); "
        "import posthog_pandas.analytics.accessor as a; "
        "print(pd.DataFrame.posthog is a.PostHogAccessor)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
