"""Every HogQL text the client builds parses with PostHog's own parser (hogql-parser).

PostHog parses the text first, with `{name}` placeholders left as placeholders, then replaces
each with `ast.Constant(value=values[name])` (`HogQLQueryRunner.to_query`,
`posthog/hogql_queries/hogql_query_runner.py`). So each text must parse, each placeholder must
have a value, and each value must be a JSON constant.

BUILDERS lists the code that builds HogQL, one line each with the texts it produces;
`test_every_builder_is_listed` finds that code in the package's source and fails on a new one.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import posthog_pandas
from posthog_pandas import events as events_module
from posthog_pandas.demo import DAILY_SQL
from posthog_pandas.events import EventFilter, events_query, window_count_query
from posthog_pandas.query import QueryPage, keyset_columns, keyset_query
from posthog_pandas.server.hogql_parse import PARSER_AVAILABLE_PLATFORMS, parse_error, parse_tree

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith(PARSER_AVAILABLE_PLATFORMS),
    reason="hogql-parser has no wheel for this platform",
)

Texts = list[tuple[str, dict[str, Any]]]

# -- the events puller: every filter kind, with and without a keyset bound -------------------

JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
JAN_TEXT, FEB_TEXT = "2024-01-01 00:00:00", "2024-02-01 00:00:00"  # as the demo binds them
PROPERTIES: list[dict[str, Any]] = [
    {"key": "$browser", "value": "Chrome"},
    {"key": "$browser", "value": ["Chrome", "Safari"], "operator": "exact"},
    {"key": "plan", "value": "free", "operator": "is_not", "type": "person"},
    {"key": "$current_url", "value": "/docs", "operator": "icontains"},
    {"key": "$current_url", "value": "/blog", "operator": "not_icontains"},
    {"key": "$screen_width", "value": 1024, "operator": "gt"},
    {"key": "$screen_width", "value": 640.5, "operator": "gte"},
    {"key": "age", "value": 30, "operator": "lt", "type": "person"},
    {"key": "age", "value": 65, "operator": "lte", "type": "person"},
    {"key": "utm source", "operator": "is_set"},  # a key that needs backticks
    {"key": "a.b-c", "operator": "is_not_set"},
    {"key": "beta", "value": True},
]
FILTERS = [
    EventFilter(after=JAN, before=FEB),
    EventFilter(after=JAN, before=FEB, event="$pageview"),
    EventFilter(after=JAN, before=FEB, event=["$pageview", "$autocapture"]),
    EventFilter(after=JAN, before=FEB, distinct_id="user-1", person_id="0190-aa"),
    EventFilter(after=JAN, before=FEB, properties=PROPERTIES),
    EventFilter(after=JAN, before=FEB, where="properties.$os = 'Mac OS X' OR event = 'x'"),
    EventFilter(
        after=JAN,
        before=FEB,
        columns=["event", "distinct_id", "properties.$browser", "properties.utm source"],
    ),
    EventFilter(
        after=JAN,
        before=FEB,
        event=["signup"],
        distinct_id="d",
        person_id="p",
        properties=PROPERTIES[:3],
        where="toFloat(properties.price) > 10",
        columns=["properties.$current_url"],
    ),
]
LASTS = [None, ("2024-01-05T10:00:00.123456Z", "01890a5d-ac96-774b-a1f4-7a8f0c6e9f11")]


def events_pages() -> Texts:
    return [events_query(flt, 50_000, last) for flt in FILTERS for last in LASTS]


def window_counts() -> Texts:
    """Each filter's count per bucket, over a day (minutes), a month (hours) and a year (days)."""
    spans = [datetime(2024, 1, 2, tzinfo=UTC), FEB, datetime(2025, 1, 1, tzinfo=UTC)]
    return [
        window_count_query(dataclasses.replace(flt, before=end)) for flt in FILTERS for end in spans
    ]


# -- ph.query() keyset pages: typical user queries, keys of each type ------------------------


def _first_page(columns: Sequence[str], types: Sequence[str], row: Sequence[Any]) -> QueryPage:
    return QueryPage(columns=list(columns), types=list(types), results=[list(row)], has_more=True)


USER_QUERIES: list[tuple[str, QueryPage, dict[str, Any] | None]] = [
    (
        "SELECT uuid, timestamp, event FROM events ORDER BY timestamp, uuid",
        _first_page(
            ["uuid", "timestamp", "event"],
            ["UUID", "DateTime64(6, 'UTC')", "String"],
            ["01890a5d-ac96-774b-a1f4-7a8f0c6e9f11", "2024-01-05T10:00:00.123456Z", "$pageview"],
        ),
        None,
    ),
    (
        "select event, uuid from events\nwhere event = {name}\norder by event, uuid limit 200000;",
        _first_page(["event", "uuid"], ["String", "UUID"], ["$pageview", "0189-aa"]),
        {"name": "$pageview"},
    ),
    (
        "SELECT id, created_at, properties.email AS email FROM persons ORDER BY created_at ASC, id",
        _first_page(
            ["id", "created_at", "email"],
            ["UUID", "DateTime('UTC')", "Nullable(String)"],
            ["0189-bb", "2024-01-02T08:30:00-08:00", "a@x.com"],
        ),
        None,
    ),
    (
        "SELECT toStartOfDay(timestamp) AS day, count() AS n, any(uuid) AS uuid FROM events "
        "GROUP BY day ORDER BY n, uuid",
        _first_page(["day", "n", "uuid"], ["DateTime", "UInt64", "UUID"], ["2024-01-01", 3, "u"]),
        None,
    ),
]


def keyset_pages() -> Texts:
    pages = []
    for hogql, first, values in USER_QUERIES:
        keys = keyset_columns(hogql, first.columns)
        assert keys is not None, hogql
        pages.append(keyset_query(hogql, keys, first, 50_000, values))
    return pages


# -- the table: one line per piece of code that builds HogQL ----------------------------------


@dataclass(frozen=True)
class Builder:
    name: str  # where it is: module.function, module.Class.method or module.CONSTANT
    texts: Callable[[], Texts]


BUILDERS = [
    Builder("posthog_pandas.events.events_query", events_pages),
    Builder("posthog_pandas.events.window_count_query", window_counts),
    Builder("posthog_pandas.query.keyset_query", keyset_pages),
    Builder(
        "posthog_pandas.demo.DAILY_SQL", lambda: [(DAILY_SQL, {"start": JAN_TEXT, "end": FEB_TEXT})]
    ),
]

# Code whose SELECT ... FROM text is not HogQL sent to PostHog.
NOT_HOGQL = {
    "posthog_pandas.cache.sqlite.SQLiteStorage.summary": "SQLite, the page cache's index",
    "posthog_pandas.cache.sqlite.SQLiteStorage.remove.remove": "SQLite, the page cache's index",
    "posthog_pandas.cache.sqlite.SQLiteStorage.read": "SQLite, the page cache's index",
    "posthog_pandas.cache.sqlite.SQLiteStorage._check_db": "SQLite, the page cache's index",
    "posthog_pandas.magics.help_text": "help text with example queries",
}


def all_texts() -> Iterator[Any]:
    for builder in BUILDERS:
        for i, (sql, values) in enumerate(builder.texts()):
            yield pytest.param(sql, values, id=f"{builder.name.rsplit('.', 1)[-1]}-{i}")


@pytest.mark.parametrize(("sql", "values"), list(all_texts()))
def test_posthog_parses_it_and_binds_every_placeholder(sql: str, values: dict[str, Any]) -> None:
    assert parse_error(sql) is None, sql
    tree = parse_tree(sql)
    assert tree is not None
    names = set(placeholders(tree))
    assert names <= set(values), f"no value for {sorted(names - set(values))} in {sql}"
    for name in names:
        assert is_constant(values[name]), (name, values[name])


def placeholders(node: Any) -> Iterator[str]:
    """The names of the `{name}` placeholders in PostHog's JSON AST."""
    if isinstance(node, list):
        for item in node:
            yield from placeholders(item)
    elif isinstance(node, dict):
        if node.get("node") == "Placeholder":
            chain = node["expr"].get("chain")
            assert node["expr"]["node"] == "Field" and len(chain) == 1, node
            yield chain[0]
        else:
            for value in node.values():
                yield from placeholders(value)


def is_constant(value: Any) -> bool:
    """What JSON and `ast.Constant` carry: scalars, and lists of them for `IN {name}`."""
    if isinstance(value, list):
        return all(is_constant(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def test_events_pages_cover_every_filter_kind() -> None:
    used = {f.name for flt in FILTERS for f in dataclasses.fields(flt) if getattr(flt, f.name)}
    assert used == {f.name for f in dataclasses.fields(EventFilter)}
    operators = {p.get("operator", "exact") for p in PROPERTIES}
    assert operators == set(events_module._OPERATORS)


# -- finding the code that builds HogQL -------------------------------------------------------

_SQL = re.compile(r"\bSELECT\b.*\bFROM\b", re.S | re.I)


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _docstring(node: ast.AST) -> ast.AST | None:
    body = getattr(node, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
        return body[0]
    return None


def _sql_sites(node: ast.AST, where: str, found: set[str]) -> None:
    skip = _docstring(node)
    for child in ast.iter_child_nodes(node):
        if child is skip:
            continue
        name = where
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{where}.{child.name}"
        elif isinstance(node, ast.Module) and isinstance(child, ast.Assign | ast.AnnAssign):
            target = child.targets[0] if isinstance(child, ast.Assign) else child.target
            name = f"{where}.{ast.unparse(target)}"
        text = _text(child)
        if text is not None and _SQL.search(text):
            found.add(name)
        _sql_sites(child, name, found)


def sql_sites() -> set[str]:
    """Where the package (not its local server) writes SELECT ... FROM text."""
    root = Path(posthog_pandas.__file__).parent
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        if "server" in path.relative_to(root).parts:
            continue
        module = ".".join(("posthog_pandas", *path.relative_to(root).with_suffix("").parts))
        _sql_sites(ast.parse(path.read_text(encoding="utf-8")), module, found)
    return found


def test_every_builder_is_listed() -> None:
    listed = {b.name for b in BUILDERS}
    found = sql_sites()
    assert not found - listed - set(NOT_HOGQL), (
        "New code writes SELECT ... FROM text: add it to BUILDERS with the texts it builds "
        "(or to NOT_HOGQL if it is not HogQL)"
    )
    assert not (listed | set(NOT_HOGQL)) - found, "listed, but no longer in the source"
