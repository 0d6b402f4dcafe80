"""The transport: where the key goes, retries, Retry-After, pacing and status → exception."""

from __future__ import annotations

import base64
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import requests_mock

from posthog_pandas import _config
from posthog_pandas._credentials import Credentials
from posthog_pandas._http import HttpClient, RateLimiter, RequestWindow, retry_after_seconds
from posthog_pandas._pagination import iter_pages
from posthog_pandas._urls import redact_url
from posthog_pandas.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

HOST = "https://ph.test"
KEY = "phx_unit_test_key_0123456789abcdefghijklmnop"
PATH = "/api/projects/1/persons/"


class VirtualTime:
    """A monotonic clock that moves only when a thread sleeps: to that sleeper's wake-up time.

    With `hold_first_sleep`, the first sleep (the rate-limited request's) does not return until
    another thread sleeps or sends a request (`request_seen`), so anything the transport lets
    through during the pause is seen at the virtual time it was sent: before the pause ends.
    """

    def __init__(self, *, hold_first_sleep: bool = False) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.holding = threading.Event()
        self._hold = hold_first_sleep
        self._activity = threading.Event()
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            wake = self.now + seconds
            self.sleeps.append(seconds)
            hold, self._hold = self._hold, False
        if hold:
            self._activity.clear()  # only what happens from now on ends the hold
            self.holding.set()
            assert self._activity.wait(10), "nothing else happened during the pause"
        else:
            self._activity.set()
        with self._lock:
            self.now = max(self.now, wake)

    def request_seen(self) -> float:
        self._activity.set()
        return self.clock()


def make_client(
    mode: str = "bearer",
    *,
    attempts: int = 3,
    max_wait: float = 120.0,
    time: VirtualTime | None = None,
    api_key: str = KEY,
    **creds: Any,
) -> tuple[HttpClient, requests_mock.Adapter, list[float]]:
    session = requests.Session()
    adapter = requests_mock.Adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if mode == "basic":
        credentials = Credentials(username="ann", password="pw-secret-77", mode="basic")
    else:
        credentials = Credentials(api_key=api_key, mode=mode, **creds)  # type: ignore[arg-type]
    settings = _config.Settings(
        host=HOST,
        retry=_config.RetrySettings(attempts=attempts, jitter=0.0, max_wait=max_wait),
    )
    time = time or VirtualTime()
    client = HttpClient(settings, credentials, session=session, sleep=time.sleep, clock=time.clock)
    return client, adapter, time.sleeps


def error_body(status: int, code: str, detail: str, kind: str = "authentication_error") -> dict:
    return {"type": kind, "code": code, "detail": detail, "attr": None}


# -- where the key goes ------------------------------------------------------------------------


def test_bearer_mode_sends_the_key_only_in_the_authorization_header() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri("GET", HOST + PATH, json={"results": []})
    client.send("GET", PATH, params={"limit": 10})
    request = adapter.request_history[0]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body is None
    assert KEY not in request.url
    assert request.qs == {"limit": ["10"]}
    assert request.headers["User-Agent"] == _config.USER_AGENT


def test_body_mode_sends_the_key_in_the_body_of_gets_and_the_header_of_query_posts() -> None:
    # PostHog's QueryRequest forbids extra fields: a personal_api_key in the query body is a 400.
    client, adapter, _ = make_client("body")
    adapter.register_uri("GET", HOST + PATH, json={"results": []})
    adapter.register_uri("POST", HOST + "/api/projects/1/query/", json={"results": []})
    client.send("GET", PATH)
    client.send("POST", "/api/projects/1/query/", json={"query": {"kind": "HogQLQuery"}})
    get, post = adapter.request_history
    assert "Authorization" not in get.headers
    assert json.loads(get.body) == {"personal_api_key": KEY}
    assert get.headers["Content-Type"] == "application/json"
    assert json.loads(post.body) == {"query": {"kind": "HogQLQuery"}}
    assert post.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in get.url and KEY not in post.url


def test_body_mode_query_without_credentials_names_the_header_it_sent() -> None:
    client, adapter, _ = make_client("body")
    adapter.register_uri(
        "POST",
        HOST + "/api/projects/1/query/",
        status_code=403,
        json=error_body(403, "not_authenticated", "Authentication credentials were not provided."),
    )
    with pytest.raises(AuthenticationError) as info:
        client.send("POST", "/api/projects/1/query/", json={"query": {"kind": "HogQLQuery"}})
    assert "POST requests (queries) carry the key in the Authorization header" in str(info.value)
    assert "removed that header" in str(info.value)


def test_basic_mode_sends_http_basic_only() -> None:
    client, adapter, _ = make_client("basic")
    adapter.register_uri("GET", HOST + "/api/person/", json={"results": []})
    client.send("GET", "/api/person/")
    request = adapter.request_history[0]
    expected = base64.b64encode(b"ann:pw-secret-77").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.body is None


def test_basic_rejected_by_current_posthog_points_to_personal_keys() -> None:
    client, adapter, _ = make_client("basic")
    adapter.register_uri(
        "GET",
        HOST + "/api/person/",
        status_code=401,
        json=error_body(401, "not_authenticated", "Authentication credentials were not provided."),
    )
    with pytest.raises(AuthenticationError) as info:
        client.send("GET", "/api/person/")
    message = str(info.value)
    assert "did not accept a username and password (HTTP Basic)" in message
    assert "accept only personal API keys" in message
    assert "pw-secret-77" not in message


@pytest.mark.parametrize("param", ["token", "api_key", "personal_api_key"])
def test_credential_and_project_switching_params_are_never_sent(param: str) -> None:
    client, adapter, _ = make_client()
    with pytest.raises(PaginationError, match=param):
        client.send("GET", PATH, params={param: "phc_x"})
    with pytest.raises(PaginationError, match=param):
        client.send("GET", f"{PATH}?{param}=phc_x")
    assert adapter.call_count == 0


@pytest.mark.parametrize(
    "url",
    ["https://evil.test/api/projects/1/persons/", "http://ph.test/api/", "https://ph.test:8443/x"],
)
def test_other_origins_are_refused_before_sending(url: str) -> None:
    client, adapter, _ = make_client()
    with pytest.raises(PaginationError, match="outside the configured PostHog origin"):
        client.send("GET", url)
    assert adapter.call_count == 0


def test_redirects_are_not_followed() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri(
        "GET", HOST + PATH, status_code=302, headers={"Location": "https://elsewhere.test/x"}
    )
    with pytest.raises(TransportError, match="does not follow redirects"):
        client.send("GET", PATH)
    assert adapter.call_count == 1


def test_tls_off_warns() -> None:
    with pytest.warns(UserWarning, match="TLS certificate verification is off"):
        HttpClient(_config.Settings(host=HOST, verify=False), Credentials(api_key=KEY))


# -- status → exception -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls", "fragment"),
    [
        (
            401,
            error_body(
                401,
                "authentication_failed",
                "Personal API key found in request Authorization header is invalid.",
            ),
            AuthenticationError,
            "US (https://us.posthog.com) and EU",
        ),
        (
            401,
            error_body(401, "not_authenticated", "Authentication credentials were not provided."),
            AuthenticationError,
            "PostHog received no credentials",
        ),
        # /query/ answers auth failures as 403: the code decides
        (
            403,
            error_body(
                403,
                "authentication_failed",
                "Personal API key found in request Authorization header is invalid.",
            ),
            AuthenticationError,
            "was not accepted",
        ),
        (
            403,
            error_body(403, "permission_denied", "API key missing required scope 'person:read'"),
            PermissionDeniedError,
            "Add the 'person:read' scope",
        ),
        (
            403,
            error_body(
                403,
                "permission_denied",
                "API key does not have access to the requested project: ID 2.",
            ),
            PermissionDeniedError,
            "limited to other projects",
        ),
        (
            404,
            {
                "type": "invalid_request",
                "code": "not_found",
                "detail": "Project not found.",
                "attr": None,
            },
            NotFoundError,
            "ph.projects() lists",
        ),
        (
            400,
            {
                "type": "validation_error",
                "code": "invalid_input",
                "detail": "bad filter",
                "attr": "properties",
            },
            BadRequestError,
            "Check the filters",
        ),
        (
            402,
            {"type": "invalid_request", "code": "payment_required", "detail": "pay", "attr": None},
            APIError,
            "pay",
        ),
    ],
)
def test_status_and_code_map_to_exceptions(
    status: int, body: dict, cls: type[APIError], fragment: str
) -> None:
    client, adapter, _ = make_client(attempts=0)
    adapter.register_uri(
        "GET", HOST + PATH, status_code=status, json=body, headers={"X-Request-Id": "req-42"}
    )
    with pytest.raises(APIError) as info:
        client.send("GET", PATH)
    exc = info.value
    assert type(exc) is cls
    assert fragment in str(exc)
    # PostHog's own words first, then what was asked of whom: the first line is what the
    # magics show.
    first_line = str(exc).splitlines()[0]
    assert first_line == f"{body['detail']} (PostHog answered {status} to GET {HOST}{PATH})"
    assert exc.status == status and exc.method == "GET" and exc.url == HOST + PATH
    assert exc.code == body["code"] and exc.type == body["type"] and exc.detail == body["detail"]
    assert exc.attr == body["attr"] and exc.request_id == "req-42"
    assert KEY not in str(exc) and KEY not in repr(exc)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 422])
def test_4xx_other_than_429_fail_at_the_first_attempt(status: int) -> None:
    client, adapter, sleeps = make_client(attempts=6)
    adapter.register_uri("GET", HOST + PATH, status_code=status, json={"detail": "no"})
    with pytest.raises(APIError) as info:
        client.send("GET", PATH)
    assert adapter.call_count == 1 and sleeps == []
    assert "gave up" not in str(info.value)


def test_an_error_without_posthogs_words_still_names_status_and_request() -> None:
    client, adapter, _ = make_client(attempts=0)
    adapter.register_uri("GET", HOST + PATH, status_code=418, json={})
    with pytest.raises(APIError) as info:
        client.send("GET", PATH)
    assert str(info.value) == f"PostHog answered 418 to GET {HOST}{PATH}."


def test_missing_scope_is_named_on_the_exception() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri(
        "GET",
        HOST + PATH,
        status_code=403,
        json=error_body(403, "permission_denied", "API key missing required scope 'query:read'"),
    )
    with pytest.raises(PermissionDeniedError) as info:
        client.send("GET", PATH)
    assert info.value.scope == "query:read"


def test_bad_hogql_is_a_query_error() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri(
        "POST",
        HOST + "/api/projects/1/query/",
        status_code=400,
        json={
            "type": "validation_error",
            "code": "invalid_input",
            "detail": "Unable to resolve field: nope",
            "attr": None,
        },
    )
    with pytest.raises(QueryError, match="Unable to resolve field: nope") as info:
        client.send("POST", "/api/projects/1/query/", json={"query": {}}, idempotent=True)
    assert "Fix the HogQL query" in str(info.value)


def pydantic_repr(value: str) -> str:
    """How pydantic (2.x) shows an input value in an error: its repr, cut to 'first 24...last
    24' when longer than 50 characters."""
    text = repr(value)
    return f"{text[:25]}...{text[-24:]}" if len(text) > 50 else text


def key_pieces(key: str, size: int = 12) -> list[str]:
    return [key[i : i + size] for i in range(len(key) - size + 1)]


@pytest.mark.parametrize(
    "key",
    [
        "phx_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zA7bC0dE3fG6",  # 47 chars: echoed whole
        "phx_" + "Zq8Wx2Ec4Rv6Tb8Yn0Um2Ik4Ol6Pa8Sd0Fg2Hj4Kl6Zx8Cv0Bn2",  # 51: echoed cut
    ],
)
def test_a_query_400_that_echoes_the_key_like_posthog_never_shows_it(key: str) -> None:
    # PostHog's answer to a body that QueryRequest rejects (PydanticModelMixin.get_model):
    # a ParseError whose detail is pydantic's message, with the offending value in it.
    echo = (
        "JSON parse error - 1 validation error for QueryRequest\npersonal_api_key\n  Extra "
        f"inputs are not permitted [type=extra_forbidden, input_value={pydantic_repr(key)}, "
        "input_type=str]\n    For further information visit "
        "https://errors.pydantic.dev/2.14/v/extra_forbidden"
    )
    body = {"type": "invalid_request", "code": "parse_error", "detail": echo, "attr": None}
    client, adapter, _ = make_client("body", api_key=key)
    adapter.register_uri("POST", HOST + "/api/projects/1/query/", status_code=400, json=body)
    with pytest.raises(QueryError) as info:
        client.send("POST", "/api/projects/1/query/", json={"query": {"kind": "HogQLQuery"}})
    exc = info.value
    shown = [str(exc), repr(exc), exc.detail or "", json.dumps(exc.body)]
    assert not [(text, piece) for text in shown for piece in key_pieces(key) if piece in text]
    assert "Extra inputs are not permitted [type=extra_forbidden, input_value=" in str(exc)
    assert "********" in (exc.detail or "")


def test_the_key_is_scrubbed_even_when_the_server_echoes_it() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri(
        "GET",
        HOST + PATH,
        status_code=400,
        json={
            "type": "validation_error",
            "code": "invalid_input",
            "detail": f"bad key {KEY}",
            "attr": None,
        },
    )
    with pytest.raises(BadRequestError) as info:
        client.send("GET", PATH)
    assert KEY not in str(info.value) and KEY not in (info.value.detail or "")
    assert "bad key ********" in str(info.value)


# -- retries -------------------------------------------------------------------------------------


def test_429_honours_retry_after_seconds_then_succeeds() -> None:
    client, adapter, sleeps = make_client()
    adapter.register_uri(
        "GET",
        HOST + PATH,
        [
            {
                "status_code": 429,
                "json": error_body(429, "throttled", "Request was throttled.", "throttled_error"),
                "headers": {"Retry-After": "7"},
            },
            {"status_code": 200, "json": {"results": [1]}},
        ],
    )
    assert client.send("GET", PATH).data == {"results": [1]}
    assert adapter.call_count == 2
    assert sleeps == [7.0]
    assert client.stats.retries == 1


def test_retry_after_as_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = retry_after_seconds({"Retry-After": format_datetime(when, usegmt=True)}, None)
    assert seconds is not None and 28 <= seconds <= 30


def test_retry_after_from_posthogs_detail_text() -> None:
    client, adapter, sleeps = make_client()
    adapter.register_uri(
        "GET",
        HOST + PATH,
        [
            {
                "status_code": 429,
                "json": error_body(
                    429,
                    "throttled",
                    "Request was throttled. Expected available in 12 seconds.",
                    "throttled_error",
                ),
            },
            {"status_code": 200, "json": {"results": []}},
        ],
    )
    client.send("GET", PATH)
    assert sleeps == [12.0]


def test_a_wait_longer_than_allowed_raises_with_the_wait() -> None:
    client, adapter, sleeps = make_client(max_wait=60)
    adapter.register_uri(
        "GET",
        HOST + PATH,
        status_code=429,
        headers={"Retry-After": "3600"},
        json=error_body(429, "throttled", "Request was throttled.", "throttled_error"),
    )
    with pytest.raises(RateLimitError) as info:
        client.send("GET", PATH)
    assert info.value.retry_after == 3600.0
    assert "asked to wait 3600 s, longer than the configured maximum of 60 s" in str(info.value)
    assert sleeps == [] and adapter.call_count == 1


THROTTLED = error_body(429, "throttled", "Request was throttled.", "throttled_error")


def test_a_429_pauses_requests_from_other_threads_until_its_wait_is_over() -> None:
    time = VirtualTime(hold_first_sleep=True)
    client, adapter, _ = make_client(time=time)
    sent: list[tuple[str, float]] = []

    def answer(status: int) -> Any:
        def callback(request: Any, context: Any) -> dict[str, Any]:
            sent.append((urlsplit(request.url).path, time.request_seen()))
            context.status_code = status
            if status == 429:
                context.headers["Retry-After"] = "5"
                return THROTTLED
            return {"results": []}

        return callback

    adapter.register_uri("GET", HOST + "/a/", [{"json": answer(429)}, {"json": answer(200)}])
    adapter.register_uri("GET", HOST + "/b/", json=answer(200))
    throttled = threading.Thread(target=client.send, args=("GET", "/a/"))
    throttled.start()
    assert time.holding.wait(10)  # /a/ got its 429 and is waiting
    client.send("GET", "/b/")
    throttled.join(10)
    assert sent[0] == ("/a/", 0.0)
    assert sorted(sent[1:]) == [("/a/", 5.0), ("/b/", 5.0)]  # nothing before the 5 s were up


def test_a_429_on_a_look_ahead_page_holds_the_next_guess_too() -> None:
    time = VirtualTime(hold_first_sleep=True)
    client, adapter, _ = make_client(time=time)
    base = HOST + "/api/projects/1/cohorts/"
    sent: list[tuple[int, int, float]] = []  # (offset, status, virtual time)
    second_page_sent = threading.Event()
    throttle_once = [True]

    def page(request: Any, context: Any) -> dict[str, Any]:
        # Offsets 2 (foreground) and 4 (its look-ahead guess) are in flight together: 2 is
        # seen first, 4 is throttled, and 2 is answered once 4's client waits out the 429.
        offset = int(request.qs.get("offset", ["0"])[0])
        throttled = offset == 4 and bool(throttle_once)
        if throttled:
            throttle_once.clear()
            assert second_page_sent.wait(10)
        sent.append((offset, 429 if throttled else 200, time.request_seen()))
        if offset == 2:
            second_page_sent.set()
            assert time.holding.wait(10)
        if throttled:
            context.status_code = 429
            context.headers["Retry-After"] = "5"
            return THROTTLED
        following = f"{base}?limit=2&offset={offset + 2}" if offset + 2 < 7 else None
        ids = range(offset, min(offset + 2, 7))
        return {"count": 7, "next": following, "results": [{"id": i} for i in ids]}

    adapter.register_uri("GET", re.compile(re.escape(base)), json=page)

    def fetch(url: str, params: Any) -> Any:
        return client.send("GET", url, params=params).data

    pages = list(iter_pages(fetch, f"{base}?limit=2&offset=0", ahead=True))
    assert [r["id"] for p in pages for r in p.results] == list(range(7))
    assert sent[:3] == [(0, 200, 0.0), (2, 200, 0.0), (4, 429, 0.0)]
    after = sent[3:]
    assert sorted(offset for offset, _, _ in after) == [4, 6, 8]  # one guess past the end
    assert all(at >= 5.0 for _, _, at in after), after


def test_after_a_429_too_long_to_wait_the_connection_sends_nothing_until_it_is_over() -> None:
    time = VirtualTime()
    client, adapter, _ = make_client(max_wait=60, time=time)
    adapter.register_uri(
        "GET", HOST + "/a/", status_code=429, headers={"Retry-After": "3600"}, json=THROTTLED
    )
    adapter.register_uri("GET", HOST + "/b/", json={"results": []})
    with pytest.raises(RateLimitError):
        client.send("GET", "/a/")
    with pytest.raises(RateLimitError) as info:
        client.send("GET", "/b/")  # another thread's look-ahead, or the user trying again
    assert "GET https://ph.test/b/ not sent: PostHog rate-limited this key" in str(info.value)
    assert "wait 3600 s more, longer than the configured maximum of 60 s" in str(info.value)
    assert info.value.retry_after == 3600.0
    assert adapter.call_count == 1
    time.sleep(3600)  # once the wait is over, requests go out again
    client.send("GET", "/b/")
    assert adapter.call_count == 2


def test_5xx_backs_off_exponentially_and_gives_up_after_the_budget() -> None:
    client, adapter, sleeps = make_client(attempts=3)
    adapter.register_uri(
        "GET",
        HOST + PATH,
        status_code=503,
        text="<html><title>503 Service Unavailable</title></html>",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(ServerError) as info:
        client.send("GET", PATH)
    assert adapter.call_count == 4
    assert sleeps == [0.0, 1.0, 2.0]  # urllib3 Retry: first retry at once, then factor * 2^n
    assert "gave up after 4 attempts" in str(info.value)
    assert "an HTML page (503 Service Unavailable)" in str(info.value)


def test_connection_errors_and_resets_are_retried() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri(
        "GET",
        HOST + PATH,
        [
            {"exc": requests.exceptions.ConnectionError("reset by peer")},
            {"exc": requests.exceptions.ChunkedEncodingError("cut mid-body")},
            {"status_code": 200, "json": {"results": ["ok"]}},
        ],
    )
    assert client.send("GET", PATH).data == {"results": ["ok"]}
    assert adapter.call_count == 3


def test_a_connect_timeout_gets_the_short_connect_budget_a_reset_the_whole_one() -> None:
    client, adapter, sleeps = make_client(attempts=6)
    adapter.register_uri("GET", HOST + PATH, exc=requests.exceptions.ConnectTimeout("slow"))
    with pytest.raises(TransportError) as info:
        client.send("GET", PATH)
    assert adapter.call_count == _config.RetrySettings().connect_attempts + 1 == 4
    assert sleeps == [0.0, 1.0, 2.0] and info.value.connecting is True
    assert str(info.value).endswith("(gave up after 4 attempts)")

    client, adapter, sleeps = make_client(attempts=6)
    adapter.register_uri("GET", HOST + PATH, exc=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(TransportError) as info:
        client.send("GET", PATH)
    assert adapter.call_count == 7 and info.value.connecting is False


def test_malformed_json_and_html_login_pages_are_retried_then_explained() -> None:
    client, adapter, _ = make_client(attempts=2)
    adapter.register_uri(
        "GET",
        HOST + PATH,
        [
            {"status_code": 200, "text": '{"results": [1, 2'},
            {
                "status_code": 200,
                "text": "<!DOCTYPE html><html><title>Log in</title></html>",
                "headers": {"Content-Type": "text/html"},
            },
            {
                "status_code": 200,
                "text": "<!DOCTYPE html><html><title>Log in</title></html>",
                "headers": {"Content-Type": "text/html"},
            },
        ],
    )
    with pytest.raises(ResponseFormatError, match="HTML page instead of PostHog's JSON"):
        client.send("GET", PATH)
    assert adapter.call_count == 3


def test_timeouts_become_transport_errors_naming_url_and_timeout() -> None:
    client, adapter, _ = make_client(attempts=1)
    adapter.register_uri("GET", HOST + PATH, exc=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(TransportError) as info:
        client.send("GET", PATH)
    assert f"GET {HOST}{PATH} timed out after 10 s (connect) / 120 s (read)" in str(info.value)
    assert adapter.call_count == 2


def test_non_idempotent_calls_are_not_retried() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri("POST", HOST + "/api/projects/1/annotations/", status_code=503, json={})
    with pytest.raises(ServerError):
        client.send("POST", "/api/projects/1/annotations/", json={"content": "x"})
    assert adapter.call_count == 1


def test_query_post_is_retried_as_a_read() -> None:
    client, adapter, _ = make_client()
    adapter.register_uri(
        "POST",
        HOST + "/api/projects/1/query/",
        [
            {"status_code": 502, "text": "<html>Bad gateway</html>"},
            {"status_code": 200, "json": {"results": []}},
        ],
    )
    client.send("POST", "/api/projects/1/query/", json={"query": {}}, idempotent=True)
    assert adapter.call_count == 2


# -- pacing and redaction ------------------------------------------------------------------------


def test_rate_limiter_waits_once_the_burst_is_spent() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(60, clock=lambda: now[0], sleep=sleep)
    waits = [limiter.acquire() for _ in range(62)]
    assert waits[:60] == [0.0] * 60
    assert waits[60] == pytest.approx(1.0) and waits[61] == pytest.approx(1.0)


def test_persons_requests_are_paced_at_posthogs_break_glass_rate() -> None:
    # PersonViewSet: PersonsBreakGlassBurstThrottle, 180/minute per user (posthog/api/person.py)
    client, adapter, sleeps = make_client()
    adapter.register_uri("GET", HOST + PATH, json={"results": []})
    adapter.register_uri("GET", HOST + PATH + "abc/", json={})
    for _ in range(179):
        client.send("GET", PATH)
    client.send("GET", PATH + "abc/")  # a person's own page counts too
    assert sleeps == []
    client.send("GET", PATH)
    assert sleeps == [pytest.approx(61.0)]  # a minute after the first, plus a second's margin


def test_cohort_persons_and_other_analytics_paths_keep_the_240_a_minute_pace() -> None:
    client, adapter, sleeps = make_client()
    path = "/api/projects/1/cohorts/2/persons/"
    adapter.register_uri("GET", HOST + path, json={"results": []})
    for _ in range(240):
        client.send("GET", path)
    assert sleeps == []


def test_a_request_window_never_lets_more_than_its_limit_through_in_any_window() -> None:
    time = VirtualTime()
    window = RequestWindow(180, 60.0, margin=1.0, clock=time.clock, sleep=time.sleep)
    sent = []
    for _ in range(700):
        window.acquire()
        sent.append(time.clock())
    assert all(later - sent[i] >= 61.0 for i, later in enumerate(sent[180:]))
    assert sent[179] == 0.0 and sent[180] == pytest.approx(61.0)
    assert sent[-1] == pytest.approx(3 * 61.0)  # 700 requests: four full windows, no more


def test_redact_url_masks_credential_params_and_userinfo() -> None:
    assert redact_url("https://u:p@ph.test/a?personal_api_key=phx_1&limit=5&token=t") == (
        "https://ph.test/a?personal_api_key=%2A%2A%2A%2A%2A%2A%2A%2A&limit=5&"
        "token=%2A%2A%2A%2A%2A%2A%2A%2A"
    )


def test_on_body_sees_each_2xx_body_before_it_is_parsed_and_no_error_body() -> None:
    # The cache starts writing a page from here, while the page is parsed (see _fetcher).
    client, adapter, _ = make_client(attempts=3)
    good = b'{"results": [1]}'
    adapter.register_uri(
        "GET",
        HOST + PATH,
        [
            {"status_code": 503, "json": error_body(503, "error", "Busy.", "server_error")},
            {"status_code": 200, "content": b'{"results": ['},  # cut short: retried
            {"status_code": 200, "content": good},
        ],
    )
    seen: list[bytes] = []
    assert client.send("GET", PATH, on_body=seen.append).data == {"results": [1]}
    assert seen == [b'{"results": [', good]
    assert adapter.call_count == 3
