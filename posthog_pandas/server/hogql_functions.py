"""The HogQL function library: ClickHouse function calls rewritten as DuckDB expressions.

Every call in a query goes through `translate_call`; a name missing from `FUNCTIONS` is
rejected, which is also what keeps DuckDB's own functions (read_csv, ...) out of reach.
Builders receive already-translated DuckDB argument trees. Each translated node may carry
`meta["kind"]` (datetime, date, string, int, float, bool, json, array, interval) so that
type-dependent functions such as toString pick the right DuckDB form without a round trip,
and `meta["ch_type"]` when ClickHouse reports a type DuckDB cannot tell (count() is UInt64).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import cast

import sqlglot
from sqlglot import exp

__all__ = [
    "CANNOT_PARSE_TEXT",
    "CannotParseText",
    "FnContext",
    "json_pointer",
    "kind_of",
    "translate_call",
    "with_kind",
]

_ARG = re.compile(r"\{(\d+)\}")
_ARG_PREFIX = "__hogql_arg_"


@dataclass(frozen=True)
class FnContext:
    """What a builder may need besides its arguments: the query's fixed clock."""

    now: datetime  # timezone-aware, evaluated once per query so now() is stable


Builder = Callable[[list[exp.Expression], FnContext], exp.Expression]


@dataclass(frozen=True)
class _Fn:
    min_args: int
    max_args: int | None  # None: variadic
    build: Builder


def kind_of(node: exp.Expression) -> str | None:
    """The static kind recorded on a translated node, or a literal's obvious one."""
    kind = node.meta.get("kind") if node.meta else None
    if kind is not None:
        return str(kind)
    if isinstance(node, exp.Literal):
        return "string" if node.is_string else "float" if "." in node.this else "int"
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Paren):
        return kind_of(node.this)
    return None


def with_kind(node: exp.Expression, kind: str | None, ch_type: str | None = None) -> exp.Expression:
    if kind is not None:
        node.meta["kind"] = kind
    if ch_type is not None:
        node.meta["ch_type"] = ch_type
    return node


def json_pointer(keys: list[str]) -> str:
    """A JSON pointer (RFC 6901): no quoting pitfalls for keys like `$browser` or `a.b`."""
    return "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in keys)


@lru_cache(maxsize=512)
def _parsed_template(sql: str) -> exp.Expression:
    tree = sqlglot.parse_one(_ARG.sub(lambda m: _ARG_PREFIX + m.group(1), sql), read="duckdb")
    return cast(exp.Expression, tree)


def _fill(sql: str, args: list[exp.Expression]) -> exp.Expression:
    """Instantiate a DuckDB template: `{n}` slots take (copies of) translated AST nodes."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name.startswith(_ARG_PREFIX) and not node.table:
            return args[int(node.name[len(_ARG_PREFIX) :])].copy()
        return node

    return _parsed_template(sql).copy().transform(swap, copy=False)


def _t(sql: str, kind: str | None = None, ch_type: str | None = None) -> Builder:
    return lambda args, ctx: with_kind(_fill(sql, args), kind, ch_type)


def _fn(min_args: int, max_args: int | None, build: Builder) -> _Fn:
    return _Fn(min_args, max_args, build)


def _tpl(n: int, sql: str, kind: str | None = None, ch_type: str | None = None) -> _Fn:
    return _Fn(n, n, _t(sql, kind, ch_type))


def _literal_str(node: exp.Expression, what: str) -> str:
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    raise ValueError(f"{what} must be a constant string")


# ---- dates -------------------------------------------------------------------------------

_UNITS = {
    "second": "SECOND",
    "minute": "MINUTE",
    "hour": "HOUR",
    "day": "DAY",
    "week": "WEEK",
    "month": "MONTH",
    "quarter": "QUARTER",
    "year": "YEAR",
}


def _unit(node: exp.Expression) -> str:
    unit = _literal_str(node, "The date unit").lower().rstrip("s")
    if unit not in _UNITS:
        raise ValueError(f"Unknown date unit '{unit}', expected one of {', '.join(_UNITS)}")
    return unit


# PostHog's fixed text for ClickHouse's CANNOT_PARSE_TEXT (posthog/errors.py, code 6).
CANNOT_PARSE_TEXT = (
    "Cannot parse a value as the requested type. Check your input formats and type conversions."
)
# ClickHouse's `basic` DateTime text (PostHog sets no other cast_string_to_date_time_mode): a
# date, or a date and time with a space or `T`, optional fraction; no `Z`, no offset.
_BASIC_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)?")
_BASIC_DATETIME_SQL = "[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?)?"


class CannotParseText(ValueError):
    """A string ClickHouse would refuse to convert: PostHog's 400 `cannot_parse_text`."""

    code = "cannot_parse_text"

    def __init__(self) -> None:
        super().__init__(CANNOT_PARSE_TEXT)


def _to_datetime(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    """HogQL's toDateTime: a string is parsed best effort (parseDateTime64BestEffortOrNull),
    NULL when it is not a date."""
    kind = kind_of(args[0])
    if kind == "datetime":
        return args[0]
    if kind in ("int", "float"):
        return with_kind(_fill("to_timestamp({0})", args), "datetime")
    if kind == "string" and len(args) > 1 and isinstance(args[-1], exp.Literal):
        # toDateTime('2024-01-01 00:00:00', 'Europe/Berlin'): wall time in that zone.
        return with_kind(
            _fill("timezone({1}, TRY_CAST({0} AS TIMESTAMP))", [args[0], args[-1]]), "datetime"
        )
    return with_kind(_fill("TRY_CAST({0} AS TIMESTAMPTZ)", args), "datetime")


def _to_datetime64(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    """ClickHouse's toDateTime64 (HogQL passes it through): a string must be `basic` DateTime
    text, else the query fails with CANNOT_PARSE_TEXT."""
    converted = _to_datetime(args[:1] + args[2:], ctx)
    if kind_of(args[0]) != "string":
        return converted
    if isinstance(args[0], exp.Literal):  # a bound value: checked now, so the bound still prunes
        if not _BASIC_DATETIME.fullmatch(str(args[0].this)):
            raise CannotParseText()
        return converted
    checked = exp.Case(
        ifs=[
            exp.If(
                this=exp.or_(
                    exp.Is(this=args[0].copy(), expression=exp.null()),
                    exp.Anonymous(
                        this="regexp_full_match",
                        expressions=[args[0].copy(), exp.Literal.string(_BASIC_DATETIME_SQL)],
                    ),
                ),
                true=converted,
            )
        ],
        default=exp.Anonymous(this="error", expressions=[exp.Literal.string(CANNOT_PARSE_TEXT)]),
    )
    return with_kind(checked, "datetime")


def _to_start_of_week(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    mode = 0
    if len(args) > 1:
        if not isinstance(args[1], exp.Literal) or args[1].is_string:
            raise ValueError("The toStartOfWeek mode must be a constant integer")
        mode = int(args[1].this)
    # ClickHouse modes: even = weeks start on Sunday, odd = on Monday.
    if mode % 2 == 0:
        return with_kind(_fill("CAST({0} AS DATE) - CAST(dayofweek({0}) AS INTEGER)", args), "date")
    return with_kind(_fill("CAST(date_trunc('week', {0}) AS DATE)", args), "date")


def _date_diff(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    unit = _unit(args[0])
    return with_kind(_fill(f"date_diff('{unit}', {{1}}, {{2}})", args), "int")


def _interval(value: exp.Expression, unit: str) -> exp.Expression:
    return with_kind(
        exp.Interval(this=exp.paren(value, copy=False), unit=exp.Var(this=_UNITS[unit])), "interval"
    )


def _date_shift(sign: str) -> Builder:
    def build(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
        if len(args) == 3:  # dateAdd('day', 1, d)
            unit, value, base = _unit(args[0]), args[1], args[2]
        elif kind_of(args[1]) == "interval":  # dateAdd(d, INTERVAL 1 DAY)
            base, shift = args
            node = (
                exp.Add(this=base, expression=shift)
                if sign == "+"
                else exp.Sub(this=base, expression=shift)
            )
            return with_kind(node, kind_of(base))
        else:
            raise ValueError("dateAdd/dateSub take (unit, value, date)")
        cls = exp.Add if sign == "+" else exp.Sub
        return with_kind(cls(this=base, expression=_interval(value, unit)), kind_of(base))

    return build


def _to_interval(unit: str) -> _Fn:
    return _fn(1, 1, lambda args, ctx: _interval(args[0], unit))


def _now(ctx: FnContext) -> exp.Expression:
    text = ctx.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return with_kind(_fill(f"CAST('{text}+00' AS TIMESTAMPTZ)", []), "datetime")


def _day(offset: int) -> Builder:
    def build(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
        day = (ctx.now.astimezone(UTC) + timedelta(days=offset)).date().isoformat()
        return with_kind(_fill(f"CAST('{day}' AS DATE)", []), "date")

    return build


def _to_unix(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    if kind_of(args[0]) in ("datetime", "date"):
        return with_kind(_fill("CAST(floor(epoch({0})) AS BIGINT)", args), "int")
    return with_kind(_fill("CAST(floor(epoch(CAST({0} AS TIMESTAMPTZ))) AS BIGINT)", args), "int")


# ---- conversions ---------------------------------------------------------------------------


def _to_string(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    kind = kind_of(args[0])
    if kind == "datetime":  # ClickHouse prints '2024-01-05 10:00:00', not ISO with offset
        return with_kind(_fill("strftime({0}, '%Y-%m-%d %H:%M:%S')", args), "string")
    if kind == "date":
        return with_kind(_fill("strftime({0}, '%Y-%m-%d')", args), "string")
    return with_kind(_fill("CAST({0} AS VARCHAR)", args), "string")


def _to_int(sql_type: str, cast: str = "CAST") -> _Fn:
    def build(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
        if kind_of(args[0]) in ("int", "bool"):
            return with_kind(_fill(f"{cast}({{0}} AS {sql_type})", args), "int")
        # ClickHouse truncates toward zero ('3.7' -> 3); DuckDB's cast would round.
        inner = f"trunc({cast}({{0}} AS DOUBLE))"
        return with_kind(_fill(f"{cast}({inner} AS {sql_type})", args), "int")

    return _fn(1, 1, build)


# ---- strings, arrays, JSON ----------------------------------------------------------------


def _length(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    kind = kind_of(args[0])
    if kind == "array":
        return with_kind(_fill("len({0})", args), "int")
    if kind in ("string", "json"):
        return with_kind(_fill("strlen({0})", args), "int")  # ClickHouse counts bytes
    return with_kind(_fill("length({0})", args), "int")


def _empty(negate: bool) -> Builder:
    def build(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
        op = "!=" if negate else "="
        if kind_of(args[0]) == "array":
            return with_kind(_fill(f"len({{0}}) {op} 0", args), "bool")
        return with_kind(_fill(f"{{0}} {op} ''", args), "bool")

    return build


def _json_path(args: list[exp.Expression]) -> str:
    keys: list[str] = []
    for node in args[1:]:
        if isinstance(node, exp.Literal) and node.is_string:
            keys.append(str(node.this))
        elif isinstance(node, exp.Literal):  # ClickHouse indexes arrays from 1
            keys.append(str(int(node.this) - 1))
        else:
            raise ValueError("JSONExtract* keys must be constants")
    return json_pointer(keys) if keys else "$"


def _json(template: str, kind: str) -> _Fn:
    def build(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
        path = exp.Literal.string(_json_path(args))
        return with_kind(_fill(template, [args[0], path]), kind)

    return _fn(1, None, build)


def _multi_if(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    if len(args) % 2 == 0:
        raise ValueError("multiIf takes pairs of (condition, value) and a final else value")
    case = exp.Case()
    for cond, value in zip(args[:-1:2], args[1:-1:2], strict=True):
        case = case.when(cond, value, copy=False)
    return case.else_(args[-1], copy=False)


def _concat(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    return with_kind(exp.Anonymous(this="concat", expressions=args), "string")


def _variadic(name: str, kind: str | None = None) -> _Fn:
    return _fn(
        1, None, lambda args, ctx: with_kind(exp.Anonymous(this=name, expressions=args), kind)
    )


def _count(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    return with_kind(_fill("count({0})" if args else "count(*)", args), "int", "UInt64")


def _binary(op: type[exp.Binary], kind: str | None = None) -> _Fn:
    def build(args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
        return with_kind(cast(exp.Expression, op(this=args[0], expression=args[1])), kind)

    return _fn(2, 2, build)


FUNCTIONS: dict[str, _Fn] = {
    # aggregates
    "count": _fn(0, 1, _count),
    "uniq": _tpl(1, "count(DISTINCT {0})", "int", "UInt64"),
    "uniqExact": _tpl(1, "count(DISTINCT {0})", "int", "UInt64"),
    "countDistinct": _tpl(1, "count(DISTINCT {0})", "int", "UInt64"),
    "countIf": _tpl(1, "count(*) FILTER (WHERE {0})", "int", "UInt64"),
    "sum": _tpl(1, "coalesce(sum({0}), 0)", None, "Int64"),  # ClickHouse: 0, not NULL
    "avg": _tpl(1, "avg({0})", "float"),
    "min": _tpl(1, "min({0})"),
    "max": _tpl(1, "max({0})"),
    "sumIf": _tpl(2, "coalesce(sum({0}) FILTER (WHERE {1}), 0)", None, "Int64"),
    "avgIf": _tpl(2, "avg({0}) FILTER (WHERE {1})", "float"),
    "minIf": _tpl(2, "min({0}) FILTER (WHERE {1})"),
    "maxIf": _tpl(2, "max({0}) FILTER (WHERE {1})"),
    # ClickHouse's groupArray skips NULLs and gives [] for an all-NULL group.
    "groupArray": _tpl(1, "coalesce(list({0}) FILTER (WHERE {0} IS NOT NULL), [])", "array"),
    "any": _tpl(1, "any_value({0})"),
    "argMax": _tpl(2, "arg_max({0}, {1})"),
    "argMin": _tpl(2, "arg_min({0}, {1})"),
    "median": _tpl(1, "quantile_cont({0}, 0.5)", "float"),
    # window functions (used with OVER)
    "row_number": _tpl(0, "row_number()", "int"),
    "rank": _tpl(0, "rank()", "int"),
    "dense_rank": _tpl(0, "dense_rank()", "int"),
    # dates and times
    "now": _fn(0, 0, lambda args, ctx: _now(ctx)),
    "today": _fn(0, 0, _day(0)),
    "yesterday": _fn(0, 0, _day(-1)),
    "toDate": _tpl(1, "CAST({0} AS DATE)", "date"),
    "toDateTime": _fn(1, 2, _to_datetime),
    "toDateTime64": _fn(1, 3, _to_datetime64),
    "toStartOfMinute": _tpl(1, "date_trunc('minute', {0})", "datetime"),
    "toStartOfHour": _tpl(1, "date_trunc('hour', {0})", "datetime"),
    "toStartOfDay": _tpl(1, "date_trunc('day', {0})", "datetime"),
    "toStartOfWeek": _fn(1, 2, _to_start_of_week),
    "toMonday": _tpl(1, "CAST(date_trunc('week', {0}) AS DATE)", "date"),
    "toStartOfMonth": _tpl(1, "CAST(date_trunc('month', {0}) AS DATE)", "date"),
    "toStartOfQuarter": _tpl(1, "CAST(date_trunc('quarter', {0}) AS DATE)", "date"),
    "toStartOfYear": _tpl(1, "CAST(date_trunc('year', {0}) AS DATE)", "date"),
    "toYear": _tpl(1, "year({0})", "int"),
    "toQuarter": _tpl(1, "quarter({0})", "int"),
    "toMonth": _tpl(1, "month({0})", "int"),
    "toDayOfMonth": _tpl(1, "day({0})", "int"),
    "toDayOfYear": _tpl(1, "dayofyear({0})", "int"),
    "toDayOfWeek": _tpl(1, "isodow({0})", "int"),  # ClickHouse mode 0: Monday=1 .. Sunday=7
    "toHour": _tpl(1, "hour({0})", "int"),
    "toMinute": _tpl(1, "minute({0})", "int"),
    "toSecond": _tpl(1, "second({0})", "int"),
    "toUnixTimestamp": _fn(1, 1, _to_unix),
    "dateDiff": _fn(3, 3, _date_diff),
    "date_diff": _fn(3, 3, _date_diff),
    "dateAdd": _fn(2, 3, _date_shift("+")),
    "date_add": _fn(2, 3, _date_shift("+")),
    "dateSub": _fn(2, 3, _date_shift("-")),
    "date_sub": _fn(2, 3, _date_shift("-")),
    "formatDateTime": _tpl(2, "strftime({0}, {1})", "string"),
    **{f"toInterval{unit.title()}": _to_interval(unit) for unit in _UNITS},
    # conversions
    "toString": _fn(1, 1, _to_string),
    # uuid columns are VARCHAR here, so a UUID literal is its string (same order as the column)
    "toUUID": _tpl(1, "CAST({0} AS VARCHAR)", "string"),
    "toUUIDOrNull": _tpl(1, "CAST({0} AS VARCHAR)", "string"),
    "toInt": _to_int("BIGINT"),
    "toInt64": _to_int("BIGINT"),
    "toInt32": _to_int("INTEGER"),
    "toIntOrNull": _to_int("BIGINT", "TRY_CAST"),
    "toInt64OrNull": _to_int("BIGINT", "TRY_CAST"),
    # PostHog: accurateCastOrNull(x, 'Float64'), NULL for text that is not a number
    "toFloat": _tpl(1, "TRY_CAST({0} AS DOUBLE)", "float"),
    "toFloat64": _tpl(1, "CAST({0} AS DOUBLE)", "float"),
    "toFloatOrNull": _tpl(1, "TRY_CAST({0} AS DOUBLE)", "float"),
    "toFloat64OrNull": _tpl(1, "TRY_CAST({0} AS DOUBLE)", "float"),
    # strings
    "lower": _tpl(1, "lower({0})", "string"),
    "upper": _tpl(1, "upper({0})", "string"),
    "length": _fn(1, 1, _length),
    "concat": _fn(1, None, _concat),
    "like": _tpl(2, "{0} LIKE {1}", "bool"),
    "ilike": _tpl(2, "{0} ILIKE {1}", "bool"),
    "notLike": _tpl(2, "{0} NOT LIKE {1}", "bool"),
    "notILike": _tpl(2, "{0} NOT ILIKE {1}", "bool"),
    "substring": _fn(
        2,
        3,
        lambda args, ctx: with_kind(exp.Anonymous(this="substring", expressions=args), "string"),
    ),
    "trim": _tpl(1, "trim({0})", "string"),
    "position": _tpl(2, "strpos({0}, {1})", "int"),
    "startsWith": _tpl(2, "starts_with({0}, {1})", "bool"),
    "endsWith": _tpl(2, "ends_with({0}, {1})", "bool"),
    "replaceAll": _tpl(3, "replace({0}, {1}, {2})", "string"),
    "replaceRegexpAll": _tpl(3, "regexp_replace({0}, {1}, {2}, 'g')", "string"),
    "match": _tpl(2, "regexp_matches({0}, {1})", "bool"),
    "empty": _fn(1, 1, _empty(False)),
    "notEmpty": _fn(1, 1, _empty(True)),
    "splitByChar": _tpl(2, "string_split({1}, {0})", "array"),
    "splitByString": _tpl(2, "string_split({1}, {0})", "array"),
    # arrays
    "has": _tpl(2, "list_contains({0}, {1})", "bool"),
    "arrayJoin": _tpl(1, "unnest({0})"),
    # JSON text (ClickHouse returns '' / 0 where the key is missing, not NULL)
    "JSONExtractString": _json("coalesce(json_extract_string({0}, {1}), '')", "string"),
    "JSONExtractRaw": _json("coalesce(CAST(json_extract({0}, {1}) AS VARCHAR), '')", "string"),
    "JSONExtractInt": _json(
        "coalesce(CAST(trunc(TRY_CAST(json_extract_string({0}, {1}) AS DOUBLE)) AS BIGINT), 0)",
        "int",
    ),
    "JSONExtractFloat": _json(
        "coalesce(TRY_CAST(json_extract_string({0}, {1}) AS DOUBLE), 0)", "float"
    ),
    "JSONHas": _json("coalesce(json_exists({0}, {1}), false)", "bool"),
    # conditionals and NULLs
    "multiIf": _fn(3, None, _multi_if),
    "coalesce": _variadic("coalesce"),
    "ifNull": _tpl(2, "coalesce({0}, {1})"),
    "nullIf": _tpl(2, "nullif({0}, {1})"),
    "isNull": _tpl(1, "{0} IS NULL", "bool"),
    "isNotNull": _tpl(1, "{0} IS NOT NULL", "bool"),
    # maths
    "round": _fn(1, 2, lambda args, ctx: exp.Anonymous(this="round", expressions=args)),
    "floor": _tpl(1, "floor({0})"),
    "ceil": _tpl(1, "ceil({0})"),
    "abs": _tpl(1, "abs({0})"),
    "sqrt": _tpl(1, "sqrt({0})", "float"),
    "intDiv": _tpl(2, "{0} // {1}", "int"),
    "greatest": _variadic("greatest"),
    "least": _variadic("least"),
    # HogQL's functional operator spellings
    "equals": _binary(exp.EQ, "bool"),
    "notEquals": _binary(exp.NEQ, "bool"),
    "less": _binary(exp.LT, "bool"),
    "greater": _binary(exp.GT, "bool"),
    "lessOrEquals": _binary(exp.LTE, "bool"),
    "greaterOrEquals": _binary(exp.GTE, "bool"),
    "plus": _binary(exp.Add),
    "minus": _binary(exp.Sub),
    "multiply": _binary(exp.Mul),
    "divide": _binary(exp.Div, "float"),
}

# ClickHouse accepts the SQL-standard names in any case (COUNT, Sum, IF ...).
_CASE_INSENSITIVE = {
    name.lower(): fn
    for name, fn in FUNCTIONS.items()
    if name in {"count", "sum", "avg", "min", "max", "lower", "upper", "length", "concat"}
    or name in {"coalesce", "round", "floor", "ceil", "abs", "substring", "trim", "position"}
    or name in {"like", "ilike", "greatest", "least", "nullIf", "ifNull", "now", "today"}
}


def translate_call(name: str, args: list[exp.Expression], ctx: FnContext) -> exp.Expression:
    """The DuckDB expression for the ClickHouse call `name(args)`.

    Raises ValueError with a user-facing message for unknown names and wrong arity.
    """
    fn = FUNCTIONS.get(name) or _CASE_INSENSITIVE.get(name.lower())
    if fn is None:
        raise ValueError(f"Unsupported function call '{name}(...)'")
    if len(args) < fn.min_args or (fn.max_args is not None and len(args) > fn.max_args):
        if fn.max_args is None:
            expected = f"at least {fn.min_args}"
        elif fn.min_args == fn.max_args:
            expected = str(fn.min_args)
        else:
            expected = f"{fn.min_args} to {fn.max_args}"
        raise ValueError(
            f"Function '{name}' expects {expected} argument{'s' if expected != '1' else ''}, "
            f"found {len(args)}"
        )
    return fn.build(args, ctx)
