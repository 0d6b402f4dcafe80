"""Export: stream a resource or a HogQL result to CSV, gzipped CSV or Parquet, page by page.

`ph.export("events", "events.parquet", after=..., before=...)` never builds the full table.

Formats (from the path's suffix; `format=` overrides)
    ``.csv``, ``.csv.gz``, ``.parquet``; a directory (no suffix, or a trailing "/"), or any
    `partition_by`, writes a hive-partitioned Parquet dataset:
    ``<dir>/day=2024-01-05/part-00000.parquet``. `partition_by` is "day" or "month" (of
    ``timestamp``, else ``created_at``), or any column name ("event"); a column used as the
    partition key is left out of the files, as Spark and pyarrow do. A directory without
    `partition_by` is partitioned by day when the data has a ``timestamp``, else not at all.

How it streams (two passes over local files, one over the network)
    1. Each page becomes a DataFrame with the accessor's own rules (the same dtypes and
       flattening as ``ph.events()`` / ``ph.persons()``), and is written at once to a typed
       part (Arrow IPC with lz4: cheaper to write and read back than Parquet) in a
       staging directory beside the target; the union of the columns and types is tracked.
       Memory holds one page at a time.
    2. The parts are read back one at a time, conformed to the unified schema (a column a
       part lacks is null-filled; int and float widen to float, other conflicts to string)
       and appended to the final file. So a property that first appears on the last page
       still gets its column, and every CSV row and every Parquet file has the same header.

Column order: the non-flattened columns in order of first appearance (the schema's first),
then each flattened group (``properties.*``, ``person.*``, ``group_properties.*``) sorted by
name, which is the in-memory accessor's order.

Values: Parquet columns are typed (string, int64, float64, bool, timestamp[us, UTC]) and
carry pandas metadata, so ``pd.read_parquet`` gives back the accessor's dtypes (string,
Int64, Float64, boolean, datetime64[.., UTC]). CSV is UTF-8 with a header; timestamps are
ISO 8601 UTC with microseconds ("2024-01-05T10:00:00.000000Z"); booleans true/false;
missing values are empty; lists and objects are JSON text, as in the DataFrames.

Safety: the result is written under a temporary name in the target's directory
(``.<name>.tmp-<pid>``) and renamed into place at the end, so a crash never leaves a half
file under the final name; staging parts are removed on success and on failure, and
leftovers of killed runs are removed by the next export to the same path. Pages come
through the cache, so rerunning an interrupted export re-reads the finished pages from
disk and requests only the missing ones.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from posthog_pandas import _registry
from posthog_pandas._checks import hogql_text
from posthog_pandas._core import Connection
from posthog_pandas._frame_cache import FrameCache
from posthog_pandas._gc import paused_gc
from posthog_pandas._progress import counted
from posthog_pandas._registry import EXPORTABLE, resource_named
from posthog_pandas.cache import human_bytes
from posthog_pandas.events import Events
from posthog_pandas.exceptions import ConfigurationError
from posthog_pandas.frames import (
    SCHEMAS,
    hogql_to_frame,
    json_text,
)
from posthog_pandas.query import QueryRunner
from posthog_pandas.resources import ListPlan, Lists, check_options

# Events rows per page of an export. With one page fetched ahead, two pages of Python objects
# are alive at once: smaller pages than the query API's cap keep peak memory bounded, at a
# small cost in time (benchmarks/run.py's W3 measures both).
EXPORT_PAGE_ROWS = 30_000
# Rows per window's page when windows are read at once (docs/events.md): three windows in
# flight plus the one being written keep 1,000,000 events under 400 MB (about 340 MB measured,
# 440 MB with 30,000-row pages).
EXPORT_WINDOW_ROWS = 20_000

__all__ = [
    "FORMATS",
    "Exporter",
    "ExportSummary",
    "resolve_target",
    "write_frame",
    "write_frames",
]

FORMATS: Final = ("csv", "csv.gz", "parquet")
# The events filters an export streams by (an incremental table is a frame, not a stream).
_EVENT_FILTERS: Final = tuple(
    name for name in _registry.EVENTS.filters if name not in ("incremental", "lookback")
)
_FLATTEN_ROOTS: Final = frozenset({"properties", "group_properties", "person"})
_TIME_COLUMNS: Final = ("timestamp", "created_at")
_TIME_FORMATS: Final = {"day": "%Y-%m-%d", "month": "%Y-%m"}
DEFAULT_PARTITION: Final = "__HIVE_DEFAULT_PARTITION__"  # null key, as Hive and Spark name it
ROW_GROUP_ROWS: Final = 100_000
MAX_OPEN_WRITERS: Final = 64  # partitions written at once; more roll over to a new part file


# -- result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: where, in which format, how many rows, bytes and files."""

    path: Path
    format: str
    rows: int
    bytes: int
    seconds: float
    files: int

    def __str__(self) -> str:
        where = self.path.name + ("/" if self.format == "parquet-dataset" else "")
        files = f", {self.files:,} files" if self.format == "parquet-dataset" else ""
        return (
            f"Wrote {self.rows:,} rows ({human_bytes(self.bytes)}{files}) to {where} "
            f"in {self.seconds:.1f} s"
        )


# -- target ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The resolved output: a path, "csv" | "csv.gz" | "parquet" | "parquet-dataset", a key."""

    path: Path
    format: str
    partition_by: str | None = None


def resolve_target(
    path: str | Path, format: str | None = None, partition_by: str | None = None
) -> Target:
    """The format from `format=` or the path's suffix; a directory is a Parquet dataset."""
    text = os.fspath(path)
    if not text:
        raise ConfigurationError("export needs a path, such as 'events.parquet'.")
    target = Path(text).expanduser()
    is_dir = text.endswith(("/", os.sep)) or target.is_dir()
    name = target.name.lower()
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in (*FORMATS, "dataset", "parquet-dataset"):
            raise ConfigurationError(_format_message(f"format={format!r} is not known"))
        if fmt in ("dataset", "parquet-dataset") or (fmt == "parquet" and is_dir):
            fmt = "parquet-dataset"
    elif is_dir or not Path(name).suffix:
        fmt = "parquet-dataset"
    elif name.endswith(".csv.gz"):
        fmt = "csv.gz"
    elif name.endswith(".csv"):
        fmt = "csv"
    elif name.endswith((".parquet", ".pq")):
        fmt = "parquet"
    else:
        raise ConfigurationError(_format_message(f"{text!r} has no known suffix"))
    if partition_by is not None:
        if not isinstance(partition_by, str) or not partition_by:
            raise ConfigurationError("partition_by must be 'day', 'month' or a column name.")
        if fmt.startswith("csv"):
            raise ConfigurationError(
                f"partition_by={partition_by!r} needs Parquet: CSV is one file. Export to a "
                "directory (a Parquet dataset) or drop partition_by."
            )
        fmt = "parquet-dataset"
    return Target(target, fmt, partition_by)


def _format_message(what: str) -> str:
    return (
        f"Cannot export: {what}. Use a path ending in .csv, .csv.gz or .parquet, or a "
        "directory (a hive-partitioned Parquet dataset), or pass format='csv', 'csv.gz' "
        "or 'parquet'."
    )


# -- the connector side ----------------------------------------------------------------------


class Exporter:
    """The export part: `ph.export()` and `ph.export_query()`, streamed to disk with bounded
    memory. The lists, events and query parts turn a request into frames; this writes them."""

    def __init__(
        self,
        conn: Connection,
        frames: FrameCache,
        lists: Lists,
        events: Events,
        queries: QueryRunner,
    ) -> None:
        self._conn = conn
        self._frames = frames
        self._lists = lists
        self._events = events
        self._queries = queries

    def export(
        self,
        resource: str,
        path: str | Path,
        *,
        format: str | None,
        partition_by: str | None,
        progress: bool | None,
        filters: Mapping[str, Any],
    ) -> ExportSummary:
        """Write every row of a resource (see PostHog.export)."""
        target = resolve_target(path, format, partition_by)
        frames, sep = self._resource_frames(resource, dict(filters))
        show = self._conn.progress if progress is None else progress
        roots = _roots_for(resource)
        desc = f"export {resource}"
        try:
            with paused_gc():  # see _gc
                return write_frames(
                    frames, target, flatten_roots=roots, sep=sep, progress=show, desc=desc
                )
        finally:
            self._conn.fetcher.flush()  # the pages are cached for a resumed or repeated export

    def export_query(
        self,
        hogql: str,
        path: str | Path,
        *,
        values: Mapping[str, Any] | None,
        format: str | None,
        partition_by: str | None,
        progress: bool | None,
    ) -> ExportSummary:
        """Write a HogQL query's result, every page of it (see PostHog.export_query)."""
        hogql_text(hogql, "export_query")
        target = resolve_target(path, format, partition_by)
        options = self._conn.frame_options

        def frames() -> Iterator[pd.DataFrame]:
            for page in self._queries.pages(hogql, values, name="posthog-pandas export"):
                yield hogql_to_frame(page.columns, page.types, page.results, options)

        show = self._conn.progress if progress is None else progress
        try:
            with paused_gc():  # see _gc
                return write_frames(frames(), target, progress=show, desc="export query")
        finally:
            self._conn.fetcher.flush()

    # -- page streams ----------------------------------------------------------------------

    def _resource_frames(
        self, resource: str, filters: dict[str, Any]
    ) -> tuple[Iterator[pd.DataFrame], str]:
        if resource not in EXPORTABLE:
            known = resource_named(resource) is not None
            why = "is not a list" if known else "is not a PostHog resource"
            raise ConfigurationError(
                f"Cannot export {resource!r}: it {why}. Exportable: {', '.join(EXPORTABLE)}. "
                "For a query result use ph.export_query(hogql, path)."
            )
        if resource == "events" and not self._conn.legacy:
            return self._event_frames(filters)
        if resource == "events":  # old PostHog: the deprecated events list
            args = {name: filters.pop(name) for name in _EVENT_FILTERS if name in filters}
            check_options(filters, "export('events')")
            plan: ListPlan | pd.DataFrame = self._events.list_plan("/api/event/", args, filters)
        else:
            plan = self._lists.plan(resource, filters)
        if isinstance(plan, pd.DataFrame):  # answered without paging (legacy definitions)
            return iter([plan]), self._conn.frame_options.sep
        return self._lists.frames(plan), self._frames.options(plan.options).sep

    def _event_frames(self, filters: dict[str, Any]) -> tuple[Iterator[pd.DataFrame], str]:
        args = {name: filters.pop(name) for name in _EVENT_FILTERS if name in filters}
        check_options(filters, "export('events')")
        options = {**filters, "progress": False}
        limit = args.pop("limit", None)
        flt = self._events.filter(**args, refresh=options.get("refresh", False))
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigurationError(f"limit must be a positive integer, got {limit!r}.")
        rows = EXPORT_WINDOW_ROWS if self._events.windowed(limit) else EXPORT_PAGE_ROWS
        frames = self._events.frames(flt, limit, options, page_rows=rows, ahead=True)
        return frames, self._frames.options(options).sep


def _roots_for(resource: str) -> frozenset[str]:
    names = {c.name for c in SCHEMAS.get(resource, ()) if c.dtype == "json-flatten"}
    return _FLATTEN_ROOTS | names


# -- writing ---------------------------------------------------------------------------------


def write_frames(
    frames: Iterable[pd.DataFrame],
    target: Target,
    *,
    flatten_roots: Iterable[str] = (),
    sep: str = ".",
    progress: bool | None = False,
    desc: str = "export",
) -> ExportSummary:
    """Stream DataFrames (one per page) to `target`; see the module docstring for the rules."""
    started = time.perf_counter()
    parent = target.path.parent
    staging = parent / f".{target.path.name}.parts-{os.getpid()}"
    temp = parent / f".{target.path.name}.tmp-{os.getpid()}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(target.path)
        _remove(staging)
        staging.mkdir()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot export to '{target.path}': its directory cannot be created or written "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    try:
        staged = _stage(counted(frames, show=progress, desc=desc, rows=len), staging)
        schema = _unified_schema(staged.types, frozenset(flatten_roots), sep)
        files = _write(target, staged, schema, temp)
        _move_into_place(temp, target.path)
    finally:
        _remove(staging)
        _remove(temp)
    return ExportSummary(
        path=target.path,
        format=target.format,
        rows=staged.rows,
        bytes=_disk_bytes(target.path),
        seconds=time.perf_counter() - started,
        files=files,
    )


def write_frame(
    frame: pd.DataFrame, path: str | Path, *, format: str | None = None
) -> ExportSummary:
    """One DataFrame in memory to a file, with the export's rules (the %posthog --csv and
    --parquet flags use it, so a file has one format whichever door made it)."""
    return write_frames([frame], resolve_target(path, format), progress=False)


@dataclass
class _Staged:
    parts: list[Path]
    types: dict[str, pa.DataType]  # union of columns in order of first appearance
    rows: int


def _stage(frames: Iterable[pd.DataFrame], staging: Path) -> _Staged:
    """Pass 1: each page to its own typed Parquet part; track the union of the columns."""
    staged = _Staged(parts=[], types={}, rows=0)
    for i, frame in enumerate(frames):
        table = frame_to_table(frame)
        part = staging / f"part-{i:05d}.arrow"
        _write_part(table, part)
        staged.parts.append(part)
        staged.rows += table.num_rows
        for field in table.schema:
            known = staged.types.get(field.name)
            staged.types[field.name] = (
                field.type if known is None else merge_types(known, field.type)
            )
    return staged


def _write_part(table: pa.Table, path: Path) -> None:
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.OSFile(str(path), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table)


def _read_part(path: Path) -> pa.Table:
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_file(source).read_all()


def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """A page frame to an Arrow table with the export's column types (see merge_types)."""
    if frame.columns.duplicated().any():
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ConfigurationError(f"Cannot export duplicate column names: {', '.join(dupes)}.")
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if series.dtype == object:  # lists, dicts, big ints: JSON text, as frames.py does
            values = [None if _missing(v) else _text(v) for v in series.tolist()]
            columns[str(name)] = pa.array(values, type=pa.string())
        else:
            columns[str(name)] = _normalize(pa.Array.from_pandas(series))
    return pa.table(columns)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json_text(value)


def _normalize(array: Any) -> Any:
    """One vocabulary of types: string (not large_string), timestamps in microseconds."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return array.cast(pa.string())
    if pa.types.is_timestamp(kind) and kind.unit != "us":
        return array.cast(pa.timestamp("us", tz=kind.tz), safe=False)
    if pa.types.is_date(kind):
        return array.cast(pa.timestamp("us"))
    if pa.types.is_integer(kind) and kind != pa.int64():
        return array.cast(pa.int64())
    if pa.types.is_floating(kind) and kind != pa.float64():
        return array.cast(pa.float64())
    return array


def merge_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """Two pages disagree on a column's type: null yields, int+float is float, else string."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if {a, b} == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()


def _unified_schema(types: Mapping[str, pa.DataType], roots: frozenset[str], sep: str) -> Any:
    names = column_order(list(types), roots, sep)
    fields = [pa.field(n, pa.string() if pa.types.is_null(types[n]) else types[n]) for n in names]
    schema = pa.schema(fields)
    return schema.with_metadata(_pandas_metadata(schema))


def column_order(names: Sequence[str], roots: frozenset[str], sep: str) -> list[str]:
    """Plain columns in first-appearance order, then each flattened group sorted by name."""
    plain: list[str] = []
    groups: dict[str, list[str]] = {}
    for name in names:
        root = name.split(sep, 1)[0]
        if sep in name and root in roots:
            groups.setdefault(root, []).append(name)
        else:
            plain.append(name)
    return plain + [name for group in groups.values() for name in sorted(group)]


_PANDAS_OF: Final = {"string": "string", "int64": "Int64", "double": "Float64", "bool": "boolean"}


def _pandas_metadata(schema: Any) -> dict[bytes, bytes]:
    """pandas metadata naming the accessor's nullable dtypes, so read_parquet restores them."""
    data: dict[str, Any] = {}
    for field in schema:
        kind = field.type
        if pa.types.is_timestamp(kind):
            dtype: Any = "datetime64[ns, UTC]" if kind.tz else "datetime64[ns]"
        else:
            dtype = _PANDAS_OF.get(str(kind), "string")
        data[field.name] = pd.Series([], dtype=dtype)
    empty = pd.DataFrame(data)
    metadata: dict[bytes, bytes] = pa.Schema.from_pandas(empty, preserve_index=False).metadata
    return metadata


def conform(table: pa.Table, schema: Any) -> pa.Table:
    """One part to the unified schema: missing columns null, types cast, order fixed."""
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            arrays.append(column if column.type == field.type else _cast(column, field.type))
        else:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _cast(column: Any, kind: pa.DataType) -> Any:
    if pa.types.is_string(kind) and pa.types.is_timestamp(column.type):
        return _iso(column)
    return column.cast(kind)


def _iso(column: Any) -> Any:
    """Timestamps as ISO 8601 text: 2024-01-05T10:00:00.000000Z (UTC) or without Z (naive)."""
    tz = column.type.tz
    if tz not in (None, "UTC", "+00:00", "Etc/UTC"):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
    # Arrow keeps UTC instants; as naive values their text is the UTC wall time. Casting to
    # text and patching the separator is much cheaper than strftime, which looks up the zone
    # for every value, and gives the same characters.
    naive = column.cast(pa.timestamp(column.type.unit))
    text = pc.replace_substring(naive.cast(pa.string()), " ", "T", max_replacements=1)
    return text if tz is None else pc.binary_join_element_wise(text, "Z", "")


def _parts(staged: _Staged, schema: Any) -> Iterator[pa.Table]:
    for part in staged.parts:
        yield conform(_read_part(part), schema)


def _write(target: Target, staged: _Staged, schema: Any, temp: Path) -> int:
    if target.format == "parquet":
        _write_parquet(_parts(staged, schema), schema, temp)
        return 1
    if target.format.startswith("csv"):
        _write_csv(_parts(staged, schema), schema, temp, gzip=target.format == "csv.gz")
        return 1
    key = target.partition_by
    if key is None and "timestamp" in schema.names:
        key = "day"
    return _write_dataset(_parts(staged, schema), schema, temp, key)


def _write_parquet(tables: Iterable[pa.Table], schema: Any, temp: Path) -> None:
    """One file, row groups of about ROW_GROUP_ROWS rows (small pages are merged)."""
    with pq.ParquetWriter(temp, schema) as writer:
        pending: list[pa.Table] = []
        size = 0
        for table in tables:
            pending.append(table)
            size += table.num_rows
            if size >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending))
                pending, size = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending))


def _write_csv(tables: Iterable[pa.Table], schema: Any, temp: Path, *, gzip: bool) -> None:
    text_schema = pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_timestamp(f.type) else f for f in schema]
    )
    sink = pa.CompressedOutputStream(str(temp), "gzip") if gzip else pa.OSFile(str(temp), "wb")
    with sink, pa_csv.CSVWriter(sink, text_schema) as writer:
        for table in tables:
            writer.write_table(_timestamps_as_text(table, text_schema))


def _timestamps_as_text(table: pa.Table, text_schema: Any) -> pa.Table:
    arrays = [
        _iso(column) if pa.types.is_timestamp(column.type) else column for column in table.columns
    ]
    return pa.Table.from_arrays(arrays, schema=text_schema)


def _write_dataset(tables: Iterable[pa.Table], schema: Any, temp: Path, key: str | None) -> int:
    """Hive-partitioned files sharing one schema (the key column is left out of them)."""
    temp.mkdir()
    if key is None:
        count = 0
        for i, table in enumerate(tables):
            if table.num_rows or i == 0:
                pq.write_table(table, temp / f"part-{count:05d}.parquet")
                count += 1
        return count
    column, fmt = _partition_column(key, schema)
    file_schema = schema.remove(schema.get_field_index(key)) if fmt is None else schema
    writers = _PartitionWriters(temp, key, file_schema)
    try:
        for table in tables:
            for value, rows in _split(table, column, fmt):
                if fmt is None:
                    rows = rows.drop([key])
                writers.write(value, rows.replace_schema_metadata(file_schema.metadata))
    finally:
        writers.close()
    return writers.files


def _partition_column(key: str, schema: Any) -> tuple[str, str | None]:
    if key in _TIME_FORMATS:
        for name in _TIME_COLUMNS:
            if name in schema.names and pa.types.is_timestamp(schema.field(name).type):
                return name, _TIME_FORMATS[key]
        raise ConfigurationError(
            f"partition_by={key!r} needs a timestamp or created_at column; this data has "
            f"{', '.join(schema.names) or 'no columns'}. Partition by a column name instead."
        )
    if key not in schema.names:
        raise ConfigurationError(
            f"partition_by={key!r}: no such column. Use 'day', 'month' or one of: "
            f"{', '.join(schema.names)}."
        )
    return key, None


def _split(table: pa.Table, column: str, fmt: str | None) -> Iterator[tuple[str, pa.Table]]:
    """The table's rows grouped by partition value (sorted once, then sliced)."""
    values = table.column(column)
    if fmt is not None:
        keys = pc.strftime(values, format=fmt)
    else:
        keys = _iso(values) if pa.types.is_timestamp(values.type) else values.cast(pa.string())
    keys = pc.fill_null(keys, DEFAULT_PARTITION)
    order = pc.sort_indices(keys)
    ordered = table.take(order)
    sorted_keys = keys.take(order).to_pylist()
    start = 0
    for i in range(1, len(sorted_keys) + 1):
        if i == len(sorted_keys) or sorted_keys[i] != sorted_keys[start]:
            yield sorted_keys[start], ordered.slice(start, i - start)
            start = i


class _PartitionWriters:
    """One open ParquetWriter per partition value, at most MAX_OPEN_WRITERS at a time."""

    def __init__(self, root: Path, key: str, schema: Any) -> None:
        self.root, self.key, self.schema = root, key, schema
        self.open: dict[str, pq.ParquetWriter] = {}
        self.next_part: dict[str, int] = {}
        self.files = 0

    def write(self, value: str, table: pa.Table) -> None:
        writer = self.open.pop(value, None)
        if writer is None:
            writer = self._new(value)
        self.open[value] = writer  # most recently used last
        writer.write_table(table)

    def _new(self, value: str) -> Any:
        if len(self.open) >= MAX_OPEN_WRITERS:
            oldest = next(iter(self.open))
            self.open.pop(oldest).close()
        number = self.next_part.get(value, 0)
        self.next_part[value] = number + 1
        directory = self.root / f"{self.key}={partition_segment(value)}"
        directory.mkdir(exist_ok=True)
        self.files += 1
        return pq.ParquetWriter(directory / f"part-{number:05d}.parquet", self.schema)

    def close(self) -> None:
        while self.open:
            self.open.popitem()[1].close()


_UNSAFE: Final = {"/": "%2F", "\\": "%5C", "%": "%25", "=": "%3D", ":": "%3A", "\n": "%0A"}


def partition_segment(value: str) -> str:
    """A partition value safe as a directory name; readers URL-decode it back."""
    if value in ("", ".", ".."):
        return DEFAULT_PARTITION if not value else value.replace(".", "%2E")
    return "".join(_UNSAFE.get(ch, ch) for ch in value)


# -- files -----------------------------------------------------------------------------------


def _move_into_place(temp: Path, final: Path) -> None:
    """Rename the finished temp file or directory over the final name."""
    if temp.is_dir() and final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        _remove(old)
        final.rename(old)  # a directory cannot be replaced in one step: swap, then delete
        temp.rename(final)
        _remove(old)
        return
    if final.is_dir():
        raise ConfigurationError(f"{final} is a directory; export a file elsewhere.")
    os.replace(temp, final)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _remove_leftovers(final: Path) -> None:
    """Staging and temp files of earlier runs of this export whose process is gone."""
    for marker in ("tmp", "parts", "old"):
        for stray in final.parent.glob(f".{final.name}.{marker}-*"):
            pid = stray.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                _remove(stray)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours from an earlier call in this process: finished or failed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _disk_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
