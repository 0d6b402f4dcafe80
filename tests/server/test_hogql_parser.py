"""The local server accepts and rejects HogQL exactly as PostHog's own parser (hogql-parser) does.

What PostHog's parser rejects is a 400 with PostHog's message; what it accepts either runs or,
where the sqlglot/DuckDB engine cannot run it, fails saying the limitation is the local server's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from posthog_pandas.server import LocalPostHog
from posthog_pandas.server.data import TABLES_DDL
from posthog_pandas.server.hogql import LOCAL_LIMITATION, HogQLEngine, HogQLError
from posthog_pandas.server.hogql_parse import PARSER_AVAILABLE_PLATFORMS, parse_error

REPO = Path(__file__).resolve().parents[2]

needs_posthog_parser = pytest.mark.skipif(
    not sys.platform.startswith(PARSER_AVAILABLE_PLATFORMS),
    reason="hogql-parser has no wheel for this platform",
)
pytestmark = needs_posthog_parser

EXPECTING_SELECT = "expecting {SELECT, WITH, '{', '(', '<'}"


@pytest.fixture
def engine() -> HogQLEngine:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(TABLES_DDL)
    conn.execute(
        "INSERT INTO events VALUES ('a1', '$pageview', 'd1', '2024-01-05 10:00:00+00', "
        """'{"$browser": "Chrome"}', '', '2024-01-05 10:00:01+00', 'p1')"""
    )
    return HogQLEngine(conn)


def detail(engine: HogQLEngine, query: str, values: dict[str, Any] | None = None) -> str:
    with pytest.raises(HogQLError) as info:
        engine.run(query, values)
    assert info.value.code == "invalid_input"
    return info.value.detail


# ---- PostHog rejects: a 400 with PostHog's message -----------------------------------------

REJECTED = [
    # the sqlglot engine ran these two and answered rows
    ("SELECT * EXCEPT (properties) FROM events", "mismatched input 'properties' expecting "
     "{SELECT, WITH, '{', '('}"),
    ("SELECT * REPLACE ('x' AS event) FROM events",
     "no viable alternative at input 'SELECT * REPLACE'"),
    # ... and rejected these with its own words
    ("selec 1", f"mismatched input 'selec' {EXPECTING_SELECT}"),
    ("SELECT uuid FROM events WHERE", "no viable alternative at input 'SELECT uuid FROM events "
     "WHERE'"),
    ("SELECT count() FROM events SETTINGS max_threads = 1",
     "Unsupported: SelectStmt.settingsClause()"),
    ("SELECT count() FROM events ARRAY JOIN [1, 2]", "ARRAY JOIN arrays must have an alias"),
    ("SELECT uuid FROM events LIMIT 1 INTO OUTFILE 'x'",
     "no viable alternative at input 'SELECT uuid FROM events LIMIT 1 INTO'"),
    ("SELECT count() FROM events WHERE event GLOBAL IN ('$pageview')",
     "no viable alternative at input 'SELECT count() FROM events WHERE event GLOBAL'"),
    ("SELECT count() FROM events WHERE event REGEXP 'page'",
     "no viable alternative at input 'SELECT count() FROM events WHERE event REGEXP'"),
    ("SELECT 'a' 'b'", "no viable alternative at input 'SELECT 'a' 'b''"),
    ("SELECT uuid FROM events WHERE event = ?", "no viable alternative at input 'SELECT uuid "
     "FROM events WHERE event = ?'"),
    ("SELECT :a", "no viable alternative at input 'SELECT :'"),
    ("SELECT @a", "Unexpected character '@' (U+0040)"),
    ("SELECT count() FROM events }", "Unmatched curly bracket"),
    ("SELECT 1; SELECT 2", "mismatched input 'SELECT' expecting <EOF>"),
    ("SHOW TABLES", f"mismatched input 'SHOW' {EXPECTING_SELECT}"),
    ("   ", f"mismatched input '<EOF>' {EXPECTING_SELECT}"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "message"), REJECTED)
def test_what_posthog_rejects_is_rejected_with_its_message(
    engine: HogQLEngine, query: str, message: str
) -> None:
    assert parse_error(query) == message
    assert detail(engine, query) == message


@pytest.mark.integration
def test_a_rejected_query_is_posthogs_400_over_http() -> None:
    with LocalPostHog(persons=5, events=20) as srv:
        r = requests.post(
            f"{srv.url}/api/projects/1/query/",
            json={"query": {"kind": "HogQLQuery", "query": "SELECT * EXCEPT (uuid) FROM events"}},
            headers={"Authorization": f"Bearer {srv.api_key}"},
            timeout=30,
        )
        assert srv.server_errors == []
    assert r.status_code == 400
    assert r.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": "mismatched input 'uuid' expecting {SELECT, WITH, '{', '('}",
        "attr": None,
    }


# ---- PostHog accepts: the query runs, or the local server owns its limitation ---------------

RUN = [
    ("SELECT count() FROM events;", [[1]]),  # a trailing semicolon
    ("SELECT count() FROM events # a comment", [[1]]),
    ("SELECT count() FROM events -- a comment", [[1]]),
    ("SELECT count() FROM events WHERE event == '$pageview' AND event <> 'x'", [[1]]),
    ('SELECT "event", `distinct_id` FROM events', [["$pageview", "d1"]]),  # quoted identifiers
    ("SELECT 1 AS from", [[1]]),  # a keyword as an alias
    ("SELECT uuid FROM events LIMIT 1 WITH TIES", [["a1"]]),
    ("SELECT properties.$browser FROM events WHERE event IN {names}", [["Chrome"]]),
]


@pytest.mark.parametrize(("query", "rows"), RUN)
def test_what_both_accept_runs(engine: HogQLEngine, query: str, rows: list[list[Any]]) -> None:
    assert parse_error(query) is None
    assert engine.run(query, {"names": ["$pageview"]}).results == rows


def test_double_quotes_are_identifiers_as_in_posthog(engine: HogQLEngine) -> None:
    query = """SELECT count() FROM events WHERE event = "$pageview\""""
    assert parse_error(query) is None
    assert detail(engine, query) == "Unable to resolve field: $pageview"


def test_limit_with_offset_is_refused_as_posthog_refuses_offset(engine: HogQLEngine) -> None:
    assert parse_error("SELECT uuid FROM events LIMIT 0, 5") is None  # LIMIT offset, count
    assert detail(engine, "SELECT uuid FROM events LIMIT 0, 5").startswith(
        "OFFSET is not supported on queries made with a personal API key."
    )


LOCAL_ONLY = [
    ("SELECT 1 UNION SELECT 2", "Syntax error at line 1, column 16: Expected DISTINCT or ALL for "
     "Union"),
    ("SELECT properties?.a FROM events", "Syntax error at line 1, column 19: Required keyword: "
     "'true' missing for IF"),
    ("SELECT <a/>", "Syntax error at line 1, column 11: Required keyword: 'expression' missing "
     "for DIV"),
    ("SELECT f'{event}' FROM events", "Syntax error at line 1, column 9: Invalid expression / "
     "Unexpected token"),
    ("SELECT from", "Syntax error at line 1, column 8: Expected table name but got 'SENTINEL'"),
    ("SELECT count() FROM events WHERE event =~ 'page'", "Unsupported syntax: ~'page'"),
    ("SELECT count() FILTER (WHERE 1) FROM events",
     "Unsupported syntax: count() FILTER(WHERE 1)"),
    ("SELECT event FROM events ORDER BY event WITH FILL", "Unsupported syntax: WITH FILL"),
    ("SELECT count() FROM events FORMAT JSON", "FORMAT is not supported"),
    ("SELECT count() FROM events FINAL", "FINAL is not supported"),
    ("SELECT x FROM events ARRAY JOIN [1, 2] AS x", "ARRAY JOIN is not supported"),
    ("SELECT DISTINCT ON (event) event FROM events", "DISTINCT ON is not supported"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH (common table expressions) is not supported"),
    ("SELECT 1 INTERSECT SELECT 2", "Only SELECT queries are supported, got INTERSECT"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "what"), LOCAL_ONLY)
def test_valid_hogql_the_local_engine_cannot_run_says_so(
    engine: HogQLEngine, query: str, what: str
) -> None:
    assert parse_error(query) is None
    assert detail(engine, query) == f"{what} ({LOCAL_LIMITATION})"


def test_placeholders_stay_placeholders_until_values_bind(engine: HogQLEngine) -> None:
    query = "SELECT uuid FROM events WHERE event = {nosuch}"
    assert parse_error(query) is None  # a placeholder is grammar, whatever its name
    assert detail(engine, query, {"names": 1}) == (
        "Placeholder {nosuch} is not available in this context. You can use the following: names"
    )


def test_identical_text_is_parsed_once(engine: HogQLEngine) -> None:
    query = "SELECT uuid FROM events WHERE timestamp > toDateTime64({after}, 6, 'UTC') -- cache"
    before = parse_error.cache_info()
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        assert engine.run(query, {"after": f"{day} 00:00:00"}).results == [["a1"]]
    after = parse_error.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)


# ---- loading the wheel leaves `posthog` (PostHog's Python SDK) alone ------------------------


def _python(code: str, *paths: Path) -> str:
    """Run `code` in a fresh interpreter (the wheel loads once per process); its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (REPO, *paths)))}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def fake_sdk(tmp_path: Path) -> Iterator[Path]:
    """A top-level `posthog` package standing for PostHog's SDK (`pip install posthog`)."""
    (tmp_path / "posthog").mkdir()
    (tmp_path / "posthog" / "__init__.py").write_text("SDK = 'the real one'\n")
    yield tmp_path


def test_no_posthog_package_is_left_behind() -> None:
    out = _python(
        """
        import importlib.util, sys
        if importlib.util.find_spec("posthog") is not None:
            print("skip: a posthog package is installed")
            raise SystemExit
        from posthog_pandas.server.hogql_parse import parse_error
        assert parse_error("select 1") is None and parse_error("selec 1") is not None
        print(sorted(m for m in sys.modules if m.split(".")[0] == "posthog"))
        """
    )
    if out.startswith("skip:"):
        pytest.skip(out)
    assert out == "[]"


def test_the_sdk_imports_after_the_parser(fake_sdk: Path) -> None:
    out = _python(
        """
        import sys
        from posthog_pandas.server.hogql_parse import parse_error
        assert parse_error("selec 1") is not None
        import posthog
        print(posthog.SDK, "posthog.hogql.errors" in sys.modules)
        """,
        fake_sdk,
    )
    assert out == "the real one False"


def test_an_imported_sdk_stays_the_same_module(fake_sdk: Path) -> None:
    out = _python(
        """
        import sys
        import posthog
        before = posthog
        from posthog_pandas.server.hogql_parse import parse_error
        assert parse_error("selec 1") is not None
        print(sys.modules["posthog"] is before, "posthog.hogql.errors" in sys.modules)
        """,
        fake_sdk,
    )
    assert out == "True False"


def test_the_errors_module_alone_is_not_enough() -> None:
    """Why the loader needs `posthog` importable: the wheel imports the top-level package."""
    out = _python(
        """
        import importlib.util, sys
        if importlib.util.find_spec("posthog") is not None:
            print("skip: a posthog package is installed")
            raise SystemExit
        from posthog_pandas.server.hogql_parse import _errors_module
        sys.modules["posthog.hogql.errors"] = _errors_module()
        try:
            import hogql_parser
        except ModuleNotFoundError as exc:
            print(exc)
        """
    )
    if out.startswith("skip:"):
        pytest.skip(out)
    assert out == "No module named 'posthog'"
