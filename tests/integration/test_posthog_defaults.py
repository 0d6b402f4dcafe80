"""Accessors against a local server that keeps PostHog's defaults: recordings listed for the
last 3 days unless asked otherwise, group definitions refused without a group type, insights
with no result until computed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import posthog_pandas as php
from posthog_pandas.server import LocalPostHog

pytestmark = pytest.mark.integration

Connect = Callable[..., php.PostHog]


def test_recordings_older_than_three_days_are_listed(
    server: LocalPostHog, connect: Connect
) -> None:
    every = server.dataset().session_recordings
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    assert all(datetime.fromisoformat(r["start_time"]) < three_days_ago for r in every)
    frame = connect().session_recordings()
    assert frame["id"].tolist() == [r["id"] for r in every]  # newest first, as PostHog lists


def test_recordings_in_a_range_are_those_starting_in_it(
    server: LocalPostHog, connect: Connect
) -> None:
    frame = connect().session_recordings(date_from="2024-01-10", date_to="2024-01-20")
    expected = [
        r["id"]
        for r in server.dataset().session_recordings
        if "2024-01-10" <= r["start_time"] <= "2024-01-20T00:00:00.000000Z"
    ]
    assert expected and frame["id"].tolist() == expected


def test_group_property_definitions_of_one_group_type(
    server: LocalPostHog, connect: Connect
) -> None:
    frame = connect().property_definitions(type="group", group_type_index=0)
    assert frame["name"].tolist() == ["name", "industry", "employees"]
    assert set(frame["group_type_index"]) == {0}


def test_an_insight_nobody_viewed_is_computed(server: LocalPostHog, connect: Connect) -> None:
    ph = connect()
    frame = ph.insight(5)
    expected = server.insight_result(5)[0]
    assert frame["value"].tolist() == [float(v) for v in expected["data"]]
    sent = [r.params for r in server.requests if r.path.endswith("/insights/5/")]
    assert sent == [{"refresh": "blocking"}]
