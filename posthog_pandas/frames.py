"""JSON records and HogQL rows to typed pandas DataFrames: schemas, flattening and dtype rules.

This module imports no HTTP code; everything here is a pure function of its inputs.

Column order
    1. The schema's columns, in schema order, each with its schema dtype (a column no record
       has is still present, all missing). A ``json-flatten`` column is replaced by its
       flattened columns (step 3) when ``flatten=True``. A column the schema marks
       ``raw_only`` (it repeats another, or PostHog fills it with one value by construction:
       the persons' ``uuid``, ``type``, ``matched_recordings``, ``value_at_data_point``) is
       left out, and so is the key it names, unless ``FrameOptions.raw=True``; the schema
       decides, never the rows, so a full frame and an empty one have the same columns.
    2. Top-level keys the schema does not name, in order of first appearance, dtype inferred
       by the mixed-type rule below.
    3. Flattened columns: one group per flattened column (schema order, then extra keys),
       each group sorted by name. The same input keys therefore give the same header
       whatever the row order.

Flattening (``FrameOptions.flatten=True``)
    A dict column named ``properties`` or ``group_properties``, or one the schema marks
    ``json-flatten``, becomes columns ``<prefix><sep><key>`` (``properties.$browser``), up to
    ``max_depth`` levels (``properties.address.city`` needs 2). A nested ``person.properties``
    always gets its own ``max_depth`` levels. Deeper dicts and ALL lists become JSON text
    (orjson, sorted keys) in a ``string`` column, so ``to_csv()`` and Parquet always work.
    Properties may also arrive as JSON text (HogQL ``properties`` is a String); they are
    parsed. A value that is not an object (a number, a list, unparseable text) lands in a
    column named after the prefix itself (``properties``) as JSON text, so nothing is
    dropped. ``flatten=False`` keeps dicts and lists as Python objects in ``object`` columns.

Mixed-type rule (property columns and extra keys)
    all bool -> ``boolean``; all int (bool excluded) -> ``Int64`` (beyond int64 -> ``string``);
    ints and floats -> ``Float64``; all str -> ``string``; all missing -> ``object``;
    anything else -> ``string`` with each value rendered as JSON text (``1`` -> ``"1"``,
    ``True`` -> ``"true"``, strings are not re-quoted). None and missing keys are ``<NA>``.
    A schema column whose values do not fit its dtype falls back to this rule (never a crash).

Property definitions (``FrameOptions.property_types``: name -> PostHog ``property_type``)
    A top-level ``properties.<key>`` column whose key PostHog defines is typed by the
    definition rather than by its values: ``DateTime`` -> ``datetime64[ns, UTC]`` (ISO 8601
    text; naive text is UTC); ``Numeric`` and ``Duration`` -> ``Int64`` when every value is an
    integer, else ``Float64`` (numbers, and text spelling a number); ``Boolean`` -> ``boolean``
    (booleans, and the text ``true``/``false`` in any case); ``String`` -> ``string`` (other
    values as JSON text). A column whose values do not fit its definition (a unix timestamp
    under ``DateTime``, a word under ``Numeric``), or that holds objects, follows the rules
    below instead; a key without a definition, too.

Datetimes
    ISO strings (``Z`` or offset, with or without microseconds) -> ``datetime64[ns, UTC]``;
    None -> NaT. A column that does not parse stays ``string``.

Empty results
    Exactly the schema's columns with their dtypes (no flattened columns; raw-only columns
    only with ``raw=True``).

HogQL (``hogql_to_frame``) maps ClickHouse types (``clickhouse_dtype``):
    DateTime/DateTime64(...)/DateTime('tz') -> ``datetime64[ns, UTC]``;
    Date/Date32 -> ``datetime64[ns]`` (naive midnight, so it plots and resamples);
    Int8..Int64, UInt8..UInt32 -> ``Int64``; UInt64/Int128/UInt128/Int256/UInt256 -> ``Int64``
    when every value fits, else an ``object`` column of Python ints (no silent rounding);
    Float32/Float64/Decimal(...) -> ``Float64``; Bool -> ``boolean``;
    String/FixedString/UUID/Enum8/Enum16/IPv4/IPv6 -> ``string``; Nullable(X) and
    LowCardinality(X) unwrap to X; Array/Tuple/Map/JSON -> ``object`` of Python lists/dicts;
    Nothing -> ``object`` all missing; unknown -> ``object``. HogQL results are never
    flattened; ``hogql_events_to_frame`` builds the events frame from HogQL rows instead.

``dtype_backend="pyarrow"`` gives the same columns with ``pd.ArrowDtype`` dtypes
(``string[pyarrow]``, ``int64[pyarrow]``, ``timestamp[ns, tz=UTC][pyarrow]`` ...); object
columns stay object. ``FrameOptions.dtypes`` is applied last; naming a column that is absent
adds it, all missing, so a declared dtype also pins the header.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd

from . import _json
from .exceptions import ConfigurationError, ResponseFormatError

__all__ = [
    "SCHEMAS",
    "PROPERTY_TYPES",
    "Column",
    "FrameOptions",
    "Schema",
    "clickhouse_dtype",
    "empty_frame",
    "hogql_events_to_frame",
    "hogql_to_frame",
    "json_text",
    "records_to_frame",
]

# Our dtype vocabulary -> pandas dtype (numpy_nullable backend). "json" is JSON text when
# flattening and Python objects otherwise; "json-flatten" is expanded into columns.
_PANDAS_DTYPES: Final[dict[str, str]] = {
    "string": "string",
    "Int64": "Int64",
    "Float64": "Float64",
    "boolean": "boolean",
    "datetime": "datetime64[ns, UTC]",
    "date": "datetime64[ns]",
    "object": "object",
    "json": "string",
    "json-flatten": "object",
}
_DTYPE_NAMES: Final = frozenset(_PANDAS_DTYPES)

# Dict columns flattened by name even when no schema mentions them (paths, not joined names,
# so a custom `sep` does not change what counts as a root).
_FLATTEN_ROOTS: Final = frozenset(
    {("properties",), ("group_properties",), ("person", "properties")}
)

_NONE: Final = type(None)
_NESTED: Final = frozenset({dict, list, tuple})


@dataclass(frozen=True)
class Column:
    """One schema column: its name, its dtype, other keys that carry the same value, and
    whether it is shown only with ``raw=True`` (it repeats another column, or PostHog fills
    it with one value by construction)."""

    name: str
    dtype: str
    aliases: tuple[str, ...] = ()  # events list says `id` where HogQL says `uuid`
    raw_only: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPE_NAMES:
            raise ConfigurationError(
                f"Column {self.name!r}: unknown dtype {self.dtype!r}; "
                f"use one of {', '.join(sorted(_DTYPE_NAMES))}."
            )


Schema = tuple[Column, ...]


@dataclass(frozen=True)
class FrameOptions:
    """How records become a frame: flattening, separator, dtype backend, user dtypes, and
    `raw` (keep the schema's raw-only columns: every field as PostHog sent it)."""

    flatten: bool = True
    max_depth: int = 1
    sep: str = "."
    dtype_backend: str | None = None
    dtypes: Mapping[str, str] | None = None
    raw: bool = False
    property_types: Mapping[str, str] | None = None  # PostHog's property definitions

    def __post_init__(self) -> None:
        if self.dtype_backend not in (None, "numpy_nullable", "pyarrow"):
            raise ConfigurationError(
                f"dtype_backend={self.dtype_backend!r}; use None, 'numpy_nullable' or 'pyarrow'."
            )
        if self.max_depth < 0:
            raise ConfigurationError(f"max_depth={self.max_depth}; use 0 or more.")
        if not self.sep:
            raise ConfigurationError("sep must be a non-empty string, such as '.'.")


_DEFAULT_OPTIONS: Final = FrameOptions()


def _schema(
    *spec: str,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    raw_only: Iterable[str] = (),
) -> Schema:
    """Build a Schema from "name:dtype" strings (keeps the table below readable)."""
    aliases = aliases or {}
    hidden = frozenset(raw_only)
    columns = []
    for item in spec:
        name, dtype = item.rsplit(":", 1)
        columns.append(Column(name, dtype, aliases.get(name, ()), name in hidden))
    return tuple(columns)


# The persons lists (`persons/`, `cohorts/{id}/persons/`) serialize each person with
# `get_serialized_people` (posthog/queries/actor_base_query.py): `uuid` is `id` again, and
# `type` ("person"), `matched_recordings` ([]) and `value_at_data_point` (None) are constant
# there by construction. They are kept only with raw=True.
_PERSONS = _schema(
    "id:string",  # the person UUID on lists, a number on retrieve: string holds both
    "distinct_ids:json",
    "name:string",
    "created_at:datetime",
    "last_seen_at:datetime",
    "is_identified:boolean",
    "uuid:string",
    "type:string",
    "matched_recordings:json",
    "value_at_data_point:Float64",
    "properties:json-flatten",
    raw_only=("uuid", "type", "matched_recordings", "value_at_data_point"),
)

# Old `/api/person/` (PersonSerializer): `id` is the numeric primary key there, so `uuid`
# carries the person UUID and is a column of its own; no `last_seen_at`.
_LEGACY_PERSONS = _schema(
    "id:string",
    "uuid:string",
    "distinct_ids:json",
    "name:string",
    "created_at:datetime",
    "is_identified:boolean",
    "properties:json-flatten",
)

SCHEMAS: Final[dict[str, Schema]] = {
    "persons": _PERSONS,
    "cohort_persons": _PERSONS,
    "legacy_persons": _LEGACY_PERSONS,
    "events": _schema(
        "uuid:string",
        "event:string",
        "distinct_id:string",
        "timestamp:datetime",
        "person_id:string",
        "elements_chain:string",
        "elements:json",
        "properties:json-flatten",
        "person:json-flatten",  # only with include_person=true
        aliases={"uuid": ("id",)},
    ),
    "cohorts": _schema(
        "id:Int64",
        "name:string",
        "description:string",
        "count:Int64",
        "is_static:boolean",
        "is_calculating:boolean",
        "cohort_type:string",
        "created_at:datetime",
        "last_calculation:datetime",
        "errors_calculating:Int64",
        "deleted:boolean",
        "created_by:json",
        "filters:json",
        "query:json",
        "groups:json",
        "experiment_set:json",
    ),
    "feature_flags": _schema(
        "id:Int64",
        "key:string",
        "name:string",
        "active:boolean",
        "deleted:boolean",
        "rollout_percentage:Float64",
        "ensure_experience_continuity:boolean",
        "is_simple_flag:boolean",
        "version:Int64",
        "status:string",
        "created_at:datetime",
        "updated_at:datetime",
        "last_called_at:datetime",
        "created_by:json",
        "filters:json",
        "tags:json",
    ),
    "insights": _schema(
        "id:Int64",
        "short_id:string",
        "name:string",
        "derived_name:string",
        "description:string",
        "favorited:boolean",
        "deleted:boolean",
        "created_at:datetime",
        "updated_at:datetime",
        "last_modified_at:datetime",
        "last_refresh:datetime",
        "last_viewed_at:datetime",
        "created_by:json",
        "last_modified_by:json",
        "query:json",
        "filters:json",
        "result:json",
        "dashboards:json",
        "tags:json",
    ),
    "dashboards": _schema(
        "id:Int64",
        "name:string",
        "description:string",
        "pinned:boolean",
        "is_shared:boolean",
        "deleted:boolean",
        "team_id:Int64",
        "created_at:datetime",
        "last_accessed_at:datetime",
        "created_by:json",
        "tags:json",
    ),
    "annotations": _schema(
        "id:Int64",
        "content:string",
        "date_marker:datetime",
        "scope:string",
        "creation_type:string",
        "dashboard_item:Int64",
        "dashboard_id:Int64",
        "dashboard_name:string",
        "insight_short_id:string",
        "insight_name:string",
        "insight_derived_name:string",
        "deleted:boolean",
        "created_at:datetime",
        "updated_at:datetime",
        "created_by:json",
    ),
    "actions": _schema(
        "id:Int64",
        "name:string",
        "description:string",
        "team_id:Int64",
        "deleted:boolean",
        "is_calculating:boolean",
        "is_action:boolean",
        "created_at:datetime",
        "last_calculated_at:datetime",
        "pinned_at:datetime",
        "created_by:json",
        "steps:json",
        "tags:json",
    ),
    "event_definitions": _schema(
        "id:string",
        "name:string",
        "description:string",
        "verified:boolean",
        "created_at:datetime",
        "last_seen_at:datetime",
        "last_updated_at:datetime",
        "tags:json",
    ),
    "property_definitions": _schema(
        "id:string",
        "name:string",
        "description:string",
        "is_numerical:boolean",
        "property_type:string",
        "tags:json",
    ),
    "experiments": _schema(
        "id:Int64",
        "name:string",
        "description:string",
        "feature_flag_key:string",
        "type:string",
        "archived:boolean",
        "deleted:boolean",
        "start_date:datetime",
        "end_date:datetime",
        "created_at:datetime",
        "updated_at:datetime",
        "created_by:json",
        "parameters:json",
        "filters:json",
        "metrics:json",
    ),
    "surveys": _schema(
        "id:string",
        "name:string",
        "description:string",
        "type:string",
        "archived:boolean",
        "start_date:datetime",
        "end_date:datetime",
        "created_at:datetime",
        "created_by:json",
        "questions:json",
        "linked_flag:json",
        "targeting_flag:json",
    ),
    "groups": _schema(
        "group_type_index:Int64",
        "group_key:string",
        "created_at:datetime",
        "group_properties:json-flatten",
    ),
    "session_recordings": _schema(
        "id:string",
        "distinct_id:string",
        "viewed:boolean",
        "ongoing:boolean",
        "recording_duration:Float64",
        "active_seconds:Float64",
        "activity_score:Float64",
        "start_time:datetime",
        "end_time:datetime",
        "click_count:Int64",
        "keypress_count:Int64",
        "mouse_activity_count:Int64",
        "console_log_count:Int64",
        "console_warn_count:Int64",
        "console_error_count:Int64",
        "start_url:string",
        "person:json-flatten",
    ),
    "projects": _schema(
        "id:Int64",
        "uuid:string",
        "organization:string",
        "name:string",
        "api_token:string",
        "timezone:string",
        "is_demo:boolean",
        "created_at:datetime",
        "updated_at:datetime",
    ),
}


# --- JSON text ---------------------------------------------------------------------------

_JSON_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def json_text(value: Any) -> str:
    """Render a value as compact JSON text with sorted keys (used for lists and deep dicts)."""
    try:
        return orjson.dumps(value, option=_JSON_OPTIONS, default=str).decode()
    except TypeError:  # ints beyond 64 bits, mixed-type keys: the stdlib copes, slower
        try:
            return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            return repr(value)


def _render_all(values: Sequence[Any]) -> list[str | None]:
    """The cells of a mixed column as text: strings as they are, None and NaN missing,
    everything else JSON text. One orjson call per non-text cell and no other calls (lists of
    distinct ids, nested dicts: thousands per page, where the calls added up)."""
    dumps, options = orjson.dumps, _JSON_OPTIONS
    out: list[Any] = list(values)
    for i, value in enumerate(out):
        kind = type(value)
        if value is None or kind is str:
            continue
        if kind is float and value != value:  # NaN is missing, not the text "null"
            out[i] = None
            continue
        try:
            out[i] = dumps(value, str, options).decode()
        except TypeError:  # ints beyond 64 bits and the like: json_text's slower fallbacks
            out[i] = json_text(value)
    return out


# --- value lists to arrays -----------------------------------------------------------------


def _types(values: Sequence[Any]) -> set[type]:
    return set(map(type, values))


def _object_array(values: Sequence[Any]) -> Any:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # element-wise: a list must not become a 2-D row
        out[i] = value
    return out


# pandas 3 stores "string" in Arrow; building the Arrow array directly skips pandas' own
# per-value conversion there.
_ARROW_STRINGS: Final = pd.StringDtype().storage == "pyarrow"


def _only_strings(values: Sequence[Any]) -> Any:
    """The ``string`` array when every value is a str or None (most columns), else None.

    One pass in C: Arrow rejects the first value that is not text, so mixed columns cost
    little here and then take the per-type rules.
    """
    if not _ARROW_STRINGS:
        return None
    import pyarrow as pa

    try:
        return pd.array(pa.array(values, type=pa.large_string()), dtype="string")
    except (pa.ArrowException, TypeError, ValueError):  # not text, or lone surrogates
        return None


def _some_strings(values: Sequence[Any]) -> Any:
    """``_only_strings``, but None when nothing is present (all missing stays ``object``)."""
    text = _only_strings(values)
    return text if text is not None and not text.isna().all() else None


def _string_array(values: Sequence[Any], types: set[type] | None = None) -> Any:
    types = _types(values) if types is None else types
    if not types <= {str, _NONE}:
        values = _render_all(values)
    text = _only_strings(values)  # lone surrogates and the like: pandas' own path copes
    return text if text is not None else pd.array(values, dtype="string")


@functools.cache
def _masked_kinds() -> dict[str, tuple[Any, Any, Any]]:
    """Masked dtype -> (Arrow type, fill for missing slots, pandas array class)."""
    import pyarrow as pa
    from pandas.arrays import BooleanArray, FloatingArray, IntegerArray

    return {
        "Int64": (pa.int64(), 0, IntegerArray),
        "Float64": (pa.float64(), 0.0, FloatingArray),
        "boolean": (pa.bool_(), False, BooleanArray),
    }


def _masked_via_arrow(values: Sequence[Any], dtype: str) -> Any:
    """The masked pandas array (Int64, Float64, boolean) of Python scalars and None, built by
    Arrow: one C pass, where ``pd.array`` inspects every value in Python. None when Arrow
    refuses a value: only ints beyond 64 bits, given the callers' type checks.
    """
    import pyarrow as pa

    arrow_type, fill, build = _masked_kinds()[dtype]
    try:  # from_pandas: NaN is missing, as pd.array reads it
        arrow = pa.array(values, type=arrow_type, from_pandas=True)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None
    mask = arrow.is_null().to_numpy(zero_copy_only=False)
    return build(arrow.fill_null(fill).to_numpy(zero_copy_only=False), mask)


def _int_array(values: Sequence[Any]) -> Any:
    # What Arrow refuses (beyond 64 bits) Int64 cannot hold either; pd.array would warn, then
    # refuse too.
    return _masked_via_arrow(values, "Int64")


def _bool_array(values: Sequence[Any]) -> Any:
    array = _masked_via_arrow(values, "boolean")
    return array if array is not None else pd.array(values, dtype="boolean")


def _float_array(values: Sequence[Any]) -> Any:
    array = _masked_via_arrow(values, "Float64")
    if array is not None:
        return array
    try:  # ints beyond 64 bits: Arrow refuses them, pandas rounds them to the nearest float
        return pd.array(values, dtype="Float64")
    except (OverflowError, TypeError, ValueError):
        return None


_DATETIME_TYPES: Final = frozenset({str, _NONE, _dt.datetime, pd.Timestamp})

# pandas 2.x gives a naive string that follows an offset string that offset ("10:00" after a
# "-08:00" row becomes 18:00 UTC); pandas 3 reads it as UTC. Parse the two kinds apart there.
_NAIVE_FOLLOWS_OFFSET: Final = int(pd.__version__.split(".", 1)[0]) < 3
_OFFSET_SUFFIX: Final = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")


def _has_offset(value: Any) -> bool:
    # non-strings (None, datetime objects) parse the same in either group; keep them here
    return type(value) is not str or (":" in value and _OFFSET_SUFFIX.search(value) is not None)


def _parse_datetimes(values: Sequence[Any], utc: bool) -> pd.Series:
    series = pd.Series(values, dtype=object)
    if _NAIVE_FOLLOWS_OFFSET and utc:
        aware = pd.Series([_has_offset(v) for v in values], dtype=bool)
        if aware.any() and not aware.all():
            parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
            for part in (aware, ~aware):
                chunk = pd.to_datetime(series[part], utc=True, format="ISO8601", cache=False)
                parsed[part] = chunk.astype("datetime64[ns, UTC]")
            return parsed
    # cache=False: the unique-value cache pays off only for costly formats; ISO strings parse
    # fast, so building it costs more than it saves, even with the repeats event data has.
    return pd.to_datetime(series, utc=utc, format="ISO8601", cache=False)


def _datetime_array(values: Sequence[Any], types: set[type], *, utc: bool) -> Any:
    """Parse ISO strings; None when the column does not parse (the caller keeps strings)."""
    if not types <= _DATETIME_TYPES:
        return None  # numbers would be read as epoch nanoseconds: refuse, keep them visible
    try:
        series = _parse_datetimes(values, utc)
        if not utc and isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        # pandas 3 infers microseconds from strings; pin ns so both versions agree.
        return series.astype("datetime64[ns, UTC]" if utc else "datetime64[ns]").array
    except (ValueError, TypeError, OverflowError):
        return None


def _infer_array(values: Sequence[Any], flatten: bool, types: set[type] | None = None) -> Any:
    """The mixed-type rule: a list of JSON values to one typed array."""
    if types is None:
        text = _some_strings(values)
        if text is not None:
            return text
        types = _types(values)
    present = types - {_NONE}
    if not present:
        return _object_array(values)
    if present == {bool}:
        return _bool_array(values)
    if present == {int}:
        ints = _int_array(values)
        return ints if ints is not None else _string_array(values, types)
    if present <= {int, float}:
        floats = _float_array(values)
        return floats if floats is not None else _string_array(values, types)
    if not flatten and present & _NESTED:
        return _object_array(values)
    return _string_array(values, types)


def _typed_array(values: Sequence[Any], dtype: str, flatten: bool) -> Any:
    """Values to an array of our dtype `dtype`; values that do not fit use the mixed rule."""
    if dtype == "string" or (dtype == "json" and flatten):
        text = _only_strings(values)
        if text is not None:
            return text
    types = _types(values)
    present = types - {_NONE}
    array: Any = None
    if dtype == "string" or (dtype == "json" and flatten):
        array = _string_array(values, types)
    elif dtype in ("object", "json", "json-flatten"):
        array = _object_array(values)
    elif dtype == "Int64" and present <= {int}:
        array = _int_array(values)
    elif dtype == "Float64" and present <= {int, float}:
        array = _float_array(values)
    elif dtype == "boolean" and present <= {bool}:
        array = _bool_array(values)
    elif dtype in ("datetime", "date"):
        array = _datetime_array(values, types, utc=dtype == "datetime")
        if array is None:
            array = _string_array(values, types)
    return array if array is not None else _infer_array(values, flatten, types)


# --- property definitions ----------------------------------------------------------------

# PostHog's PropertyType (posthog/models/property_definition.py) -> how values are read.
PROPERTY_TYPES: Final[dict[str, str]] = {
    "DateTime": "datetime",
    "Numeric": "number",
    "Duration": "number",
    "Boolean": "boolean",
    "String": "string",
}
_NUMBER_TEXT: Final = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
_BOOLEAN_TEXT: Final = {"true": True, "false": False}


def _number(value: Any) -> Any:
    """A number, or text spelling one, as int or float; anything else raises ValueError."""
    kind = type(value)
    if value is None or kind is int or kind is float:
        return value
    if kind is str and _NUMBER_TEXT.fullmatch(value):
        return int(value) if value.lstrip("-").isdigit() else float(value)
    raise ValueError(value)


def _boolean(value: Any) -> Any:
    if value is None or type(value) is bool:
        return value
    if type(value) is str and value.lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[value.lower()]
    raise ValueError(value)


def _defined_array(values: Sequence[Any], property_type: str) -> Any:
    """Values typed by their property definition; None when they do not fit it."""
    kind = PROPERTY_TYPES.get(property_type)
    types = _types(values)
    if kind is None or any(issubclass(t, Mapping) for t in types):
        return None  # no usable definition, or objects to flatten
    if kind == "string":
        return _string_array(values, types)
    if kind == "datetime":
        return _datetime_array(values, types, utc=True) if types <= {str, _NONE} else None
    native = {int, float, _NONE} if kind == "number" else {bool, _NONE}
    if types <= native:  # JSON gave them typed already: no per-value pass (most pulls)
        converted: Sequence[Any] = values
    else:
        try:
            converted = [(_number if kind == "number" else _boolean)(v) for v in values]
        except ValueError:
            return None
    if kind == "boolean":
        return _bool_array(converted)
    present = (types if converted is values else _types(converted)) - {_NONE}
    return _int_array(converted) if present <= {int} else _float_array(converted)


# --- flattening ------------------------------------------------------------------------------


def _parse_texts(values: Sequence[Any]) -> Sequence[Any]:
    """JSON text to Python values (HogQL sends properties as a String); "" counts as missing."""
    types = _types(values)
    if str not in types:
        return values
    exact = _json.needs_exact(values if types == {str} else [v for v in values if type(v) is str])
    decode = _json.loads if exact else orjson.loads
    if types == {str}:
        try:  # fast path: every row is valid JSON text
            return list(map(decode, values))
        except ValueError:
            pass
    out = list(values)
    for i, value in enumerate(out):
        if type(value) is str:
            if not value:
                out[i] = None
                continue
            try:
                out[i] = decode(value)
            except ValueError:
                pass  # keep the text; it lands in the prefix column
    return out


def _collect(
    values: Sequence[Any],
    path: tuple[str, ...],
    budget: int,
    options: FrameOptions,
    out: dict[str, Any],
) -> None:
    """Flatten dicts under `path` into `out` (name -> array), `budget` levels deep."""
    n = len(values)
    keyed: dict[str, list[Any]] = {}
    rest: list[Any] | None = None  # values that are not dicts (or too deep)
    for i, value in enumerate(values):
        if value is None:
            continue
        if budget > 0 and (type(value) is dict or isinstance(value, Mapping)):
            for key, item in value.items():
                try:
                    keyed[key][i] = item
                except KeyError:
                    keyed[key] = [None] * n
                    keyed[key][i] = item
        else:
            if rest is None:
                rest = [None] * n
            rest[i] = value
    if rest is not None:
        out[options.sep.join(path)] = _infer_array(rest, True)
    defined = (options.property_types or {}) if path == ("properties",) else {}
    for key, column in keyed.items():
        child = (*path, str(key))
        if key in defined:
            array = _defined_array(column, defined[key])
            if array is not None:
                out[options.sep.join(child)] = array
                continue
        text = _some_strings(column)  # the common case: no dicts below, no type to infer
        if text is not None:
            out[options.sep.join(child)] = text
            continue
        types = _types(column)
        child_budget = options.max_depth if child in _FLATTEN_ROOTS else budget - 1
        if child_budget > 0 and any(issubclass(t, Mapping) for t in types):
            _collect(column, child, child_budget, options, out)
        else:
            out[options.sep.join(child)] = _infer_array(column, True, types)


def _flatten_group(values: Sequence[Any], path: tuple[str, ...], options: FrameOptions) -> Any:
    """One flattened group, sorted by column name."""
    out: dict[str, Any] = {}
    _collect(_parse_texts(values), path, options.max_depth, options, out)
    return {name: out[name] for name in sorted(out)}


# --- dtype backend and user dtypes -----------------------------------------------------------


def _arrow_dtype(dtype: Any) -> Any:
    import pyarrow as pa  # imported here: only the pyarrow backend needs it

    if isinstance(dtype, pd.StringDtype):
        return pd.ArrowDtype(pa.string())
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.ArrowDtype(pa.timestamp(dtype.unit, tz=str(dtype.tz)))
    simple = {
        "Int64": pa.int64(),
        "Float64": pa.float64(),
        "boolean": pa.bool_(),
        "datetime64[ns]": pa.timestamp("ns"),
    }
    arrow = simple.get(str(dtype))
    return None if arrow is None else pd.ArrowDtype(arrow)


def _backend(array: Any, options: FrameOptions) -> Any:
    if options.dtype_backend != "pyarrow":
        return array
    target = _arrow_dtype(array.dtype)
    return array if target is None else array.astype(target)


def _convert(series: pd.Series, dtype: str, name: str) -> pd.Series:
    """Apply one user dtype override (our names or any pandas dtype string)."""
    try:
        if dtype in ("datetime", "date"):
            if isinstance(series.dtype, pd.StringDtype) or series.dtype == object:
                values = series.astype(object).where(series.notna(), None).tolist()
                array = _datetime_array(values, _types(values), utc=dtype == "datetime")
                if array is None:
                    raise ValueError("values are not ISO 8601 datetimes")
                return pd.Series(array, index=series.index, name=series.name)
        if dtype == "json":
            values = series.astype(object).where(series.notna(), None).tolist()
            return pd.Series(_string_array(values), index=series.index, name=series.name)
        target: Any = _PANDAS_DTYPES.get(dtype, dtype)
        converted: pd.Series = series.astype(target)
        return converted
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigurationError(
            f"dtypes[{name!r}] = {dtype!r}: cannot convert column {name!r} "
            f"(currently {series.dtype}): {exc}"
        ) from exc


def _finish(df: pd.DataFrame, options: FrameOptions) -> pd.DataFrame:
    for name, dtype in (options.dtypes or {}).items():
        if name in df.columns:
            df[name] = _convert(df[name], dtype, name)
        else:
            empty = pd.Series([None] * len(df), index=df.index, dtype=object)
            df[name] = _convert(empty, dtype, name)
    return df


def _series(array: Any, index: pd.RangeIndex, name: Any = None) -> pd.Series:
    # pandas 3 would infer "str" for an object ndarray of strings; object must stay object
    dtype = object if isinstance(array, np.ndarray) and array.dtype == object else None
    return pd.Series(array, index=index, name=name, dtype=dtype, copy=False)


def _frame(arrays: Iterable[tuple[str, Any]], n: int, options: FrameOptions) -> pd.DataFrame:
    """Assemble named arrays (duplicates allowed) into a frame with a RangeIndex."""
    named = list(arrays)
    index = pd.RangeIndex(n)
    data = {i: _series(_backend(array, options), index) for i, (_, array) in enumerate(named)}
    df = pd.DataFrame(data, index=index)
    df.columns = pd.Index([name for name, _ in named])
    return _finish(df, options)


# --- records ------------------------------------------------------------------------------------


def _shown(column: Column, options: FrameOptions) -> bool:
    return options.raw or not column.raw_only


def empty_frame(schema: Schema, options: FrameOptions = _DEFAULT_OPTIONS) -> pd.DataFrame:
    """A zero-row frame with exactly the schema's columns and dtypes."""
    arrays = [
        (column.name, _typed_array([], column.dtype, options.flatten))
        for column in schema
        if _shown(column, options) and not (options.flatten and column.dtype == "json-flatten")
    ]
    return _frame(arrays, 0, options)


def _keys_in_order(records: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """Every top-level key in order of first appearance -> whether every record has it."""
    try:
        shapes = dict.fromkeys(map(tuple, records))
    except TypeError as exc:
        raise ConfigurationError("records must be a sequence of JSON objects (dicts)") from exc
    keys = dict.fromkeys(key for shape in shapes for key in shape)
    common = set.intersection(*map(set, shapes))
    return {key: key in common for key in keys}


def _assemble(
    raw: Mapping[str, Sequence[Any]],
    n: int,
    schema: Schema,
    options: FrameOptions,
    extra_array: Any,
) -> pd.DataFrame:
    """Raw columns (name -> values) to the ordered, typed frame; see the module docstring."""
    flatten = options.flatten
    arrays: list[tuple[str, Any]] = []
    groups: list[tuple[str, Sequence[Any]]] = []
    claimed: set[str] = set()
    for column in schema:
        claimed.update((column.name, *column.aliases))
        if not _shown(column, options):
            continue  # a raw-only column: neither a column nor an extra key
        values = _schema_values(raw, column, n)
        if flatten and column.dtype == "json-flatten":
            groups.append((column.name, values))
        elif column.dtype == "json-flatten":
            arrays.append((column.name, _object_array(_parse_texts(values))))
        else:
            arrays.append((column.name, _typed_array(values, column.dtype, flatten)))
    for name, values in raw.items():
        if name in claimed:
            continue
        if (name,) in _FLATTEN_ROOTS and flatten:
            groups.append((name, values))
        else:
            arrays.append((name, extra_array(name, values)))
    for name, values in groups:
        arrays.extend(_flatten_group(values, (name,), options).items())
    return _frame(arrays, n, options)


def _schema_values(raw: Mapping[str, Sequence[Any]], column: Column, n: int) -> Sequence[Any]:
    for key in (column.name, *column.aliases):
        if key in raw:
            return raw[key]
    return [None] * n


def records_to_frame(
    records: Iterable[Mapping[str, Any]],
    schema: Schema | None,
    options: FrameOptions = _DEFAULT_OPTIONS,
) -> pd.DataFrame:
    """JSON records (API `results`) to a typed frame; see the module docstring for the rules."""
    schema = schema or ()
    if not isinstance(records, Sequence):
        records = list(records)  # a generator from `.iter()` is fine too
    if not records:
        return empty_frame(schema, options)
    raw = {
        # itemgetter runs in C; it is safe only for keys every record has
        key: list(map(itemgetter(key), records)) if everywhere else [r.get(key) for r in records]
        for key, everywhere in _keys_in_order(records).items()
    }
    return _assemble(
        raw, len(records), schema, options, lambda _name, v: _infer_array(v, options.flatten)
    )


# --- HogQL ---------------------------------------------------------------------------------------

_CLICKHOUSE_KINDS: Final[dict[str, str]] = {
    **dict.fromkeys(["datetime", "datetime32", "datetime64"], "datetime"),
    **dict.fromkeys(["date", "date32"], "date"),
    **dict.fromkeys(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"], "Int64"),
    **dict.fromkeys(["uint64", "int128", "uint128", "int256", "uint256"], "bigint"),
    **dict.fromkeys(
        [
            "float32",
            "float64",
            "bfloat16",
            "decimal",
            "decimal32",
            "decimal64",
            "decimal128",
            "decimal256",
        ],
        "Float64",
    ),
    **dict.fromkeys(["bool", "boolean"], "boolean"),
    **dict.fromkeys(
        ["string", "fixedstring", "uuid", "enum", "enum8", "enum16", "ipv4", "ipv6"], "string"
    ),
    **dict.fromkeys(
        ["array", "tuple", "map", "nested", "json", "object", "variant", "dynamic"], "object"
    ),
    "nothing": "null",
}

_WRAPPERS: Final = ("Nullable(", "LowCardinality(")


def _clickhouse_kind(type_name: Any) -> str:
    """A ClickHouse type string to our dtype name, or "bigint"/"null"; unknown -> "object"."""
    if not isinstance(type_name, str):
        return "object"
    name = type_name.strip()
    unwrapped = True
    while unwrapped:
        unwrapped = False
        for wrapper in _WRAPPERS:
            if name.startswith(wrapper) and name.endswith(")"):
                name = name[len(wrapper) : -1].strip()
                unwrapped = True
    base = name.split("(", 1)[0].strip().lower()
    return _CLICKHOUSE_KINDS.get(base, "object")


def clickhouse_dtype(type_name: str) -> str:
    """The pandas dtype a HogQL column of this ClickHouse type gets (numpy_nullable backend).

    UInt64 and wider report "Int64"; such a column becomes object when a value does not fit.
    """
    kind = _clickhouse_kind(type_name)
    return {"bigint": "Int64", "null": "object"}.get(kind) or _PANDAS_DTYPES[kind]


def _numbers_from_text(values: Sequence[Any], parse: Any) -> Sequence[Any]:
    """ClickHouse may quote 64-bit ints and decimals; turn such text back into numbers."""
    if str not in _types(values):
        return values
    out = list(values)
    for i, value in enumerate(out):
        if type(value) is str:
            try:
                out[i] = parse(value)
            except ValueError:
                return values  # not numbers after all: let the fallback rule decide
    return out


def _hogql_array(values: Sequence[Any], kind: str, flatten: bool) -> Any:
    if kind == "null":
        return _object_array(values)
    if kind == "bigint":
        ints = _numbers_from_text(values, int)
        present = _types(ints) - {_NONE}
        if present <= {int}:  # Int64 while every value fits in 64 bits, else exact ints
            array = _int_array(ints)
            return array if array is not None else _object_array(ints)
        return _infer_array(values, flatten)
    if kind == "Int64":
        values = _numbers_from_text(values, int)
    elif kind == "Float64":
        values = _numbers_from_text(values, float)
    elif kind == "boolean" and _types(values) - {_NONE} <= {int}:
        values = [None if v is None else bool(v) for v in values]  # ClickHouse may send 0/1
    if kind == "object":
        return _object_array(values)
    return _typed_array(values, kind, flatten)


def _normalize_types(types: Sequence[Any] | None, count: int) -> list[Any]:
    """`types` may be ["String", ...] or [["name", "String"], ...] or absent; pad unknowns."""
    out = [t[1] if isinstance(t, list | tuple) and len(t) == 2 else t for t in types or ()]
    return (out + [None] * count)[:count]


def _transpose(columns: Sequence[str], results: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    widths = set(map(len, results))
    if widths and widths != {len(columns)}:
        raise ResponseFormatError(
            f"query result has {len(columns)} columns but rows with {sorted(widths)} values"
        )
    if not results:
        return [[] for _ in columns]
    # One C pass, cheaper than a map per column; the tuples are read only, so they are not
    # copied to lists.
    return list(zip(*results, strict=True))


def hogql_to_frame(
    columns: Sequence[str],
    types: Sequence[Any] | None,
    results: Sequence[Sequence[Any]],
    options: FrameOptions = _DEFAULT_OPTIONS,
) -> pd.DataFrame:
    """A HogQL query response to a frame typed by its ClickHouse types (never flattened)."""
    kinds = [_clickhouse_kind(t) for t in _normalize_types(types, len(columns))]
    data = _transpose(columns, results)
    arrays = [
        (name, _hogql_array(values, kind, options.flatten))
        for name, kind, values in zip(columns, kinds, data, strict=True)
    ]
    return _frame(arrays, len(results), options)


def hogql_events_to_frame(
    columns: Sequence[str],
    types: Sequence[Any] | None,
    results: Sequence[Sequence[Any]],
    options: FrameOptions = _DEFAULT_OPTIONS,
) -> pd.DataFrame:
    """HogQL event rows to the events frame that ``records_to_frame`` builds from the list API.

    Rows are (uuid, event, distinct_id, timestamp, properties JSON text, ...) in any order;
    the result has the same columns, order and dtypes as
    ``records_to_frame(events_list_records, SCHEMAS["events"])``. Column order: the events
    schema columns (schema dtypes; unselected ones all missing), then other selected columns
    in result order (typed by their ClickHouse type), then the flattened property columns,
    sorted.
    """
    type_names = _normalize_types(types, len(columns))
    kinds = {name: _clickhouse_kind(t) for name, t in zip(columns, type_names, strict=True)}
    raw = dict(zip(columns, _transpose(columns, results), strict=True))
    return _assemble(
        raw,
        len(results),
        SCHEMAS["events"],
        options,
        lambda name, v: _hogql_array(v, kinds[name], options.flatten),
    )


def concat_frames(frames: Sequence[pd.DataFrame], sep: str = ".") -> pd.DataFrame:
    """Stack frames built page by page into the frame one build over all rows would give.

    Columns: the first frame's unflattened columns in order, then every flattened column
    (name containing `sep`) of any page, sorted. A column typed differently across pages
    follows the mixed-type rule: Int64 with Float64 -> Float64; any other mix -> string with
    non-strings as JSON text. (One difference from a single build: integers that one page
    already widened to Float64 render as "1.0" if another page then forces text.) Pages where
    a column is absent or all missing take the other pages' dtype.
    """
    # An empty page (the usual last one) adds no rows, and its schema-only columns would make
    # the pages look unlike each other: leave it out, unless every page is empty.
    frames = [frame for frame in frames if len(frame)] or list(frames[:1])
    if len(frames) == 1:
        return frames[0]
    plain: list[str] = []
    flat: set[str] = set()
    for frame in frames:
        for name in frame.columns:
            if sep in str(name):
                flat.add(name)
            elif name not in plain:
                plain.append(name)
    order = plain + sorted(flat)
    if _same_layout(frames, order):  # the usual case: nothing to conform, just stack
        stacked: pd.DataFrame = pd.concat(frames, ignore_index=True)
        return stacked
    targets = {name: _common_dtype(frames, name) for name in order}
    aligned = [_conformed(frame, order, targets) for frame in frames]
    combined: pd.DataFrame = pd.concat(aligned, ignore_index=True)
    return combined


def _same_layout(frames: Sequence[pd.DataFrame], order: Sequence[str]) -> bool:
    """Every frame has exactly the columns `order`, with the same dtypes as the first."""
    first = [str(d) for d in frames[0].dtypes]
    return all(
        list(frame.columns) == order and [str(d) for d in frame.dtypes] == first for frame in frames
    )


def _common_dtype(frames: Sequence[pd.DataFrame], name: str) -> Any:
    seen = [
        frame[name].dtype
        for frame in frames
        if name in frame.columns and not frame[name].isna().all()
    ]
    if not seen:
        present = [frame[name].dtype for frame in frames if name in frame.columns]
        return present[0] if present else object
    kinds = {str(d) for d in seen}
    if len(kinds) == 1:
        return seen[0]
    if kinds <= {"Int64", "Float64"}:
        return "Float64"
    if kinds <= {"int64[pyarrow]", "double[pyarrow]"}:
        return seen[[str(d) for d in seen].index("double[pyarrow]")]
    return "string"


def _conformed(
    frame: pd.DataFrame, order: Sequence[str], targets: Mapping[str, Any]
) -> pd.DataFrame:
    columns = {}
    for name in order:
        target = targets[name]
        if name not in frame.columns:
            columns[name] = _missing_column(frame.index, target)
            continue
        column = frame[name]
        if str(column.dtype) != str(target):
            if str(target) == "string" and str(column.dtype) != "object":
                column = pd.Series(
                    _render_all([None if v is pd.NA else v for v in column.tolist()]),
                    index=frame.index,
                    dtype="string",
                )
            elif column.isna().all():
                column = _missing_column(frame.index, target)
            else:
                column = column.astype(target)
        columns[name] = column
    return pd.DataFrame(columns, index=frame.index)


def _missing_column(index: pd.Index, dtype: Any) -> pd.Series:
    if str(dtype) == "object":
        return pd.Series([None] * len(index), index=index, dtype=object)
    missing: pd.Series = pd.Series(pd.NA, index=index, dtype=dtype)
    return missing
