"""The analytics contract: arguments, day ranges and result shapes shared by insights and twins."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from posthog_pandas.analytics._spec import (
    COLUMNS,
    DayRange,
    choice,
    day_range,
    event_list,
    typed_frame,
)
from posthog_pandas.exceptions import ConfigurationError


def test_a_day_range_sends_posthog_its_inclusive_last_day() -> None:
    days = day_range("2024-01-01", "2024-01-08")
    assert days == DayRange(date(2024, 1, 1), date(2024, 1, 8))
    assert days.days == 7
    assert days.date_range() == {"date_from": "2024-01-01", "date_to": "2024-01-07"}
    assert day_range(date(2024, 1, 1), datetime(2024, 2, 1)).days == 31


@pytest.mark.parametrize(
    ("after", "before", "message"),
    [
        (None, "2024-01-02", "after= is required: pass a day such as '2024-01-01'"),
        ("2024-01-02", "2024-01-02", "after=2024-01-02 must be before before=2024-01-02"),
        ("2024-13-01", "2024-01-02", "after='2024-13-01' is not a day; pass an ISO date"),
        (datetime(2024, 1, 1, 12), "2024-01-02", "is not a whole day; analytics count whole"),
    ],
)
def test_bad_day_ranges_say_what_to_pass(after: object, before: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        day_range(after, before)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_choices_and_event_lists() -> None:
    assert choice("dau", "math", ("total", "dau")) == "dau"
    with pytest.raises(ConfigurationError) as info:
        choice("weekly", "interval", ("day", "week"))
    assert str(info.value) == "interval='weekly' is not supported; use one of 'day', 'week'."
    assert event_list("$pageview") == ["$pageview"]
    assert event_list(("a", "b")) == ["a", "b"]
    with pytest.raises(ConfigurationError, match="non-empty list of event names"):
        event_list([])


@pytest.mark.parametrize("kind", sorted(COLUMNS))
def test_an_empty_result_has_the_full_results_columns_and_dtypes(kind: str) -> None:
    empty = typed_frame(kind, {}, breakdown=True)
    assert list(empty.columns) == list(COLUMNS[kind])
    assert {c: str(t) for c, t in empty.dtypes.items()} == dict(COLUMNS[kind])


def test_breakdown_value_appears_only_with_a_breakdown() -> None:
    plain = typed_frame("trends", {"date": ["2024-01-01"], "series": ["a"], "value": [3]})
    assert list(plain.columns) == ["date", "series", "value"]
    assert plain["date"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert plain["value"].iloc[0] == 3
