"""The embedded server's HogQL engine: PostHog's ClickHouse-dialect SQL, read-only, on DuckDB.

A query is first parsed by PostHog's own parser (`hogql_parse.py`): what PostHog rejects is
rejected here with PostHog's message. An accepted query is then tokenized by sqlglot's ClickHouse
dialect (with every function call kept by its written name), checked against an allow-list of
syntax, resolved against the five tables the server creates, rewritten node by node into DuckDB
SQL, run with LIMIT n+1, and returned with JSON-ready values and ClickHouse type names, as
`POST /api/projects/{id}/query/` does.

Supported subset (anything else raises `HogQLUnsupported`, naming the unsupported thing and
saying that the limitation is this server's):

| Area          | Supported                                                                      |
|---------------|--------------------------------------------------------------------------------|
| Statements    | one `SELECT` (no WITH, UNION, SETTINGS, SAMPLE, PREWHERE, ARRAY JOIN, FINAL)   |
| FROM          | `events`, `persons`, `groups`, `person_distinct_ids`, `cohort_people` `[AS a]`;|
|               | subqueries `(SELECT ...) [AS a]`; `[INNER/LEFT/RIGHT/FULL/CROSS] JOIN ... ON`  |
| Clauses       | WHERE, GROUP BY, HAVING, ORDER BY (ASC/DESC, many keys), LIMIT n, DISTINCT     |
| Expressions   | arithmetic, comparisons, AND/OR/NOT, CASE, IN (list or subquery), BETWEEN,     |
|               | LIKE/ILIKE, IS [NOT] NULL, CAST/::, INTERVAL n UNIT, `[..]` arrays, windows,   |
|               | tuple comparison `(timestamp, uuid) > (toDateTime('...'), 'abc')` (keysets)    |
| `SELECT *`    | events: uuid, event, properties, timestamp, distinct_id, elements_chain,       |
|               | created_at, person_id (other tables: their columns)                            |
| Properties    | `properties.$browser`, `properties.a.b`, `properties['$browser']`,             |
|               | `e.properties.x`, `person.properties.email` / `person.id` on events            |
|               | (a LEFT JOIN on persons via person_id); value is Nullable(String)              |
| Functions     | see `hogql_functions.FUNCTIONS` (aggregates, dates, conversions, strings,      |
|               | JSON, conditionals); `quantile(p)(x)`; any other name is rejected              |
| Placeholders  | `{name}` filled from `values` as sqlglot-built literals (never text splicing)  |
| LIMIT         | none -> 100 (default_limit) and hasMore; LIMIT n above 50,000 -> 50,000, with  |
|               | no sign (`paginated` False: no hasMore, as PostHog); OFFSET rejected           |
| DateTime text | toDateTime64: ClickHouse `basic` only (a `Z`/offset is 400 cannot_parse_text); |
|               | toDateTime: best effort, NULL when not a date                                  |

Project timezone: like PostHog's printer, which wraps every DateTime field in
`toTimeZone(field, team.timezone)`, DateTime columns are read in the project's timezone (the
query runs with DuckDB's TimeZone set to it): toDate/toStartOfDay/toHour... group by local day
and hour, strings compared with a DateTime and `toDateTime('...')` without a zone are local
wall times, `today()` stays the UTC date (a ClickHouse server function), and DateTime types
read `DateTime64(6, '<zone>')`.

Result values: DateTime -> "2024-01-05T10:00:00Z" in UTC projects, "2024-01-05T02:00:00-08:00"
in the project's offset otherwise (PostHog's orjson renderer with OPT_UTC_Z: any zero offset is
"Z"; ".123000" only when the sub-second part is non-zero), Date -> "2024-01-05", numbers as
numbers, NULL -> None, arrays as lists. The conversion runs inside DuckDB (a wrapping SELECT),
not a Python loop.
Known gaps against ClickHouse: LEFT JOIN misses are NULL (not type defaults); concat skips
NULLs; JOIN ... USING, ANY/ASOF joins and correlated subqueries are rejected; function
argument types are tracked statically, so e.g. toString(x) of a datetime whose type cannot
be inferred keeps DuckDB's "+00" suffix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import duckdb
import sqlglot
import sqlglot.errors
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse

from posthog_pandas.server.hogql_functions import (
    CANNOT_PARSE_TEXT,
    CannotParseText,
    FnContext,
    json_pointer,
    kind_of,
    translate_call,
    with_kind,
)
from posthog_pandas.server.hogql_parse import parse_error

__all__ = [
    "LOCAL_LIMITATION",
    "OFFSET_NOT_ALLOWED_MESSAGE",
    "HogQLEngine",
    "HogQLError",
    "HogQLResult",
    "HogQLUnsupported",
]

# Verbatim from PostHog (posthog/hogql pre-execution validators, OFFSET_NOT_ALLOWED_MESSAGE).
OFFSET_NOT_ALLOWED_MESSAGE = (
    "OFFSET is not supported on queries made with a personal API key. "
    "For pagination, use keyset pagination on the `timestamp` column, e.g. "
    "`WHERE timestamp > :last_seen_timestamp ORDER BY timestamp LIMIT N`. "
    "For bulk data extraction, use batch exports: https://posthog.com/docs/cdp/batch-exports"
)

# Appended to errors about valid HogQL that the local engine cannot run.
LOCAL_LIMITATION = (
    "a limitation of this local server, not of PostHog: PostHog's parser accepts the query, "
    "but the local server runs only a subset of HogQL"
)

_PLACEHOLDER_PREFIX = "__hogql_placeholder_"
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-/]*$")


class HogQLError(Exception):
    """A query PostHog would answer with 400 validation_error; `detail` is the message."""

    def __init__(self, detail: str, code: str = "invalid_input"):
        super().__init__(detail)
        self.detail = detail
        self.code = code


class HogQLUnsupported(HogQLError):
    """Valid HogQL (PostHog's parser accepts it) that this local server cannot run: a 400 too,
    whose detail says the limitation is the local server's."""

    def __init__(self, detail: str):
        super().__init__(f"{detail} ({LOCAL_LIMITATION})")


@dataclass
class HogQLResult:
    columns: list[str]
    types: list[str]
    results: list[list[Any]]
    has_more: bool
    limit: int
    hogql: str
    clickhouse: str
    paginated: bool = True  # no LIMIT: PostHog's paginator applied the default and says hasMore


# ---- schema --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    fields: dict[str, tuple[str, str]]  # HogQL name -> (DuckDB column, kind)
    star: tuple[str, ...]  # HogQL names `SELECT *` expands to, in order
    json: frozenset[str] = frozenset()  # HogQL names holding JSON text

    @property
    def has_person(self) -> bool:
        return "person_id" in self.fields


def _cols(**kinds: str) -> dict[str, tuple[str, str]]:
    return {name: (name, kind) for name, kind in kinds.items()}


_TABLES: dict[str, _Table] = {
    "events": _Table(
        fields=_cols(
            uuid="string",
            event="string",
            properties="json",
            timestamp="datetime",
            distinct_id="string",
            elements_chain="string",
            created_at="datetime",
            person_id="string",
        ),
        star=(
            "uuid",
            "event",
            "properties",
            "timestamp",
            "distinct_id",
            "elements_chain",
            "created_at",
            "person_id",
        ),
        json=frozenset({"properties"}),
    ),
    "persons": _Table(
        fields=_cols(id="string", created_at="datetime", properties="json", is_identified="bool"),
        star=("id", "created_at", "properties", "is_identified"),
        json=frozenset({"properties"}),
    ),
    "groups": _Table(
        fields={
            **_cols(
                group_type_index="int",
                group_key="string",
                group_properties="json",
                created_at="datetime",
            ),
            # HogQL's own names for the same columns
            "index": ("group_type_index", "int"),
            "key": ("group_key", "string"),
            "properties": ("group_properties", "json"),
        },
        star=("group_type_index", "group_key", "group_properties", "created_at"),
        json=frozenset({"group_properties", "properties"}),
    ),
    "person_distinct_ids": _Table(
        fields=_cols(distinct_id="string", person_id="string"),
        star=("distinct_id", "person_id"),
    ),
    "cohort_people": _Table(
        fields=_cols(cohort_id="int", person_id="string"),
        star=("cohort_id", "person_id"),
    ),
}

_PERSON_FIELDS = _TABLES["persons"]


# ---- parsing -------------------------------------------------------------------------------


class _Dialect(ClickHouse):
    """ClickHouse syntax, but every function call stays an Anonymous node with its written name,
    so the engine's own function table is the single gate for what may run."""

    class Parser(ClickHouse.Parser):  # type: ignore[misc,valid-type]
        FUNCTIONS: dict[str, Any] = {}
        FUNCTION_PARSERS = {
            k: v
            for k, v in ClickHouse.Parser.FUNCTION_PARSERS.items()
            if k in ("CAST", "TRY_CAST", "EXTRACT")
        }

    class Generator(ClickHouse.Generator):  # type: ignore[misc,valid-type]
        # Print column names the way they were written: if(...), INTERVAL 1 DAY.
        TRANSFORMS = {
            **ClickHouse.Generator.TRANSFORMS,
            exp.If: lambda self, e: self.func(
                "if", e.this, e.args.get("true"), e.args.get("false")
            ),
        }

        def interval_sql(self, expression: exp.Interval) -> str:
            value = expression.this
            if isinstance(value, exp.Literal) and value.is_string and value.this.isdigit():
                return f"INTERVAL {value.this} {self.sql(expression, 'unit')}"
            return str(super().interval_sql(expression))


_TOKEN = re.compile(r"<Token token_type: [^,]*, text: (.*?), line: .*?>")
_CLASS = re.compile(r"<class 'sqlglot\.[\w.]*\.(\w+)'>")
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_IDENT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


@dataclass
class _Preprocessed:
    query: str  # as the user wrote it
    text: str  # what sqlglot parses
    # (offset in text, offset in query) where each piece starts, to map error positions back
    pieces: list[tuple[int, int]]

    def original_position(self, line: int, col: int, width: int) -> tuple[int, int]:
        """Map sqlglot's (line, 1-based end column, token width) to the token's start, 1-based,
        in the query as the user wrote it."""
        lines = self.text.split("\n")
        index = sum(len(x) + 1 for x in lines[: line - 1]) + max(col - width, 0)
        out_start, in_start = max((p for p in self.pieces if p[0] <= index), default=(0, 0))
        original = in_start + (index - out_start)
        before = self.query[:original]
        return before.count("\n") + 1, original - (before.rfind("\n") + 1) + 1


def _preprocess(query: str) -> _Preprocessed:
    """Quote `$identifiers` (PostHog property names) and turn `{name}` into marker identifiers.

    Strings, quoted identifiers and comments are copied untouched. Safety does not depend on
    this scan: values are bound later as AST literals, never spliced into the text.
    """
    out: list[str] = []
    pieces: list[tuple[int, int]] = []
    size = 0

    def emit(text: str, origin: int) -> None:
        nonlocal size
        pieces.append((size, origin))
        out.append(text)
        size += len(text)

    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in "'\"`":
            j = i + 1
            while j < n:
                if query[j] == "\\":
                    j += 2
                    continue
                if query[j] == c:
                    if j + 1 < n and query[j + 1] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            emit(query[i : j + 1], i)
            i = j + 1
        elif query.startswith("--", i) or query.startswith("/*", i):
            j = query.find("\n", i) if query[i] == "-" else query.find("*/", i + 2)
            j = n if j < 0 else j if query[i] == "-" else j + 2
            emit(query[i:j], i)
            i = j
        elif c == "{" and (m := _PLACEHOLDER.match(query, i)):
            emit(f" {_PLACEHOLDER_PREFIX}{m.group(1)} ", i)
            i = m.end()
        elif c in _IDENT_CHARS:
            j = i
            while j < n and query[j] in _IDENT_CHARS:
                j += 1
            word = query[i:j]
            emit(f"`{word}`" if "$" in word and not word[0].isdigit() else word, i)
            i = j
        else:
            emit(c, i)
            i += 1
    return _Preprocessed(query, "".join(out), pieces)


def _parse(query: str) -> exp.Expression:
    """PostHog's parser decides what is HogQL; sqlglot then parses what the engine can run."""
    rejected = parse_error(query)
    if rejected is not None:
        raise HogQLError(rejected)
    pre = _preprocess(query)
    try:
        statements = [s for s in sqlglot.parse(pre.text, dialect=_Dialect) if s]
    except sqlglot.errors.ParseError as e:
        first = e.errors[0] if e.errors else {}
        desc = _TOKEN.sub(r"'\1'", first.get("description") or str(e))
        desc = _CLASS.sub(lambda m: m.group(1).upper(), desc)
        if first.get("line") is not None:
            width = len(first.get("highlight") or "") or 1
            line, col = pre.original_position(first["line"], first["col"], width)
            raise HogQLUnsupported(f"Syntax error at line {line}, column {col}: {desc}") from None
        raise HogQLUnsupported(f"Syntax error: {desc}") from None
    except sqlglot.errors.SqlglotError as e:
        raise HogQLUnsupported(f"Syntax error: {e}") from None
    if not statements:
        raise HogQLError("Empty query")
    if len(statements) > 1 or isinstance(statements[0], exp.Block):
        raise HogQLUnsupported("Only one SELECT statement is allowed per query")
    root = statements[0]
    if not isinstance(root, exp.Select):
        kind = root.key.upper() if not isinstance(root, exp.Command) else str(root.this).upper()
        raise HogQLUnsupported(f"Only SELECT queries are supported, got {kind}")
    return root


def _value_literal(name: str, value: Any) -> exp.Expression:
    """A `values` entry as a ClickHouse AST literal; the generator does all quoting."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise HogQLError(f"Placeholder {{{name}}} must be a finite number")
        return exp.Literal.number(repr(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, datetime):
        # The same instant in any project timezone (PostHog prints toDateTime64(.., 6, tz));
        # naive values are UTC, as on PostHog's servers.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.isoformat(sep=" ", timespec="microseconds")
        args = [exp.Literal.string(text), exp.Literal.number(6), exp.Literal.string("UTC")]
        return exp.Anonymous(this="toDateTime64", expressions=args)
    if isinstance(value, date):
        return exp.Anonymous(this="toDate", expressions=[exp.Literal.string(value.isoformat())])
    if isinstance(value, list | tuple | set | frozenset):
        items = [_value_literal(name, v) for v in value] or [exp.null()]
        return exp.Tuple(expressions=items)
    raise HogQLError(
        f"Placeholder {{{name}}} has a value of unsupported type {type(value).__name__}"
    )


def _bind_placeholders(tree: exp.Expression, values: dict[str, Any]) -> None:
    for col in list(tree.find_all(exp.Column)):
        if col.table or not col.name.startswith(_PLACEHOLDER_PREFIX):
            continue
        name = col.name[len(_PLACEHOLDER_PREFIX) :]
        if name not in values:
            available = ", ".join(sorted(values)) or "none"
            raise HogQLError(
                f"Placeholder {{{name}}} is not available in this context. "
                f"You can use the following: {available}"
            )
        col.replace(_value_literal(name, values[name]))
    for ident in tree.find_all(exp.Identifier):
        if str(ident.this).startswith(_PLACEHOLDER_PREFIX):
            name = str(ident.this)[len(_PLACEHOLDER_PREFIX) :]
            raise HogQLError(f"Placeholder {{{name}}} can only be used as a value")


def _reject_offset(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Offset) or (
            isinstance(node, exp.Limit) and node.args.get("offset") is not None
        ):
            raise HogQLError(OFFSET_NOT_ALLOWED_MESSAGE)


# ---- translation ---------------------------------------------------------------------------

# Syntax nodes allowed inside expressions (functions are gated by the function table).
_PASSTHROUGH: tuple[type[exp.Expression], ...] = (
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Star,
    exp.Paren,
    exp.Tuple,
    exp.Array,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.Xor,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.IntDiv,
    exp.DPipe,
    exp.Like,
    exp.ILike,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Case,
    exp.If,
    exp.Interval,
    exp.Distinct,
    exp.Ordered,
    exp.Order,
    exp.Window,
    exp.WindowSpec,
    exp.Extract,
    exp.Bracket,
)
_FUNCTION_NODES = (exp.Anonymous, exp.AnonymousAggFunc, exp.CombinedAggFunc)
_TUPLE_OPS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)

_CAST_TYPES: dict[Any, tuple[str, str]] = {  # DataType.Type -> (DuckDB type, kind)
    **{
        t: ("VARCHAR", "string")
        for t in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR, exp.DataType.Type.UUID)
    },
    **{
        t: ("BIGINT", "int")
        for t in (
            exp.DataType.Type.TINYINT,
            exp.DataType.Type.SMALLINT,
            exp.DataType.Type.INT,
            exp.DataType.Type.BIGINT,
            exp.DataType.Type.UTINYINT,
            exp.DataType.Type.USMALLINT,
            exp.DataType.Type.UINT,
            exp.DataType.Type.UBIGINT,
        )
    },
    **{
        t: ("DOUBLE", "float")
        for t in (exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE, exp.DataType.Type.DECIMAL)
    },
    **{
        t: ("TIMESTAMPTZ", "datetime")
        for t in (
            exp.DataType.Type.DATETIME,
            exp.DataType.Type.DATETIME64,
            exp.DataType.Type.TIMESTAMP,
            exp.DataType.Type.TIMESTAMPTZ,
        )
    },
    exp.DataType.Type.DATE: ("DATE", "date"),
    exp.DataType.Type.DATE32: ("DATE", "date"),
    exp.DataType.Type.BOOLEAN: ("BOOLEAN", "bool"),
}

_CLAUSES = {
    "with_": "WITH (common table expressions)",
    "prewhere": "PREWHERE",
    "sample": "SAMPLE",
    "settings": "SETTINGS",
    "laterals": "ARRAY JOIN",
    "windows": "WINDOW",
    "qualify": "QUALIFY",
    "format": "FORMAT",
    "into": "INTO",
}
_SELECT_ARGS = {"expressions", "from_", "joins", "where", "group", "having", "order", "limit"}
_SELECT_ARGS |= {"distinct", "kind"}


@dataclass
class _Source:
    alias: str
    name: str | None  # the table name, which may qualify fields even when aliased
    table: _Table | None  # None: a subquery, described by `outputs`
    outputs: dict[str, str] = field(default_factory=dict)  # subquery column -> kind
    ch_types: dict[str, str | None] = field(default_factory=dict)  # subquery column -> override
    order: list[str] = field(default_factory=list)


@dataclass
class _Translated:
    node: exp.Select
    columns: list[str]
    kinds: list[str | None]
    ch_types: list[str | None]


def _chain(node: exp.Expression) -> list[exp.Expression] | None:
    """The parts of `a.b.c`, `a.b['c']`; None if it is not a plain access path."""
    if isinstance(node, exp.Column):
        return [cast(exp.Expression, p) for p in node.parts]
    if isinstance(node, exp.Dot):
        left = _chain(node.this)
        return None if left is None else [*left, node.expression]
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        key = node.expressions[0]
        left = _chain(node.this)
        if left is not None and isinstance(key, exp.Literal) and key.is_string:
            return [*left, key]
    return None


def _part_name(part: exp.Expression) -> str:
    if isinstance(part, exp.Star):
        return "*"
    return str(part.this) if isinstance(part, exp.Identifier | exp.Literal) else part.name


def _hogql_text(node: exp.Expression) -> str:
    """The column name PostHog reports for an unaliased expression: its HogQL text."""
    copy = node.copy()
    for ident in copy.find_all(exp.Identifier):
        ident.set("quoted", False)
    chain = _chain(copy)
    if chain is not None:
        return ".".join(_part_name(p) for p in chain)
    return copy.sql(dialect=_Dialect, comments=False)


class _Scope:
    """One SELECT's FROM sources, select aliases and the hidden person joins it needs."""

    def __init__(self, translator: _Translator):
        self.tx = translator
        self.sources: list[_Source] = []
        self.aliases: dict[str, exp.Expression] = {}
        self.person_joins: dict[str, str] = {}  # source alias -> persons join alias
        self.extra_joins: list[exp.Join] = []

    # sources

    def add_source(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table):
            return self._add_table(node)
        if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select):
            inner = self.tx.select(node.this)
            alias = node.alias or f"__subquery{len(self.sources)}"
            self._register(
                _Source(
                    alias=alias,
                    name=None,
                    table=None,
                    outputs={c: k or "" for c, k in zip(inner.columns, inner.kinds, strict=True)},
                    ch_types=dict(zip(inner.columns, inner.ch_types, strict=True)),
                    order=list(inner.columns),
                )
            )
            return exp.Subquery(
                this=inner.node, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
            )
        if isinstance(node, exp.Final):
            raise HogQLUnsupported("FINAL is not supported")
        raise HogQLUnsupported(f"Unsupported FROM clause: {node.sql(dialect=_Dialect)}")

    def _add_table(self, node: exp.Table) -> exp.Expression:
        if not isinstance(node.this, exp.Identifier):
            raise HogQLError(
                f"Table functions are not supported: {node.this.sql(dialect=_Dialect)}"
            )
        name = ".".join(p.name for p in node.parts)
        table = _TABLES.get(name) if not (node.args.get("db") or node.args.get("catalog")) else None
        if table is None:
            raise HogQLError(f'Unknown table "{name}".')
        for key, value in node.args.items():
            if value and key not in ("this", "alias"):
                raise HogQLUnsupported(
                    f"{_CLAUSES.get(key, key.upper())} is not supported on tables"
                )
        alias = node.alias or name
        self._register(_Source(alias=alias, name=name, table=table))
        return exp.Table(
            this=exp.to_identifier(name, quoted=True),
            alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
        )

    def _register(self, source: _Source) -> None:
        if any(s.alias == source.alias for s in self.sources):
            raise HogQLError(f'Table alias "{source.alias}" is used more than once')
        self.sources.append(source)

    # `*`

    def star(self, qualifier: str | None) -> Iterator[tuple[str, exp.Expression]]:
        sources = [s for s in self.sources if qualifier is None or s.alias == qualifier]
        if qualifier is not None and not sources:
            raise HogQLError(f"Unable to resolve field: {qualifier}.*")
        if not self.sources:
            raise HogQLError("SELECT * needs a FROM clause")
        for source in sources:
            names = list(source.table.star) if source.table else source.order
            for name in names:
                yield name, self._field(source, [name], name)

    # columns

    def column(self, parts: list[str]) -> exp.Expression:
        full = ".".join(parts)
        if len(parts) == 1 and parts[0] in self.aliases:
            return self.aliases[parts[0]].copy()
        source = None
        if len(parts) > 1:
            source = next((s for s in self.sources if s.alias == parts[0]), None) or next(
                (s for s in self.sources if s.name == parts[0]), None
            )
        rest = parts[1:] if source is not None else parts
        if source is None:
            source = next((s for s in self.sources if self._has(s, parts[0])), None)
        if source is None or not rest or not self._has(source, rest[0]):
            raise HogQLError(f"Unable to resolve field: {full}")
        return self._field(source, rest, full)

    @staticmethod
    def _has(source: _Source, name: str) -> bool:
        if source.table is not None:
            return name in source.table.fields or (name == "person" and source.table.has_person)
        return name in source.outputs

    def _field(self, source: _Source, rest: list[str], full: str) -> exp.Expression:
        name, path = rest[0], rest[1:]
        if source.table is None:
            kind = source.outputs[name] or None
            col = exp.column(name, table=source.alias, quoted=True)
            if path:
                return self._property(col, path, full)
            col.meta["field"] = name
            return with_kind(col, kind, source.ch_types.get(name))
        if name == "person" and source.table.has_person:
            return self._person(source, path, full)
        column, kind = source.table.fields[name]
        col = exp.column(column, table=source.alias, quoted=True)
        if path:
            if name not in source.table.json:
                raise HogQLError(f"Unable to resolve field: {full}")
            return self._property(col, path, full)
        col.meta["field"] = name
        return with_kind(col, kind)

    def _person(self, source: _Source, path: list[str], full: str) -> exp.Expression:
        if not path or path[0] not in _PERSON_FIELDS.fields:
            raise HogQLError(f"Unable to resolve field: {full}")
        if path == ["id"]:  # no join needed
            return with_kind(exp.column("person_id", table=source.alias, quoted=True), "string")
        alias = self.person_joins.get(source.alias)
        if alias is None:
            alias = f"__person_{source.alias}"
            self.person_joins[source.alias] = alias
            on = exp.EQ(
                this=exp.column("id", table=alias, quoted=True),
                expression=exp.column("person_id", table=source.alias, quoted=True),
            )
            self.extra_joins.append(
                exp.Join(
                    this=exp.Table(
                        this=exp.to_identifier("persons", quoted=True),
                        alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
                    ),
                    side="LEFT",
                    on=on,
                )
            )
        column, kind = _PERSON_FIELDS.fields[path[0]]
        col = exp.column(column, table=alias, quoted=True)
        if len(path) > 1:
            if path[0] != "properties":
                raise HogQLError(f"Unable to resolve field: {full}")
            return self._property(col, path[1:], full)
        return with_kind(col, kind)

    @staticmethod
    def _property(col: exp.Expression, path: list[str], full: str) -> exp.Expression:
        node = exp.Anonymous(
            this="json_extract_string",
            expressions=[col, exp.Literal.string(json_pointer(path))],
        )
        return with_kind(node, "string", "Nullable(String)")


class _Translator:
    def __init__(self, ctx: FnContext):
        self.ctx = ctx

    def select(self, sel: exp.Select) -> _Translated:
        for key, value in sel.args.items():
            if value and key not in _SELECT_ARGS:
                raise HogQLUnsupported(f"{_CLAUSES.get(key, key.upper())} is not supported")
        distinct = sel.args.get("distinct")
        if distinct is not None and distinct.args.get("on") is not None:
            raise HogQLUnsupported("DISTINCT ON is not supported")
        limit = sel.args.get("limit")
        if limit is not None and limit.expressions:
            raise HogQLUnsupported("LIMIT BY is not supported")
        if limit is not None and not _is_count(limit.expression):
            raise HogQLError("LIMIT must be a constant non-negative integer")

        scope = _Scope(self)
        from_ = sel.args.get("from_")
        if from_ is not None:
            from_.set("this", scope.add_source(from_.this))
        joins = sel.args.get("joins") or []
        for join in joins:
            self._check_join(join)
            join.set("this", scope.add_source(join.this))

        out = _Translated(node=sel, columns=[], kinds=[], ch_types=[])
        new_exprs: list[exp.Expression] = []
        for item in sel.expressions:
            is_star, qualifier = self._star(item)
            if is_star:
                for name, col in scope.star(qualifier):
                    self._add_output(out, new_exprs, name, col)
                continue
            inner = item.this if isinstance(item, exp.Alias) else item
            text = _hogql_text(inner)
            translated = self.expr(inner, scope)
            # PostHog names a plain field by the field ("e.event" -> "event")
            name = text
            if isinstance(item, exp.Alias):
                name = item.alias
            elif _chain(inner) is not None and "field" in translated.meta:
                name = translated.meta["field"]
            if isinstance(item, exp.Alias):
                scope.aliases[item.alias] = translated
            self._add_output(out, new_exprs, name, translated)
        sel.set("expressions", new_exprs)

        for join in joins:
            for key in ("on",):
                if join.args.get(key) is not None:
                    join.set(key, self.expr(join.args[key], scope))
        for key in ("where", "group", "having", "order"):
            clause = sel.args.get(key)
            if clause is None:
                continue
            if key == "group" and any(
                clause.args.get(k) for k in ("rollup", "cube", "totals", "grouping_sets")
            ):
                raise HogQLUnsupported("GROUP BY ROLLUP/CUBE/WITH TOTALS is not supported")
            if isinstance(clause, exp.Where | exp.Having):
                clause.set("this", self.expr(clause.this, scope))
            else:
                clause.set("expressions", [self.expr(e, scope) for e in clause.expressions])
        for extra in scope.extra_joins:
            sel.append("joins", extra)
        return out

    @staticmethod
    def _star(item: exp.Expression) -> tuple[bool, str | None]:
        """(True, None) for `*`, (True, "e") for `e.*`, (False, None) for anything else."""
        if isinstance(item, exp.Star):
            return True, None
        if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            return True, item.table
        return False, None

    @staticmethod
    def _add_output(
        out: _Translated, exprs: list[exp.Expression], name: str, node: exp.Expression
    ) -> None:
        out.columns.append(name)
        out.kinds.append(kind_of(node))
        out.ch_types.append(node.meta.get("ch_type") if node.meta else None)
        exprs.append(cast(exp.Expression, exp.alias_(node, name, quoted=True)))

    @staticmethod
    def _check_join(join: exp.Join) -> None:
        kind = (join.args.get("kind") or "").upper()
        if kind not in ("", "INNER", "OUTER", "CROSS", "ALL"):
            raise HogQLUnsupported(f"{kind} JOIN is not supported")
        if kind == "ALL":
            join.set("kind", None)
        if join.args.get("using"):
            raise HogQLUnsupported("JOIN ... USING is not supported, use JOIN ... ON")
        for key in ("method", "global_", "match_condition"):
            if join.args.get(key):
                raise HogQLUnsupported(f"{str(join.args[key]).upper()} JOIN is not supported")

    # expressions

    def expr(self, node: exp.Expression, scope: _Scope) -> exp.Expression:
        chain = _chain(node)
        if chain is not None:
            if any(isinstance(p, exp.Star) for p in chain):
                raise HogQLError("* is only allowed directly in the SELECT list")
            if not all(isinstance(p, exp.Identifier | exp.Literal) for p in chain):
                raise HogQLUnsupported(f"Unsupported field access: {node.sql(dialect=_Dialect)}")
            return scope.column([_part_name(p) for p in chain])
        if isinstance(node, exp.Select):
            return self.select(node).node
        if isinstance(node, exp.Subquery):
            if not isinstance(node.this, exp.Select):
                raise HogQLUnsupported("Only SELECT subqueries are supported")
            return exp.Subquery(this=self.select(node.this).node)
        if isinstance(node, exp.Cast):
            return self._cast(node, scope)
        if isinstance(node, exp.ParameterizedAgg):
            return self._parametric(node, scope)
        if isinstance(node, exp.Alias):
            raise HogQLUnsupported("Aliases (AS) are only supported in the SELECT list")
        if not isinstance(node, _PASSTHROUGH + _FUNCTION_NODES):
            raise HogQLUnsupported(f"Unsupported syntax: {node.sql(dialect=_Dialect)}")

        for key, child in list(node.args.items()):
            if isinstance(child, exp.Expression) and not isinstance(child, exp.Var):
                node.set(key, self.expr(child, scope))
            elif isinstance(child, list):
                node.set(key, [self.expr(c, scope) for c in child])

        if isinstance(node, _FUNCTION_NODES):
            try:
                return translate_call(str(node.this), list(node.expressions), self.ctx)
            except ValueError as e:
                raise HogQLError(str(e), getattr(e, "code", "invalid_input")) from None
        if isinstance(node, _TUPLE_OPS) and isinstance(node.this, exp.Tuple):
            return _expand_tuple_comparison(node)
        if isinstance(node, exp.Add | exp.Sub):
            kinds = {kind_of(node.this), kind_of(node.expression)}
            if "interval" in kinds:
                return with_kind(node, "datetime" if kinds & {"datetime", "date"} else None)
        if isinstance(node, exp.Array):
            return with_kind(node, "array")
        if isinstance(node, exp.Interval):
            return with_kind(node, "interval")
        return node

    def _cast(self, node: exp.Cast, scope: _Scope) -> exp.Expression:
        to = node.args["to"]
        target = _CAST_TYPES.get(to.this) if isinstance(to, exp.DataType) else None
        if target is None:
            raise HogQLUnsupported(f"Unsupported CAST type: {to.sql(dialect=_Dialect)}")
        value = self.expr(node.this, scope)
        cast = exp.Cast(this=value, to=exp.DataType.build(target[0], dialect="duckdb"))
        return with_kind(cast, target[1])

    def _parametric(self, node: exp.ParameterizedAgg, scope: _Scope) -> exp.Expression:
        name = str(node.this)
        params, args = node.expressions, node.args.get("params") or []
        if name != "quantile" or len(params) != 1 or len(args) != 1:
            raise HogQLError(f"Unsupported function call '{name}(...)(...)'")
        value = self.expr(args[0], scope)
        call = exp.Anonymous(this="quantile_cont", expressions=[value, params[0]])
        return with_kind(call, "float")


def _is_count(node: exp.Expression | None) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit()


def _expand_tuple_comparison(node: exp.Expression) -> exp.Expression:
    """`(a, b) > (x, y)` as `a > x OR (a = x AND b > y)`: lexicographic, as ClickHouse does."""
    left, right = node.this.expressions, node.expression
    if not isinstance(right, exp.Tuple) or len(right.expressions) != len(left):
        raise HogQLError("Tuple comparison needs two tuples of the same length")
    pairs = list(zip(left, right.expressions, strict=True))
    if isinstance(node, exp.EQ | exp.NEQ):
        cls: type[exp.Binary] = exp.EQ if isinstance(node, exp.EQ) else exp.NEQ
        joiner: type[exp.Connector] = exp.And if isinstance(node, exp.EQ) else exp.Or
        terms = [cls(this=a, expression=b) for a, b in pairs]
        result = cast(exp.Expression, terms[0])
        for term in terms[1:]:
            result = cast(exp.Expression, joiner(this=result, expression=term))
        return exp.paren(result, copy=False)
    strict: type[exp.Binary] = exp.GT if isinstance(node, exp.GT | exp.GTE) else exp.LT
    last_a, last_b = pairs[-1]
    result = type(node)(this=last_a, expression=last_b)
    for a, b in reversed(pairs[:-1]):
        same = exp.EQ(this=a.copy(), expression=b.copy())
        result = exp.Or(
            this=strict(this=a, expression=b),
            expression=exp.paren(exp.And(this=same, expression=result), copy=False),
        )
    return exp.paren(result, copy=False)


# ---- results -------------------------------------------------------------------------------

_ISO = "%Y-%m-%dT%H:%M:%S"
# DuckDB's %z is "-08" or "+05:30"; PostHog writes "-08:00", and "Z" for any zero offset.
_OFFSET = "replace(rpad(strftime({ts}, '%z'), 6, ':00'), '+00:00', 'Z')"


def _present(col: str, type_id: str, child: Any, utc: bool = True) -> str:
    """DuckDB SQL turning column `col` into its JSON-ready form; DateTimes carry the session
    timezone's offset (a literal "Z" when `utc`: no per-row offset to compute)."""
    if type_id in ("timestamp with time zone", "timestamp", "timestamp_s", "timestamp_ms"):
        # a zone-less timestamp is a wall time in the project's timezone
        ts = col if type_id.startswith("timestamp w") else f"CAST({col} AS TIMESTAMPTZ)"
        z = "Z" if utc else ""
        shown = (
            f"CASE WHEN date_trunc('second', {ts}) = {ts} THEN strftime({ts}, '{_ISO}{z}') "
            f"ELSE strftime({ts}, '{_ISO}.%f{z}') END"
        )
        return shown if utc else f"{shown} || {_OFFSET.format(ts=ts)}"
    if type_id == "timestamp_ns":
        return _present(f"CAST({col} AS TIMESTAMP)", "timestamp", None, utc)
    if type_id == "date":
        return f"strftime({col}, '%Y-%m-%d')"
    if type_id == "decimal":
        return f"CAST({col} AS DOUBLE)"
    if type_id in ("uuid", "interval", "time", "blob", "json", "time with time zone"):
        return f"CAST({col} AS VARCHAR)"
    if type_id == "list" and child is not None:
        inner = _present("__x", child.id, _child(child), utc)
        if inner != "__x":
            return f"list_transform({col}, lambda __x: {inner})"
    return col


_TIMESTAMP_TYPES = (
    "timestamp with time zone",
    "timestamp",
    "timestamp_s",
    "timestamp_ms",
    "timestamp_ns",
)
_SCALAR_TYPES = {
    "varchar": "String",
    "bigint": "Int64",
    "integer": "Int32",
    "smallint": "Int16",
    "tinyint": "Int8",
    "ubigint": "UInt64",
    "uinteger": "UInt32",
    "usmallint": "UInt16",
    "utinyint": "UInt8",
    "hugeint": "Int128",
    "uhugeint": "UInt128",
    "double": "Float64",
    "float": "Float32",
    "decimal": "Float64",
    "boolean": "Bool",
    **dict.fromkeys(_TIMESTAMP_TYPES, "DateTime64(6, 'UTC')"),
    "date": "Date",
    "uuid": "UUID",
    "json": "String",
    '"null"': "Nullable(Nothing)",
    "null": "Nullable(Nothing)",
}


def _ch_type(type_id: str, child: Any, override: str | None, timezone: str = "UTC") -> str:
    if type_id == "list":
        inner = _ch_type(child.id, _child(child), None, timezone) if child else "Nothing"
        return f"Array({inner})"
    if type_id in _TIMESTAMP_TYPES:  # toTimeZone(field, tz) has the type DateTime64(6, tz)
        return f"DateTime64(6, '{timezone}')"
    base = _SCALAR_TYPES.get(type_id, "String")
    if override is None:
        return base
    if override == "Nullable(String)" and base == "String":
        return override
    if override in ("UInt64", "Int64") and base.startswith(("Int", "UInt")):
        return override
    return base


# ---- engine --------------------------------------------------------------------------------


class HogQLEngine:
    """Runs HogQL queries on a DuckDB connection holding the server's five tables.

    Thread-safe: each `run` uses its own cursor, pinned to the project's `timezone`.
    """

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        *,
        default_limit: int = 100,
        max_limit: int = 50_000,
        now: Callable[[], datetime] | None = None,
        timezone: str = "UTC",
    ):
        if not _ZONE_NAME.match(timezone):  # it is spliced into SET TimeZone below
            raise ValueError(f"timezone={timezone!r} is not an IANA time zone name")
        self._conn = conn
        self.timezone = timezone
        self.default_limit = default_limit
        self.max_limit = max_limit
        self._now = now or (lambda: datetime.now(UTC))

    def translate(self, query: str, values: dict[str, Any] | None = None) -> tuple[str, int]:
        """The DuckDB SQL for `query` (already with LIMIT applied+1) and the applied limit."""
        translated, limit, _ = self._translate(query, values)
        return translated.node.sql(dialect="duckdb"), limit

    def _translate(
        self, query: str, values: dict[str, Any] | None
    ) -> tuple[_Translated, int, bool]:
        tree = _parse(query)
        _bind_placeholders(tree, values or {})
        _reject_offset(tree)
        assert isinstance(tree, exp.Select)
        paginated = tree.args.get("limit") is None
        limit = self._limit(tree)
        now = self._now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        translated = _Translator(FnContext(now=now)).select(tree)
        # fetch one more row than asked to know whether there is more
        translated.node.set("limit", exp.Limit(expression=exp.Literal.number(limit + 1)))
        return translated, limit, paginated

    def _limit(self, tree: exp.Select) -> int:
        node = tree.args.get("limit")
        if node is None:
            return self.default_limit
        if not _is_count(node.expression):
            raise HogQLError("LIMIT must be a constant non-negative integer")
        return min(int(node.expression.this), self.max_limit)

    def run(self, query: str, values: dict[str, Any] | None = None) -> HogQLResult:
        translated, limit, paginated = self._translate(query, values)
        sql = translated.node.sql(dialect="duckdb")
        cur = self._conn.cursor()
        try:
            cur.execute(f"SET TimeZone = '{self.timezone}'")
            utc = self.timezone in ("UTC", "Etc/UTC")
            try:
                dtypes = cur.sql(sql).types  # binds without running
                names = [f"c{i}" for i in range(len(dtypes))]
                shown = ", ".join(
                    _present(f'"{n}"', t.id, _child(t), utc)
                    for n, t in zip(names, dtypes, strict=True)
                )
                wrapper = f"SELECT {shown} FROM ({sql}) AS __hogql({', '.join(names)})"
                rows = cur.execute(wrapper).fetchall()
            except duckdb.Error as e:
                raise _run_error(e) from None
        finally:
            cur.close()

        types = [
            _ch_type(t.id, _child(t), override, self.timezone)
            for t, override in zip(dtypes, translated.ch_types, strict=True)
        ]
        return HogQLResult(
            columns=list(translated.columns),
            types=types,
            results=[list(r) for r in rows[:limit]],
            has_more=len(rows) > limit,
            limit=limit,
            hogql=query,
            clickhouse=sql,
            paginated=paginated,
        )


def _child(dtype: Any) -> Any:
    return dtype.child if dtype.id == "list" else None


def _run_error(error: Exception) -> HogQLError:
    """A DuckDB failure as PostHog would answer it (a string toDateTime64 refused: 400
    `cannot_parse_text` with PostHog's fixed text)."""
    message = _duckdb_message(error)
    if CANNOT_PARSE_TEXT in message:
        return HogQLError(CANNOT_PARSE_TEXT, CannotParseText.code)
    return HogQLError(message)


def _duckdb_message(error: Exception) -> str:
    text = str(error).strip()
    return text.split("\n\nLINE ")[0]  # DuckDB appends the SQL excerpt; ours, not the user's
