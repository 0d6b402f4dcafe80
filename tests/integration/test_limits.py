"""Limits stop paging, against the local server: `limit=N` and `%posthog <name> --limit N` ask
PostHog for the first N rows only (the same rows, in PostHog's order, as the first N of a
full pull), and the events window a magic read is said when it was the default or empty."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas import _session
from posthog_pandas._registry import RESOURCES, Resource
from posthog_pandas.events import EmptyWindowWarning
from posthog_pandas.server import LocalPostHog
from tests.conftest import local_connection
from tests.integration.test_front_doors import arguments
from tests.ipython_shell import RaisingShell

pytestmark = pytest.mark.integration

LISTS = [r for r in RESOURCES if r.kind == "list"]


def assert_first_rows(part: pd.DataFrame, full: pd.DataFrame) -> None:
    """`part` holds the first rows of `full`: the same rows, in order. Compared on the
    schema's columns: `properties.*` columns are made (and typed) from the rows a frame
    holds, so two rows of a mixed-type property can have another dtype than 1,500."""
    head = full.head(len(part))
    fixed = [c for c in part.columns if not str(c).startswith("properties.")]
    assert len(part) and set(part.columns) <= set(full.columns)
    pd.testing.assert_frame_equal(part[fixed], head[fixed])


def requests_to(server: LocalPostHog, path: str) -> list[dict[str, str]]:
    """The parameters of each request whose path ends with `path`."""
    return [r.params for r in server.requests if r.path.endswith(path)]


@pytest.mark.parametrize("entry", LISTS, ids=[r.name for r in LISTS])
def test_every_list_reads_only_the_rows_a_limit_needs(
    entry: Resource, connect: Callable[..., php.PostHog], server: LocalPostHog
) -> None:
    ph = connect(cache=False)
    args = arguments(entry.name, ph, server)
    full = getattr(ph, entry.name)(**args)
    wanted = 2 if len(full) > 2 else 1  # the local server has one project
    assert len(full) > wanted or entry.name == "projects"
    server.clear_log()
    part = getattr(ph, entry.name)(**args, limit=wanted)
    assert len(part) == wanted
    assert_first_rows(part, full)
    path = "/" + entry.path.split("/")[-1].replace("{cohort_id}", "") + "/"
    sent = requests_to(server, path.replace("//", "/"))
    assert len(sent) == 1, sent  # one small page: no second page, no guess
    if entry.page_size is not None:
        assert sent[0]["limit"] == str(wanted)


def test_persons_past_the_first_page_stop_where_the_limit_ends(
    connect: Callable[..., php.PostHog], server: LocalPostHog
) -> None:
    ph = connect(cache=False)
    full = ph.persons()
    server.clear_log()
    part = ph.persons(limit=1_200)
    assert len(part) == 1_200
    assert_first_rows(part, full)
    pages = sorted(
        (int(p.get("offset", 0)), int(p["limit"])) for p in requests_to(server, "/persons/")
    )
    assert pages == [(0, 1000), (999, 201)]  # the second page starts a row early (overlap)


def test_events_limit_is_a_hogql_limit_and_one_request(
    connect: Callable[..., php.PostHog], server: LocalPostHog
) -> None:
    ph = connect(cache=False)
    start, end = server.time_range()
    full = ph.events(after=start, before=end)
    server.clear_log()
    five = ph.events(after=start, before=end, limit=5)
    assert len(five) == 5
    assert_first_rows(five, full)
    queries = [r for r in server.requests if r.path.endswith("/query/")]
    assert len(queries) == 1 and queries[0].hogql is not None
    assert queries[0].hogql.rstrip().endswith("LIMIT 5")


def test_limited_events_and_the_full_pull_keep_apart_in_the_cache(
    connect: Callable[..., php.PostHog], server: LocalPostHog
) -> None:
    ph = connect()  # with the cache
    start, end = server.time_range()
    five = ph.events(after=start, before=end, limit=5)
    full = ph.events(after=start, before=end)
    assert len(full) == len(server.dataset().events) > 5
    pd.testing.assert_frame_equal(ph.events(after=start, before=end, limit=5), five)
    assert_first_rows(five, full)


def test_the_magic_limit_is_one_small_request(
    connect: Callable[..., php.PostHog], server: LocalPostHog, ip: RaisingShell
) -> None:
    ph = connect()
    full = ph.persons()
    _session.set_connection(ph)
    server.clear_log()
    three = ip.run_line_magic("posthog", "persons --limit 3")
    assert len(three) == 3
    assert_first_rows(three, full)
    assert [p["limit"] for p in requests_to(server, "/persons/")] == ["3"]
    server.clear_log()
    ip.run_line_magic("config", "PostHogMagics.limit = 4")
    assert list(ip.run_line_magic("posthog", "cohorts")["id"]) == list(ph.cohorts()["id"][:4])


def test_an_empty_default_window_says_why(
    connect: Callable[..., php.PostHog],
    server: LocalPostHog,
    ip: RaisingShell,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The module's data is from 2024: the last 30 days hold no event.
    ph = connect()
    with pytest.warns(EmptyWindowWarning) as caught:
        empty = ph.events()
    assert empty.empty
    after, before = pd.Timestamp(empty.attrs["after"]), pd.Timestamp(empty.attrs["before"])
    assert empty.attrs["default_window"] is True
    assert abs(before - after - pd.Timedelta(days=30)) < pd.Timedelta(minutes=1)
    window = f"between {after:%Y-%m-%d %H:%M} and {before:%Y-%m-%d %H:%M} UTC"
    assert str(caught[0].message) == (
        f"no events {window} (the default window: the last 30 days); pass after=/before= "
        "for another range."
    )
    assert caught[0].filename == __file__  # points at the caller's line

    _session.set_connection(ph)
    capsys.readouterr()
    frame = ip.run_line_magic("posthog", "events --limit 5")
    assert frame.empty
    after, before = pd.Timestamp(frame.attrs["after"]), pd.Timestamp(frame.attrs["before"])
    window = f"between {after:%Y-%m-%d %H:%M} and {before:%Y-%m-%d %H:%M} UTC"
    assert capsys.readouterr().out == (
        f"no events {window} (the default window: the last 30 days); pass --after/--before "
        "for another range.\n"
    )

    start, _ = server.time_range()
    day = start.date() - timedelta(days=3)
    ip.run_line_magic("posthog", f"events --after {day} --before {start.date()}")
    assert capsys.readouterr().out == f"no events between {day} and {start.date()} UTC.\n"
    ip.run_line_magic("posthog", f"events --after {start.date()} --limit 1")
    assert capsys.readouterr().out == ""  # a window of the user's with rows: nothing to say


def test_frames_keep_their_attrs_through_to_parquet(
    tmp_path: Path, connect: Callable[..., php.PostHog], server: LocalPostHog
) -> None:
    """pandas writes `df.attrs` into the Parquet file as JSON: a Timestamp there made
    `df.to_parquet()` fail. Events, query and insight frames all keep their attrs."""
    ph = connect()
    start, _ = server.time_range()
    events = ph.events(after=start.date(), before=start.date() + timedelta(days=1), limit=20)
    assert events.attrs["after"] == f"{start.date()}T00:00:00.000000Z"
    query = ph.query("select count() as n from events")
    assert isinstance(query.attrs["last_refresh"], str)
    trend = ph.trends("$pageview", after=start.date(), before=start.date() + timedelta(days=3))
    for name, frame in [("events", events), ("query", query), ("trends", trend)]:
        path = tmp_path / f"{name}.parquet"
        frame.to_parquet(path)
        back = pd.read_parquet(path)
        assert back.attrs == frame.attrs, name
        assert len(back) == len(frame), name


def test_the_default_window_is_named_when_it_holds_events(
    tmp_path: Path, ip: RaisingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    recent = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with LocalPostHog(
        persons=20, events=200, seed=3, start=recent - timedelta(days=5), days=3
    ) as srv:
        ph = local_connection(srv, tmp_path / "c")
        _session.set_connection(ph)
        frame = ip.run_line_magic("posthog", "events --limit 5")
        assert len(frame) == 5
        after, before = pd.Timestamp(frame.attrs["after"]), pd.Timestamp(frame.attrs["before"])
        assert capsys.readouterr().out == (
            f"events between {after:%Y-%m-%d %H:%M} and {before:%Y-%m-%d %H:%M} UTC (the default "
            "window: the last 30 days; pass --after/--before for another range).\n"
        )
