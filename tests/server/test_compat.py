"""The PostHog API contract of docs/posthog-compat.md, one test per row, against the local server.

Every row id of the document (`persons.list`, `query.hasmore`, ...) has exactly one function
here, registered with `@row(id)`; `test_contract[<id>]` runs it. Each checks the row's facts over
real HTTP (status, body, paging, defaults, limits, scopes with scoped keys) and, where the row
says what the client sends or reads, drives the client and inspects the server's request log or
the bodies the client sent. `test_rows_and_tests_match` keeps the document and this file in step.

Rows whose changes would upset the rows after them (late events, a query time limit, persons
deleted, insights computed, scoped keys for every accessor) start a small server of their own;
time zone rows use the module's second server, a project in Asia/Kolkata. Checks that other
test modules already make are reused through their helpers (`test_timezone_hogql`,
`test_events_fidelity`, `test_http`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pandas as pd
import pytest
import requests

import posthog_pandas as php
from posthog_pandas import _config, _http
from posthog_pandas._checks import RECORDINGS_KEPT_DAYS
from posthog_pandas._credentials import Credentials
from posthog_pandas.server import ApiKey, Faults, LocalPostHog
from posthog_pandas.server import query as query_module
from posthog_pandas.server import resources as server_resources
from posthog_pandas.server.hogql_parse import parse_error
from tests.conftest import local_connection
from tests.integration import test_events_fidelity as fidelity
from tests.server import test_timezone_hogql as zones
from tests.unit import test_http as http_tests

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "posthog-compat.md"
_ROW_ID = re.compile(r"^\|\s*`([a-z0-9_]+(?:\.[a-z0-9_]+)+)`\s*\|", re.M)

PERSON_ONLY = ApiKey("phx_compat_person_only_" + "p" * 21, scopes=("person:read",))
PERSON_WRITE = ApiKey("phx_compat_person_write_" + "w" * 20, scopes=("person:write",))
NO_USER = ApiKey("phx_compat_no_user_read_" + "n" * 20, scopes=("person:read", "query:read"))
COHORT_ONLY = ApiKey("phx_compat_cohort_only_" + "c" * 21, scopes=("cohort:read", "user:read"))
LEGACY_SCOPES = ApiKey("phx_compat_legacy_scopes_" + "l" * 19, scopes=())
OTHER_PROJECT = ApiKey("phx_compat_project_two_" + "t" * 21, project_ids=(2,))
LIMITED = ApiKey("phx_compat_rate_limited_" + "r" * 20, rate_limit_per_minute=2)
OTHER_USER = ApiKey("phx_compat_other_user_" + "u" * 22, user_email="other@example.com")
KEYS = [
    PERSON_ONLY,
    PERSON_WRITE,
    NO_USER,
    COHORT_ONLY,
    LEGACY_SCOPES,
    OTHER_PROJECT,
    LIMITED,
    OTHER_USER,
]
CONNECTING = DOC.parent / "connecting.md"  # the user-facing scopes table
LEGACY_USER = ("analyst@example.com", "correct horse")


def doc_rows() -> list[str]:
    return _ROW_ID.findall(DOC.read_text(encoding="utf-8"))


# -- the registry ------------------------------------------------------------------------------

RowCheck = Callable[["Env"], None]
ROWS: dict[str, RowCheck] = {}


def row(row_id: str) -> Callable[[RowCheck], RowCheck]:
    def register(check: RowCheck) -> RowCheck:
        assert row_id not in ROWS, f"two tests for row {row_id}"
        ROWS[row_id] = check
        return check

    return register


def test_rows_and_tests_match() -> None:
    ids = doc_rows()
    assert len(ids) == len(set(ids)), "a row id appears twice in docs/posthog-compat.md"
    assert sorted(set(ids) - set(ROWS)) == [], "rows of docs/posthog-compat.md without a test"
    assert sorted(set(ROWS) - set(ids)) == [], "tests here without a row in the document"


@pytest.mark.parametrize("row_id", doc_rows())
def test_contract(row_id: str, env: Env) -> None:
    ROWS[row_id](env)


# -- what the tests share ------------------------------------------------------------------------


@dataclass
class Sent:
    """One request the client sent through its session (the body is the raw bytes)."""

    method: str
    url: str
    params: dict[str, Any] | None
    body: bytes | None

    @property
    def json(self) -> Any:
        return None if self.body is None else orjson.loads(self.body)


class RecordingSession(requests.Session):
    """A session that remembers what the client sent, and can act after each answer."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []
        self.after: Callable[[str], None] | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        answer = super().request(method, url, *args, **kwargs)
        data = kwargs.get("data")
        self.sent.append(Sent(str(method), str(url), kwargs.get("params"), data))
        if self.after is not None:
            self.after(str(url))
        return answer


@dataclass
class Env:
    srv: LocalPostHog
    legacy: LocalPostHog
    zoned: LocalPostHog  # project 1 in zones.ZONE (Asia/Kolkata, +05:30)
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    sessions: list[RecordingSession] = field(default_factory=list)

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {key or self.srv.api_key}"}
        headers.update(kwargs.pop("headers", {}))
        return requests.get(self.srv.url + path, headers=headers, timeout=60, **kwargs)

    def query(
        self, sql: str, key: str | None = None, values: dict[str, Any] | None = None, **extra: Any
    ) -> requests.Response:
        return post_query(self.srv, sql, key, values, **extra)

    def connect(self, key: str | None = None, **kwargs: Any) -> php.PostHog:
        """A connection through a recording session; the server logs restart here, so
        `logged` afterwards holds the client's requests (and any made after this call)."""
        self.srv.clear_log()
        session = RecordingSession()
        self.sessions.append(session)
        options: dict[str, Any] = {"session": session, **kwargs}
        return local_connection(self.srv, None, api_key=key or self.srv.api_key, **options)

    @property
    def sent(self) -> list[Sent]:
        return self.sessions[-1].sent

    def logged(self, path_part: str, srv: LocalPostHog | None = None) -> list[Any]:
        return [r for r in (srv or self.srv).requests if path_part in r.path]


def post_query(
    server: LocalPostHog,
    sql: str,
    key: str | None = None,
    values: dict[str, Any] | None = None,
    **extra: Any,
) -> requests.Response:
    """POST /query/ with a HogQLQuery (and any other body fields), as it comes back."""
    node: dict[str, Any] = {"kind": "HogQLQuery", "query": sql}
    if values is not None:
        node["values"] = values
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    headers.update(extra.pop("headers", {}))
    body = {"query": node, **extra}
    return requests.post(
        f"{server.url}/api/projects/1/query/", json=body, headers=headers, timeout=120
    )


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=300, events=2000, seed=13, keys=KEYS) as server:
        yield server


@pytest.fixture(scope="module")
def legacy_srv() -> Iterator[LocalPostHog]:
    users = {LEGACY_USER[0]: LEGACY_USER[1]}
    with LocalPostHog(persons=150, events=1200, seed=5, legacy=True, users=users) as server:
        yield server


@pytest.fixture(scope="module")
def zoned_srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=40, events=300, seed=13, timezone=zones.ZONE) as server:
        yield server


@pytest.fixture()
def env(
    srv: LocalPostHog,
    legacy_srv: LocalPostHog,
    zoned_srv: LocalPostHog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Env]:
    for server in (srv, legacy_srv, zoned_srv):
        server.clear_log()
        server.set_faults(None)
        server.reset_rate_limits()
    yield Env(srv, legacy_srv, zoned_srv, tmp_path, monkeypatch)
    srv.set_faults(None)


def err(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def params_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def follow(env: Env, url: str, key: str | None = None) -> list[dict[str, Any]]:
    """Every page of a list, following `next` to the end."""
    pages: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        answer = requests.get(
            next_url, headers={"Authorization": f"Bearer {key or env.srv.api_key}"}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        next_url = pages[-1].get("next")
        assert len(pages) < 200
    return pages


def person_order(srv: LocalPostHog) -> list[str]:
    persons = srv.dataset().persons
    return list(persons.sort_values(["created_at", "id"], ascending=False)["id"])


def missing_scope(scope: str) -> dict[str, Any]:
    return err(
        "authentication_error", "permission_denied", f"API key missing required scope '{scope}'"
    )


def posthog_error(status: int, body: dict[str, Any], key: str = "phx_x") -> php.APIError:
    """The client's exception for a PostHog answer to POST /query/ (rows whose answer the local
    server has no reason to produce: memory limits, pydantic echoes)."""
    return _http.error_from_response(
        "POST",
        "https://ph.test/api/projects/1/query/",
        status,
        body,
        orjson.dumps(body),
        {},
        Credentials(api_key=key, source="test"),
    )


# == transport and authentication =================================================================


@row("http.projects_prefix")
def _(env: Env) -> None:
    for bad in ("abc", "99"):
        answer = env.get(f"/api/projects/{bad}/cohorts/")
        assert answer.status_code == 404
        assert answer.json() == err("invalid_request", "not_found", "Project not found.")
    ph = env.connect()
    ph.cohorts()
    assert [r.path for r in env.logged("/cohorts")] == ["/api/projects/1/cohorts/"]
    with pytest.raises(php.NotFoundError) as info:
        env.connect(project_id=99).cohorts()
    assert "Project not found." in str(info.value) and "POSTHOG_PROJECT_ID" in str(info.value)


@row("http.trailing_slash")
def _(env: Env) -> None:
    for path in ("/api/projects/1/cohorts", "/api/users/@me"):
        without, with_slash = env.get(path), env.get(path + "/")
        assert without.status_code == with_slash.status_code == 200
        assert without.json() == with_slash.json()
    env.connect().cohorts()
    assert all(r.path.endswith("/") for r in env.srv.requests)


@row("http.gzip")
def _(env: Env) -> None:
    zipped = env.get("/api/projects/1/persons/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    answer = env.query("select uuid from events", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Encoding"] == "gzip" and len(answer.json()["results"]) == 100
    env.connect().persons()
    assert {r.headers.get("accept-encoding") for r in env.srv.requests} == {"identity"}


@row("http.next_absolute")
def _(env: Env) -> None:
    port = env.srv.url.rsplit(":", 1)[1]
    page = env.get(
        "/api/projects/1/feature_flags/?limit=5&active=true", headers={"Host": f"localhost:{port}"}
    ).json()
    assert page["next"].startswith(f"http://localhost:{port}/api/projects/1/feature_flags/?")
    assert params_of(page["next"]) == {"limit": "5", "active": "true", "offset": "5"}
    env.srv.set_faults(Faults(foreign_next=True, paths=("/feature_flags",)))
    with pytest.raises(php.PaginationError, match="outside the configured PostHog origin"):
        env.connect().feature_flags()
    assert env.srv.foreign_requests == []


@row("http.not_found")
def _(env: Env) -> None:
    for headers in ({}, {"Authorization": f"Bearer {env.srv.api_key}"}):
        answer = requests.get(f"{env.srv.url}/api/nothing_here/", headers=headers, timeout=30)
        assert answer.status_code == 404
        assert answer.json() == err("invalid_request", "not_found", "Endpoint not found.")
    with pytest.raises(php.NotFoundError, match="does not have that endpoint"):
        env.connect().fetch("/api/nothing_here/")


@row("auth.bearer")
def _(env: Env) -> None:
    assert env.get("/api/projects/1/persons/?limit=1").status_code == 200
    lower = requests.get(
        f"{env.srv.url}/api/projects/1/persons/",
        headers={"Authorization": f"bearer {env.srv.api_key}"},
        timeout=30,
    )
    assert lower.status_code == 401 and lower.json()["code"] == "not_authenticated"
    env.connect().persons()
    assert {r.auth for r in env.srv.requests} == {"bearer"}
    assert all(s.body is None for s in env.sent)
    assert all(env.srv.api_key not in s.url for s in env.sent)


@row("auth.precedence")
def _(env: Env) -> None:
    url = f"{env.srv.url}/api/projects/1/persons/?limit=1"
    key = env.srv.api_key
    wrong_header = requests.get(
        url,
        headers={"Authorization": "Bearer phx_wrong_key_0000000000000000000000000000"},
        json={"personal_api_key": key},
        timeout=30,
    )
    assert wrong_header.status_code == 401
    assert wrong_header.json()["detail"] == (
        "Personal API key found in request Authorization header is invalid."
    )
    assert requests.get(url, json={"personal_api_key": key}, timeout=30).status_code == 200
    assert requests.get(url, params={"personal_api_key": key}, timeout=30).status_code == 200
    wrong_body = requests.get(
        url, json={"personal_api_key": "phx_wrong"}, params={"personal_api_key": key}, timeout=30
    )
    assert wrong_body.status_code == 401
    assert wrong_body.json()["detail"] == "Personal API key found in request body is invalid."


@row("auth.invalid_key")
def _(env: Env) -> None:
    url = f"{env.srv.url}/api/projects/1/persons/"
    wrong = "phx_not_a_real_key_00000000000000000000000000"
    for kwargs, where in (
        ({"headers": {"Authorization": f"Bearer {wrong}"}}, "Authorization header"),
        ({"json": {"personal_api_key": wrong}}, "body"),
        ({"params": {"personal_api_key": wrong}}, "query string"),
    ):
        answer = requests.get(url, timeout=30, **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == 401
        assert answer.json() == err(
            "authentication_error",
            "authentication_failed",
            f"Personal API key found in request {where} is invalid.",
        )
    with pytest.raises(php.AuthenticationError) as info:
        env.connect(wrong)
    assert "was not accepted" in str(info.value) and wrong not in str(info.value)


@row("auth.missing")
def _(env: Env) -> None:
    answer = requests.get(f"{env.srv.url}/api/projects/1/persons/", timeout=30)
    assert answer.status_code == 401
    assert answer.json() == err(
        "authentication_error", "not_authenticated", "Authentication credentials were not provided."
    )
    with pytest.raises(php.AuthenticationError, match="PostHog received no credentials"):
        raise _http.error_from_response(
            "GET",
            answer.url,
            answer.status_code,
            answer.json(),
            answer.content,
            answer.headers,
            Credentials(api_key="phx_x", source="test"),
        )


@row("auth.sharing_403")
def _(env: Env) -> None:
    body = {"query": {"kind": "HogQLQuery", "query": "select 1"}}
    query = requests.post(f"{env.srv.url}/api/projects/1/query/", json=body, timeout=30)
    assert query.status_code == 403 and query.json()["code"] == "not_authenticated"
    for path in ("insights", "dashboards", "session_recordings"):
        shared = requests.get(f"{env.srv.url}/api/projects/1/{path}/", timeout=30)
        assert shared.status_code == 403 and shared.json()["code"] == "not_authenticated"
    plain = requests.get(f"{env.srv.url}/api/projects/1/persons/", timeout=30)
    assert plain.status_code == 401
    bad = requests.post(
        f"{env.srv.url}/api/projects/1/query/",
        json=body,
        headers={"Authorization": "Bearer phx_wrong_key_0000000000000000000000000000"},
        timeout=30,
    )
    assert bad.status_code == 403 and bad.json()["code"] == "authentication_failed"
    mapped = _http.error_from_response(
        "POST",
        bad.url,
        bad.status_code,
        bad.json(),
        bad.content,
        bad.headers,
        Credentials(api_key="phx_wrong_key_0000000000000000000000000000", source="test"),
    )
    assert isinstance(mapped, php.AuthenticationError)


@row("auth.project_key")
def _(env: Env) -> None:
    token = env.srv.project_token(1)
    answer = env.get("/api/projects/1/persons/", key=token)
    assert answer.status_code == 401 and answer.json()["code"] == "authentication_failed"
    env.srv.clear_log()
    with pytest.raises(php.CredentialsError, match="project API key"):
        env.connect(token)
    assert env.srv.requests == []


@row("auth.no_basic")
def _(env: Env) -> None:
    answer = requests.get(f"{env.srv.url}/api/projects/1/persons/", auth=LEGACY_USER, timeout=30)
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"
    with pytest.raises(php.AuthenticationError, match="accept only personal API keys"):
        php.connect(
            host=env.srv.url,
            username=LEGACY_USER[0],
            password=LEGACY_USER[1],
            cache=False,
            progress=False,
            dotenv=False,
            prompt=False,
        )


@row("auth.token_param")
def _(env: Env) -> None:
    bogus = env.get("/api/projects/1/persons/", params={"token": "phc_bogus"})
    assert bogus.status_code == 401
    switched = env.get("/api/projects/1/persons/", params={"token": env.srv.project_token(1)})
    assert switched.status_code == 200
    ph = env.connect()
    env.srv.clear_log()
    for name in ("token", "api_key", "personal_api_key"):
        with pytest.raises(php.PaginationError, match=name):
            ph.fetch("cohorts", **{name: "x"})
    assert env.srv.requests == []


@row("auth.key_in_body")
def _(env: Env) -> None:
    answer = env.query("select 1", key=None, personal_api_key=env.srv.api_key)
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"
    ph = env.connect(key_in="body")
    assert ph.query("select 1 as one")["one"].tolist() == [1]
    queries = env.logged("/query")
    assert queries and all(r.auth != "body" for r in queries)
    bodies = [s.json for s in env.sent if s.url.rstrip("/").endswith("/query")]
    assert bodies and all("personal_api_key" not in b for b in bodies)


def pydantic_echo(value: str) -> str:
    """`input_value=` as pydantic-core writes it (`truncate_input_value!`): the value's repr,
    cut to its first 25 and last 24 characters when longer than 50."""
    text = repr(value)
    return text if len(text) <= 50 else f"{text[:25]}...{text[-24:]}"


@row("auth.key_echo")
def _(env: Env) -> None:
    key = "phx_" + "k7" * 23 + "q"  # 51 characters, like a current personal key
    echoed = pydantic_echo(key)
    assert echoed == f"'{key[:24]}...{key[-23:]}'"  # the key, cut: its first 24 and last 23
    assert pydantic_echo(key[:46]) == repr(key[:46])  # a 48-character repr is kept whole
    answer = env.query("select 1", personal_api_key=key)  # QueryRequest forbids the field
    assert answer.status_code == 400 and f"input_value={echoed}," in answer.json()["detail"]
    exc = _http.error_from_response(
        "POST", answer.url, 400, answer.json(), answer.content, answer.headers,
        Credentials(api_key=key, source="test"),
    )  # fmt: skip
    shown = [str(exc), exc.detail or "", str(exc.attr), orjson.dumps(exc.body).decode()]
    assert all(key[:24] not in text and key[-23:] not in text for text in shown)
    assert "Extra inputs are not permitted" in str(exc)


# == errors, scopes and rate limits ===============================================================


@row("error.shape")
def _(env: Env) -> None:
    missing = env.get("/api/projects/1/cohorts/999/")
    assert missing.status_code == 404
    assert missing.json() == err("invalid_request", "not_found", "Not found.")
    invalid = env.query("select nope from nowhere")
    assert invalid.status_code == 400
    assert set(invalid.json()) >= {"type", "code", "detail", "attr"}
    assert invalid.json()["type"] == "validation_error" and invalid.json()["attr"] is None
    ph = env.connect()
    with pytest.raises(php.NotFoundError) as info:
        ph._conn.get(ph._conn.project_path("cohorts/999"))
    assert (info.value.type, info.value.code, info.value.detail, info.value.attr) == (
        "invalid_request",
        "not_found",
        "Not found.",
        None,
    )


@row("scope.missing")
def _(env: Env) -> None:
    answer = env.get("/api/projects/1/cohorts/", key=PERSON_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("cohort:read")
    assert env.get("/api/projects/1/persons/", key=PERSON_ONLY.key).status_code == 200
    assert env.get("/api/projects/1/cohorts/", key=LEGACY_SCOPES.key).status_code == 200
    ph = env.connect(PERSON_ONLY.key, project_id=1)
    with pytest.raises(php.PermissionDeniedError) as info:
        ph.cohorts()
    assert info.value.scope == "cohort:read"
    assert "Add the 'cohort:read' scope" in str(info.value)


@row("scope.write_implies_read")
def _(env: Env) -> None:
    assert env.get("/api/projects/1/persons/", key=PERSON_WRITE.key).status_code == 200
    answer = env.get("/api/projects/1/cohorts/", key=PERSON_WRITE.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("cohort:read")


@row("scope.project")
def _(env: Env) -> None:
    answer = env.get("/api/projects/1/persons/", key=OTHER_PROJECT.key)
    assert answer.status_code == 403
    assert answer.json() == err(
        "authentication_error",
        "permission_denied",
        "API key does not have access to the requested project: ID 1.",
    )
    assert env.get("/api/projects/2/persons/", key=OTHER_PROJECT.key).status_code == 200
    with pytest.raises(php.PermissionDeniedError, match="limited to other projects"):
        env.connect(OTHER_PROJECT.key, project_id=1).persons()


@row("rate.throttled")
def _(env: Env) -> None:
    path = "/api/projects/1/cohorts/"
    assert env.get(path, key=LIMITED.key).status_code == 200
    assert env.get(path, key=LIMITED.key).status_code == 200
    answer = env.get(path, key=LIMITED.key)
    assert answer.status_code == 429
    wait = int(answer.headers["Retry-After"])
    assert answer.json() == err(
        "throttled_error",
        "throttled",
        f"Request was throttled. Expected available in {wait} seconds.",
    )
    env.srv.reset_rate_limits()
    ph = env.connect(LIMITED.key, project_id=1, retry=_config.RetrySettings(max_wait=1.0))
    with pytest.raises(php.RateLimitError) as info:
        for _ in range(3):  # with @me, at most two of these fit in the bucket
            ph.cohorts()
    assert info.value.retry_after is not None and 50 <= info.value.retry_after <= 60


@row("rate.per_key")
def _(env: Env) -> None:
    path = "/api/projects/1/cohorts/"
    statuses = [env.get(path, key=LIMITED.key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert env.get(path).status_code == 200  # another key, another bucket


@row("rate.limits")
def _(env: Env) -> None:
    pacing = _config.PacingSettings()
    assert (pacing.analytics_per_minute, pacing.other_per_minute) == (240, 480)
    assert (pacing.persons_per_minute, pacing.query_slots) == (180, 3)
    for path in ("/persons", "/events", "/query", "/insights", "/session_recordings"):
        assert path in _http.ANALYTICS_PATHS
    env.connect().persons()
    assert env.logged("/persons")  # the paced path reached the server


@row("rate.persons")
def _(env: Env) -> None:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {env.srv.api_key}"
        url = f"{env.srv.url}/api/projects/1/persons/?limit=1"
        assert all(session.get(url).status_code == 200 for _ in range(180))
    refused = env.get("/api/projects/1/persons/?limit=1", key=PERSON_ONLY.key)  # same user
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 55 <= wait <= 60
    assert refused.json() == err(
        "throttled_error",
        "throttled",
        f"Request was throttled. Expected available in {wait} seconds.",
    )
    assert env.get("/api/projects/1/persons/?limit=1", key=OTHER_USER.key).status_code == 200
    assert env.get("/api/projects/1/cohorts/2/persons/?limit=1").status_code == 200
    env.srv.reset_rate_limits()
    # the client's side: 180 in any 61 s, then it waits (virtual time, PostHog-shaped answers)
    http_tests.test_persons_requests_are_paced_at_posthogs_break_glass_rate()
    http_tests.test_cohort_persons_and_other_analytics_paths_keep_the_240_a_minute_pace()


def readme_scopes(text: str) -> list[list[str]]:
    """The rows of a Scopes table (`| accessor | scopes | PostHog source |`), cell by cell."""
    start = text.index("| accessor | scopes | PostHog source |")
    lines = text[start : text.index("\n\n", start)].splitlines()[2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


DAY = {"after": "2024-01-01", "before": "2024-01-02"}
# What each accessor cell of the Scopes table runs (the insight and cohort are generated ones).
ACCESSOR_CALLS: dict[str, Callable[[php.PostHog], Any]] = {
    "`connect()` without a project id, `ph.me()`": lambda ph: ph.me(),
    "`ph.query()`, `ph.events()`, `ph.iter_events()`, `read_hogql()`": lambda ph: (
        ph.query("select 1"),
        ph.events(**DAY),
        list(ph.iter_events(**DAY)),
        php.read_hogql("select 1", connection=ph),
    ),
    "`ph.events()` on old PostHog (events list)": lambda ph: ph._conn.get(
        ph._conn.project_path("events"), {"limit": 1}, cache=False
    ),
    "`ph.persons()`": lambda ph: ph.persons(),
    "`ph.cohorts()`": lambda ph: ph.cohorts(),
    "`ph.cohort_persons(id)`": lambda ph: ph.cohort_persons(2),
    "`ph.feature_flags()`": lambda ph: ph.feature_flags(),
    "`ph.experiments()`": lambda ph: ph.experiments(),
    "`ph.surveys()`": lambda ph: ph.surveys(),
    "`ph.insights()`, `ph.insight(id)`": lambda ph: (ph.insights(), ph.insight(1)),
    "`ph.dashboards()`": lambda ph: ph.dashboards(),
    "`ph.annotations()`": lambda ph: ph.annotations(),
    "`ph.actions()`": lambda ph: ph.actions(),
    "`ph.event_definitions()`": lambda ph: ph.event_definitions(),
    "`ph.property_definitions()`": lambda ph: ph.property_definitions(),
    "`ph.groups()`": lambda ph: ph.groups(0),
    "`ph.session_recordings()`": lambda ph: ph.session_recordings(),
    "`ph.projects()`": lambda ph: ph.projects(),
}
UNRELATED_SCOPE = "notebook:read"  # a key needs some scope: an empty list means "all" (legacy)


@row("scope.accessors")
def _(env: Env) -> None:
    table = readme_scopes(CONNECTING.read_text(encoding="utf-8"))
    assert table == readme_scopes(DOC.read_text(encoding="utf-8"))  # the doc's is the guide's
    assert [accessor for accessor, _, _ in table] == list(ACCESSOR_CALLS)
    wanted = {a: tuple(re.findall(r"`([a-z_]+:read)`", scopes)) for a, scopes, _ in table}
    assert wanted["`ph.cohort_persons(id)`"] == ("cohort:read", "person:read")
    keys: dict[tuple[str, tuple[str, ...]], ApiKey] = {}
    for accessor, scopes in wanted.items():
        for left_out in (None, *scopes):
            held = tuple(x for x in scopes if x != left_out) or (UNRELATED_SCOPE,)
            keys[accessor, held] = ApiKey(
                f"phx_compat_scopes_{len(keys):03d}_" + "k" * 26, scopes=held
            )
    with LocalPostHog(persons=30, events=200, seed=13, keys=list(keys.values())) as server:
        for (accessor, held), key in keys.items():
            project = None if "user:read" in wanted[accessor] else 1  # no id: @me tells
            missing = [x for x in wanted[accessor] if x not in held]
            if not missing:
                ACCESSOR_CALLS[accessor](
                    local_connection(server, None, api_key=key.key, project_id=project)
                )
                continue
            with pytest.raises(php.PostHogError, match=missing[0]) as info:
                ACCESSOR_CALLS[accessor](
                    local_connection(server, None, api_key=key.key, project_id=project)
                )
            assert getattr(info.value, "scope", missing[0]) == missing[0], (accessor, held)


# == who is calling, which project ================================================================


@row("me.get")
def _(env: Env) -> None:
    me = env.get("/api/users/@me/").json()
    assert me["team"]["project_id"] == 1 and me["team"]["name"] == "Default project"
    assert [p["id"] for p in me["organization"]["projects"]] == [1]
    ph = env.connect()
    assert env.srv.requests[0].path == "/api/users/@me/"
    assert ph.project_id == 1 and ph.me()["email"] == me["email"]


@row("me.scope")
def _(env: Env) -> None:
    answer = env.get("/api/users/@me/", key=NO_USER.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("user:read")
    scoped = env.get("/api/users/@me/", key=OTHER_PROJECT.key)  # exempt from project scoping
    assert scoped.status_code == 200
    persons = env.connect(NO_USER.key, project_id=1).persons()
    assert len(persons) == len(env.srv.dataset().persons)
    with pytest.raises(php.PostHogError) as info:
        env.connect(NO_USER.key)
    assert "user:read" in str(info.value) and "POSTHOG_PROJECT_ID" in str(info.value)


@row("projects.list")
def _(env: Env) -> None:
    page = env.get("/api/projects/").json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert [p["id"] for p in page["results"]] == [1]
    answer = env.get("/api/projects/", key=PERSON_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("project:read")
    projects = env.connect().projects()
    assert projects["id"].tolist() == [1]
    assert [r.path for r in env.logged("/api/projects/") if r.path == "/api/projects/"]


@row("project.timezone")
def _(env: Env) -> None:
    assert zones.get(env.zoned, "/api/users/@me/")["team"]["timezone"] == zones.ZONE
    assert zones.get(env.zoned, "/api/projects/1/")["timezone"] == zones.ZONE
    env.zoned.clear_log()
    frame = local_connection(env.zoned, None).query(
        "select timestamp from events order by timestamp limit 3"
    )
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"  # the instants, in UTC
    assert list(frame["timestamp"]) == list(env.zoned.dataset().events["timestamp"].iloc[:3])
    assert all(r.path != "/api/projects/1/" for r in env.zoned.requests)  # never asked for it


# == persons, cohorts, groups =====================================================================


@row("persons.list")
def _(env: Env) -> None:
    page = env.get("/api/projects/1/persons/").json()
    assert set(page) == {"results", "next", "previous"}
    assert len(page["results"]) == 100 and params_of(page["next"])["offset"] == "100"
    assert [p["id"] for p in page["results"]] == person_order(env.srv)[:100]
    persons = env.srv.dataset().persons
    email = next(p["email"] for p in persons["properties"] if p.get("email"))
    by_email = env.get("/api/projects/1/persons/", params={"email": email}).json()["results"]
    assert [p["properties"]["email"] for p in by_email] == [email]
    did = persons["distinct_ids"].iloc[0][0]
    by_did = env.get("/api/projects/1/persons/", params={"distinct_id": did}).json()["results"]
    assert [p["id"] for p in by_did] == [persons["id"].iloc[0]]
    ph = env.connect()
    frame = ph.persons()
    assert sorted(frame["id"]) == sorted(persons["id"])
    assert env.logged("/persons")[0].params == {"limit": "1000"}
    assert len(ph.persons(email=email)) == 1
    assert env.logged("/persons")[-1].params == {"email": email, "limit": "1000"}


@row("persons.fields")
def _(env: Env) -> None:
    listed = env.get("/api/projects/1/persons/?limit=20").json()["results"]
    members = env.get("/api/projects/1/cohorts/2/persons/?limit=20").json()["results"]
    for person in listed + members:
        assert person["id"] == person["uuid"] and person["type"] == "person"
        assert (person["matched_recordings"], person["value_at_data_point"]) == ([], None)
    ph = env.connect()
    shown = ["id", "distinct_ids", "name", "created_at", "last_seen_at", "is_identified"]
    for frame in (ph.persons(), ph.cohort_persons(2), ph.persons(email="nobody@nowhere")):
        assert [c for c in frame.columns if not c.startswith("properties.")] == shown
    raw = ph.persons(raw=True)
    assert raw.columns[6:10].tolist() == [
        "uuid",
        "type",
        "matched_recordings",
        "value_at_data_point",
    ]
    assert (raw["uuid"] == raw["id"]).all() and set(raw["type"]) == {"person"}
    # distinct_ids cut as get_serialized_people cuts them (the demo persons have at most 3
    # ids, so the cohort limit is lowered to show the cut)
    assert server_resources.PERSONS_DISTINCT_IDS == 1000
    assert server_resources.COHORT_PERSONS_DISTINCT_IDS == 10
    env.monkeypatch.setattr(server_resources, "COHORT_PERSONS_DISTINCT_IDS", 1)
    listed = env.get("/api/projects/1/persons/?limit=300").json()["results"]
    members = env.get("/api/projects/1/cohorts/2/persons/?limit=300").json()["results"]
    assert max(len(p["distinct_ids"]) for p in listed) > 1
    assert max(len(p["distinct_ids"]) for p in members) == 1
    everyone = env.srv.dataset().persons.set_index("id")["distinct_ids"]
    assert max(len(everyone[p["id"]]) for p in members) > 1  # so something was cut


@row("persons.next_full_page")
def _(env: Env) -> None:
    pages = follow(env, f"{env.srv.url}/api/projects/1/persons/?limit=100")
    assert [len(p["results"]) for p in pages] == [100, 100, 100, 0]
    assert params_of(pages[0]["next"]) == {"limit": "100", "offset": "100"}
    short = env.get("/api/projects/1/persons/?limit=200&offset=200").json()
    assert len(short["results"]) == 100 and short["next"] is None
    frame = env.connect().persons()
    assert len(frame) == frame["id"].nunique() == 300


@row("persons.offset_shift")
def _(env: Env) -> None:
    first = env.get("/api/projects/1/persons/?limit=10").json()
    env.srv.create_persons(1)  # created now: it sorts first
    second = env.get("/api/projects/1/persons/?limit=10&offset=10").json()
    assert second["results"][0]["id"] == first["results"][-1]["id"]  # pushed down one place
    created: list[bool] = []

    def create_once(url: str) -> None:
        if "/persons/" in url and not created:
            created.append(True)
            env.srv.create_persons(1)

    ph = env.connect()
    env.sessions[-1].after = create_once
    frame = ph.persons()
    everyone = env.get("/api/projects/1/persons/?limit=5000").json()["results"]
    assert created and frame["id"].is_unique
    # everyone but the person created after the first page (at offset 0, already read)
    assert sorted(frame["id"]) == sorted(p["id"] for p in everyone[1:])


@row("persons.order_stable")
def _(env: Env) -> None:
    with LocalPostHog(persons=60, events=50, seed=13) as server:

        def listing() -> list[str]:
            body = zones.get(server, "/api/projects/1/persons/?limit=500")
            return [str(p["id"]) for p in body["results"]]

        before = listing()
        gone = before[10:13] + before[40:41]
        server.delete_persons(gone)
        created = server.create_persons(2)
        after = listing()
        assert sorted(after[:2]) == sorted(created)  # the new ones first
        assert [p for p in before if p in after] == [p for p in after if p in before]


@row("cohort_persons.list")
def _(env: Env) -> None:
    page = env.get("/api/projects/1/cohorts/2/persons/?limit=10").json()
    assert set(page) == {"results", "next", "previous"} and len(page["results"]) == 10
    answer = env.get("/api/projects/1/cohorts/2/persons/", key=COHORT_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("person:read")
    answer = env.get("/api/projects/1/cohorts/2/persons/", key=PERSON_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("cohort:read")
    members = env.srv.dataset().cohort_people
    expected = set(members[members["cohort_id"] == 2]["person_id"])
    frame = env.connect().cohort_persons(2)
    assert set(frame["id"]) == expected and len(frame) == len(expected)
    assert env.logged("/cohorts/2/persons")[0].params == {"limit": "1000"}


@row("groups.list")
def _(env: Env) -> None:
    pages = follow(env, f"{env.srv.url}/api/projects/1/groups/?group_type_index=0")
    assert all(set(p) == {"next", "previous", "results"} for p in pages)
    assert all(len(p["results"]) == 100 for p in pages[:-1])
    if len(pages) > 1:
        assert "cursor" in params_of(pages[0]["next"])
    groups = env.srv.dataset().groups
    orgs = groups[groups["group_type_index"] == 0]
    keys = [r["group_key"] for p in pages for r in p["results"]]
    assert sorted(keys) == sorted(orgs["group_key"])
    created = [r["created_at"] for p in pages for r in p["results"]]
    assert created == sorted(created, reverse=True)
    key = orgs["group_key"].iloc[0]
    exact = env.get(
        "/api/projects/1/groups/", params={"group_type_index": 0, "search": key.upper()}
    )
    assert [g["group_key"] for g in exact.json()["results"]] == [key]
    partial = env.get("/api/projects/1/groups/", params={"group_type_index": 0, "search": key[:-1]})
    name = str(orgs["group_properties"].iloc[0]["name"])
    by_name = env.get("/api/projects/1/groups/", params={"group_type_index": 0, "search": name})
    assert key in {g["group_key"] for g in by_name.json()["results"]}
    assert all(
        key[:-1].lower() in orjson.dumps(g["group_properties"]).decode().lower()
        for g in partial.json()["results"]
    )
    answer = env.get("/api/projects/1/groups/?group_type_index=0", key=PERSON_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("group:read")
    frame = env.connect().groups(0)
    assert sorted(frame["group_key"]) == sorted(orgs["group_key"])
    assert env.logged("/groups")[0].params == {"group_type_index": "0"}


@row("groups.required_index")
def _(env: Env) -> None:
    answer = env.get("/api/projects/1/groups/")
    assert answer.status_code == 400
    assert answer.json() == err(
        "validation_error",
        "invalid_input",
        "You must pass ?group_type_index= in this URL. To get a list of valid group types, "
        "call /api/:project_id/groups_types/.",
        "group_type_index",
    )
    ph = env.connect()
    env.srv.clear_log()
    with pytest.raises(php.ConfigurationError, match="group_type_index"):
        ph.groups(5)
    assert env.srv.requests == []


# == product metadata lists =======================================================================


def check_list(
    env: Env,
    name: str,
    scope: str,
    fetch: Callable[[php.PostHog], pd.DataFrame],
    sent: dict[str, str] | None = None,
) -> pd.DataFrame:
    """A limit/offset list: its envelope, `next`, its scope, and the client reading all of it."""
    path = f"/api/projects/1/{name}/"
    whole = env.get(path).json()
    assert set(whole) == {"count", "next", "previous", "results"}
    count = whole["count"]
    assert whole["next"] is None and len(whole["results"]) == count > 2
    first = env.get(path, params={"limit": 2}).json()
    assert len(first["results"]) == 2 and params_of(first["next"]) == {"limit": "2", "offset": "2"}
    pages = follow(env, f"{env.srv.url}{path}?limit=2")
    assert sum(len(p["results"]) for p in pages) == count
    answer = env.get(path, key=PERSON_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope(f"{scope}:read")
    frame = fetch(env.connect())
    logged = [r for r in env.srv.requests if r.path == path]
    assert logged and logged[0].params == (sent or {})
    return frame


@row("cohorts.list")
def _(env: Env) -> None:
    frame = check_list(env, "cohorts", "cohort", lambda ph: ph.cohorts())
    assert sorted(frame["id"]) == sorted(c["id"] for c in env.srv.dataset().cohorts)


@row("lists.limit")
def _(env: Env) -> None:
    raw = env.get("/api/projects/1/cohorts/?limit=2").json()
    assert len(raw["results"]) == 2 and params_of(raw["next"]) == {"limit": "2", "offset": "2"}
    assert len(env.get("/api/projects/1/event_definitions/").json()["results"]) <= 100
    ph = env.connect()
    cohorts = ph.cohorts(limit=2)
    assert list(cohorts["id"]) == list(ph.cohorts()["id"][:2])
    assert env.logged("/cohorts")[0].params == {"limit": "2"}  # one request, then the full pull
    ph = env.connect()
    assert len(ph.persons(limit=3)) == 3
    assert [r.params for r in env.logged("/persons")] == [{"limit": "3"}]


@row("feature_flags.list")
def _(env: Env) -> None:
    check_list(env, "feature_flags", "feature_flag", lambda ph: ph.feature_flags())
    flags = env.srv.dataset().feature_flags
    active = env.connect().feature_flags(active=True)
    assert sorted(active["id"]) == sorted(f["id"] for f in flags if f["active"])
    assert env.logged("/feature_flags")[-1].params == {"active": "true"}


@row("insights.list")
def _(env: Env) -> None:
    frame = check_list(env, "insights", "insight", lambda ph: ph.insights(), {"basic": "true"})
    assert sorted(frame["id"]) == sorted(i["id"] for i in env.srv.dataset().insights)
    basic = env.get("/api/projects/1/insights/", params={"basic": "true"}).json()["results"]
    assert all("result" not in i for i in basic)


@row("dashboards.list")
def _(env: Env) -> None:
    frame = check_list(env, "dashboards", "dashboard", lambda ph: ph.dashboards())
    assert len(frame) == len(env.srv.dataset().dashboards)


@row("annotations.list")
def _(env: Env) -> None:
    frame = check_list(env, "annotations", "annotation", lambda ph: ph.annotations())
    assert len(frame) == len(env.srv.dataset().annotations)


@row("actions.list")
def _(env: Env) -> None:
    frame = check_list(env, "actions", "action", lambda ph: ph.actions())
    assert len(frame) == len(env.srv.dataset().actions)


@row("event_definitions.list")
def _(env: Env) -> None:
    frame = check_list(
        env, "event_definitions", "event_definition", lambda ph: ph.event_definitions()
    )
    assert set(frame["name"]) == set(env.srv.dataset().events["event"])
    env.connect().event_definitions(search="page")
    assert env.logged("/event_definitions")[-1].params == {"search": "page"}


@row("property_definitions.list")
def _(env: Env) -> None:
    frame = check_list(
        env,
        "property_definitions",
        "property_definition",
        lambda ph: ph.property_definitions(),
        {"type": "event"},
    )
    assert {"name", "property_type", "is_numerical"} <= set(frame.columns)
    default = env.get("/api/projects/1/property_definitions/").json()["results"]
    event = env.get("/api/projects/1/property_definitions/?type=event").json()["results"]
    assert default == event
    person = env.connect().property_definitions(type="person")
    assert "first_seen" in set(person["name"])
    assert env.logged("/property_definitions")[-1].params == {"type": "person"}
    with pytest.raises(php.ConfigurationError, match="'event', 'person', 'group' or 'session'"):
        env.connect().property_definitions(type="cohort")


@row("property_definitions.types")
def _(env: Env) -> None:
    page = env.get("/api/projects/1/property_definitions/?type=person&limit=1000").json()
    assert page["count"] == len(page["results"]) and page["next"] is None
    types = {r["name"]: r["property_type"] for r in page["results"]}
    assert types["first_seen"] == "DateTime" and types["is_beta"] == "Boolean"
    assert set(types.values()) <= {"DateTime", "String", "Numeric", "Boolean", "Duration", None}
    assert params_of(
        env.get("/api/projects/1/property_definitions/?type=person&limit=2").json()["next"]
    ) == {"type": "person", "limit": "2", "offset": "2"}
    ph = env.connect()
    persons = ph.persons()
    ph.cohort_persons(2)
    asked = env.logged("/property_definitions")
    assert [r.params for r in asked] == [{"type": "person", "limit": "1000"}]
    dtypes = {c: str(t) for c, t in persons.dtypes.items()}
    assert dtypes["properties.first_seen"] == "datetime64[ns, UTC]"  # the definition's type
    assert dtypes["properties.signup_count"] == "Int64"
    assert dtypes["properties.is_beta"] == "boolean"
    assert dtypes["properties.ab_score"] == "string"  # Numeric, but mixed values: by value
    start, end = env.srv.time_range()
    events = ph.events(after=start, before=end)
    assert str(events["properties.revenue"].dtype) == "Float64"
    assert env.logged("/property_definitions")[-1].params == {"type": "event", "limit": "1000"}


@row("property_definitions.denied")
def _(env: Env) -> None:
    answer = env.get("/api/projects/1/property_definitions/?type=person", key=PERSON_ONLY.key)
    assert answer.status_code == 403
    assert answer.json() == missing_scope("property_definition:read")
    ph = env.connect(PERSON_ONLY.key, project_id=1)
    frame = ph.persons()
    ph.persons(email="nobody@nowhere")
    assert str(frame["properties.first_seen"].dtype) == "string"  # typed by value
    assert [r.status for r in env.logged("/property_definitions")] == [403]


@row("property_definitions.group")
def _(env: Env) -> None:
    missing = env.get("/api/projects/1/property_definitions/?type=group")
    assert missing.status_code == 400
    assert missing.json() == err(
        "validation_error", "invalid_input", "`group_type_index` must be set for `group` type"
    )
    stray = env.get("/api/projects/1/property_definitions/?type=event&group_type_index=0")
    assert stray.status_code == 400
    assert stray.json()["detail"] == "`group_type_index` can only set for `group` type"
    good = env.get("/api/projects/1/property_definitions/?type=group&group_type_index=0")
    assert good.status_code == 200 and good.json()["results"]
    ph = env.connect()
    groups = ph.property_definitions(type="group", group_type_index=0)  # type: ignore[call-arg]
    assert len(groups) == len(good.json()["results"])
    assert env.logged("/property_definitions")[-1].params == {
        "type": "group",
        "group_type_index": "0",
    }
    env.srv.clear_log()
    with pytest.raises(php.ConfigurationError, match="group_type_index"):
        ph.property_definitions(type="group")
    assert env.srv.requests == []


@row("experiments.list")
def _(env: Env) -> None:
    frame = check_list(env, "experiments", "experiment", lambda ph: ph.experiments())
    assert len(frame) == len(env.srv.dataset().experiments)


@row("surveys.list")
def _(env: Env) -> None:
    frame = check_list(env, "surveys", "survey", lambda ph: ph.surveys())
    assert frame["id"].map(type).eq(str).all()
    assert len(frame) == len(env.srv.dataset().surveys)


# == insights =====================================================================================


def first_trends_insight(env: Env) -> int:
    return int(env.srv.dataset().insights[0]["id"])


@row("insight.get")
def _(env: Env) -> None:
    insight_id = first_trends_insight(env)
    body = env.get(f"/api/projects/1/insights/{insight_id}/?refresh=blocking").json()
    series = body["result"]
    assert series and all({"days", "data"} <= set(s) for s in series)
    frame = env.connect().insight(insight_id)  # a saved TrendsQuery: ph.trends()'s frame
    assert list(frame.columns) == ["date", "series", "value"]
    assert (
        str(frame["date"].dtype) == "datetime64[ns, UTC]" and str(frame["value"].dtype) == "Int64"
    )
    assert len(frame) == sum(len(s["days"]) for s in series)
    assert frame["value"].sum() == sum(sum(s["data"]) for s in series)
    assert [r.path for r in env.logged("/insights")] == [f"/api/projects/1/insights/{insight_id}/"]


@row("insight.refresh")
def _(env: Env) -> None:
    with LocalPostHog(persons=20, events=200, seed=13) as server:  # insights nobody computed
        insight_id = int(server.dataset().insights[0]["id"])

        def view(refresh: str | None) -> dict[str, Any]:
            query = "" if refresh is None else f"?refresh={refresh}"
            body: dict[str, Any] = zones.get(
                server, f"/api/projects/1/insights/{insight_id}/{query}"
            )
            return body

        for never in (None, "force_cache", "false", "0", "no", "sometimes"):
            body = view(never)  # NothingInCacheResult
            assert (body["result"], body["last_refresh"], body["is_cached"]) == (None, None, False)
        computed = view("blocking")
        assert computed["result"] and computed["is_cached"] is False
        assert view("blocking")["is_cached"] is True  # fresh: answered from the cache
        assert view("force_cache")["result"] == computed["result"]
        for forced in ("force_blocking", "true", "1", "yes", ""):
            assert view(forced)["is_cached"] is False, forced
        server.clear_log()
        ph = local_connection(server, None)
        ph.insight(insight_id)
        ph.insight(insight_id, refresh=True)
        sent = [r.params for r in server.requests if "/insights/" in r.path]
        assert sent == [{"refresh": "blocking"}, {"refresh": "force_blocking"}]
        empty = int(server.dataset().insights[1]["id"])
        server.dataset().insight_results[empty] = None  # computes to nothing
        with pytest.raises(php.ResponseFormatError, match=f"Insight {empty}"):
            ph.insight(empty)


# == insight query kinds ==========================================================================


def post_node(server: LocalPostHog, node: dict[str, Any]) -> requests.Response:
    """POST /query/ with an insight query node."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    return requests.post(
        f"{server.url}/api/projects/1/query/", json={"query": node}, headers=headers, timeout=120
    )


@contextmanager
def crafted_server() -> Iterator[LocalPostHog]:
    """A project whose only events are these (each distinct id its own person), in UTC."""
    with LocalPostHog(
        persons=1, events=0, seed=3, start="2023-01-01", days=1, timezone="UTC"
    ) as server:
        day = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
        made = [
            ("$pageview", "u1", day + timedelta(days=-1), {"$browser": "Chrome"}),  # Sun Dec 31
            ("$pageview", "u1", day + timedelta(days=2), {"$browser": "Chrome"}),  # Wed Jan 3
            ("$pageview", "u2", day + timedelta(days=2), {}),
            ("$pageview", "u2", day + timedelta(days=7), {"$browser": "Safari"}),  # Mon Jan 8
            ("signed_up", "u1", day + timedelta(days=2, hours=1), {}),
            ("signed_up", "u2", day + timedelta(days=16), {}),  # 14 days after u2's Jan 3 step
            ("$pageview", "u3", day + timedelta(days=1), {}),
            ("signed_up", "u3", day + timedelta(days=15, seconds=1), {}),  # 14 days + 1 s
        ]
        server.ingest_events(
            [
                {"event": e, "distinct_id": d, "timestamp": t.isoformat(), "properties": p}
                for e, d, t, p in made
            ]
        )
        yield server


@row("insight_kind.trends")
def _(env: Env) -> None:
    with crafted_server() as server:
        check_trends(server)


def check_trends(server: LocalPostHog) -> None:
    series = [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}]
    node = {
        "kind": "TrendsQuery",
        "series": series,
        "interval": "week",
        "dateRange": {"date_from": "2024-01-03", "date_to": "2024-01-09"},
        "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
    }
    answer = post_node(server, node)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["is_cached"] is False and body["timezone"] == "UTC"
    rows = [(r["breakdown_value"], r["days"], r["data"], r["count"]) for r in body["results"]]
    weeks = ["2023-12-31", "2024-01-07"]  # Sundays; the first week counts Dec 31 too
    assert rows == [
        ("Chrome", weeks, [1, 0], 1.0),
        ("Safari", weeks, [0, 1], 1.0),
        ("$$_posthog_breakdown_null_$$", weeks, [2, 0], 2.0),  # u2 on Jan 3, u3 on Jan 2
    ]
    daily = post_node(server, {**node, "interval": None, "breakdownFilter": None}).json()
    (one,) = daily["results"]
    assert one["days"][0] == "2024-01-03" and one["data"] == [2, 0, 0, 0, 0, 1, 0]
    assert one["label"] == "$pageview" and one["action"]["math"] == "dau"


@row("insight_kind.funnels")
def _(env: Env) -> None:
    with crafted_server() as server:
        check_funnels(server)


def check_funnels(server: LocalPostHog) -> None:
    steps = [{"kind": "EventsNode", "event": e} for e in ("$pageview", "signed_up")]
    node = {
        "kind": "FunnelsQuery",
        "series": steps,
        "funnelsFilter": {"funnelOrderType": "ordered", "funnelVizType": "steps"},
        "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-31"},
    }
    body = post_node(server, node).json()
    assert [(s["order"], s["name"], s["count"]) for s in body["results"]] == [
        (0, "$pageview", 3),
        (1, "signed_up", 2),  # u1 within an hour, u2 at exactly 14 days; u3 1 s too late
    ]
    # u2's time is from its latest start reaching the step (Jan 8), as PostHog's UDF keeps it
    assert body["results"][1]["average_conversion_time"] == (3600 + 9 * 86400) / 2
    hour = {"funnelWindowInterval": 2, "funnelWindowIntervalUnit": "hour"}
    short = post_node(server, {**node, "funnelsFilter": hour}).json()
    assert [s["count"] for s in short["results"]] == [3, 1]
    split = {"breakdown": "$browser", "breakdown_type": "event"}
    grouped = post_node(server, {**node, "breakdownFilter": split}).json()["results"]
    # first touch: the first funnel event with a value (u2's Jan 3 pageview has none, its
    # Jan 8 one says Safari); ordered by the last step's persons, then the first's
    assert [[(s["breakdown_value"], s["count"]) for s in g] for g in grouped] == [
        [(["Chrome"], 1), (["Chrome"], 1)],
        [(["Safari"], 1), (["Safari"], 1)],
        [([""], 1), ([""], 0)],
    ]
    nobody = {**node, "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-02"}}
    assert post_node(server, nobody).json()["results"] == []


@row("insight_kind.retention")
def _(env: Env) -> None:
    with crafted_server() as server:
        check_retention(server)


def check_retention(server: LocalPostHog) -> None:
    pageview = {"id": "$pageview", "type": "events"}
    node = {
        "kind": "RetentionQuery",
        "retentionFilter": {
            "targetEntity": pageview,
            "returningEntity": pageview,
            "period": "Day",
            "totalIntervals": 3,
            "retentionType": "retention_first_time",
        },
        "dateRange": {"date_from": "2023-12-01", "date_to": "2024-01-02"},  # date_from unread
    }
    body = post_node(server, node).json()
    cohorts = body["results"]
    assert [c["date"] for c in cohorts] == [
        "2023-12-31T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2024-01-02T00:00:00Z",
    ]
    assert [c["label"] for c in cohorts] == ["Day 0", "Day 1", "Day 2"]
    assert [[v["count"] for v in c["values"]] for c in cohorts] == [
        [1, 0.0, 0.0],  # u1 (first seen Dec 31) came back Jan 3: past the last period
        [0.0, 0.0, 0.0],
        [1, 0.0, 0.0],  # u3
    ]
    assert cohorts[0]["values"][1]["label"] == "Day 1" and cohorts[0]["breakdown_value"] is None


@row("insight_kind.stickiness")
def _(env: Env) -> None:
    with crafted_server() as server:
        series = [{"kind": "EventsNode", "event": "$pageview"}]
        node = {"kind": "StickinessQuery", "series": series}
        body = post_node(
            server, {**node, "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-08"}}
        )
        (one,) = body.json()["results"]
        # u1 on Jan 3; u2 on Jan 3 and Jan 8; u3 on Jan 2 (u1's Dec 31 is outside)
        assert one["days"] == list(range(1, 9)) and one["data"] == [2, 1, 0, 0, 0, 0, 0, 0]
        assert (one["count"], one["labels"][:2]) == (3, ["1 day", "2 days"])
        weekly = {
            **node,
            "interval": "week",
            "dateRange": {"date_from": "2024-01-03", "date_to": "2024-01-08"},
        }
        # weeks from Dec 31: u1 (Dec 31, Jan 3) once, u2 both weeks, u3 once
        assert post_node(server, weekly).json()["results"][0]["data"] == [2, 1]


@row("insight_kind.lifecycle")
def _(env: Env) -> None:
    with crafted_server() as server:
        series = [{"kind": "EventsNode", "event": "$pageview"}]
        node = {
            "kind": "LifecycleQuery",
            "series": series,
            "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-04"},
        }
        body = post_node(server, node).json()
        assert [r["status"] for r in body["results"]] == [
            "new",
            "returning",
            "resurrecting",
            "dormant",
        ]
        data = {r["status"]: r["data"] for r in body["results"]}
        # ingested persons have no person row, so nobody is "new"; u1 Dec 31 (read, not shown)
        # and Jan 3, u2 Jan 3, u3 Jan 2
        assert data == {
            "new": [0.0, 0.0, 0.0, 0.0],
            "returning": [0.0, 0.0, 0.0, 0.0],
            "resurrecting": [0.0, 1.0, 2.0, 0.0],
            "dormant": [-1.0, 0.0, -1.0, -2.0],
        }
        assert body["results"][3]["label"] == "$pageview - dormant"


@row("insight_kind.paths")
def _(env: Env) -> None:
    with crafted_server() as server:
        visit = datetime(2024, 1, 5, 12, tzinfo=UTC)
        server.ingest_events(
            [
                {
                    "event": e,
                    "distinct_id": "u4",
                    "timestamp": (visit + gap).isoformat(),
                    "properties": p,
                }
                for e, gap, p in (
                    ("$pageview", timedelta(0), {"$current_url": "https://example.com/"}),
                    ("signed_up", timedelta(minutes=5), {}),
                    ("$pageview", timedelta(minutes=40), {"$current_url": "https://example.com/"}),
                )
            ]
        )
        node = {
            "kind": "PathsQuery",
            "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-31"},
        }
        results = post_node(server, node).json()["results"]
        # u4's last pageview is 35 minutes later: a session of its own; the crafted events of
        # u1-u3 are hours apart, each a session of one item
        assert results == [
            {
                "source": "1_https://example.com",
                "target": "2_signed_up",
                "value": 1,
                "average_conversion_time": 300_000.0,
            }
        ]
        answer = post_node(server, {**node, "pathsFilter": {"startPoint": "/"}})
        assert answer.status_code == 400
        assert (
            answer.json()["detail"]
            == "pathsFilter.startPoint is not supported by this local server."
        )


@row("insight_kind.unsupported")
def _(env: Env) -> None:
    answer = post_node(env.srv, {"kind": "FunnelCorrelationQuery", "source": {}})
    assert answer.status_code == 400
    body = answer.json()
    assert (body["type"], body["code"], body["attr"]) == (
        "validation_error",
        "invalid_input",
        "query",
    )
    assert body["detail"].startswith("Unsupported query kind: 'FunnelCorrelationQuery'.")
    assert "TrendsQuery" in body["detail"]
    weekly = {"kind": "EventsNode", "event": "$pageview", "math": "weekly_active"}
    answer = post_node(env.srv, {"kind": "TrendsQuery", "series": [weekly]})
    assert answer.status_code == 400 and "math 'weekly_active'" in answer.json()["detail"]


@row("insight_kind.saved")
def _(env: Env) -> None:
    kinds = {}
    for insight in (i for i in env.srv.dataset().insights if i["query"]):
        source = insight["query"]["source"]
        path = f"/api/projects/1/insights/{insight['id']}/?refresh=force_blocking"
        result = env.get(path).json()["result"]
        assert result == post_node(env.srv, source).json()["results"], insight["id"]
        kinds[source["kind"]] = bool(result)
    assert kinds == {"TrendsQuery": True, "FunnelsQuery": True, "RetentionQuery": True}
    legacy = next(i for i in env.srv.dataset().insights if not i["query"])
    computed = env.get(f"/api/projects/1/insights/{legacy['id']}/?refresh=force_blocking").json()
    (series,) = computed["result"]
    assert series["action"]["id"] == legacy["filters"]["events"][0]["id"]
    assert len(series["days"]) == env.srv.dataset().days


# == session recordings ===========================================================================


@row("recordings.list")
def _(env: Env) -> None:
    recordings = env.srv.dataset().session_recordings
    since = {"date_from": "2020-01-01T00:00:00Z"}
    page = env.get("/api/projects/1/session_recordings/", params=since).json()
    assert set(page) == {"results", "has_next", "version"}
    assert len(page["results"]) == min(50, len(recordings))
    assert page["has_next"] is (len(recordings) > 50)
    starts = [r["start_time"] for r in page["results"]]
    assert starts == sorted(starts, reverse=True)
    seen: list[str] = []
    offset = 0
    while True:
        params = {**since, "limit": 40, "offset": offset}
        body = env.get("/api/projects/1/session_recordings/", params=params).json()
        seen += [r["id"] for r in body["results"]]
        offset += len(body["results"])
        if not body["has_next"]:
            break
    assert sorted(seen) == sorted(r["id"] for r in recordings)
    answer = env.get("/api/projects/1/session_recordings/", key=PERSON_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("session_recording:read")
    frame = env.connect().session_recordings(date_from="2020-01-01")
    assert sorted(frame["id"]) == sorted(r["id"] for r in recordings)
    sent = env.logged("/session_recordings")
    assert [r.params["limit"] for r in sent] == ["100"] * len(sent)
    offsets = sorted(int(r.params.get("offset", 0)) for r in sent)
    assert offsets == list(range(0, 100 * len(sent), 100))


@row("recordings.default_range")
def _(env: Env) -> None:
    # The generated recordings are from 2024: older than three days.
    body = env.get("/api/projects/1/session_recordings/").json()
    assert body["results"] == [] and body["has_next"] is False
    env.connect().session_recordings()
    assert "date_from" in env.logged("/session_recordings")[0].params


@row("recordings.retention")
def _(env: Env) -> None:
    assert RECORDINGS_KEPT_DAYS == 1825  # RETENTION_PERIOD_DAYS["5y"], the longest PostHog offers
    frame = env.connect().session_recordings()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    sent = env.logged("/session_recordings")[0].params["date_from"]
    assert datetime.fromisoformat(sent) == today - timedelta(days=1825)
    assert sorted(frame["id"]) == sorted(r["id"] for r in env.srv.dataset().session_recordings)


# == events through the REST list =================================================================


@row("events.list")
def _(env: Env) -> None:
    clamped = env.get("/api/projects/1/events/?limit=5000").json()
    assert set(clamped) == {"next", "results"} and len(clamped["results"]) == 1000
    default = env.get("/api/projects/1/events/").json()
    assert len(default["results"]) == 100
    timestamps = [e["timestamp"] for e in default["results"]]
    assert timestamps == sorted(timestamps, reverse=True)
    row_keys = {"id", "event", "distinct_id", "timestamp", "properties", "elements_chain"}
    assert row_keys <= set(default["results"][0])
    answer = env.get("/api/projects/1/events/", key=PERSON_ONLY.key)
    assert answer.status_code == 403 and answer.json() == missing_scope("query:read")
    start, end = env.srv.time_range()
    ph = env.connect()
    events_part = ph._events
    path = ph._conn.project_path("events")
    plan = events_part.list_plan(path, {"after": start, "before": end}, {"cache": False})
    frame = ph._lists.frame(plan)
    assert frame["uuid"].is_unique and set(frame["uuid"]) <= set(env.srv.dataset().events["uuid"])
    first = env.logged("/events")[0].params
    assert first["limit"] == "1000" and {"after", "before"} <= set(first)


@row("events.next_before")
def _(env: Env) -> None:
    first = env.get("/api/projects/1/events/?limit=100&event=$pageview").json()
    nxt = params_of(first["next"])
    last = first["results"][-1]["timestamp"]
    assert nxt["event"] == "$pageview" and nxt["limit"] == "100"
    assert datetime.fromisoformat(nxt["before"]) == datetime.fromisoformat(last)
    second = requests.get(
        first["next"], headers={"Authorization": f"Bearer {env.srv.api_key}"}, timeout=30
    ).json()
    boundary = datetime.fromisoformat(last)
    assert all(datetime.fromisoformat(e["timestamp"]) < boundary for e in second["results"])
    pages = follow(env, f"{env.srv.url}/api/projects/1/events/?limit=100")
    got = [e["id"] for p in pages for e in p["results"]]
    assert len(got) == len(set(got)) <= len(env.srv.dataset().events)
    assert pages[-1]["next"] is None


# == query API ================================================================================


@row("query.request")
def _(env: Env) -> None:
    body = env.query("select event, count() as n from events group by event order by event").json()
    assert {"results", "columns", "types", "hasMore", "limit", "is_cached", "query_status"} <= set(
        body
    )
    assert body["columns"] == ["event", "n"] and len(body["types"]) == 2
    ph = env.connect()
    frame = ph.query("select event, count() as n from events group by event", name="compat")
    assert frame["n"].sum() == len(env.srv.dataset().events)
    sent = [s.json for s in env.sent if s.url.rstrip("/").endswith("/query")]
    assert sent[0]["query"] == {
        "kind": "HogQLQuery",
        "query": "select event, count() as n from events group by event",
    }
    assert sent[0]["name"] == "compat"
    assert set(sent[0]) <= {"query", "name", "refresh", "client_query_id"}


@row("query.scope")
def _(env: Env) -> None:
    denied = env.query("select 1", key=PERSON_ONLY.key)
    assert denied.status_code == 403 and denied.json() == missing_scope("query:read")
    assert env.query("select 1", key=NO_USER.key).status_code == 200  # query:read suffices


@row("query.extra_fields")
def _(env: Env) -> None:
    answer = env.query("select 1", unexpected_field=1)
    assert answer.status_code == 400
    body = answer.json()
    assert (body["type"], body["code"], body["attr"]) == ("invalid_request", "parse_error", None)
    assert body["detail"].startswith("JSON parse error - ")
    assert "Extra inputs are not permitted" in body["detail"]


@row("query.default_limit")
def _(env: Env) -> None:
    body = env.query("select uuid from events").json()
    assert len(body["results"]) == 100 and body["hasMore"] is True and body["limit"] == 100


@row("query.max_limit")
def _(env: Env) -> None:
    body = env.query("select a.uuid from events a cross join events b limit 60000").json()
    assert len(body["results"]) == 50_000
    assert not body.get("hasMore")


@row("query.hasmore")
def _(env: Env) -> None:
    body = env.query("select uuid from events order by uuid limit 10").json()
    assert len(body["results"]) == 10 and not body.get("hasMore")
    ph = env.connect()
    every = ph.query("select uuid from events order by uuid")
    assert every["uuid"].is_unique and len(every) == len(env.srv.dataset().events)
    assert len(ph.query("select uuid from events order by uuid limit 1500")) == 1500


@row("query.offset")
def _(env: Env) -> None:
    answer = env.query("select uuid from events limit 10 offset 10")
    assert answer.status_code == 400
    body = answer.json()
    assert body["type"] == "validation_error"
    assert body["detail"].startswith(
        "OFFSET is not supported on queries made with a personal API key. "
        "For pagination, use keyset pagination on the `timestamp` column"
    )
    with pytest.raises(php.QueryError, match="OFFSET is not supported"):
        env.connect().query("select uuid from events limit 10 offset 10")


@row("query.values")
def _(env: Env) -> None:
    body = env.query("select {n} as n, {s} as s", values={"n": 5, "s": "x' or 1=1"}).json()
    assert body["results"] == [[5, "x' or 1=1"]]
    unknown = env.query("select {a} as a", values={"b": 1, "c": 2})
    assert unknown.status_code == 400
    assert unknown.json() == err(
        "validation_error",
        "invalid_input",
        "Placeholder {a} is not available in this context. You can use the following: b, c",
    )
    frame = env.connect().query("select {n} as n", {"n": 7})
    assert frame["n"].tolist() == [7]
    sent = [s.json for s in env.sent if s.url.rstrip("/").endswith("/query")]
    assert sent[0]["query"]["values"] == {"n": 7}


@row("query.errors")
def _(env: Env) -> None:
    answer = env.query("select from where")
    assert answer.status_code == 400
    body = answer.json()
    assert body["type"] == "validation_error" and body["attr"] is None and body["detail"]
    with pytest.raises(php.QueryError, match="Fix the HogQL query"):
        env.connect().query("select from where")


@row("query.syntax_error")
def _(env: Env) -> None:
    for sql in ("select from where", "select (1", "select 1 1 1"):
        message = parse_error(sql)  # PostHog's own parser (hogql-parser)
        assert message
        answer = env.query(sql)
        assert answer.status_code == 400
        assert answer.json() == err("validation_error", "invalid_input", message)
        with pytest.raises(php.QueryError) as info:
            env.connect().query(sql)
        assert message in str(info.value)
    assert parse_error("select from where") == "no viable alternative at input 'select from where'"


@row("query.datetime_parse")
def _(env: Env) -> None:
    value = "toDateTime64({t}, 6, 'UTC')"
    for good in ("2024-01-05 18:00:00.123456", "2024-01-05T18:00:00.123456"):
        answer = env.query(f"select {value}", values={"t": good})
        assert answer.status_code == 200, answer.text
        instant = pd.Timestamp(answer.json()["results"][0][0])  # in the project's timezone
        assert instant == pd.Timestamp("2024-01-05T18:00:00.123456Z")
    for bad in ("2024-01-05T18:00:00.123456Z", "2024-01-05T18:00:00.123456+01:00"):
        answer = env.query(f"select {value}", values={"t": bad})
        assert answer.status_code == 400, bad
    ph = env.connect()
    frame = ph.query("select timestamp, uuid from events order by timestamp, uuid")
    assert len(frame) == len(env.srv.dataset().events) and frame["uuid"].is_unique


@row("query.datetime_results")
def _(env: Env) -> None:
    for zone, rendered in zones.RENDERED.items():  # Z for any zero offset, micros when set
        sql = "SELECT timestamp FROM events ORDER BY timestamp"
        assert [r[0] for r in zones.run(zones.events_table(), zone, sql)] == rendered
    body = zones.query(env.zoned, "select timestamp from events order by timestamp limit 5")
    assert body["types"] == [f"DateTime64(6, '{zones.ZONE}')"]
    assert all(row[0].endswith("+05:30") for row in body["results"])
    frame = local_connection(env.zoned, None).query(
        "select timestamp from events order by timestamp limit 5"
    )
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(frame["timestamp"]) == [
        pd.Timestamp(r[0]).tz_convert("UTC") for r in body["results"]
    ]


def local_day_counts(server: LocalPostHog) -> list[list[Any]]:
    days = server.dataset().events["timestamp"].dt.tz_convert(server.timezone)
    counts = days.dt.strftime("%Y-%m-%d").value_counts()
    return [[day, int(n)] for day, n in sorted(counts.items())]


@row("hogql.local_days")
def _(env: Env) -> None:
    sql = "SELECT toDate(timestamp) AS day, count() AS n FROM events GROUP BY day ORDER BY day"
    assert zones.query(env.zoned, sql)["results"] == local_day_counts(env.zoned)
    hours = "SELECT toHour(timestamp) FROM events ORDER BY timestamp, uuid LIMIT 20"
    events = env.zoned.dataset().events.sort_values(["timestamp", "uuid"]).iloc[:20]
    local = events["timestamp"].dt.tz_convert(zones.ZONE).dt.hour
    assert [r[0] for r in zones.query(env.zoned, hours)["results"]] == local.tolist()
    frame = local_connection(env.zoned, None).query(
        sql
    )  # the client returns them as PostHog counted them
    assert frame["n"].tolist() == [n for _, n in local_day_counts(env.zoned)]


@row("hogql.local_wall_time")
def _(env: Env) -> None:
    stamps = env.zoned.dataset().events["timestamp"]
    # the first day that has events between its local midnight and its UTC midnight
    day = next(
        d
        for d in pd.date_range("2024-01-02", periods=25).strftime("%Y-%m-%d")
        if (stamps >= pd.Timestamp(d, tz=zones.ZONE)).sum()
        > (stamps >= pd.Timestamp(d, tz=UTC)).sum()
    )
    since, until = pd.Timestamp(day, tz=UTC), pd.Timestamp(day, tz=UTC) + timedelta(days=1)
    local = int((stamps >= pd.Timestamp(day, tz=zones.ZONE)).sum())
    bare = f"SELECT count() FROM events WHERE timestamp >= '{day}'"
    assert zones.query(env.zoned, bare)["results"] == [[local]]
    bound = "SELECT count() FROM events WHERE timestamp >= toDateTime64({t}, 6, 'UTC')"
    body = post_query(env.zoned, bound, values={"t": f"{day} 00:00:00"}).json()
    assert body["results"] == [[int((stamps >= since).sum())]]
    frame = local_connection(env.zoned, None).events(
        after=since.to_pydatetime(), before=until.to_pydatetime()
    )
    inside = env.zoned.dataset().events[(stamps >= since) & (stamps < until)]
    assert fidelity.uuids(frame) == fidelity.uuids(inside)  # the client's bounds are instants


@row("rest.utc")
def _(env: Env) -> None:
    listed = zones.get(env.zoned, "/api/projects/1/events/?limit=3")["results"]
    assert listed and all(e["timestamp"].endswith("+00:00") for e in listed)
    persons = zones.get(env.zoned, "/api/projects/1/persons/?limit=3")["results"]
    assert persons and all(p["created_at"].endswith("Z") for p in persons)
    frame = local_connection(env.zoned, None).persons()
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"


@row("query.refresh")
def _(env: Env) -> None:
    for mode in ("blocking", "force_blocking", "force_cache"):
        answer = env.query("select 1", refresh=mode)
        assert answer.status_code == 200, mode
        assert {"is_cached", "last_refresh"} <= set(answer.json())
    ph = env.connect()
    frame = ph.query("select 1 as one", refresh=True)
    sent = [s.json for s in env.sent if s.url.rstrip("/").endswith("/query")]
    assert sent[-1]["refresh"] == "force_blocking"
    assert "is_cached" in frame.attrs and "last_refresh" in frame.attrs


@row("query.sync")
def _(env: Env) -> None:
    answer = env.query("select 1")
    assert answer.status_code == 200
    assert answer.json()["query_status"] is None or answer.json()["query_status"]["complete"]
    ph = env.connect()
    ph.query("select 1")
    ph.events(after="2024-01-01", before="2024-01-02")
    bodies = [s.json for s in env.sent if s.url.rstrip("/").endswith("/query")]
    assert len(bodies) >= 2
    assert all("async" not in b for b in bodies)
    assert all(b.get("refresh") not in ("async", "force_async", "lazy_async") for b in bodies)


class _BlockingEngine:
    """Stands in for the HogQL engine: each query waits until released (query.concurrency)."""

    entered = threading.Semaphore(0)
    release = threading.Event()

    def __init__(self, conn: Any, timezone: str = "UTC") -> None:
        pass

    def run(self, query: str, values: dict[str, Any] | None = None) -> Any:
        type(self).entered.release()
        type(self).release.wait(30)
        return type("Result", (), {
            "columns": ["x"], "types": ["Int64"], "results": [[1]], "has_more": False,
            "limit": 100, "hogql": query, "clickhouse": query, "paginated": False,
        })()  # fmt: skip


@row("query.concurrency")
def _(env: Env) -> None:
    env.monkeypatch.setattr(query_module, "create_engine", _BlockingEngine)
    _BlockingEngine.release.clear()
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:  # force_blocking: an answer in PostHog's cache would take no slot
        answer = env.query("select 1", refresh="force_blocking")
        with lock:
            answers.append(answer)

    running = [threading.Thread(target=call) for _ in range(3)]
    try:
        for thread in running:
            thread.start()
        for _ in range(3):
            assert _BlockingEngine.entered.acquire(timeout=30)
        call()  # the fourth
        fourth = answers[-1]
        assert fourth.status_code == 429
        assert fourth.json()["code"] == "throttled"
        assert fourth.json()["detail"].startswith("Exceeded maximum concurrency limit: 3 for key: ")
        assert "Retry-After" not in fourth.headers
    finally:
        _BlockingEngine.release.set()
        for thread in running:
            thread.join(30)
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 429]
    assert _config.PacingSettings().query_slots == 3


TIMEOUT_DETAIL = (  # ClickHouseQueryTimeOut (posthog/exceptions.py)
    "Query has hit the max execution time before completing. See our docs for how to improve "
    "your query performance. You may need to materialize."
)
API_TIME_LIMIT = (  # newer PostHog, a personal-key query (hogql_query_runner.api_timeout_detail)
    "This query hit the 10-second time limit for queries run through the API. Submit it as an "
    "async query to give it more time: https://posthog.com/docs/api/queries#asynchronous-queries. "
    "You can also narrow the date range or the filters so it scans less data: "
    "https://posthog.com/docs/api/queries#writing-performant-queries"
)


@row("query.timeout")
def _(env: Env) -> None:
    with LocalPostHog(persons=40, events=2000, seed=13, max_scan_rows=500) as slow:
        answer = post_query(slow, "select uuid from events order by timestamp, uuid limit 10")
        assert answer.status_code == 504
        assert answer.json() == err("server_error", "error", TIMEOUT_DETAIL)
        with pytest.raises(php.QueryTimeoutError, match="narrow the time range"):
            local_connection(slow, None).query(
                "select uuid from events order by timestamp, uuid limit 10"
            )
    newer = posthog_error(504, err("server_error", "error", API_TIME_LIMIT))
    assert isinstance(newer, php.QueryTimeoutError) and newer.retryable is False


MEMORY_ANSWERS = [  # ClickHouseQueryMemoryLimitExceeded, older to newer (posthog/exceptions.py)
    (
        504,
        "error",
        "Query has reached the max memory limit before completing. See our docs for how to "
        "improve your query memory footprint. You may need to narrow date range or materialize.",
    ),
    (
        512,
        "clickhouse_memory_limit_exceeded",
        "This query ran out of memory before it could finish",
    ),
    (
        513,
        "clickhouse_memory_limit_exceeded",
        "This query ran out of memory before it could finish",
    ),
]


@row("query.memory_limit")
def _(env: Env) -> None:
    for status, code, detail in MEMORY_ANSWERS:
        exc = posthog_error(status, err("server_error", code, detail))
        assert isinstance(exc, php.QueryTimeoutError), (status, detail)
    full = "We're under heavy load right now and couldn't finish this query. Please try again."
    cluster = posthog_error(513, err("server_error", "clickhouse_memory_limit_exceeded", full))
    assert isinstance(cluster, php.ServerError) and not isinstance(cluster, php.QueryTimeoutError)
    assert getattr(cluster, "retryable", True)


@row("query.too_slow")
def _(env: Env) -> None:
    detail = (
        "Estimated query execution time is too long. Try reducing its scope by changing the time "
        "range."
    )
    exc = posthog_error(512, err("server_error", "error", detail))
    assert isinstance(exc, php.QueryTimeoutError) and exc.status == 512
    elsewhere = _http.error_from_response(  # only the query API's 512 is a query limit
        "GET", "https://ph.test/api/projects/1/insights/1/", 512,
        err("server_error", "error", detail), b"", {}, Credentials(api_key="phx_x", source="t"),
    )  # fmt: skip
    assert not isinstance(elsewhere, php.QueryTimeoutError)


@row("query.events_keyset")
def _(env: Env) -> None:
    start, end = env.srv.time_range()
    ph = env.connect(max_concurrent_queries=1)  # keyset pages one after another, no windows
    flt = ph._events.filter(after=start, before=end)
    pages = list(ph._events.pages(flt, None, {"cache": False}, page_rows=700))
    events = env.srv.dataset().events.sort_values(["timestamp", "uuid"])
    uuids = [r[p.columns.index("uuid")] for p in pages for r in p.results]
    assert uuids == list(events["uuid"])
    assert [len(p.results) for p in pages] == [700, 700, 600]
    texts = [r.hogql or "" for r in env.logged("/query")]
    assert "(timestamp, uuid) >" not in texts[0]
    assert all("(timestamp, uuid) >" in t and "ORDER BY timestamp, uuid" in t for t in texts[1:])


@row("query.property_json")
def _(env: Env) -> None:
    persons = env.srv.dataset().persons
    truthy = int(persons["properties"].map(lambda p: p.get("ab_score") is True).sum())
    assert truthy > 0
    sql = "select count() from persons where properties.ab_score = {v}"
    assert env.query(sql, values={"v": "true"}).json()["results"] == [[truthy]]
    assert env.query(sql, values={"v": "True"}).json()["results"] == [[0]]
    for text, number in (("'abc'", None), ("'1.5'", 1.5), ("'true'", None)):  # accurateCastOrNull
        assert env.query(f"select toFloat({text})").json()["results"] == [[number]]


# == events pulls =============================================================================


@row("events.property_filters")
def _(env: Env) -> None:
    start, end = env.srv.time_range()
    everything = fidelity.events_with_person(env.srv)
    filters = [
        (
            {"key": "is_beta", "value": True, "type": "person"},
            lambda e: e["person"].get("is_beta") is True,
        ),
        (
            {"key": "ab_score", "operator": "gte", "value": 50, "type": "person"},
            lambda e: (
                fidelity.is_number(e["person"].get("ab_score")) and e["person"]["ab_score"] >= 50
            ),
        ),
    ]
    ph = env.connect()
    for prop, keep in filters:
        expected = everything[everything.apply(keep, axis=1)]
        got = ph.events(after=start, before=end, properties=[prop])
        assert len(expected) > 0 and fidelity.uuids(got) == fidelity.uuids(expected), prop
    bodies = [b.json for b in env.sent if b.url.rstrip("/").endswith("/query")]
    assert "true" in orjson.dumps(bodies).decode() and '"True"' not in orjson.dumps(bodies).decode()


@row("events.timeout_split")
def _(env: Env) -> None:
    with LocalPostHog(persons=40, events=2000, seed=13, max_scan_rows=400) as slow:
        start, end = slow.time_range()
        frame = local_connection(slow, None).events(after=start, before=end)
        assert fidelity.uuids(frame) == fidelity.uuids(slow.dataset().events)
        statuses = [r.status for r in slow.requests if r.path.endswith("/query/")]
        assert 504 in statuses and statuses[-1] == 200


@row("events.late")
def _(env: Env) -> None:
    with LocalPostHog(persons=40, events=600, seed=13) as server:
        start, _ = server.time_range()
        ph = local_connection(server, env.tmp / "cache", cache=True)
        first = ph.events(after=start, incremental=True)
        newest = first["timestamp"].max().to_pydatetime()
        did = str(server.dataset().events["distinct_id"].iloc[0])
        late, too_late = server.ingest_events(  # PostHog stores past timestamps as sent
            [
                {"event": "late", "distinct_id": did, "timestamp": newest - timedelta(hours=2)},
                {"event": "later", "distinct_id": did, "timestamp": newest - timedelta(days=3)},
            ]
        )
        second = ph.events(after=start, incremental=True)  # one day back: the first only
        assert late in set(second["uuid"]) and too_late not in set(second["uuid"])
        third = ph.events(after=start, incremental=True, lookback="4d")
        assert fidelity.uuids(third) == fidelity.uuids(server.dataset().events)


# == legacy API ===============================================================================


def connect_legacy(env: Env) -> php.PostHog:
    env.legacy.clear_log()
    return php.connect(
        host=env.legacy.url,
        username=LEGACY_USER[0],
        password=LEGACY_USER[1],
        cache=False,
        progress=False,
        dotenv=False,
        prompt=False,
    )


@row("legacy.user")
def _(env: Env) -> None:
    user = requests.get(f"{env.legacy.url}/api/user/", auth=LEGACY_USER, timeout=30).json()
    assert user["team"]["id"] == 1
    assert set(user["event_names"]) == set(env.legacy.dataset().events["event"])
    ph = connect_legacy(env)
    assert ph.legacy and ph.project_id == 1
    names = ph.event_definitions()
    assert set(names["name"]) == set(user["event_names"])
    assert {r.auth for r in env.legacy.requests} == {"basic"}
    assert env.logged("/api/user/", env.legacy)


@row("legacy.person")
def _(env: Env) -> None:
    page = requests.get(f"{env.legacy.url}/api/person/", auth=LEGACY_USER, timeout=30).json()
    assert set(page) == {"next", "previous", "results"} and len(page["results"]) == 100
    assert "cursor" in params_of(page["next"])
    persons = connect_legacy(env).persons()
    assert sorted(persons["uuid"]) == sorted(env.legacy.dataset().persons["id"])
    assert len(env.logged("/api/person/", env.legacy)) == 2


@row("legacy.event")
def _(env: Env) -> None:
    page = requests.get(f"{env.legacy.url}/api/event/?limit=5", auth=LEGACY_USER, timeout=30)
    assert set(page.json()) == {"next", "results"} and "before" in params_of(page.json()["next"])
    start, end = env.legacy.time_range()
    frame = connect_legacy(env).events(after=start, before=end)
    assert frame["uuid"].is_unique
    assert set(frame["uuid"]) <= set(env.legacy.dataset().events["uuid"])
    sent = env.logged("/api/event/", env.legacy)
    assert sent[0].params["limit"] == "1000" and {"after", "before"} <= set(sent[0].params)
    assert datetime.fromisoformat(sent[0].params["after"]) == start.astimezone(UTC)
