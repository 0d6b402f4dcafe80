"""`posthog-pandas demo` (the README's first command), small: what it prints and writes, and
that it leaves nothing running behind it (a request handler or DuckDB connection alive at
interpreter exit can abort the process, duckdb/duckdb#13904)."""

from __future__ import annotations

import io
import logging
import re
import threading
from pathlib import Path

import pandas as pd
import pytest

from posthog_pandas.demo import run_demo
from posthog_pandas.server import LocalPostHog


def test_demo_prints_and_writes_every_step_and_leaves_nothing_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="posthog_pandas"):
        assert run_demo(persons=300, events=3_000, seed=7, out=tmp_path / "demo", stream=out) == 0
    text = out.getvalue()
    assert re.search(r"^persons: 300 rows x \d+ columns", text, re.M), text
    assert re.search(r"^events \(cold: over HTTP\): 3,000 rows x \d+ columns", text, re.M)
    assert re.search(r"^events \(warm: from the on-disk cache\): 3,000 rows x", text, re.M)
    assert "HogQL: events per day by event name:" in text
    assert text.rstrip().endswith('print(php.connect().persons().head())"')
    assert len(pd.read_csv(tmp_path / "demo" / "persons.csv")) == 300
    events = pd.read_csv(tmp_path / "demo" / "events.csv")
    assert len(events) == 3_000 and events["uuid"].is_unique
    daily = pd.read_csv(tmp_path / "demo" / "events_per_day.csv")
    assert daily["events"].sum() == 3_000
    assert caplog.records == []  # e.g. no frame copy written into a removed cache directory
    running = [t.name for t in threading.enumerate() if "process_request_thread" in t.name]
    assert running == []


def test_demo_daily_counts_cover_every_event_in_a_non_utc_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostHog reads a bare string compared with a DateTime as local wall time: bounds sent as
    # UTC text without toDateTime64(.., 'UTC') would shift the window by the project's offset.
    monkeypatch.setattr(LocalPostHog, "default_timezone", "Asia/Kolkata")
    assert run_demo(persons=50, events=500, seed=3, out=tmp_path, stream=io.StringIO()) == 0
    daily = pd.read_csv(tmp_path / "events_per_day.csv")
    assert daily["events"].sum() == 500
