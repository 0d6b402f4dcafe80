"""Frames hold the same UTC instants whatever the project's timezone.

PostHog answers HogQL DateTimes in the project's timezone ("2024-03-09T16:00:00-08:00", then
"-07:00" after the switch to summer time, "+05:30" in Kolkata); ph.query() and ph.events()
turn them into datetime64[ns, UTC] columns of the instants themselves. Day functions count the
project's local days, as in PostHog.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas.server import LocalPostHog

pytestmark = pytest.mark.integration

ZONES = ["UTC", "America/Los_Angeles", "Asia/Kolkata"]


@pytest.fixture(scope="module", params=ZONES)
def srv(request: pytest.FixtureRequest) -> Iterator[LocalPostHog]:
    # Four days around 2024-03-10, when Los Angeles moves from -08:00 to -07:00.
    zone = request.param
    with LocalPostHog(
        persons=80, events=1500, seed=5, start="2024-03-08", days=4, timezone=zone
    ) as s:
        yield s


@pytest.fixture()
def ph(srv: LocalPostHog, tmp_path: Path) -> php.PostHog:
    return php.connect(
        srv.api_key,
        host=srv.url,
        cache_dir=tmp_path / "cache",
        progress=False,
        dotenv=False,
        prompt=False,
    )


def test_query_and_events_frames_hold_the_same_instants(srv: LocalPostHog, ph: php.PostHog) -> None:
    events = srv.dataset().events
    frame = ph.query("SELECT uuid, timestamp FROM events ORDER BY timestamp, uuid LIMIT 50000")
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["uuid"].tolist() == events["uuid"].tolist()
    assert frame["timestamp"].tolist() == events["timestamp"].tolist()

    start, end = srv.time_range()
    pulled = ph.events(after=start, before=end).sort_values(["timestamp", "uuid"])
    assert str(pulled["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert pulled["uuid"].tolist() == events["uuid"].tolist()
    assert pulled["timestamp"].tolist() == events["timestamp"].tolist()


def test_to_date_counts_the_projects_local_days(srv: LocalPostHog, ph: php.PostHog) -> None:
    daily = ph.query(
        "SELECT toDate(timestamp) AS day, count() AS n FROM events GROUP BY day ORDER BY day"
    )
    local = srv.dataset().events["timestamp"].dt.tz_convert(srv.timezone).dt.tz_localize(None)
    expected = local.dt.normalize().value_counts().sort_index()
    assert daily["day"].tolist() == list(expected.index)
    assert daily["n"].tolist() == expected.tolist()
    if srv.timezone != "UTC":  # the local days are not the UTC days here
        utc_days = srv.dataset().events["timestamp"].dt.tz_localize(None).dt.normalize()
        assert daily["n"].tolist() != utc_days.value_counts().sort_index().tolist()


def test_an_instant_bound_through_to_datetime64_utc_is_the_same_in_every_zone(
    srv: LocalPostHog, ph: php.PostHog
) -> None:
    events = srv.dataset().events
    since = pd.Timestamp("2024-03-10 10:00:00", tz="UTC")
    frame = ph.query(
        "SELECT count() AS n FROM events WHERE timestamp >= toDateTime64({since}, 6, 'UTC')",
        {"since": "2024-03-10 10:00:00.000000"},
    )
    assert frame["n"].tolist() == [int((events["timestamp"] >= since).sum())]
