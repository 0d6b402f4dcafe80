"""The insight magics exactly as issue #24 writes them, in a real IPython shell against the
local server: each frame equals the accessor's with the magic's default dates, -o stores it,
--csv writes it, and typos get a "did you mean"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError

import posthog_pandas as php
from posthog_pandas.server import LocalPostHog
from tests.conftest import local_connection

pytestmark = pytest.mark.integration

DAYS = 30  # the magics' default window: the last 30 days up to today (UTC) included


@pytest.fixture(scope="module")
def recent_server() -> Iterator[LocalPostHog]:
    """Demo data over the 30 days ending today, the window the magics read by default."""
    today = datetime.now(UTC).date()
    start = (today - timedelta(days=DAYS - 1)).isoformat()
    with LocalPostHog(persons=400, events=6000, seed=11, start=start, days=DAYS) as srv:
        yield srv


@pytest.fixture()
def ph(recent_server: LocalPostHog, tmp_path: Path, ip: Any) -> php.PostHog:
    """A connection the magics use through `%posthog use ph`, as a notebook does."""
    conn = local_connection(recent_server, tmp_path / "cache")
    ip.user_ns["ph"] = conn
    ip.run_line_magic("posthog", "use ph")
    return conn


def default_window() -> tuple[str, str]:
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    return (tomorrow - timedelta(days=DAYS)).isoformat(), tomorrow.isoformat()


def test_trends_dau_by_week(ip: Any, ph: php.PostHog) -> None:
    frame = ip.run_line_magic("posthog", "trends $pageview --math dau --interval week")
    after, before = default_window()
    expected = ph.trends("$pageview", math="dau", interval="week", after=after, before=before)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["value"].sum() > 0  # the window holds the demo's events


def test_funnel_with_a_seven_day_window(ip: Any, ph: php.PostHog) -> None:
    frame = ip.run_line_magic("posthog", "funnel $pageview signed_up purchase --window 7")
    after, before = default_window()
    steps = ["$pageview", "signed_up", "purchase"]
    expected = ph.funnel(steps, window_days=7, after=after, before=before)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["event"].tolist() == steps and frame["count"].iloc[-1] > 0


def test_retention_by_week_ends_with_the_current_week(ip: Any, ph: php.PostHog) -> None:
    frame = ip.run_line_magic("posthog", "retention signed_up --period week")
    first_cohort = datetime.now(UTC).date() - timedelta(weeks=6)  # 7 cohorts, the last this week
    expected = ph.retention("signed_up", period="week", periods=7, after=first_cohort)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["cohort"].nunique() == 7 and frame["cohort_size"].sum() > 0


def test_an_event_the_project_never_saw_is_zeros_not_an_error(ip: Any, ph: php.PostHog) -> None:
    # The issue's own line: the demo project has no `signup` event (it has `signed_up`).
    frame = ip.run_line_magic("posthog", "retention signup --period week")
    assert len(frame) == 7 * 8 // 2 and (frame["persons"] == 0).all()


def test_o_stores_the_frame_and_csv_writes_it(ip: Any, ph: php.PostHog, tmp_path: Path) -> None:
    path = tmp_path / "weekly.csv"
    shown = ip.run_line_magic(
        "posthog", f"trends $pageview signed_up --interval week -o weekly --csv {path}"
    )
    stored = ip.user_ns["weekly"]
    assert stored is shown
    assert stored["series"].unique().tolist() == ["$pageview", "signed_up"]
    written = pd.read_csv(path)
    assert written.columns.tolist() == ["date", "series", "value"]
    assert written["value"].tolist() == stored["value"].tolist()
    assert pd.to_datetime(written["date"]).tolist() == stored["date"].tolist()


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("trend $pageview", "Did you mean 'trends'?"),
        ("funnels $pageview signed_up", "Did you mean 'funnel'?"),
        ("trends $pageview --interva week", "Did you mean '--interval'?"),
        ("funnel $pageview signed_up --windw 7", "Did you mean '--window'?"),
        ("retention signed_up --perod week", "Did you mean '--period'?"),
    ],
)
def test_typos_get_a_did_you_mean(ip: Any, ph: php.PostHog, line: str, hint: str) -> None:
    sent = ph.request_stats.requests
    with pytest.raises(UsageError, match=hint.replace("?", r"\?")):
        ip.run_line_magic("posthog", line)
    assert ph.request_stats.requests == sent  # stopped before asking PostHog anything
