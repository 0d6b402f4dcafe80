"""The connector against the local PostHog over real HTTP: auth modes, pages, faults, cache."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas.magics import connected_message, whoami
from posthog_pandas.server import ApiKey, Faults, LocalPostHog

pytestmark = pytest.mark.integration

Connect = Callable[..., php.PostHog]


def api_requests(server: LocalPostHog) -> list:
    return [r for r in server.requests if "/api/users/@me" not in r.path]


# -- auth modes ---------------------------------------------------------------------------------


def test_bearer_header_is_the_default(server: LocalPostHog, connect: Connect) -> None:
    ph = connect()
    ph.cohorts()
    assert {r.auth for r in server.requests} == {"bearer"}
    assert ph.project_id == server.project_id


def test_key_in_body_mode(server: LocalPostHog, connect: Connect) -> None:
    ph = connect(key_in="body")
    frame = ph.cohorts()
    assert len(frame) == len(server.dataset().cohorts)
    assert ph.query("select 1 as one")["one"].tolist() == [1]
    # PostHog's QueryRequest forbids extra fields: the query POST carries the key in the header
    assert {(r.method, r.auth) for r in server.requests} == {("GET", "body"), ("POST", "bearer")}


def test_wrong_key_is_an_authentication_error(server: LocalPostHog, connect: Connect) -> None:
    with pytest.raises(php.AuthenticationError) as info:
        connect(api_key="phx_not_a_real_key_0000000000000000000000000")
    assert "Personal API key found in request Authorization header is invalid." in str(info.value)
    assert "US (https://us.posthog.com) and EU" in str(info.value)
    assert info.value.code == "authentication_failed"


def test_project_key_never_reaches_the_server(server: LocalPostHog, connect: Connect) -> None:
    with pytest.raises(php.CredentialsError, match="project API key"):
        connect(api_key="phc_" + "a" * 40)
    assert server.requests == []


def test_basic_auth_against_current_posthog_explains_itself(connect: Connect) -> None:
    with pytest.raises(php.AuthenticationError) as info:
        connect(api_key=None, username="ann@example.com", password="correct-horse-battery")
    assert "HTTP Basic" in str(info.value) and "personal API keys" in str(info.value)
    assert "correct-horse-battery" not in str(info.value)


def test_basic_auth_on_a_legacy_server() -> None:
    users = {"ann@example.com": "correct-horse-battery"}
    with LocalPostHog(persons=250, events=500, seed=3, legacy=True, users=users) as srv:
        ph = php.connect(
            username="ann@example.com",
            password="correct-horse-battery",
            host=srv.url,
            cache=False,
            progress=False,
            dotenv=False,
            prompt=False,
        )
        assert ph.legacy
        persons = ph.persons()
        assert sorted(persons["uuid"]) == sorted(srv.dataset().persons["id"])
        assert {r.auth for r in srv.requests} == {"basic"}
        names = ph.event_definitions()
        assert "$pageview" in set(names["name"])


def test_missing_scope_names_scope_and_accessor(server: LocalPostHog, connect: Connect) -> None:
    limited = ApiKey(
        "phx_limited_scope_key_aaaaaaaaaaaaaaaaaaaaaaaaa", scopes=("user:read", "cohort:read")
    )
    srv = LocalPostHog(persons=100, events=200, seed=9, keys=[limited])
    with srv:
        ph = php.connect(
            limited.key, host=srv.url, cache=False, progress=False, dotenv=False, prompt=False
        )
        assert len(ph.cohorts()) == len(srv.dataset().cohorts)
        with pytest.raises(php.PermissionDeniedError) as info:
            ph.persons()
        assert info.value.scope == "person:read"
        assert "Add the 'person:read' scope" in str(info.value)
        assert "(raised by ph.persons())" in str(info.value)


def test_a_key_without_user_read_connects_when_the_project_is_given() -> None:
    # PostHog's /api/users/@me/ needs user:read (posthog/api/user.py, scope_object = "user").
    key = ApiKey(
        "phx_query_and_person_only_cccccccccccccccccccccccc", scopes=("query:read", "person:read")
    )
    options = {"cache": False, "progress": False, "dotenv": False, "prompt": False}
    with LocalPostHog(persons=60, events=120, seed=5, keys=[key]) as srv:
        ph = php.connect(key.key, host=srv.url, project_id=1, **options)
        assert len(ph.persons()) == 60
        assert "user: (unknown: the key lacks the user:read scope)" in repr(ph)
        assert connected_message(ph) == "Connected as unknown user to project 1"
        assert whoami(ph, ph._conn.readable_user())["user"] == "unknown"
        assert len([r for r in srv.requests if "/api/users/@me" in r.path]) == 1
        with pytest.raises(php.PermissionDeniedError) as denied:
            ph.me()  # asked for explicitly: the 403, with the scope to add
        assert denied.value.scope == "user:read"
        assert "Add the 'user:read' scope to this key" in str(denied.value)

        with pytest.raises(php.PermissionDeniedError) as info:
            php.connect(key.key, host=srv.url, **options)
    message = str(info.value)
    assert message.startswith(
        f"API key missing required scope 'user:read' (PostHog answered 403 to GET {srv.url}"
    )
    assert "connect(project_id=...) or set POSTHOG_PROJECT_ID" in message
    assert info.value.scope == "user:read" and info.value.status == 403


def test_two_keys_two_projects_never_share_data_or_cache(tmp_path) -> None:
    other = ApiKey("phx_second_project_key_bbbbbbbbbbbbbbbbbbbbbbbbb", project_ids=(2,))
    with LocalPostHog(persons=120, events=300, seed=11, keys=[other]) as srv:
        cache = tmp_path / "shared-cache"
        one = php.connect(
            srv.api_key,
            host=srv.url,
            project_id=1,
            cache_dir=cache,
            progress=False,
            dotenv=False,
            prompt=False,
        )
        two = php.connect(
            other.key,
            host=srv.url,
            project_id=2,
            cache_dir=cache,
            progress=False,
            dotenv=False,
            prompt=False,
        )
        a, b = one.persons(), two.persons()
        assert set(a["id"]) == set(srv.dataset(1).persons["id"])
        assert set(b["id"]) == set(srv.dataset(2).persons["id"])
        assert not set(a["id"]) & set(b["id"])
        with pytest.raises(php.PermissionDeniedError, match="ID 1"):
            php.connect(
                other.key,
                host=srv.url,
                project_id=1,
                cache_dir=cache,
                progress=False,
                dotenv=False,
                prompt=False,
            ).persons()


# -- pages and rows -----------------------------------------------------------------------------


def test_persons_are_exactly_the_servers(server: LocalPostHog, connect: Connect) -> None:
    ph = connect()
    frame = ph.persons()
    expected = server.dataset().persons
    assert len(frame) == len(expected)
    assert frame["id"].is_unique
    assert set(frame["id"]) == set(expected["id"])
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["is_identified"].dtype) == "boolean"
    # newest first, as PostHog orders persons
    assert frame["created_at"].is_monotonic_decreasing
    pages = [r for r in server.requests if r.path.endswith("/persons/")]
    # 1,000 rows, then a page twice that size (the rest: 500), then the one look-ahead request
    # past the last page (see _pagination); each page starts a row early, repeating the last
    # row of the one before, which shows that no person was skipped in between (see _live)
    sent = sorted((int(r.params.get("offset", 0)), int(r.params["limit"])) for r in pages)
    assert sent == [(0, 1000), (999, 2000), (2998, 4000)]


def test_persons_short_pages_with_next_lose_nothing(server: LocalPostHog, connect: Connect) -> None:
    server.set_faults(Faults(short_pages=True))
    frame = connect().persons()
    assert set(frame["id"]) == set(server.dataset().persons["id"])
    assert frame["id"].is_unique


def test_events_through_the_query_api_keep_every_tie(
    server: LocalPostHog, connect: Connect
) -> None:
    start, end = server.time_range()
    frame = connect().events(after=start, before=end)
    expected = server.dataset().events
    assert len(frame) == len(expected)
    assert set(frame["uuid"]) == set(expected["uuid"])
    assert frame["uuid"].is_unique
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].duplicated().any()  # the data has many exact ties


def test_the_deprecated_events_list_loses_ties_we_do_not(
    server: LocalPostHog, connect: Connect
) -> None:
    start, end = server.time_range()
    ph = connect()
    listed = ph.fetch("events", after=start.isoformat(), before=end.isoformat(), limit=1000)
    assert len(listed) < len(server.dataset().events)


def test_events_page_boundaries_by_keyset(
    server: LocalPostHog, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    import posthog_pandas.events as events_module

    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 997)  # force many boundaries inside ties
    start, end = server.time_range()
    frame = connect().events(after=start, before=end)
    expected = server.dataset().events.sort_values(["timestamp", "uuid"])
    assert frame["uuid"].tolist() == expected["uuid"].tolist()  # exactly once, in order
    queries = [r for r in server.requests if r.path.endswith("/query/")]
    # A full first page; the count per minute of the rest; one page per window of < 997 events.
    assert "count() AS events" in (queries[1].hogql or "")
    windows = queries[2:]
    assert len(windows) >= -(-(len(expected) - 997) // 996)
    assert all("LIMIT 997" in (q.hogql or "") for q in [queries[0], *windows])
    # The first window continues after the first page's last row, and bounds timestamp alone
    # too: ClickHouse prunes nothing on the tuple. The others (run three at a time, so logged
    # in any order) start at their window's start, each its own.
    bound = "timestamp >= toDateTime64({__last_ts}, 6, 'UTC') AND (timestamp, uuid) > "
    assert bound not in (queries[0].hogql or "")
    continued = [q for q in windows if bound in (q.hogql or "")]
    assert len(continued) == 1  # it starts at the instant of the first page's last row
    assert continued[0].values["__after"] == continued[0].values["__last_ts"]
    starts = [(q.values or {})["__after"] for q in windows if q not in continued]
    assert len(starts) == len(set(starts)) == len(windows) - 1


def test_event_filters_are_applied_on_the_server(server: LocalPostHog, connect: Connect) -> None:
    start, end = server.time_range()
    ph = connect()
    purchases = ph.events(after=start, before=end, event="purchase")
    expected = server.dataset().events
    assert set(purchases["uuid"]) == set(expected.loc[expected["event"] == "purchase", "uuid"])
    window = ph.events(after=start, before=start + timedelta(days=2))
    inside = expected[
        (expected["timestamp"] >= start) & (expected["timestamp"] < start + timedelta(days=2))
    ]
    assert set(window["uuid"]) == set(inside["uuid"])


def test_every_accessor_returns_the_servers_rows(server: LocalPostHog, connect: Connect) -> None:
    ph = connect()
    data = server.dataset()
    for name in (
        "cohorts",
        "feature_flags",
        "insights",
        "dashboards",
        "annotations",
        "actions",
        "experiments",
        "surveys",
    ):
        frame = getattr(ph, name)()
        assert sorted(frame["id"].astype(str)) == sorted(
            str(r["id"]) for r in getattr(data, name) if not r.get("deleted")
        ) or sorted(frame["id"].astype(str)) == sorted(str(r["id"]) for r in getattr(data, name)), (
            name
        )
    assert len(ph.event_definitions()) == len(data.event_definitions)
    assert len(ph.session_recordings()) == len(data.session_recordings)
    groups = ph.groups(0)
    assert set(groups["group_key"]) == set(
        data.groups.loc[data.groups["group_type_index"] == 0, "group_key"]
    )
    assert ph.me()["email"]
    assert server.project_id in set(ph.projects()["id"].astype(int))


def test_query_values_and_truncation_rules(server: LocalPostHog, connect: Connect) -> None:
    ph = connect()
    counts = ph.query(
        "select event, count() as n from events where event = {e} group by event", {"e": "purchase"}
    )
    expected = server.dataset().events
    assert counts.to_dict("records") == [
        {"event": "purchase", "n": int((expected["event"] == "purchase").sum())}
    ]
    with pytest.raises(php.TruncationError, match="cut this query's result at 100 rows"):
        ph.query("select uuid from events")
    every = ph.query("select uuid, timestamp from events order by timestamp, uuid limit 100000")
    assert len(every) == len(expected) and every["uuid"].is_unique

    # Without LIMIT PostHog answers 100 rows; the rest come by keyset, each continuation also
    # bounding the first key alone (ClickHouse prunes nothing on the tuple comparison).
    paged = ph.query("select uuid, timestamp from events order by timestamp, uuid")
    assert paged["uuid"].tolist() == expected["uuid"].tolist()
    first, continuation = [r.hogql or "" for r in server.requests if r.path.endswith("/query/")][
        -2:
    ]
    assert "__keyset" not in first
    assert continuation.startswith(
        "SELECT * FROM (select uuid, timestamp from events) WHERE timestamp >= "
        "toDateTime64({__keyset_0}, 6, 'UTC') AND (timestamp, uuid) > "
    )


def test_an_explicit_limit_is_a_complete_answer(server: LocalPostHog, connect: Connect) -> None:
    ph = connect(cache=False)
    before = len(server.requests)
    five = ph.query("select uuid from events order by timestamp, uuid limit 5")
    unordered = ph.query("select event from events limit 7")  # hasMore is true: more exist
    assert len(five) == 5 and len(unordered) == 7
    assert len(server.requests) - before == 2  # no keyset page was asked for


def test_bad_hogql_shows_posthogs_detail(connect: Connect) -> None:
    with pytest.raises(php.QueryError) as info:
        connect().query("select nope_column from events limit 1")
    assert "nope_column" in str(info.value)


# -- faults --------------------------------------------------------------------------------------


def test_throttling_and_server_errors_are_retried_to_exact_rows(
    server: LocalPostHog, connect: Connect
) -> None:
    server.set_faults(
        Faults(
            rate_429=0.2,
            rate_503=0.1,
            rate_502=0.1,
            reset_mid_body=0.1,
            malformed_json=0.1,
            html_login=0.05,
            retry_after=0,
            seed=4,
        )
    )
    ph = connect(retry=php.RetrySettings(attempts=12, backoff_factor=0.01, jitter=0.0))
    frame = ph.persons()
    assert set(frame["id"]) == set(server.dataset().persons["id"])
    assert frame["id"].is_unique
    assert ph.request_stats.retries > 0


def test_retry_budget_spent_is_a_clear_error(server: LocalPostHog, connect: Connect) -> None:
    server.set_faults(Faults(rate_503=1.0, paths=("/cohorts",)))
    ph = connect(retry=php.RetrySettings(attempts=2, backoff_factor=0.01))
    with pytest.raises(php.ServerError, match="gave up after 3 attempts"):
        ph.cohorts()


def test_repeated_next_raises(server: LocalPostHog, connect: Connect) -> None:
    server.set_faults(Faults(repeat_next=True, paths=("/cohorts",)))
    with pytest.raises(php.PaginationError, match="repeats an earlier page"):
        connect().fetch("cohorts", limit=2)


@pytest.mark.parametrize("mode", ["bearer", "body"])
def test_foreign_next_is_refused_and_gets_no_credentials(
    server: LocalPostHog, connect: Connect, mode: str
) -> None:
    server.set_faults(Faults(foreign_next=True, paths=("/cohorts",)))
    ph = connect(key_in="header" if mode == "bearer" else "body")
    with pytest.raises(php.PaginationError, match="outside the configured PostHog origin"):
        ph.fetch("cohorts", limit=2)
    assert server.foreign_requests == []


def test_a_server_that_stops_answering_times_out(server: LocalPostHog, connect: Connect) -> None:
    ph = connect(timeout=(2.0, 0.5), retry=php.RetrySettings(attempts=1, backoff_factor=0.01))
    server.set_faults(Faults(hang_after=0, paths=("/cohorts",)))
    with pytest.raises(php.TransportError) as info:
        ph.cohorts()
    assert "timed out after 2 s (connect) / 0.5 s (read)" in str(info.value)
    assert f"{server.url}/api/projects/1/cohorts/" in str(info.value)


def test_a_resumed_events_pull_reads_its_cached_pages_then_stops_looking(
    server: LocalPostHog, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    import posthog_pandas.events as events_module
    from posthog_pandas.cache import CacheStore
    from posthog_pandas.query import QueryRunner

    monkeypatch.setattr(events_module, "MAX_PAGE_ROWS", 997)
    start, end = server.time_range()
    events = len(server.dataset().events)
    pages = -(-events // 997) + (1 if events % 997 == 0 else 0)
    ph = connect(max_concurrent_queries=1)  # one page after another, each after the last
    real_run = QueryRunner.run
    runs: list[str] = []

    def interrupt_on_third_page(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(args[0])
        if len(runs) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third page is asked for
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(QueryRunner, "run", interrupt_on_third_page)
    with pytest.raises(KeyboardInterrupt):
        ph.events(after=start, before=end)
    monkeypatch.setattr(QueryRunner, "run", real_run)
    server.clear_log()
    lookups: list[str] = []
    real_get = CacheStore.get

    def counted_get(self, key, **kwargs):  # type: ignore[no-untyped-def]
        lookups.append(key)
        return real_get(self, key, **kwargs)

    again = connect(max_concurrent_queries=1)  # a new connection, as after a kernel restart
    monkeypatch.setattr(CacheStore, "get", counted_get)
    frame = again.events(after=start, before=end)
    assert sorted(frame["uuid"]) == sorted(server.dataset().events["uuid"])
    queries = [r for r in server.requests if r.path.endswith("/query/")]
    assert len(queries) == pages - 2  # the two stored pages are not asked for again
    # Two hits, then the miss PostHog answers; every page after it is keyed by a row the
    # cache has not seen, so it is not looked up. And the event property definitions.
    assert len(lookups) == 3 + 1


# -- cache ---------------------------------------------------------------------------------------


def test_second_identical_call_sends_no_request(server: LocalPostHog, connect: Connect) -> None:
    start, end = server.time_range()
    ph = connect()
    first = ph.events(after=start, before=end)
    persons = ph.persons()
    sent = len(server.requests)
    again = connect()  # a new connection, same cache: as after a kernel restart
    sent = len(server.requests)
    pd.testing.assert_frame_equal(again.events(after=start, before=end), first)
    pd.testing.assert_frame_equal(again.persons(), persons)
    assert len(server.requests) == sent
    again.persons(refresh=True)
    assert len(server.requests) > sent


def test_offline_mode_serves_the_cache_and_names_misses(
    server: LocalPostHog, connect: Connect
) -> None:
    connect().cohorts()
    offline = connect(offline=True)
    assert len(offline.cohorts()) == len(server.dataset().cohorts)
    with pytest.raises(
        php.CacheError, match="Offline mode: GET .*annotations.* is not in the cache"
    ):
        offline.annotations()


def test_interrupted_pull_resumes_from_stored_pages(
    server: LocalPostHog, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    ph = connect()
    fetcher = type(ph._conn.fetcher)
    real_get = fetcher.get
    calls = []

    def interrupt_on_second_page(self, url, params=None, **kw):  # type: ignore[no-untyped-def]
        calls.append(url)
        if "offset=999" in url:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the pull
        return real_get(self, url, params, **kw)

    monkeypatch.setattr(fetcher, "get", interrupt_on_second_page)
    with pytest.raises(KeyboardInterrupt):
        ph.persons()
    monkeypatch.setattr(fetcher, "get", real_get)
    server.clear_log()
    frame = connect().persons()
    assert set(frame["id"]) == set(server.dataset().persons["id"])
    fetched = [r for r in server.requests if r.path.endswith("/persons/")]
    assert [r.params.get("offset") for r in fetched] == ["999"]
