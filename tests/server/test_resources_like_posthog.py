"""Where the local server answers as PostHog does, not as a friendlier server would: insights
computed only on request, group property definitions, the recordings' default range,
persons lists that shift while they are read, and the persons endpoints' per-user throttles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from posthog_pandas.server import ApiKey, LocalPostHog
from posthog_pandas.server.auth import PERSONS_BREAK_GLASS, Principal, RateLimiter
from posthog_pandas.server.web import ApiError

pytestmark = pytest.mark.integration


@pytest.fixture()
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=300, events=3000, seed=5) as server:
        yield server


@pytest.fixture()
def session(srv: LocalPostHog) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {srv.api_key}"
        yield s


def insight(srv: LocalPostHog, session: requests.Session, refresh: str | None) -> dict:
    query = "" if refresh is None else f"?refresh={refresh}"
    answer = session.get(f"{srv.url}/api/projects/1/insights/2/{query}")
    assert answer.status_code == 200
    return answer.json()


def test_an_insight_nobody_computed_has_no_result_until_asked(
    srv: LocalPostHog, session: requests.Session
) -> None:
    for refresh in (None, "force_cache", "nonsense", "false"):  # all mean "never compute"
        never = insight(srv, session, refresh)
        assert never["result"] is None and never["last_refresh"] is None
        assert never["is_cached"] is False and never["cache_target_age"] is None
    computed = insight(srv, session, "blocking")
    assert computed["result"] == srv.insight_result(2)
    assert computed["is_cached"] is False
    refreshed = datetime.fromisoformat(computed["last_refresh"])
    assert abs(datetime.now(UTC) - refreshed) < timedelta(seconds=30)
    assert datetime.fromisoformat(computed["cache_target_age"]) == refreshed + timedelta(hours=6)
    # now cached: force_cache and blocking answer from the cache, force_blocking computes again
    for refresh in ("force_cache", None, "blocking"):
        cached = insight(srv, session, refresh)
        assert cached["result"] == computed["result"] and cached["is_cached"] is True
        assert cached["last_refresh"] == computed["last_refresh"]
    again = insight(srv, session, "force_blocking")
    assert again["is_cached"] is False and again["last_refresh"] >= computed["last_refresh"]


def test_legacy_refresh_true_computes(srv: LocalPostHog, session: requests.Session) -> None:
    assert insight(srv, session, "true")["result"] == srv.insight_result(2)


def test_async_refresh_answers_without_a_result_then_has_one(
    srv: LocalPostHog, session: requests.Session
) -> None:
    pending = insight(srv, session, "async")
    assert pending["result"] is None and pending["query_status"]["complete"] is False
    assert insight(srv, session, "force_cache")["result"] == srv.insight_result(2)


def definitions(session: requests.Session, srv: LocalPostHog, query: str) -> requests.Response:
    return session.get(f"{srv.url}/api/projects/1/property_definitions/?{query}")


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("type=group", "`group_type_index` must be set for `group` type"),
        ("type=event&group_type_index=1", "`group_type_index` can only set for `group` type"),
        ("type=group&group_type_index=7", "Invalid value for `group_type_index`"),
    ],
)
def test_group_property_definitions_need_a_group_type(
    srv: LocalPostHog, session: requests.Session, query: str, detail: str
) -> None:
    answer = definitions(session, srv, query)
    assert answer.status_code == 400
    assert answer.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": detail,
        "attr": None,
    }


def test_group_property_definitions_of_one_group_type(
    srv: LocalPostHog, session: requests.Session
) -> None:
    answer = definitions(session, srv, "type=group&group_type_index=1")
    assert answer.status_code == 200
    assert [d["name"] for d in answer.json()["results"]] == ["name", "domain", "seats"]


def recordings(session: requests.Session, srv: LocalPostHog, query: str = "") -> list[str]:
    url = f"{srv.url}/api/projects/1/session_recordings/?limit=500{query}"
    return [r["id"] for r in session.get(url).json()["results"]]


def test_recordings_default_to_the_last_three_days(
    srv: LocalPostHog, session: requests.Session
) -> None:
    every = srv.dataset().session_recordings
    assert recordings(session, srv) == []  # the generated ones are all older than 3 days
    assert recordings(session, srv, "&date_from=2020-01-01") == [r["id"] for r in every]
    mid = "2024-01-15T00:00:00Z"
    assert recordings(session, srv, f"&date_from=2020-01-01&date_to={mid}") == [
        r["id"] for r in every if r["start_time"] <= mid
    ]


def test_persons_created_between_two_pages_shift_the_later_ones(
    srv: LocalPostHog, session: requests.Session
) -> None:
    url = f"{srv.url}/api/projects/1/persons/?limit=10"
    first = [p["id"] for p in session.get(url).json()["results"]]
    created = srv.create_persons(3)
    second = [p["id"] for p in session.get(f"{url}&offset=10").json()["results"]]
    assert second[:3] == first[-3:]  # offsets over created_at DESC: three rows again
    head = [p["id"] for p in session.get(url).json()["results"]]
    assert sorted(head[:3]) == sorted(created)
    srv.delete_persons(created + head[3:8])
    after = [p["id"] for p in session.get(f"{url}&offset=10").json()["results"]]
    assert after[0] != second[0] and second[0] not in after  # now shifted the other way


# PersonViewSet's break-glass throttles (posthog/api/person.py): per user, not per key.
SAME_USER = ApiKey("phx_resources_same_user_" + "s" * 20)
OTHER_USER = ApiKey("phx_resources_other_user_" + "o" * 19, user_email="other@example.com")


def test_persons_requests_past_180_a_minute_get_posthogs_429() -> None:
    with LocalPostHog(persons=30, events=100, seed=5, keys=[SAME_USER, OTHER_USER]) as srv:

        def get(path: str, key: str) -> requests.Response:
            headers = {"Authorization": f"Bearer {key}"}
            return requests.get(f"{srv.url}/api/projects/1/{path}", headers=headers, timeout=30)

        person = srv.dataset().persons["id"].iloc[0]
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {srv.api_key}"
            for i in range(179):
                path = "persons/?limit=1" if i % 2 else f"persons/{person}/"
                assert session.get(f"{srv.url}/api/projects/1/{path}").status_code == 200
        assert get("persons/?limit=1", SAME_USER.key).status_code == 200  # the 180th
        refused = get("persons/?limit=1", srv.api_key)
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        assert 55 <= wait <= 60
        assert refused.json() == {
            "type": "throttled_error",
            "code": "throttled",
            "detail": f"Request was throttled. Expected available in {wait} seconds.",
            "attr": None,
        }
        assert get("persons/?limit=1", SAME_USER.key).status_code == 429  # same user
        assert get("persons/?limit=1", OTHER_USER.key).status_code == 200  # another user
        assert get("cohorts/2/persons/?limit=1", srv.api_key).status_code == 200  # CohortViewSet
        srv.reset_rate_limits()
        assert get("persons/?limit=1", srv.api_key).status_code == 200


def test_the_hourly_persons_throttle_counts_even_what_the_minute_one_refused() -> None:
    # DRF checks every throttle and each one that lets a request through counts it: a request
    # the 180/minute throttle refuses still fills the 1,200/hour window.
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    user = Principal("bearer", "analyst@example.com", None, 1)

    def refusal() -> ApiError:
        with pytest.raises(ApiError) as refused:
            limiter.check(user, PERSONS_BREAK_GLASS)
        assert refused.value.status == 429
        return refused.value

    for minute in range(6):
        now[0] = minute * 60.0
        for _ in range(180):
            limiter.check(user, PERSONS_BREAK_GLASS)
        assert refusal().headers["Retry-After"] == "60"  # the minute's; counted by the hour
    now[0] = 6 * 60.0
    for _ in range(1200 - 6 * 181):
        limiter.check(user, PERSONS_BREAK_GLASS)
    assert refusal().headers["Retry-After"] == str(3600 - 360)  # the hour's, not the minute's
    now[0] = 3600.0  # the first minute's 181 leave the hour
    limiter.check(user, PERSONS_BREAK_GLASS)
