"""Export against the local PostHog: exact round trips, datasets, a killed export, push-down."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd
import pyarrow.dataset as pads
import pytest

import posthog_pandas as php
from posthog_pandas import events as events_module
from posthog_pandas import export as ex
from posthog_pandas._registry import RESOURCES
from posthog_pandas.server import Faults, LocalPostHog
from tests.conftest import local_connection

NAMED = ("persons", "projects")  # read by accessor_frames on their own

pytestmark = pytest.mark.integration

AFTER, BEFORE = "2024-01-01", "2024-01-31"  # the server's data covers 30 days from 2024-01-01
PAGE = 2_500  # small keyset pages, so a few thousand events make several pages
EVENTS = 12_000


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=400, events=EVENTS, seed=11) as server:
        yield server


@pytest.fixture()
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", PAGE)


@pytest.fixture()
def ph(srv: LocalPostHog, tmp_path: Path, small_pages: None) -> Any:
    return local_connection(srv, tmp_path / "cache", project_id=srv.project_id)


def server_events(srv: LocalPostHog) -> pd.DataFrame:
    events = srv.dataset().events
    start, end = pd.Timestamp(AFTER, tz="UTC"), pd.Timestamp(BEFORE, tz="UTC")
    inside = events[(events["timestamp"] >= start) & (events["timestamp"] < end)]
    return inside.reset_index(drop=True)


def query_requests(srv: LocalPostHog) -> list[Any]:
    return [r for r in srv.requests if r.path.rstrip("/").endswith("/query")]


def csv_text(series: pd.Series) -> list[str]:
    """What the export writes for a column of the in-memory frame (module docstring rules)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return [v.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if pd.notna(v) else "" for v in series]
    if str(series.dtype) == "boolean":
        return ["" if pd.isna(v) else str(bool(v)).lower() for v in series]
    if str(series.dtype) == "Float64":
        return [
            "" if pd.isna(v) else (str(int(v)) if v == int(v) else repr(float(v))) for v in series
        ]
    return ["" if pd.isna(v) else str(v) for v in series]


def test_parquet_and_csv_are_exact_copies_of_the_server_data(
    ph: Any, srv: LocalPostHog, tmp_path: Path
) -> None:
    expected = server_events(srv)
    parquet = ph.export("events", tmp_path / "e.parquet", after=AFTER, before=BEFORE)
    csv = ph.export("events", tmp_path / "e.csv", after=AFTER, before=BEFORE)
    assert parquet.rows == csv.rows == len(expected) > 4 * PAGE

    back = pd.read_parquet(tmp_path / "e.parquet")
    assert back["uuid"].tolist() == expected["uuid"].tolist()
    assert back["event"].tolist() == expected["event"].tolist()
    assert back["distinct_id"].tolist() == expected["distinct_id"].tolist()
    assert back["person_id"].tolist() == expected["person_id"].tolist()
    assert back["timestamp"].tolist() == expected["timestamp"].tolist()
    for row, props in zip(back.itertuples(index=False), expected["properties"], strict=True):
        want = orjson.loads(props)
        got = {
            name.removeprefix("properties."): value
            for name, value in zip(back.columns, row, strict=True)
            if name.startswith("properties.") and not pd.isna(value)
        }
        assert got == {
            k: v if isinstance(v, (str, int, float)) else ex.json_text(v) for k, v in want.items()
        }

    in_memory = ph.events(after=AFTER, before=BEFORE)
    assert list(back.columns) == list(in_memory.columns)
    assert [str(t) for t in back.dtypes] == [
        str(t).replace("[ns,", "[us,") for t in in_memory.dtypes
    ]
    in_memory["timestamp"] = in_memory["timestamp"].astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(back, in_memory, check_column_type=False)

    text = pd.read_csv(tmp_path / "e.csv", dtype=str, keep_default_na=False)
    assert list(text.columns) == list(in_memory.columns)
    for name in text.columns:
        assert text[name].tolist() == csv_text(in_memory[name]), name


def test_a_property_that_appears_late_keeps_its_column(
    ph: Any, srv: LocalPostHog, tmp_path: Path
) -> None:
    expected = server_events(srv)
    late = expected["properties"].str.contains('"late_prop"')
    first_seen = int(late.to_numpy().argmax())
    assert first_seen >= PAGE  # not on the first page: the header must still have it
    ph.export("events", tmp_path / "e.csv", after=AFTER, before=BEFORE)
    text = pd.read_csv(tmp_path / "e.csv", dtype=str, keep_default_na=False)
    assert (text["properties.late_prop"] != "").tolist() == late.tolist()


def test_partitioned_dataset_reads_back_the_same_rows_in_pyarrow_and_duckdb(
    ph: Any, srv: LocalPostHog, tmp_path: Path
) -> None:
    expected = server_events(srv)
    summary = ph.export("events", str(tmp_path / "events") + "/", after=AFTER, before=BEFORE)
    days = sorted(expected["timestamp"].dt.strftime("day=%Y-%m-%d").unique())
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == days
    assert summary.files >= len(days)

    table = pads.dataset(tmp_path / "events", partitioning="hive").to_table()
    by_arrow = table.to_pandas().sort_values(["timestamp", "uuid"]).reset_index(drop=True)
    assert by_arrow["uuid"].tolist() == expected["uuid"].tolist()
    assert by_arrow["timestamp"].tolist() == expected["timestamp"].tolist()

    rows = duckdb.sql(
        f'SELECT uuid, event, "properties.$browser", CAST(day AS VARCHAR) FROM read_parquet('
        f"'{tmp_path}/events/**/*.parquet', hive_partitioning=true) ORDER BY timestamp, uuid"
    ).fetchall()
    assert [r[0] for r in rows] == expected["uuid"].tolist()
    assert [r[1] for r in rows] == expected["event"].tolist()
    assert [r[2] for r in rows] == by_arrow["properties.$browser"].tolist()
    assert [r[3] for r in rows] == expected["timestamp"].dt.strftime("%Y-%m-%d").tolist()

    ph.export("events", tmp_path / "by_event", partition_by="event", after=AFTER, before=BEFORE)
    counts = duckdb.sql(
        f"SELECT event, count(*) FROM read_parquet('{tmp_path}/by_event/**/*.parquet', "
        "hive_partitioning=true) GROUP BY event ORDER BY event"
    ).fetchall()
    assert counts == sorted(expected["event"].value_counts().items())


def test_persons_export_matches_the_accessor(ph: Any, tmp_path: Path) -> None:
    ph.export("persons", tmp_path / "p.parquet")
    in_memory = ph.persons()
    back = pd.read_parquet(tmp_path / "p.parquet")
    assert len(back) == len(in_memory) > 0
    assert list(back.columns) == list(in_memory.columns)
    assert back["id"].tolist() == in_memory["id"].tolist()


def test_export_query_pages_by_keyset(ph: Any, srv: LocalPostHog, tmp_path: Path) -> None:
    expected = server_events(srv)
    sql = (
        "SELECT uuid, event, timestamp FROM events WHERE timestamp >= toDateTime64({a}, 6, 'UTC') "
        "AND timestamp < toDateTime64({b}, 6, 'UTC') ORDER BY timestamp, uuid"
    )
    summary = ph.export_query(
        sql, tmp_path / "q.parquet", values={"a": f"{AFTER} 00:00:00", "b": f"{BEFORE} 00:00:00"}
    )
    back = pd.read_parquet(tmp_path / "q.parquet")
    assert summary.rows == len(expected)
    assert back["uuid"].tolist() == expected["uuid"].tolist()


KILLED_EXPORT = """
import posthog_pandas as php
from posthog_pandas import events
events.MAX_PAGE_ROWS = {page}
ph = php.connect({key!r}, host={url!r}, project_id=1, cache_dir={cache!r}, progress=False,
                 prompt=False, max_concurrent_queries=3)  # windows, as from a remote PostHog
ph.export("events", {path!r}, after={after!r}, before={before!r})
"""


def test_a_killed_export_leaves_no_file_and_the_rerun_fetches_only_missing_windows(
    ph: Any, srv: LocalPostHog, tmp_path: Path
) -> None:
    expected = server_events(srv)
    target = tmp_path / "out" / "e.parquet"
    script = KILLED_EXPORT.format(
        page=PAGE,
        key=srv.api_key,
        url=srv.url,
        cache=str(tmp_path / "cache"),
        path=str(target),
        after=AFTER,
        before=BEFORE,
    )
    env = {**os.environ, "PYTHONPATH": str(Path(php.__file__).resolve().parents[1])}
    # The windows from the 20th on never answer; the ones before do, three at a time.
    cut = "2024-01-20T00:00:00Z"
    srv.clear_log()
    srv.set_faults(Faults(hang_queries_from=cut, paths=("/query",)))
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env)
    try:
        parts = target.parent / f".e.parquet.parts-{child.pid}"
        wait_until_stuck(child, srv, parts)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    srv.set_faults(None)
    assert not target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [f".e.parquet.parts-{child.pid}"]
    first = query_requests(srv)
    answered = {request_key(r) for r in first if r.status == 200}
    hung = {request_key(r) for r in first if r.status == 0}
    assert hung and len(answered) >= 3  # the first page, the count and a window at least

    srv.clear_log()
    summary = ph.export("events", target, after=AFTER, before=BEFORE)
    rerun = query_requests(srv)
    asked = [request_key(r) for r in rerun]
    assert len(set(asked)) == len(asked) and not set(asked) & answered  # nothing twice
    assert hung <= set(asked)  # the windows that never answered, and the ones never sent
    assert all(rows_start(r) >= pd.Timestamp(cut) for r in rerun)
    assert summary.rows == len(expected)
    assert pd.read_parquet(target)["uuid"].tolist() == expected["uuid"].tolist()
    assert sorted(p.name for p in target.parent.iterdir()) == ["e.parquet"]  # leftovers gone


def wait_until_stuck(child: subprocess.Popen[bytes], srv: LocalPostHog, parts: Path) -> None:
    """Until every answered page is a part on disk (so in the cache) and a window hangs."""
    deadline, settled = time.monotonic() + 120, 0
    while settled < 5:  # the same state for half a second: nothing else is in flight
        assert child.poll() is None, "the export ended before it could be killed"
        assert time.monotonic() < deadline, "the export never got stuck on the hung windows"
        time.sleep(0.1)
        requests = query_requests(srv)
        answered = sum(r.status == 200 for r in requests) - 1  # the count writes no part
        written = len(list(parts.glob("part-*.arrow"))) if parts.exists() else 0
        stuck = any(r.status == 0 for r in requests) and written == answered
        settled = settled + 1 if stuck else 0


def request_key(request: Any) -> str:
    return orjson.dumps([request.hogql, request.values], option=orjson.OPT_SORT_KEYS).decode()


def rows_start(request: Any) -> pd.Timestamp:
    values = request.values or {}
    start = pd.Timestamp(values.get("__last_ts") or values["__after"])
    return start if start.tzinfo else start.tz_localize("UTC")


def accessor_frames(ph: Any) -> Iterator[tuple[str, pd.DataFrame]]:
    yield "persons", ph.persons()
    yield "events", ph.events(after=AFTER, before=BEFORE)
    for entry in RESOURCES:  # the lists that need no argument
        if entry.kind == "list" and entry.id_argument is None and entry.name not in NAMED:
            yield entry.name, getattr(ph, entry.name)()
    cohorts = ph.cohorts()
    if len(cohorts):
        yield "cohort_persons", ph.cohort_persons(int(cohorts["id"].iloc[0]))
    insights = ph.insights()
    if len(insights):
        yield "insight", ph.insight(int(insights["id"].iloc[0]))
    yield "groups", ph.groups(0)
    yield "projects", ph.projects()
    yield (
        "query",
        ph.query("SELECT event, count() AS n, groupArray(uuid) FROM events GROUP BY event"),
    )


def test_to_csv_works_on_every_accessor_frame(ph: Any) -> None:
    seen = []
    for name, frame in accessor_frames(ph):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        back = pd.read_csv(io.StringIO(buffer.getvalue()))
        assert back.shape == frame.shape, name
        seen.append(name)
    assert len(seen) >= 15


def test_push_down_moves_a_fraction_of_the_bytes(ph: Any) -> None:
    stats = ph.request_stats
    start = stats.bytes
    full = ph.events(after=AFTER, before=BEFORE, cache=False)
    full_bytes = stats.bytes - start
    start = stats.bytes
    small = ph.events(
        after=AFTER,
        before=BEFORE,
        columns=["event", "distinct_id", "properties.$browser"],
        cache=False,
    )
    small_bytes = stats.bytes - start
    assert small_bytes < full_bytes / 2
    assert small["uuid"].tolist() == full["uuid"].tolist()
    for name in ("timestamp", "event", "distinct_id", "properties.$browser"):
        assert small[name].tolist() == full[name].tolist(), name

    where = ph.events(after=AFTER, before=BEFORE, where="event = 'purchase'", cache=False)
    assert where["uuid"].tolist() == full.loc[full["event"] == "purchase", "uuid"].tolist()


def test_push_down_returns_exactly_the_selected_columns(ph: Any) -> None:
    small = ph.events(after=AFTER, before=BEFORE, columns=["event", "properties.$browser"])
    assert set(small.columns) == {"uuid", "timestamp", "event", "properties.$browser"}


def test_cli_export_command(srv: LocalPostHog, tmp_path: Path, monkeypatch, capsys) -> None:
    from posthog_pandas import cli

    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", srv.api_key)
    monkeypatch.setenv("POSTHOG_HOST", srv.url)
    monkeypatch.setenv("POSTHOG_PROJECT_ID", str(srv.project_id))
    monkeypatch.setenv("POSTHOG_PANDAS_CACHE_DIR", str(tmp_path / "cache"))
    parser = cli.build_parser()
    args = parser.parse_args(
        ["export", "events", str(tmp_path / "e.csv.gz"), "--after", AFTER, "--before", BEFORE,
         "--event", "purchase", "--no-progress"]
    )  # fmt: skip
    assert cli.run_export_command(args) == 0
    line = capsys.readouterr().out.strip()
    expected = server_events(srv)
    n = int((expected["event"] == "purchase").sum())
    assert line.startswith(f"Wrote {n:,} rows (") and line.endswith(" s") and "e.csv.gz" in line
    back = pd.read_csv(tmp_path / "e.csv.gz")
    assert set(back["event"]) == {"purchase"} and len(back) == n


def test_cli_query_with_dash_o_and_a_missing_output(
    srv: LocalPostHog, tmp_path: Path, monkeypatch, capsys
) -> None:
    from posthog_pandas import cli

    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", srv.api_key)
    monkeypatch.setenv("POSTHOG_HOST", srv.url)
    monkeypatch.setenv("POSTHOG_PANDAS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "counts.csv"
    sql = "select event, count() as n from events group by event order by event limit 100"
    assert cli.main(["query", sql, "-o", str(out), "--no-progress"]) == 0
    expected = server_events(srv)["event"].value_counts().sort_index()
    back = pd.read_csv(out)
    assert back["event"].tolist() == expected.index.tolist()
    assert back["n"].tolist() == expected.tolist()
    capsys.readouterr()
    assert cli.main(["export", "persons", "--no-progress"]) == 1
    assert "Give one output path, as PATH or -o PATH" in capsys.readouterr().err
