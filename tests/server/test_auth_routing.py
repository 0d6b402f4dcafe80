"""Auth, routing and error-JSON fidelity of the local server, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
import requests

from posthog_pandas.server import ApiKey, LocalPostHog

pytestmark = pytest.mark.integration

SCOPED = "phx_scoped_to_project_two_persons_only_0000000000"
LIMITED = "phx_rate_limited_key_000000000000000000000000000"
NO_USER_READ = "phx_query_and_person_read_only_000000000000000000"
COHORT_ONLY = "phx_cohort_read_only_0000000000000000000000000000"


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    keys = [
        ApiKey(SCOPED, project_ids=(2,), scopes=("person:read", "user:read")),
        ApiKey(LIMITED, rate_limit_per_minute=2),
        ApiKey(NO_USER_READ, scopes=("query:read", "person:read")),
        ApiKey(COHORT_ONLY, scopes=("cohort:read",)),
    ]
    with LocalPostHog(persons=300, events=2000, seed=7, keys=keys) as server:
        yield server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def err(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, object]:
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def test_bearer_header_works_and_answers_json(srv: LocalPostHog) -> None:
    r = requests.get(f"{srv.url}/api/projects/1/persons/", headers=bearer(srv.api_key))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert srv.api_key.startswith("phx_") and len(srv.api_key) == 44


def test_missing_credentials_is_401_not_authenticated(srv: LocalPostHog) -> None:
    r = requests.get(f"{srv.url}/api/projects/1/persons/")
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == err(
        "authentication_error", "not_authenticated", "Authentication credentials were not provided."
    )


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"headers": {"Authorization": "Bearer phx_wrong"}}, "Authorization header"),
        ({"json": {"personal_api_key": "phx_wrong"}}, "body"),
        ({"params": {"personal_api_key": "phx_wrong"}}, "query string"),
    ],
)
def test_bad_key_names_its_source(srv: LocalPostHog, kwargs: dict[str, object], word: str) -> None:
    r = requests.get(f"{srv.url}/api/projects/1/persons/", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 401
    assert r.json() == err(
        "authentication_error",
        "authentication_failed",
        f"Personal API key found in request {word} is invalid.",
    )


def test_project_key_phc_is_rejected_like_a_bad_personal_key(srv: LocalPostHog) -> None:
    r = requests.get(f"{srv.url}/api/projects/1/persons/", headers=bearer(srv.project_token(1)))
    assert r.status_code == 401
    assert r.json()["code"] == "authentication_failed"


def test_body_and_query_string_keys_work_even_on_get(srv: LocalPostHog) -> None:
    url = f"{srv.url}/api/projects/1/persons/"
    assert requests.get(url, json={"personal_api_key": srv.api_key}).status_code == 200
    assert requests.get(url, params={"personal_api_key": srv.api_key}).status_code == 200


def test_first_found_key_only_wrong_bearer_beats_right_body(srv: LocalPostHog) -> None:
    r = requests.get(
        f"{srv.url}/api/projects/1/persons/",
        headers=bearer("phx_wrong"),
        json={"personal_api_key": srv.api_key},
    )
    assert r.status_code == 401
    assert (
        r.json()["detail"] == "Personal API key found in request Authorization header is invalid."
    )


def test_bearer_keyword_is_case_sensitive(srv: LocalPostHog) -> None:
    r = requests.get(
        f"{srv.url}/api/projects/1/persons/", headers={"Authorization": f"bearer {srv.api_key}"}
    )
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"


def test_basic_auth_is_not_an_authenticator_without_legacy(srv: LocalPostHog) -> None:
    r = requests.get(f"{srv.url}/api/projects/1/persons/", auth=("a@b.c", "pw"))
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"


def test_query_endpoint_answers_auth_failures_with_403(srv: LocalPostHog) -> None:
    body = {"query": {"kind": "HogQLQuery", "query": "select 1"}}
    r = requests.post(f"{srv.url}/api/projects/1/query/", json=body)
    assert r.status_code == 403
    assert r.json()["code"] == "not_authenticated"
    r = requests.post(f"{srv.url}/api/projects/1/query/", json=body, headers=bearer("phx_no"))
    assert r.status_code == 403
    assert r.json()["code"] == "authentication_failed"


def test_key_without_the_project_is_403(srv: LocalPostHog) -> None:
    r = requests.get(f"{srv.url}/api/projects/1/persons/", headers=bearer(SCOPED))
    assert r.status_code == 403
    assert r.json() == err(
        "authentication_error",
        "permission_denied",
        "API key does not have access to the requested project: ID 1.",
    )


def test_missing_scope_is_403_naming_the_scope(srv: LocalPostHog) -> None:
    r = requests.get(f"{srv.url}/api/projects/2/events/", headers=bearer(SCOPED))
    assert r.status_code == 403
    assert r.json() == err(
        "authentication_error", "permission_denied", "API key missing required scope 'query:read'"
    )
    body = {"query": {"kind": "HogQLQuery", "query": "select 1"}}
    r = requests.post(f"{srv.url}/api/projects/2/query/", json=body, headers=bearer(SCOPED))
    assert r.json()["detail"] == "API key missing required scope 'query:read'"
    r = requests.get(f"{srv.url}/api/projects/2/cohorts/", headers=bearer(SCOPED))
    assert r.json()["detail"] == "API key missing required scope 'cohort:read'"
    assert requests.get(f"{srv.url}/api/projects/2/persons/", headers=bearer(SCOPED)).ok


def test_me_needs_user_read_like_posthog(srv: LocalPostHog) -> None:
    # posthog/api/user.py: scope_object = "user"; posthog/permissions.py APIScopePermission.
    r = requests.get(f"{srv.url}/api/users/@me/", headers=bearer(NO_USER_READ))
    assert r.status_code == 403
    assert r.json() == err(
        "authentication_error", "permission_denied", "API key missing required scope 'user:read'"
    )
    assert requests.get(f"{srv.url}/api/users/@me/", headers=bearer(SCOPED)).ok


def test_cohort_persons_need_cohort_and_person_read(srv: LocalPostHog) -> None:
    # posthog/api/cohort.py: the persons action has required_scopes=["cohort:read", "person:read"]
    cohort = srv.dataset(1).cohorts[0]["id"]
    url = f"{srv.url}/api/projects/1/cohorts/{cohort}/persons/"
    r = requests.get(url, headers=bearer(NO_USER_READ))  # person:read, no cohort:read
    assert r.status_code == 403
    assert r.json()["detail"] == "API key missing required scope 'cohort:read'"
    r = requests.get(url, headers=bearer(COHORT_ONLY))
    assert r.status_code == 403
    assert r.json() == err(
        "authentication_error", "permission_denied", "API key missing required scope 'person:read'"
    )
    assert requests.get(url, headers=bearer(srv.api_key)).ok


def test_current_resolves_to_the_keys_project(srv: LocalPostHog) -> None:
    r = requests.get(f"{srv.url}/api/projects/@current/persons/?limit=1", headers=bearer(SCOPED))
    ids = set(srv.dataset(2).persons["id"])
    assert r.json()["results"][0]["id"] in ids
    me = requests.get(f"{srv.url}/api/users/@me/", headers=bearer(SCOPED)).json()
    assert me["team"]["project_id"] == 2
    assert [p["id"] for p in me["organization"]["projects"]] == [2]


def test_trailing_slash_is_optional(srv: LocalPostHog) -> None:
    for path in ("/api/projects/1/persons", "/api/projects/1/persons/", "/api/users/@me"):
        assert requests.get(srv.url + path, headers=bearer(srv.api_key)).status_code == 200


def test_environments_prefix_only_for_grandfathered_resources(srv: LocalPostHog) -> None:
    h = bearer(srv.api_key)
    assert requests.get(f"{srv.url}/api/environments/1/events/", headers=h).status_code == 200
    r = requests.get(f"{srv.url}/api/environments/1/cohorts/", headers=h)
    assert r.status_code == 404
    assert r.json()["detail"] == "Endpoint not found."


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/api/projects/abc/persons/", "Project not found."),
        ("/api/projects/99/persons/", "Project not found."),
        ("/api/projects/1/nothing_here/", "Endpoint not found."),
        ("/api/whatever", "Endpoint not found."),
        ("/api/user/", "Endpoint not found."),
        ("/api/projects/1/cohorts/999/", "Not found."),
    ],
)
def test_404_texts(srv: LocalPostHog, path: str, detail: str) -> None:
    r = requests.get(srv.url + path, headers=bearer(srv.api_key))
    assert r.status_code == 404
    assert r.json() == err("invalid_request", "not_found", detail)


def test_unknown_endpoint_is_404_even_without_auth(srv: LocalPostHog) -> None:
    assert requests.get(f"{srv.url}/api/nope/").status_code == 404


def test_token_query_param_overrides_or_fails(srv: LocalPostHog) -> None:
    h = bearer(srv.api_key)
    r = requests.get(f"{srv.url}/api/projects/1/persons/", params={"token": "phc_bogus"}, headers=h)
    assert r.status_code == 401
    assert r.json()["detail"] == "Incorrect authentication credentials."
    r = requests.get(
        f"{srv.url}/api/projects/1/persons/", params={"token": srv.project_token(1)}, headers=h
    )
    assert r.status_code == 200


def test_users_me_shape(srv: LocalPostHog) -> None:
    me = requests.get(f"{srv.url}/api/users/@me/", headers=bearer(srv.api_key)).json()
    assert me["email"] == "demo@posthog-pandas.local"
    assert me["team"]["project_id"] == 1
    assert me["team"]["api_token"] == srv.project_token(1)
    assert {"id", "organization_id", "name"} <= set(me["organization"]["projects"][0])
    assert me["organizations"][0]["id"] == me["organization"]["id"]


def test_projects_lists(srv: LocalPostHog) -> None:
    h = bearer(srv.api_key)
    r = requests.get(f"{srv.url}/api/projects/", headers=h).json()
    assert r["count"] == 1 and r["results"][0]["id"] == 1  # the default key sees project 1
    org = requests.get(f"{srv.url}/api/users/@me/", headers=h).json()["organization"]["id"]
    r = requests.get(f"{srv.url}/api/organizations/{org}/projects/", headers=h).json()
    assert [p["id"] for p in r["results"]] == [1]


def test_post_to_a_read_only_list_is_405(srv: LocalPostHog) -> None:
    r = requests.post(f"{srv.url}/api/projects/1/cohorts/", headers=bearer(srv.api_key), json={})
    assert r.status_code == 405
    assert r.json() == err("invalid_request", "method_not_allowed", 'Method "POST" not allowed.')


def test_rate_limit_per_key_with_retry_after(srv: LocalPostHog) -> None:
    srv.reset_rate_limits()
    url = f"{srv.url}/api/projects/1/persons/"
    assert requests.get(url, headers=bearer(LIMITED)).status_code == 200
    assert requests.get(url, headers=bearer(LIMITED)).status_code == 200
    r = requests.get(url, headers=bearer(LIMITED))
    assert r.status_code == 429
    wait = int(r.headers["Retry-After"])
    assert r.json() == err(
        "throttled_error",
        "throttled",
        f"Request was throttled. Expected available in {wait} seconds.",
    )
    # Separate keys have separate buckets.
    assert requests.get(url, headers=bearer(srv.api_key)).status_code == 200


def test_request_log_never_holds_the_raw_key(srv: LocalPostHog) -> None:
    srv.clear_log()
    requests.get(f"{srv.url}/api/projects/1/persons/", headers=bearer(srv.api_key))
    requests.get(f"{srv.url}/api/projects/1/persons/", params={"personal_api_key": srv.api_key})
    requests.get(f"{srv.url}/api/projects/1/persons/", json={"personal_api_key": "phx_wrong"})
    log = srv.requests
    assert [e.auth for e in log] == ["bearer", "query", "body"]
    assert [e.status for e in log] == [200, 200, 401]
    fp = hashlib.sha256(srv.api_key.encode()).hexdigest()[:12]
    assert log[0].key_fingerprint == fp and log[1].key_fingerprint == fp
    assert log[1].params == {"personal_api_key": "[redacted]"}
    assert log[0].project_id == 1
    assert srv.api_key not in repr(log) and "phx_wrong" not in repr(log)


@pytest.fixture(scope="module")
def legacy() -> Iterator[LocalPostHog]:
    with LocalPostHog(
        persons=250, events=1500, seed=3, legacy=True, users={"ada@example.com": "s3cret"}
    ) as server:
        yield server


def test_basic_auth_accepted(legacy: LocalPostHog) -> None:
    r = requests.get(f"{legacy.url}/api/users/@me/", auth=("ada@example.com", "s3cret"))
    assert r.status_code == 200
    assert r.json()["email"] == "ada@example.com"
    assert legacy.requests[-1].auth == "basic"


def test_basic_auth_wrong_password(legacy: LocalPostHog) -> None:
    r = requests.get(f"{legacy.url}/api/users/@me/", auth=("ada@example.com", "nope"))
    assert r.status_code == 401
    assert r.json() == err(
        "authentication_error", "authentication_failed", "Invalid username/password."
    )


def test_legacy_person_cursor_pagination(legacy: LocalPostHog) -> None:
    url: str | None = f"{legacy.url}/api/person/"
    seen: list[str] = []
    pages = 0
    while url:
        page = requests.get(url, auth=("ada@example.com", "s3cret")).json()
        seen += [p["uuid"] for p in page["results"]]
        url = page["next"]
        pages += 1
        if url:
            cursor = re.search(r"cursor=([^&]+)", url)
            assert cursor is not None
            decoded = base64.b64decode(unquote(cursor.group(1))).decode()
            assert decoded.startswith("p=")
    assert pages == 3
    expected = legacy.dataset().persons.sort_values("numeric_id", ascending=False)["id"]
    assert seen == list(expected)


def test_legacy_user_overview(legacy: LocalPostHog) -> None:
    r = requests.get(f"{legacy.url}/api/user/", headers=bearer(legacy.api_key)).json()
    assert r["team"]["id"] == 1
    assert "$pageview" in r["event_names"]
    assert "$current_url" in r["event_properties"]
    assert "email" in r["person_properties"]


def test_legacy_event_list(legacy: LocalPostHog) -> None:
    r = requests.get(f"{legacy.url}/api/event/", auth=("ada@example.com", "s3cret")).json()
    assert len(r["results"]) == 100 and "before=" in r["next"]
