"""Export: formats, stable headers, typed Parquet, datasets, atomic writes, the mixin."""

from __future__ import annotations

import argparse
import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import requests
import requests_mock

import posthog_pandas as php
from posthog_pandas import cli
from posthog_pandas import events as events_module
from posthog_pandas import export as ex
from posthog_pandas.exceptions import ConfigurationError
from posthog_pandas.frames import SCHEMAS, hogql_events_to_frame, records_to_frame
from tests.conftest import NONE_DEFINED

COLUMNS = ["uuid", "event", "distinct_id", "timestamp", "properties", "elements_chain", "person_id"]
TYPES = ["UUID", "String", "String", "DateTime64(6, 'UTC')", "String", "String", "UUID"]
PAGE_1 = [
    ["u1", "$pageview", "d1", "2024-01-01T10:00:00.5Z", '{"$browser":"Chrome","n":1}', "", "p1"],
    ["u2", "signed_up", "d2", "2024-01-02T10:00:00Z", '{"n":2,"tags":["x","y"]}', "", "p2"],
]
PAGE_2 = [
    [
        "u3",
        "$pageview",
        "d1",
        "2024-01-02T11:00:00Z",
        '{"$browser":"Café, \\"quoted\\"","n":1.5,"late":"L","a_first":true}',
        "",
        "p1",
    ],
]
HEADER = (
    '"uuid","event","distinct_id","timestamp","person_id","elements_chain","elements",'
    '"properties.$browser","properties.a_first","properties.late","properties.n",'
    '"properties.tags"'
)
CSV_ROWS = [
    '"u1","$pageview","d1","2024-01-01T10:00:00.500000Z","p1","",,"Chrome",,,1,',
    '"u2","signed_up","d2","2024-01-02T10:00:00.000000Z","p2","",,,,,2,"[""x"",""y""]"',
    '"u3","$pageview","d1","2024-01-02T11:00:00.000000Z","p1","",,"Café, ""quoted""",true,"L",1.5,',
]
ROOTS = ex._roots_for("events")


def pages() -> Iterator[pd.DataFrame]:
    yield hogql_events_to_frame(COLUMNS, TYPES, PAGE_1)
    yield hogql_events_to_frame(COLUMNS, TYPES, PAGE_2)


def in_memory() -> pd.DataFrame:
    return hogql_events_to_frame(COLUMNS, TYPES, PAGE_1 + PAGE_2)


def write(path: Path | str, frames: Any = None, **kwargs: Any) -> ex.ExportSummary:
    partition_by = kwargs.pop("partition_by", None)
    fmt = kwargs.pop("format", None)
    target = ex.resolve_target(path, fmt, partition_by)
    return ex.write_frames(pages() if frames is None else frames, target, flatten_roots=ROOTS)


@pytest.fixture()
def out(tmp_path: Path) -> Path:
    """An empty directory for the files (tmp_path also holds the conftest's work dir)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# -- target ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt", "partition_by", "expected"),
    [
        ("out/e.csv", None, None, "csv"),
        ("e.CSV.GZ", None, None, "csv.gz"),
        ("e.parquet", None, None, "parquet"),
        ("e.pq", None, None, "parquet"),
        ("events/", None, None, "parquet-dataset"),
        ("events", None, None, "parquet-dataset"),
        ("e.parquet", None, "day", "parquet-dataset"),
        ("e.txt", "csv", None, "csv"),
        ("e.data", "parquet", None, "parquet"),
        ("e.csv", "dataset", None, "parquet-dataset"),
    ],
)
def test_format_follows_the_suffix_and_format_overrides(
    path: str, fmt: str | None, partition_by: str | None, expected: str
) -> None:
    target = ex.resolve_target(path, fmt, partition_by)
    assert target.format == expected
    assert target.partition_by == partition_by


def test_unknown_suffix_and_format_list_the_choices() -> None:
    choices = "Use a path ending in .csv, .csv.gz or .parquet, or a directory"
    with pytest.raises(ConfigurationError, match=r"'e\.json' has no known suffix\. " + choices):
        ex.resolve_target("e.json")
    with pytest.raises(ConfigurationError, match=r"format='xlsx' is not known\. " + choices):
        ex.resolve_target("e.csv", "xlsx")
    with pytest.raises(ConfigurationError, match="partition_by='day' needs Parquet"):
        ex.resolve_target("e.csv", partition_by="day")


def test_summary_line() -> None:
    summary = ex.ExportSummary(
        Path("/x/events.parquet"), "parquet", 1_000_000, 183_200_000, 12.34, 1
    )
    assert str(summary) == "Wrote 1,000,000 rows (183.2 MB) to events.parquet in 12.3 s"
    dataset = ex.ExportSummary(Path("/x/events"), "parquet-dataset", 3, 999, 0.0, 2)
    assert str(dataset) == "Wrote 3 rows (999 bytes, 2 files) to events/ in 0.0 s"


# -- CSV -------------------------------------------------------------------------------------


def test_csv_has_a_stable_header_with_the_late_property(out: Path) -> None:
    summary = write(out / "e.csv")
    text = (out / "e.csv").read_text(encoding="utf-8")
    assert text.splitlines() == [HEADER, *CSV_ROWS]
    assert (summary.rows, summary.files, summary.format) == (3, 1, "csv")
    assert summary.bytes == len(text.encode())
    assert siblings(out / "e.csv") == ["e.csv"]  # no temp or staging files left
    back = pd.read_csv(out / "e.csv")
    assert list(back.columns) == list(in_memory().columns)


def test_csv_gz_holds_the_same_text(out: Path) -> None:
    write(out / "e.csv.gz")
    text = gzip.decompress((out / "e.csv.gz").read_bytes()).decode()
    assert text.splitlines() == [HEADER, *CSV_ROWS]


# -- Parquet ---------------------------------------------------------------------------------


def test_parquet_is_typed_and_reads_back_as_the_in_memory_frame(out: Path) -> None:
    write(out / "e.parquet")
    schema = pq.read_schema(out / "e.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("uuid", "string"),
        ("event", "string"),
        ("distinct_id", "string"),
        ("timestamp", "timestamp[us, tz=UTC]"),
        ("person_id", "string"),
        ("elements_chain", "string"),
        ("elements", "string"),
        ("properties.$browser", "string"),
        ("properties.a_first", "bool"),
        ("properties.late", "string"),
        ("properties.n", "double"),
        ("properties.tags", "string"),
    ]
    back = pd.read_parquet(out / "e.parquet")
    expected = in_memory()
    assert [str(t) for t in back.dtypes] == [
        str(t).replace("[ns,", "[us,") for t in expected.dtypes
    ]
    expected["timestamp"] = expected["timestamp"].astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(back, expected, check_column_type=False)


def test_pages_disagreeing_on_a_type_are_unified(out: Path) -> None:
    frames = [
        records_to_frame([{"a": 1, "b": 1, "c": None}], None),
        records_to_frame([{"a": 2.5, "b": "x", "c": None}], None),
    ]
    write(out / "m.parquet", iter(frames))
    schema = pq.read_schema(out / "m.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("a", "double"),  # int + float: float, as the in-memory rule
        ("b", "string"),  # int + text: text
        ("c", "string"),  # never a value: an all-null string column
    ]
    assert pq.read_table(out / "m.parquet").to_pylist() == [
        {"a": 1.0, "b": "1", "c": None},
        {"a": 2.5, "b": "x", "c": None},
    ]


def test_small_pages_are_merged_into_row_groups(out: Path, monkeypatch) -> None:
    monkeypatch.setattr(ex, "ROW_GROUP_ROWS", 4)
    frames = (records_to_frame([{"i": i}, {"i": i + 1}], None) for i in range(0, 10, 2))
    write(out / "r.parquet", frames)
    meta = pq.read_metadata(out / "r.parquet")
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 2]
    assert pq.read_table(out / "r.parquet").column("i").to_pylist() == list(range(10))


def test_an_empty_export_keeps_the_schema(out: Path) -> None:
    summary = write(out / "e.parquet", iter([hogql_events_to_frame(COLUMNS, TYPES, [])]))
    assert summary.rows == 0
    back = pd.read_parquet(out / "e.parquet")
    assert list(back.columns) == [c.name for c in SCHEMAS["events"]][:7]
    write(out / "e.csv", iter([hogql_events_to_frame(COLUMNS, TYPES, [])]))
    assert (out / "e.csv").read_text().splitlines() == [
        '"uuid","event","distinct_id","timestamp","person_id","elements_chain","elements"'
    ]


def test_duplicate_columns_are_refused(out: Path) -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ConfigurationError, match="duplicate column names: a"):
        write(out / "d.csv", iter([frame]))
    assert siblings(out / "d.csv") == []


def test_object_columns_become_json_text(out: Path) -> None:
    frame = records_to_frame(
        [{"id": 1, "properties": {"deep": {"a": [1, 2]}}, "tags": ["a"]}], None
    )
    frame["raw"] = pd.Series([{"k": 1}], dtype=object)
    frame["big"] = pd.Series([2**70], dtype=object)
    write(out / "o.csv", iter([frame]))
    assert (out / "o.csv").read_text().splitlines() == [
        '"id","tags","raw","big","properties.deep"',
        '1,"[""a""]","{""k"":1}","1180591620717411303424","{""a"":[1,2]}"',
    ]


# -- datasets --------------------------------------------------------------------------------


def test_directory_is_a_day_partitioned_dataset(out: Path) -> None:
    summary = write(str(out / "events") + "/")
    files = sorted(str(p.relative_to(out / "events")) for p in (out / "events").rglob("*"))
    assert files == [
        "day=2024-01-01",
        "day=2024-01-01/part-00000.parquet",
        "day=2024-01-02",
        "day=2024-01-02/part-00000.parquet",
    ]
    assert (summary.files, summary.rows, summary.format) == (2, 3, "parquet-dataset")
    schemas = {str(pq.read_schema(p)) for p in (out / "events").rglob("*.parquet")}
    assert len(schemas) == 1  # every file has the unified schema (null-filled late columns)
    table = pads.dataset(out / "events", partitioning="hive").to_table()
    back = table.to_pandas().sort_values("uuid").reset_index(drop=True)
    assert back["uuid"].tolist() == ["u1", "u2", "u3"]
    assert back["properties.late"].tolist()[2] == "L"
    assert back["day"].astype(str).tolist() == ["2024-01-01", "2024-01-02", "2024-01-02"]


def test_duckdb_reads_the_dataset(out: Path) -> None:
    write(out / "events", partition_by="month")
    rows = duckdb.sql(
        f"SELECT uuid, \"properties.n\", month FROM read_parquet('{out}/events/**/*.parquet',"
        " hive_partitioning=true) ORDER BY uuid"
    ).fetchall()
    assert [(u, n, str(m)) for u, n, m in rows] == [
        ("u1", 1.0, "2024-01"),
        ("u2", 2.0, "2024-01"),
        ("u3", 1.5, "2024-01"),
    ]


def test_partition_by_a_column_leaves_it_out_of_the_files(out: Path) -> None:
    write(out / "by_event", partition_by="event")
    names = sorted(p.name for p in (out / "by_event").iterdir())
    assert names == ["event=$pageview", "event=signed_up"]
    one = pq.read_schema(out / "by_event" / "event=$pageview" / "part-00000.parquet")
    assert "event" not in one.names
    table = pads.dataset(out / "by_event", partitioning="hive").to_table()
    got = sorted(
        zip(table.column("uuid").to_pylist(), table.column("event").to_pylist(), strict=True)
    )
    assert got == [("u1", "$pageview"), ("u2", "signed_up"), ("u3", "$pageview")]


def test_partition_values_are_escaped_and_nulls_get_the_default_partition(out: Path) -> None:
    frame = records_to_frame(
        [{"id": 1, "k": "a/b"}, {"id": 2, "k": None}, {"id": 3, "k": "a/b"}], None
    )
    write(out / "k", iter([frame]), partition_by="k")
    names = sorted(p.name for p in (out / "k").iterdir())
    assert names == ["k=__HIVE_DEFAULT_PARTITION__", "k=a%2Fb"]
    table = pads.dataset(out / "k", partitioning="hive").to_table()
    assert sorted(
        zip(table.column("id").to_pylist(), table.column("k").to_pylist(), strict=True)
    ) == [
        (1, "a/b"),
        (2, None),  # readers take the default partition as null
        (3, "a/b"),
    ]


def test_too_many_partitions_roll_over_to_new_files(out: Path, monkeypatch) -> None:
    monkeypatch.setattr(ex, "MAX_OPEN_WRITERS", 2)
    frames = (records_to_frame([{"k": k, "i": i}], None) for i, k in enumerate("abcab"))
    summary = write(out / "k", frames, partition_by="k")
    files = sorted(str(p.relative_to(out / "k")) for p in (out / "k").rglob("*.parquet"))
    assert files == [
        "k=a/part-00000.parquet",
        "k=a/part-00001.parquet",
        "k=b/part-00000.parquet",
        "k=b/part-00001.parquet",
        "k=c/part-00000.parquet",
    ]
    assert summary.files == 5
    table = pads.dataset(out / "k", partitioning="hive").to_table()
    assert sorted(table.column("i").to_pylist()) == [0, 1, 2, 3, 4]


def test_bad_partition_keys_are_explained(out: Path) -> None:
    frame = records_to_frame([{"id": 1}], None)
    with pytest.raises(ConfigurationError, match="partition_by='nope': no such column"):
        write(out / "x", iter([frame]), partition_by="nope")
    with pytest.raises(ConfigurationError, match="partition_by='day' needs a timestamp"):
        write(out / "y", iter([frame]), partition_by="day")
    assert siblings(out / "x") == []


def test_persons_partition_by_day_uses_created_at(out: Path) -> None:
    frame = records_to_frame(
        [{"id": "a", "created_at": "2024-01-03T00:00:00Z"}], SCHEMAS["persons"]
    )
    write(out / "p", iter([frame]), partition_by="day")
    assert [p.name for p in (out / "p").iterdir()] == ["day=2024-01-03"]


# -- atomic writes ---------------------------------------------------------------------------


def failing_pages() -> Iterator[pd.DataFrame]:
    yield hogql_events_to_frame(COLUMNS, TYPES, PAGE_1)
    raise ConnectionError("network gone")


@pytest.mark.parametrize("name", ["e.csv", "e.parquet", "events/"])
def test_a_failure_leaves_nothing_under_the_final_name(out: Path, name: str) -> None:
    with pytest.raises(ConnectionError):
        write(str(out / name), failing_pages())
    assert siblings(out / "x") == []


def test_a_failure_keeps_the_previous_file(out: Path) -> None:
    (out / "e.csv").write_text("old\n")
    with pytest.raises(ConnectionError):
        write(out / "e.csv", failing_pages())
    assert (out / "e.csv").read_text() == "old\n"
    assert siblings(out / "e.csv") == ["e.csv"]


def test_a_dataset_replaces_the_previous_one(out: Path) -> None:
    (out / "events").mkdir()
    (out / "events" / "stale.parquet").write_text("x")
    write(out / "events", partition_by="day")
    assert sorted(p.name for p in (out / "events").iterdir()) == [
        "day=2024-01-01",
        "day=2024-01-02",
    ]
    assert siblings(out / "events") == ["events"]


def test_leftovers_of_a_killed_run_are_removed(out: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (out / f".e.csv.parts-{dead}").mkdir()
    (out / f".e.csv.parts-{dead}" / "part-00000.parquet").write_text("x")
    (out / f".e.csv.tmp-{dead}").write_text("half")
    (out / f".other.csv.tmp-{dead}").write_text("not ours")
    write(out / "e.csv")
    assert siblings(out / "e.csv") == [f".other.csv.tmp-{dead}", "e.csv"]


def test_a_directory_in_the_way_of_a_file_is_refused(out: Path) -> None:
    (out / "e.csv").mkdir()
    with pytest.raises(ConfigurationError, match="is a directory"):
        write(out / "e.csv", format="csv")


# -- the connector ---------------------------------------------------------------------------

HOST = "https://ph.test"
KEY = "phx_export_unit_key_abcdefghijklmnopqrstuvwxyz0"
ME = {"email": "ann@example.com", "team": {"id": 5, "project_id": 5, "name": "Shop"}}


@pytest.fixture()
def mocked() -> tuple[requests.Session, requests_mock.Adapter]:
    session = requests.Session()
    adapter = requests_mock.Adapter()
    session.mount("https://", adapter)
    adapter.register_uri("GET", f"{HOST}/api/users/@me/", json=ME)
    adapter.register_uri("GET", f"{HOST}/api/projects/5/property_definitions/", json=NONE_DEFINED)
    return session, adapter


def connect(session: requests.Session, out: Path) -> Any:
    return php.connect(KEY, host=HOST, session=session, cache_dir=out / "c", progress=False)


def query_answer(rows: list[list[Any]]) -> dict[str, Any]:
    return {"json": {"columns": COLUMNS, "types": TYPES, "results": rows, "hasMore": False}}


def test_export_events_pages_by_keyset_and_keeps_the_late_column(
    mocked, out: Path, monkeypatch
) -> None:
    session, adapter = mocked
    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 2)
    # A full first page, then the count that plans the rest's windows (one here), then its page.
    count = {"json": {"columns": ["bucket", "events"], "types": ["DateTime", "UInt64"],
                      "results": [["2024-01-02T11:00:00Z", 1]], "hasMore": False}}  # fmt: skip
    query = adapter.register_uri(
        "POST",
        f"{HOST}/api/projects/5/query/",
        [query_answer(PAGE_1), count, query_answer(PAGE_2)],
    )
    ph = connect(session, out)
    summary = ph.export("events", out / "e.csv", after="2024-01-01", before="2024-02-01")
    assert summary.rows == 3
    assert (out / "e.csv").read_text().splitlines() == [HEADER, *CSV_ROWS]
    assert query.call_count == 3
    assert "count() AS events" in query.request_history[1].json()["query"]["query"]
    third = query.request_history[2].json()["query"]
    assert "(timestamp, uuid) > " in third["query"] and "LIMIT 2" in third["query"]
    assert third["values"]["__last_uuid"] == "u2"
    # a rerun reads every page, and the count, from the cache
    ph.export("events", out / "e.parquet", after="2024-01-01", before="2024-02-01")
    assert query.call_count == 3


def test_export_lists_follows_next_and_uses_the_accessor_filters(mocked, out: Path) -> None:
    session, adapter = mocked
    first = {
        "next": f"{HOST}/api/projects/5/persons/?cursor=2",
        "results": [
            {"id": "a", "uuid": "a", "properties": {"email": "a@x"}, "distinct_ids": ["a"]}
        ],
    }
    second = {
        "next": None,
        "results": [
            {"id": "b", "uuid": "b", "properties": {"plan": "pro"}, "distinct_ids": ["b", "c"]}
        ],
    }
    adapter.register_uri(
        "GET", f"{HOST}/api/projects/5/persons/?cursor=2", json=second, complete_qs=True
    )
    persons = adapter.register_uri(
        "GET", f"{HOST}/api/projects/5/persons/?email=a@x&limit=1000", json=first, complete_qs=True
    )
    ph = connect(session, out)
    summary = ph.export("persons", out / "p.parquet", email="a@x")
    assert (summary.rows, persons.call_count) == (2, 1)
    back = pd.read_parquet(out / "p.parquet")
    assert list(back.columns) == [
        "id", "distinct_ids", "name", "created_at", "last_seen_at", "is_identified",
        "properties.email", "properties.plan",
    ]  # fmt: skip
    assert back["distinct_ids"].tolist() == ['["a"]', '["b","c"]']
    assert back["properties.plan"].fillna("-").tolist() == ["-", "pro"]


def test_export_refuses_what_is_not_a_list(mocked, out: Path) -> None:
    session, _ = mocked
    ph = connect(session, out)
    with pytest.raises(ConfigurationError, match="Cannot export 'insight': it is not a list"):
        ph.export("insight", out / "i.csv")
    with pytest.raises(ConfigurationError, match="Cannot export 'evnts': it is not a PostHog"):
        ph.export("evnts", out / "i.csv")
    with pytest.raises(TypeError, match="unexpected keyword argument 'incremental'"):
        ph.export("events", out / "e.csv", incremental=True)
    with pytest.raises(TypeError, match="cohorts\\(\\) got an unexpected keyword argument 'serch'"):
        ph.export("cohorts", out / "c.csv", serch="x")
    assert not list(out.glob("*.csv"))


def test_export_query_writes_typed_columns(mocked, out: Path) -> None:
    session, adapter = mocked
    adapter.register_uri(
        "POST",
        f"{HOST}/api/projects/5/query/",
        json={
            "columns": ["day", "n", "events"],
            "types": ["Date", "UInt64", "Array(String)"],
            "results": [["2024-01-01", 3, ["a", "b"]], ["2024-01-02", 1, []]],
        },
    )
    ph = connect(session, out)
    ph.export_query("SELECT ...", out / "q.csv")
    assert (out / "q.csv").read_text().splitlines() == [
        '"day","n","events"',
        '"2024-01-01T00:00:00.000000",3,"[""a"",""b""]"',
        '"2024-01-02T00:00:00.000000",1,"[]"',
    ]


def test_cli_runner_prints_the_summary(mocked, out: Path, monkeypatch, capsys) -> None:
    session, adapter = mocked
    adapter.register_uri("POST", f"{HOST}/api/projects/5/query/", [query_answer(PAGE_1)])
    real_connect = php.connect
    monkeypatch.setattr(php, "connect", lambda *a, **k: real_connect(*a, session=session, **k))
    monkeypatch.setattr("posthog_pandas.client.connect", php.connect)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_export_parser(sub)
    args = parser.parse_args(
        ["export", "events", str(out / "e.csv"), "--after", "2024-01-01", "--before",
         "2024-02-01", "--api-key", KEY, "--host", HOST, "--no-progress", "--event", "$pageview"]
    )  # fmt: skip
    assert cli.run_export_command(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Wrote 2 rows (") and printed.rstrip().endswith(" s")
    sent = [r for r in adapter.request_history if r.method == "POST"][-1].json()["query"]
    assert sent["values"]["__events"] == ["$pageview"]
    args = parser.parse_args(
        ["export", "events", str(out / "e.json"), "--api-key", KEY, "--host", HOST]
    )
    assert cli.run_export_command(args) == 1
    assert "has no known suffix" in capsys.readouterr().err


def test_progress_bar_counts_rows(out: Path, capsys) -> None:
    ex.write_frames(pages(), ex.resolve_target(out / "e.csv"), progress=True, desc="export x")
    assert "export x" in capsys.readouterr().err
    assert os.path.exists(out / "e.csv")


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", ["UTC", None])
def test_csv_timestamps_are_the_iso_text_strftime_would_give(unit: str, tz: str | None) -> None:
    import datetime as dt

    import pyarrow.compute as pc

    from posthog_pandas.export import _iso

    values = [
        dt.datetime(2024, 1, 5, 10, 0, 0, 123456, tzinfo=dt.UTC if tz else None),
        None,
        dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC if tz else None),
    ]
    column = pa.array(values, type=pa.timestamp(unit, tz=tz))
    fmt = "%Y-%m-%dT%H:%M:%SZ" if tz else "%Y-%m-%dT%H:%M:%S"
    assert _iso(column).to_pylist() == pc.strftime(column, format=fmt).to_pylist()
    if unit == "us":
        suffix = "Z" if tz else ""
        assert _iso(column).to_pylist()[:2] == [f"2024-01-05T10:00:00.123456{suffix}", None]
