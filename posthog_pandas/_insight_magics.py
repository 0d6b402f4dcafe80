"""`%posthog trends|funnel|retention ...`: each subcommand's flags, and the accessor call they
make. magics.py owns the parser class, the output flags and the delivery (-o, --csv); this
module only knows the insights' own arguments, so the magics stay thin.

Without --after/--before a magic reads the last 30 whole days up to today (UTC) included;
retention's cohorts then end with the current period.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from posthog_pandas.analytics._spec import (
    INTERVALS,
    MATHS,
    RETENTION_PERIODS,
    RETENTION_TYPES,
    day_range,
)

INSIGHTS = ("funnel", "retention", "trends")
DEFAULT_DAYS = 30

USAGE = """\
%posthog trends EVENT... [--math total|dau] [--interval day|week|month] [--breakdown PROP]
%posthog funnel STEP STEP... [--window DAYS] [--breakdown PROP]
%posthog retention EVENT [--return EVENT] [--period day|week] [--periods N] [--type T]
    PostHog's insights as tidy frames (ph.trends/funnel/retention); all take
    [--after D] [--before D] (default: the last 30 days), [--async], [-o VAR] [--csv PATH]."""


def add_arguments(kind: str, parser: argparse.ArgumentParser) -> None:
    """The flags of one insight subcommand (the output flags are magics.py's)."""
    if kind == "trends":
        parser.add_argument("events", nargs="+", metavar="EVENT", help="one series per event")
        parser.add_argument("--math", choices=MATHS, default="total", help="total or dau")
        parser.add_argument("--interval", choices=INTERVALS, default="day", help="bucket size")
    elif kind == "funnel":
        parser.add_argument("steps", nargs="+", metavar="STEP", help="the steps, in order")
        parser.add_argument("--window", type=int, default=14, metavar="DAYS", help="days")
    else:
        parser.add_argument("event", metavar="EVENT", help="the event that starts a cohort")
        parser.add_argument("--return", dest="return_event", metavar="EVENT", help="returning")
        parser.add_argument("--period", choices=RETENTION_PERIODS, default="day")
        parser.add_argument("--periods", type=int, default=7, metavar="N")
        parser.add_argument("--type", choices=RETENTION_TYPES, default="first_time")
    if kind != "retention":
        parser.add_argument("--breakdown", metavar="PROP", help="an event property")
        parser.add_argument("--before", help="first day excluded (default: tomorrow, UTC)")
    parser.add_argument("--after", help="first day included (ISO date)")
    parser.add_argument("--async", dest="run_async", action="store_true", default=None,
                        help="run in the background on PostHog, with a progress bar")  # fmt: skip
    parser.add_argument("-o", "--out", metavar="VAR", help="store the DataFrame in VAR")


def run(ph: Any, kind: str, opts: argparse.Namespace, options: Mapping[str, Any]) -> pd.DataFrame:
    """Call ph.trends/funnel/retention with the parsed flags and the call options."""
    extra: dict[str, Any] = dict(options)
    if opts.run_async:
        extra["run_async"] = True
    today = datetime.now(UTC).date()
    if kind == "retention":
        after = opts.after or _retention_start(today, opts.period, opts.periods).isoformat()
        frame: pd.DataFrame = ph.retention(
            opts.event,
            opts.return_event,
            period=opts.period,
            periods=opts.periods,
            after=after,
            retention_type=opts.type,
            **extra,
        )
        return frame
    before = opts.before or (today + timedelta(days=1)).isoformat()
    last = day_range(date.min, before).before  # checks a --before given by hand
    after = opts.after or (last - timedelta(days=DEFAULT_DAYS)).isoformat()
    if kind == "trends":
        frame = ph.trends(
            opts.events,
            math=opts.math,
            interval=opts.interval,
            after=after,
            before=before,
            breakdown=opts.breakdown,
            **extra,
        )
        return frame
    frame = ph.funnel(
        opts.steps,
        window_days=opts.window,
        after=after,
        before=before,
        breakdown=opts.breakdown,
        **extra,
    )
    return frame


def _retention_start(today: date, period: str, periods: int) -> date:
    """The first cohort's day when the last cohort is the current period."""
    step = 7 if period == "week" else 1
    return today - timedelta(days=step * (max(periods, 1) - 1))
