"""Every bad input tried, with the exact message the user sees; shared by the tests and the docs.

`python -m tests.reliability.bad_input_cases` runs every case and prints the Markdown table of
docs/bad-input.md (messages as they are now, with the server address shown as {url}).
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import requests
import requests_mock

import posthog_pandas as php
from posthog_pandas import export
from posthog_pandas.cache import SQLiteStorage
from posthog_pandas.dask import read_events, read_hogql
from posthog_pandas.server import ApiKey, Faults, LocalPostHog

LIMITED = ApiKey("phx_limited_scope_" + "l" * 28, scopes=("user:read", "cohort:read"))
OTHER_PROJECT = ApiKey("phx_other_project_" + "m" * 28, project_ids=(2,))
NO_USER_READ = ApiKey("phx_no_user_read_" + "n" * 29, scopes=("query:read", "person:read"))
QUICK = php.RetrySettings(attempts=2, backoff_factor=0.01, jitter=0.0)
EVENTS_WINDOW = {"after": "2024-01-01", "before": "2024-01-31"}


@dataclass
class Env:
    """The servers and directories the cases run against."""

    srv: LocalPostHog  # "US": the main server
    eu: LocalPostHog  # "EU": another server with its own keys
    tmp: Path

    def connect(self, api_key: str | None = "", **overrides: Any) -> php.PostHog:
        options: dict[str, Any] = {
            "host": self.srv.url,
            "cache_dir": self.tmp / "cache",
            "progress": False,
            "dotenv": False,
            "prompt": False,
            "retry": QUICK,
        }
        options.update(overrides)
        return php.connect(self.srv.api_key if api_key == "" else api_key, **options)

    def normalize(self, text: str) -> str:
        return text.replace(self.srv.url, "{url}").replace(str(self.tmp), "{tmp}")


@contextmanager
def environment(tmp: Path) -> Iterator[Env]:
    with (
        LocalPostHog(
            persons=300, events=3000, seed=3, keys=[LIMITED, OTHER_PROJECT, NO_USER_READ]
        ) as srv,
        LocalPostHog(persons=10, events=10, seed=99) as eu,
    ):
        yield Env(srv, eu, tmp)


@dataclass(frozen=True)
class Case:
    """One bad input: what was tried, what is raised, and the message (exact, normalized)."""

    id: str
    group: str
    tried: str
    call: Callable[[Env], Any]
    error: type[BaseException] | None  # None: nothing is raised; `call` returns log lines
    message: str


def faulty(fault: Faults, call: Callable[[Env], Any]) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        env.srv.set_faults(fault)
        try:
            return call(env)
        finally:
            env.srv.set_faults(None)

    return run


def warns(call: Callable[[Env], Any]) -> Callable[[Env], Any]:
    """Run with warnings as errors, so a warning is seen (and nothing is sent after it)."""

    def run(env: Env) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return call(env)

    return run


def mocked(body: Any) -> php.PostHog:
    """A connection whose every list or query answer is `body` (a 200 with that JSON)."""
    session = requests.Session()
    adapter = requests_mock.Adapter()
    session.mount("https://", adapter)
    for method in ("GET", "POST"):
        adapter.register_uri(method, requests_mock.ANY, content=orjson.dumps(body))
    me = {"email": "a@example.com", "team": {"id": 1, "project_id": 1, "name": "p"}}
    adapter.register_uri("GET", "https://us.posthog.com/api/users/@me/", json=me)
    return php.connect("phx_" + "q" * 40, session=session, cache=False, progress=False,
                       dotenv=False, prompt=False)  # fmt: skip


def cache_disk_full(env: Env) -> list[str]:
    """Every cache write fails; returns what was logged (the pull itself must succeed)."""
    real = SQLiteStorage._run

    def full(self: SQLiteStorage, fn: Any, *, write: bool, one_statement: bool = False) -> Any:
        if write:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, fn, write=write, one_statement=one_statement)

    logged: list[str] = []
    handler = _ListHandler(logged)
    logger = logging.getLogger("posthog_pandas")
    logger.addHandler(handler)
    try:
        with mock.patch.object(SQLiteStorage, "_run", full):
            ph = env.connect(cache_dir=env.tmp / "full-cache")
            frame = ph.persons()
            ph.cache.flush_frames()  # the frame's copy is written in the background
    finally:
        logger.removeHandler(handler)
    assert sorted(frame["id"]) == sorted(env.srv.dataset().persons["id"])
    return logged


class _ListHandler(logging.Handler):
    def __init__(self, out: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(f"{record.levelname}: {record.getMessage()}")


def export_disk_full(env: Env) -> Any:
    """The page is staged (an Arrow IPC part); writing the final Parquet file fails: ENOSPC."""

    def full(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    with mock.patch.object(export.pq.ParquetWriter, "write_table", full):
        return env.connect().export("persons", env.tmp / "full" / "persons.parquet")


def export_under_a_file(env: Env) -> Any:
    blocker = env.tmp / "a-file"
    blocker.write_text("not a directory")
    return env.connect().export("persons", blocker / "persons.csv")


def cache_under_a_file(env: Env) -> Any:
    blocker = env.tmp / "a-file"
    blocker.write_text("not a directory")
    return env.connect(cache_dir=blocker / "cache")


KEY_HELP = (
    "Create a personal API key in PostHog: Settings → Personal API keys → Create key (give it "
    "read scopes: user:read, so connect() can find your project, plus those of what you read, "
    "e.g. query:read and person:read; the Scopes section of the docs' Connecting page lists "
    "them), and copy it immediately: PostHog "
    "shows it only once. It starts with phx_."
)
REGION = (
    "Check that it is a personal API key (phx_…) that has not been deleted, and that "
    "POSTHOG_HOST is the region it was created in: US (https://us.posthog.com) and EU "
    "(https://eu.posthog.com) are separate, and a key from one fails on the other."
)
ME = "GET {url}/api/users/@me/"
PERSONS = "GET {url}/api/projects/1/persons/?limit=1000"
COHORTS = "GET {url}/api/projects/1/cohorts/"
QUERY = "POST {url}/api/projects/1/query/"


def answered(status: int, request: str) -> str:
    """How an API error names the status and the request, after PostHog's own words."""
    return f" (PostHog answered {status} to {request})"


HOST_ADVICE = (
    "Use https://us.posthog.com (US Cloud), https://eu.posthog.com (EU Cloud) or your "
    "self-hosted address, e.g. https://posthog.example.com."
)

CASES: list[Case] = [
    # -- keys ---------------------------------------------------------------------------------
    Case(
        "project-key", "key", "a project key: `connect('phc_…')`",
        lambda env: env.connect("phc_" + "a" * 40),
        php.CredentialsError,
        "The key from argument is a project API key (phc_…). Project keys are public and "
        "write-only: they send events but cannot read data. " + KEY_HELP,
    ),
    Case(
        "secret-key", "key", "a project secret key: `connect('phs_…')`",
        lambda env: env.connect("phs_" + "a" * 40),
        php.CredentialsError,
        "The key from argument is a project secret key (phs_…), which PostHog accepts only for "
        "feature-flag evaluation, not for reading data. " + KEY_HELP,
    ),
    Case(
        "key-with-space", "key", "a key pasted with a space inside: `'phx_abc def'`",
        lambda env: env.connect("phx_abc def"),
        php.CredentialsError,
        "The key from argument contains spaces or control characters; copy it again without "
        "quotes or line breaks.",
    ),
    Case(
        "no-key", "key", "no key anywhere (no argument, environment, .env; no prompt)",
        lambda env: env.connect(None),
        php.CredentialsError,
        "No PostHog personal API key found. posthog-pandas looked, in this order, at:\n"
        "  1. arguments: posthog_pandas.connect(api_key='phx_...', host=..., project_id=...)\n"
        "  2. environment variables: POSTHOG_PERSONAL_API_KEY, POSTHOG_HOST (default "
        "https://us.posthog.com), POSTHOG_PROJECT_ID\n"
        "  3. a .env file in the working directory or a parent, with the same variable names\n"
        "  4. an interactive prompt (notebook widget or terminal), which is unavailable here\n"
        "Set POSTHOG_PERSONAL_API_KEY and try again. " + KEY_HELP + " (Host in use: {url}.)",
    ),
    Case(
        "unknown-key", "key", "a well-formed key PostHog does not know (typo, deleted)",
        lambda env: env.connect("phx_" + "z" * 40),
        php.AuthenticationError,
        "Personal API key found in request Authorization header is invalid."
        + answered(401, ME) + "\nThe personal API key phx_…zzzz (from argument) was not "
        "accepted. " + REGION,
    ),
    Case(
        "eu-key-on-us-host", "key", "an EU key on the US host (two servers: the key is valid "
        "on the other one)",
        lambda env: env.connect(env.eu.api_key),
        php.AuthenticationError,
        "Personal API key found in request Authorization header is invalid."
        + answered(401, ME) + "\nThe personal API key phx_…6029 (from argument) was not "
        "accepted. " + REGION,
    ),
    Case(
        "key-in-query", "key", "`key_in='query'` (keys in URLs are refused)",
        lambda env: env.connect(key_in="query"),
        php.ConfigurationError,
        "key_in='query' is not supported; use key_in='header' (Authorization: Bearer, the "
        "default) or key_in='body' (personal_api_key in the request body).",
    ),
    Case(
        "username-without-password", "key", "`connect(username=...)` without a password",
        lambda env: env.connect(None, username="ann@example.com"),
        php.CredentialsError,
        "Username/password login from argument is missing POSTHOG_PASSWORD; give both, or use "
        "a personal API key instead.",
    ),
    Case(
        "basic-on-current-posthog", "key", "username and password against current PostHog",
        lambda env: env.connect(None, username="ann@example.com", password="pw-example"),
        php.AuthenticationError,
        "Authentication credentials were not provided." + answered(401, ME) + "\nThis "
        "PostHog did not accept a username and password (HTTP Basic). Current PostHog "
        "versions accept only personal API keys for the API. " + KEY_HELP,
    ),
    # -- host ---------------------------------------------------------------------------------
    Case(
        "host-not-http", "host", "`host='ftp://posthog.example.com'`",
        lambda env: env.connect(host="ftp://posthog.example.com"),
        php.ConfigurationError,
        "POSTHOG_HOST 'ftp://posthog.example.com' is not a URL. " + HOST_ADVICE,
    ),
    Case(
        "host-with-path", "host", "`host='https://us.posthog.com/project/1'` (a page URL)",
        lambda env: env.connect(host="https://us.posthog.com/project/1"),
        php.ConfigurationError,
        "POSTHOG_HOST 'https://us.posthog.com/project/1' has a path ('/project/1'); give only "
        "the origin, e.g. https://us.posthog.com.",
    ),
    Case(
        "host-with-space", "host", "`host='not a host'` (a typo with spaces)",
        lambda env: env.connect(host="not a host"),
        php.ConfigurationError,
        "POSTHOG_HOST 'not a host' is not a URL. " + HOST_ADVICE,
    ),
    Case(
        "host-unreachable", "host", "a host nobody listens on (`http://127.0.0.1:9`)",
        lambda env: env.connect(host="http://127.0.0.1:9"),
        php.TransportError,
        "http://127.0.0.1:9 refused the connection: nothing listens at that address and port. "
        "Check POSTHOG_HOST (and its port), or start the server. "
        "(GET http://127.0.0.1:9/api/users/@me/) (gave up after 3 attempts)",
    ),
    Case(
        "host-mistyped", "host", "a host name that does not resolve "
        "(`host='https://posthog.example.invalid'`)",
        lambda env: env.connect(host="https://posthog.example.invalid"),
        php.TransportError,
        "The host name posthog.example.invalid could not be resolved. Check POSTHOG_HOST (now "
        "https://posthog.example.invalid) for a typo, and that this machine is online; not "
        "retried. (GET https://posthog.example.invalid/api/users/@me/)",
    ),
    Case(
        "host-serves-html", "host", "a host that answers with an HTML login page",
        faulty(
            Faults(html_login=1.0, paths=("/api/users/@me",)),
            lambda env: env.connect(cache=False),
        ),
        php.ResponseFormatError,
        ME + " returned an HTML page instead of PostHog's JSON (often a login page or a proxy's "
        "error page). Check POSTHOG_HOST points at the PostHog app (https://us.posthog.com or "
        "https://eu.posthog.com, not the .i. ingestion host). (gave up after 3 attempts)",
    ),
    Case(
        "ingestion-host", "host", "`host='us.i.posthog.com'` (the ingestion host); a warning",
        warns(lambda env: env.connect(host="us.i.posthog.com")),
        UserWarning,
        "us.i.posthog.com is PostHog's ingestion host; the read API is served from "
        "us.posthog.com. Using https://us.posthog.com.",
    ),
    Case(
        "plain-http", "host", "`host='http://posthog.example.com'` (plain http); a warning",
        warns(lambda env: env.connect(host="http://posthog.example.com")),
        UserWarning,
        "http://posthog.example.com uses plain http: your key would cross the network "
        "unencrypted. Use https unless this is a local test server.",
    ),
    # -- project and scope ----------------------------------------------------------------------
    Case(
        "unknown-project", "project", "`project_id=999` (no such project)",
        lambda env: env.connect(project_id=999).persons(),
        php.NotFoundError,
        "Project not found." + answered(404, "GET {url}/api/projects/999/persons/?limit=1000")
        + "\nCheck POSTHOG_PROJECT_ID (the number in your PostHog URL, /project/<id>/); "
        "ph.projects() lists the projects your key can see.\n(raised by ph.persons())",
    ),
    Case(
        "project-not-allowed", "project", "a key limited to project 2, reading project 1",
        lambda env: env.connect(OTHER_PROJECT.key, project_id=1).persons(),
        php.PermissionDeniedError,
        "API key does not have access to the requested project: ID 1." + answered(403, PERSONS)
        + "\nThe key is limited to other projects; set POSTHOG_PROJECT_ID to one it may read.\n"
        "(raised by ph.persons())",
    ),
    Case(
        "project-id-text", "project", "`project_id='abc'`",
        lambda env: env.connect(project_id="abc"),
        php.ConfigurationError,
        "project_id from argument must be a positive integer (the number in your PostHog URL, "
        "/project/<id>/), got 'abc'.",
    ),
    Case(
        "project-id-zero", "project", "`project_id=0`",
        lambda env: env.connect(project_id=0),
        php.ConfigurationError,
        "project_id from argument must be positive, got 0.",
    ),
    Case(
        "missing-scope-persons", "scope", "a key without `person:read` calling `ph.persons()`",
        lambda env: env.connect(LIMITED.key).persons(),
        php.PermissionDeniedError,
        "API key missing required scope 'person:read'" + answered(403, PERSONS)
        + "\nAdd the 'person:read' scope to this key in PostHog (Settings → Personal API "
        "keys → edit the key), or create a key with it.\n(raised by ph.persons())",
    ),
    Case(
        "missing-scope-query", "scope", "a key without `query:read` calling `ph.events()`",
        lambda env: env.connect(LIMITED.key).events(**EVENTS_WINDOW),
        php.PermissionDeniedError,
        "API key missing required scope 'query:read'" + answered(403, QUERY)
        + "\nAdd the 'query:read' scope to this key in PostHog (Settings → Personal API "
        "keys → edit the key), or create a key with it.",
    ),
    # -- filters --------------------------------------------------------------------------------
    Case(
        "filter-not-a-string", "filters", "`ph.persons(search=5)`",
        lambda env: env.connect().persons(search=5),
        php.ConfigurationError,
        "search must be a string, got int 5.",
    ),
    Case(
        "filter-typo", "filters", "`ph.persons(serach='ann')` (a misspelt argument)",
        lambda env: env.connect().persons(serach="ann"),
        TypeError,
        "persons() got an unexpected keyword argument 'serach'. Common options: cache, refresh, "
        "progress, flatten, max_depth, dtype_backend, dtypes, raw, limit.",
    ),
    Case(
        "properties-not-a-list", "filters", "`ph.persons(properties='plan=pro')`",
        lambda env: env.connect().persons(properties="plan=pro"),
        php.ConfigurationError,
        "properties must be a list of filters like [{'key': 'plan', 'value': 'pro'}].",
    ),
    Case(
        "properties-without-key", "filters", "`ph.persons(properties=[{'nokey': 1}])` (PostHog "
        "rejects it)",
        lambda env: env.connect().persons(properties=[{"nokey": 1}]),
        php.BadRequestError,
        "Property filter needs a 'key'." + answered(
            400,
            "GET {url}/api/projects/1/persons/?properties=%5B%7B%22nokey%22%3A1%7D%5D&limit=1000",
        ) + "\nCheck the filters and arguments you passed.",
    ),
    Case(
        "bad-date", "filters", "`ph.events(after='not a date')`",
        lambda env: env.connect().events(after="not a date"),
        php.ConfigurationError,
        "after='not a date' is not a date. Use an ISO date or datetime ('2024-01-31', "
        "'2024-01-31T12:00:00Z'), a relative form ('-7d', '-24h', '-2w', '-3mo'), or a "
        "datetime/date object.",
    ),
    Case(
        "dates-reversed", "filters", "`ph.events(after='2024-02-01', before='2024-01-01')`",
        lambda env: env.connect().events(after="2024-02-01", before="2024-01-01"),
        php.ConfigurationError,
        "after (2024-02-01T00:00:00.000000Z) must be earlier than before "
        "(2024-01-01T00:00:00.000000Z).",
    ),
    Case(
        "unknown-operator", "filters", "`ph.events(properties=[{'key': 'plan', 'operator': "
        "'regex', 'value': 'x'}])`",
        lambda env: env.connect().events(
            properties=[{"key": "plan", "operator": "regex", "value": "x"}], **EVENTS_WINDOW
        ),
        php.ConfigurationError,
        "properties[0]: operator 'regex' is not supported; use one of exact, is_not, "
        "icontains, not_icontains, gt, gte, lt, lte, is_set, is_not_set.",
    ),
    Case(
        "bad-column", "filters", "`ph.events(columns=['drop table'])`",
        lambda env: env.connect().events(columns=["drop table"], **EVENTS_WINDOW),
        php.ConfigurationError,
        "columns: 'drop table' is not an events column; use names like 'event', 'timestamp', "
        "'distinct_id' or 'properties.$browser'.",
    ),
    Case(
        "event-list-not-names", "filters", "`ph.events(event=['$pageview', 5])`",
        lambda env: env.connect().events(event=["$pageview", 5], **EVENTS_WINDOW),
        php.ConfigurationError,
        "event must be a name or a list of names, got ['$pageview', 5].",
    ),
    Case(
        "columns-not-names", "filters", "`ph.events(columns=5)`",
        lambda env: env.connect().events(columns=5, **EVENTS_WINDOW),
        php.ConfigurationError,
        "columns must be a name or a list of names like ['event', 'timestamp'], got 5.",
    ),
    Case(
        "dask-partitions-too-many", "filters",
        "`read_events('2024-01-01', '2025-01-01', partition='1min')` (posthog_pandas.dask)",
        lambda env: read_events("2024-01-01", "2025-01-01", partition="1min", ph=env.connect()),
        php.ConfigurationError,
        "partition='1min' cuts [after, before) into 527,040 partitions, each at least one "
        "PostHog query: more than the 2,400 queries an hour PostHog answers a team. Use a "
        "longer partition, such as partition='6h', or pass max_partitions=None to read them all.",
    ),
    Case(
        "dask-hogql-values-set-the-window", "filters",
        "`read_hogql(..., values={'after': '2024-01-01'})` (posthog_pandas.dask)",
        lambda env: read_hogql(
            "select count() from events where timestamp >= toDateTime64({after}, 6, 'UTC') "
            "and timestamp < toDateTime64({before}, 6, 'UTC')",
            after="2024-01-01", before="2024-01-05", values={"after": "2024-01-01"},
            ph=env.connect(),
        ),
        php.ConfigurationError,
        "read_hogql binds {after} and {before} to each partition's window itself; values "
        "cannot set after. Give the range as read_hogql(..., after=..., before=...) and name "
        "other values differently.",
    ),
    Case(
        "dask-hogql-not-text", "filters", "`read_hogql(5, ...)` (posthog_pandas.dask)",
        lambda env: read_hogql(5, after="2024-01-01", before="2024-01-05", ph=env.connect()),
        php.ConfigurationError,
        "read_hogql() needs a HogQL SELECT statement as a string.",
    ),
    Case(
        "limit-zero", "filters", "`ph.events(limit=0)`",
        lambda env: env.connect().events(limit=0, **EVENTS_WINDOW),
        php.ConfigurationError,
        "limit must be a positive integer, got 0.",
    ),
    Case(
        "group-type-out-of-range", "filters", "`ph.groups(7)`",
        lambda env: env.connect().groups(7),
        php.ConfigurationError,
        "group_type_index must be an integer from 0 to 4, got 7.",
    ),
    Case(
        "flag-not-bool", "filters", "`ph.feature_flags(active='yes')`",
        lambda env: env.connect().feature_flags(active="yes"),
        php.ConfigurationError,
        "active must be True or False, got 'yes'.",
    ),
    Case(
        "timeout-text", "filters", "`connect(timeout='fast')`",
        lambda env: env.connect(timeout="fast"),
        php.ConfigurationError,
        "timeout='fast': give seconds as a number (e.g. 30) or a (connect, read) pair "
        "(e.g. (10, 120)).",
    ),
    Case(
        "too-many-queries", "filters", "`connect(max_concurrent_queries=5)`",
        lambda env: env.connect(max_concurrent_queries=5),
        php.ConfigurationError,
        "max_concurrent_queries=5: PostHog runs at most 3 queries at once per organization and "
        "answers more with 429 (Exceeded maximum concurrency limit), so more would only be "
        "refused; use 1 to 3.",
    ),
    # -- HogQL ----------------------------------------------------------------------------------
    Case(
        "hogql-unknown-column", "HogQL", "`ph.query('select nope_column from events limit 1')`",
        lambda env: env.connect().query("select nope_column from events limit 1"),
        php.QueryError,
        "Unable to resolve field: nope_column" + answered(400, QUERY)
        + "\nFix the HogQL query and run it again.",
    ),
    Case(
        "hogql-syntax", "HogQL", "`ph.query('selec 1')`",
        lambda env: env.connect().query("selec 1"),
        php.QueryError,
        "mismatched input 'selec' expecting {SELECT, WITH, '{', '(', '<'}"
        + answered(400, QUERY) + "\nFix the HogQL query and run it again.",
    ),
    Case(
        "hogql-empty", "HogQL", "`ph.query('')`",
        lambda env: env.connect().query(""),
        php.ConfigurationError,
        "query() needs a HogQL SELECT statement as a string.",
    ),
    Case(
        "hogql-truncated", "HogQL", "`ph.query('select uuid from events')` (more than 100 rows, "
        "no LIMIT)",
        lambda env: env.connect().query("select uuid from events"),
        php.TruncationError,
        "PostHog cut this query's result at 100 rows (queries without LIMIT return only 100 "
        "rows); posthog-pandas will not hand you a silently truncated table. Either aggregate "
        "or add LIMIT n (n ≤ 50,000), or end the query with ORDER BY <column(s)>, uuid (a "
        "unique key that is in the SELECT list) so that posthog-pandas can page through every "
        "row by keyset.",
    ),
    # -- paths, cache, disk ---------------------------------------------------------------------
    Case(
        "cache-dir-unwritable", "paths", "`cache_dir` under a regular file",
        cache_under_a_file,
        php.CacheError,
        "The posthog-pandas cache directory '{tmp}/a-file/cache' cannot be created or written "
        "(FileExistsError: [Errno 17] File exists: '{tmp}/a-file'). Set "
        "POSTHOG_PANDAS_CACHE_DIR to a writable directory, or pass cache_dir=... or cache=False.",
    ),
    Case(
        "cache-disk-full", "paths", "disk full while caching (SQLite: database or disk is "
        "full); the pull returns every row and logs a warning per page not cached",
        cache_disk_full,
        None,
        "WARNING: could not cache {url}/api/users/@me/: The posthog-pandas cache directory "
        "'{tmp}/full-cache' cannot be created or written (OperationalError: database or disk "
        "is full). Set POSTHOG_PANDAS_CACHE_DIR to a writable directory, or pass cache_dir=... "
        "or cache=False.",
    ),
    Case(
        "offline-miss", "paths", "`connect(offline=True).annotations()`, never fetched online",
        lambda env: (env.connect().cohorts(), env.connect(offline=True).annotations()),
        php.CacheError,
        "Offline mode: GET {url}/api/projects/1/annotations/ is not in the cache, so it cannot "
        "be answered. Run the same call once while online (connect(offline=False)) to cache it.",
    ),
    Case(
        "export-path-unwritable", "paths", "`ph.export('persons', '<a file>/persons.csv')`",
        export_under_a_file,
        php.ConfigurationError,
        "Cannot export to '{tmp}/a-file/persons.csv': its directory cannot be created or "
        "written (FileExistsError: [Errno 17] File exists: '{tmp}/a-file').",
    ),
    Case(
        "export-disk-full", "paths", "disk full during an export (writing the final file fails)",
        export_disk_full,
        OSError,
        "[Errno 28] No space left on device",
    ),
    Case(
        "export-unknown-suffix", "paths", "`ph.export('persons', 'out.xlsx')`",
        lambda env: env.connect().export("persons", env.tmp / "out.xlsx"),
        php.ConfigurationError,
        "Cannot export: '{tmp}/out.xlsx' has no known suffix. Use a path ending in .csv, "
        ".csv.gz or .parquet, or a directory (a hive-partitioned Parquet dataset), or pass "
        "format='csv', 'csv.gz' or 'parquet'.",
    ),
    Case(
        "export-unknown-resource", "paths", "`ph.export('people', 'out.csv')`",
        lambda env: env.connect().export("people", env.tmp / "out.csv"),
        php.ConfigurationError,
        "Cannot export 'people': it is not a PostHog resource. Exportable: persons, events, "
        "cohorts, cohort_persons, feature_flags, insights, dashboards, annotations, actions, "
        "event_definitions, property_definitions, experiments, surveys, groups, "
        "session_recordings, projects. For a query result use ph.export_query(hogql, path).",
    ),
    # -- bodies ---------------------------------------------------------------------------------
    Case(
        "truncated-json", "bodies", "200 with a truncated JSON body, every time",
        faulty(
            Faults(malformed_json=1.0, paths=("/cohorts",)),
            lambda env: env.connect().cohorts(cache=False),
        ),
        php.ResponseFormatError,
        COHORTS + " returned a body that is not valid JSON (1345 bytes; it may have been cut "
        "off). Nothing was cached; run the call again. (gave up after 3 attempts)",
    ),
    Case(
        "html-login-page", "bodies", "200 with an HTML login page, every time",
        faulty(
            Faults(html_login=1.0, paths=("/cohorts",)),
            lambda env: env.connect().cohorts(cache=False),
        ),
        php.ResponseFormatError,
        COHORTS + " returned an HTML page instead of PostHog's JSON (often a login page or a "
        "proxy's error page). Check POSTHOG_HOST points at the PostHog app "
        "(https://us.posthog.com or https://eu.posthog.com, not the .i. ingestion host). "
        "(gave up after 3 attempts)",
    ),
    Case(
        "reset-mid-body", "bodies", "the connection reset half-way through the body, every time",
        faulty(
            Faults(reset_mid_body=1.0, paths=("/cohorts",)),
            lambda env: env.connect().cohorts(cache=False),
        ),
        php.TransportError,
        COHORTS + " failed before PostHog answered: ChunkedEncodingError: ('Connection broken: "
        "IncompleteRead(1345 bytes read, 1346 more expected)', IncompleteRead(1345 bytes read, "
        "1346 more expected)). Check your network and POSTHOG_HOST. (gave up after 3 attempts)",
    ),
    Case(
        "proxy-502-html", "bodies", "a proxy's 502 HTML page, every time",
        faulty(
            Faults(rate_502=1.0, paths=("/cohorts",)),
            lambda env: env.connect().cohorts(cache=False),
        ),
        php.ServerError,
        "an HTML page (502 Bad Gateway), not PostHog's JSON" + answered(502, COHORTS)
        + "\nPostHog had a server-side problem; try again in a minute. (gave up after 3 attempts)",
    ),
    Case(
        "retry-after-too-long", "bodies", "429 asking to wait 900 s (more than `max_wait`)",
        faulty(
            Faults(rate_429=1.0, retry_after=900, paths=("/cohorts",)),
            lambda env: env.connect().cohorts(cache=False),
        ),
        php.RateLimitError,
        "Request was throttled. Expected available in 900 seconds." + answered(429, COHORTS)
        + "\nPostHog is rate limiting this key; wait and retry. PostHog asked to wait 900 s, "
        "longer than the configured maximum of 120 s; try again later or raise "
        "RetrySettings.max_wait.",
    ),
    Case(
        "server-hangs", "bodies", "the server stops answering (`timeout=(2, 0.3)`)",
        faulty(
            Faults(hang_after=0, paths=("/cohorts",)),
            lambda env: env.connect(timeout=(2, 0.3)).cohorts(cache=False),
        ),
        php.TransportError,
        COHORTS + " timed out after 2 s (connect) / 0.3 s (read). PostHog may be slow or "
        "unreachable; try again, or pass timeout=... to connect(). (gave up after 3 attempts)",
    ),
    Case(
        "results-not-a-list", "bodies", "200 JSON whose `results` is not a list",
        lambda env: mocked({"results": 5}).persons(),
        php.ResponseFormatError,
        "`results` from https://us.posthog.com/api/projects/1/persons/ is a int, not a list.",
    ),
    Case(
        "rows-not-objects", "bodies", "200 JSON list page whose rows are arrays, not objects",
        lambda env: mocked({"results": [[1, 2]], "next": None}).persons(),
        php.ResponseFormatError,
        "The rows of https://us.posthog.com/api/projects/1/persons/ are not JSON objects.",
    ),
    Case(
        "query-rows-not-arrays", "bodies", "200 query answer whose rows are numbers",
        lambda env: mocked({"results": [1, 2], "columns": ["a"], "types": ["Int64"]}).query(
            "select a from t limit 2"
        ),
        php.ResponseFormatError,
        "The query API at /api/projects/1/query/ answered with rows that are not arrays.",
    ),
    Case(
        "query-columns-not-a-list", "bodies", "200 query answer whose `columns` is a number",
        lambda env: mocked({"results": [[1]], "columns": 5}).query("select a from t limit 1"),
        php.ResponseFormatError,
        "The query API at /api/projects/1/query/ answered with `columns` that is not a list.",
    ),
    Case(
        "query-status-without-id", "bodies", "200 query answer `query_status: {complete: false}` "
        "without an id",
        lambda env: mocked({"results": [], "query_status": {"complete": False}}).query(
            "select a from t limit 1"
        ),
        php.ResponseFormatError,
        "The query API at /api/projects/1/query/ answered with an incomplete query_status "
        "that has no id to poll.",
    ),
    Case(
        "no-user-read-no-project", "scope",
        "a key without `user:read` and no project id (`connect()` cannot find the project)",
        lambda env: env.connect(NO_USER_READ.key),
        php.PermissionDeniedError,
        "API key missing required scope 'user:read'" + answered(403, ME)
        + "\nposthog-pandas reads "
        "/api/users/@me/ to find your project, and this key lacks the 'user:read' scope. Name "
        "the project instead: connect(project_id=...) or set POSTHOG_PROJECT_ID (the number in "
        "your PostHog URL, /project/<id>/); or add 'user:read' to the key (Settings → Personal "
        "API keys → edit the key).",
    ),
]  # fmt: skip


def observe(case: Case, env: Env) -> tuple[str, str]:
    """Run a case; the class name and normalized message of what it raised."""
    try:
        result = case.call(env)
    except BaseException as exc:  # noqa: BLE001 - we report whatever comes out
        return type(exc).__name__, env.normalize(str(exc))
    if case.error is None:
        return "(none; logged)", env.normalize(result[0])
    return "(nothing raised)", ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def markdown_table(env: Env) -> str:
    lines = [
        "| # | Input tried | Exception | Exact message the user sees | Test |",
        "|---|---|---|---|---|",
    ]
    for number, case in enumerate(CASES, 1):
        name, message = observe(case, env)
        test = f"`test_bad_input[{case.id}]`"
        lines.append(f"| {number} | {_cell(case.tried)} | `{name}` | {_cell(message)} | {test} |")
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, environment(Path(tmp)) as env:
        print(markdown_table(env))


if __name__ == "__main__":
    main()
