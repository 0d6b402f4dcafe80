"""HTTP transport: authentication, the origin guard, retries, pacing and error mapping.

Everything that touches the network goes through `HttpClient.send`. It:
- sends only to the configured origin (never follows a redirect or link elsewhere with the key);
- puts the key where the auth mode says (Bearer header, JSON body, or HTTP Basic) and nowhere else;
  in body mode only GETs carry it in the body: a POST body is PostHog's own schema (QueryRequest
  forbids extra fields), so POSTs carry it in the Authorization header;
- retries 429, 5xx, connection resets and malformed bodies for idempotent calls, with urllib3's
  Retry for the backoff and Retry-After rules, capped by RetrySettings.max_wait; a refused
  connection or connect timeout only RetrySettings.connect_attempts times (urllib3's `connect`
  budget); a certificate that cannot be verified, a host name that does not resolve, a redirect
  and a 4xx other than 429 not at all, since no retry can fix them;
- pauses every request of the connection, from every thread, while a 429's wait runs;
- paces requests under PostHog's documented rate limits;
- turns every failure into one exception of `posthog_pandas.exceptions`, with the secret scrubbed
  and advice; an API error's message leads with PostHog's own words.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import orjson
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    ProtocolError,
)
from urllib3.util.retry import Retry

from posthog_pandas import _config, _json
from posthog_pandas._credentials import CREATE_KEY_HELP, Credentials
from posthog_pandas._query_slots import CONCURRENCY_LIMIT_TEXT, QuerySlots
from posthog_pandas._urls import redact_url
from posthog_pandas.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    PostHogError,
    QueryError,
    QueryTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

log = logging.getLogger("posthog_pandas.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Parameters PostHog reads as credentials or as a silent project switch (posthog-api.md §1.6).
FORBIDDEN_PARAMS = frozenset({"personal_api_key", "token", "api_key"})
# Endpoints PostHog throttles at the ClickHouse rate (240/min); the rest get 480/min.
ANALYTICS_PATHS = ("/persons", "/events", "/query", "/insights", "/session_recordings", "/person")
# PostHog's PersonViewSet (not cohort persons) also has a per-user break-glass throttle,
# 180 requests in any minute (posthog/api/person.py PersonsBreakGlassBurstThrottle).
PERSONS_VIEWSET = re.compile(r"^/api/(?:projects|environments)/[^/]+/persons(?:/|$)")
_EXPECTED_AVAILABLE = re.compile(r"Expected available in (\d+(?:\.\d+)?) seconds?")
_MISSING_SCOPE = re.compile(r"missing required scope '([^']+)'")
# PostHog's answers for a query stopped at a limit (posthog/exceptions.py): 504
# ClickHouseQueryTimeOut / ClickHouseQueryMemoryLimitExceeded, 512 "Estimated query execution
# time ... is too long" (ClickHouse TOO_SLOW); newer PostHog words an API key's timeout as "This
# query hit the N-second time limit for queries run through the API" (hogql_query_runner.py).
# A proxy's HTML 504 is not one of them.
_QUERY_LIMIT = re.compile(
    r"max execution time|max memory limit|Estimated query execution time|time limit for queries"
)
# Newer PostHog answers a query out of memory with 512, then 513, and this code; the same code
# with "under heavy load" (ClickHouseClusterMemoryLimitExceeded) is the cluster's memory, full
# for now: retried like any 5xx, not split.
_MEMORY_LIMIT_CODE = "clickhouse_memory_limit_exceeded"
_CLUSTER_FULL = re.compile(r"under heavy load")


@dataclass
class Response:
    """A parsed 2xx answer: its JSON, raw size and headers."""

    data: Any
    content: bytes
    status: int
    url: str
    headers: Mapping[str, str]
    nbytes: int


@dataclass
class RequestStats:
    """Counters a benchmark or test can read: requests sent, retries, bytes received."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    waits: list[float] = field(default_factory=list)
    # Windows of one pull are sent on several threads: `+=` alone could lose a count.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


class RateLimiter:
    """A token bucket: `rate` requests per minute, bursting up to one minute's worth."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is free; return the seconds waited."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
            self.tokens -= 1
        if wait:
            self.sleep(wait)
        return wait


class RequestWindow:
    """At most `limit` requests in any `seconds`-long window: DRF's SimpleRateThrottle as
    PostHog runs it, so a burst of `limit` is followed by a wait, never by a 429. `margin`
    absorbs the requests' travel time between this clock and the server's."""

    def __init__(
        self,
        limit: int,
        seconds: float = 60.0,
        *,
        margin: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.seconds = seconds + margin
        self.clock = clock
        self.sleep = sleep
        self.sent: list[float] = []  # the send times of the last `limit` requests, sorted
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more request fits in the window, count it; return the seconds waited."""
        with self.lock:
            now = self.clock()
            full = len(self.sent) >= self.limit
            wait = max(0.0, self.sent[0] + self.seconds - now) if full else 0.0
            bisect.insort(self.sent, now + wait)
            if full:
                del self.sent[0]  # the oldest leaves the window as this request enters it
        if wait:
            self.sleep(wait)
        return wait


class HttpClient:
    """Sends requests to one PostHog origin with one set of credentials."""

    def __init__(
        self,
        settings: _config.Settings,
        credentials: Credentials,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.origin = settings.host
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = _config.USER_AGENT
        self.sleep = sleep
        self.clock = clock
        self.stats = RequestStats()
        # After a 429, no request of this connection is sent before this clock() time.
        self._paused_until = float("-inf")
        self._pause_lock = threading.Lock()
        hostname = urlsplit(self.origin).hostname or ""
        encoding = _config.accept_encoding(settings.compression, hostname)
        self._extra_headers = {"Accept-Encoding": encoding}
        pacing = settings.pacing
        # Held while a body is decoded (and, by the events part, while its frame is built):
        # nothing by default; a Dask worker's connections share one process-wide lock here.
        self.parse_gate: AbstractContextManager[Any] = contextlib.nullcontext()
        self._analytics = RateLimiter(pacing.analytics_per_minute, clock=clock, sleep=sleep)
        self._other = RateLimiter(pacing.other_per_minute, clock=clock, sleep=sleep)
        self._persons = RequestWindow(pacing.persons_per_minute, clock=clock, sleep=sleep)
        self.query_slots = QuerySlots(pacing.query_slots)
        if settings.verify is False:
            warnings.warn(
                "TLS certificate verification is off (verify=False): anyone on the network "
                "path can read your PostHog key. Use it only against a test server.",
                UserWarning,
                stacklevel=3,
            )

    # -- URLs ------------------------------------------------------------------------------

    def url_for(self, path_or_url: str) -> str:
        """An absolute URL on the configured origin; raises if it points anywhere else."""
        url = urljoin(self.origin + "/", path_or_url)
        if origin_of(url) != self.origin:
            raise PaginationError(
                f"Refusing to send a request to {redact_url(url)}: it is outside the configured "
                f"PostHog origin {self.origin}, and following it would send your key there. "
                "If PostHog lives at that address, pass host=... (or POSTHOG_HOST) accordingly."
            )
        params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        if FORBIDDEN_PARAMS & params.keys():
            raise PaginationError(
                f"Refusing to send {redact_url(url)}: it carries a credential or project-switching "
                f"parameter ({', '.join(sorted(FORBIDDEN_PARAMS & params.keys()))})."
            )
        return url

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        exact_if: Callable[[Any], bool] | None = None,
        on_body: Callable[[bytes], None] | None = None,
    ) -> Response:
        """Send one request (with retries) and return its parsed JSON answer.

        `exact_if` is handed to `_json.loads` (a check that vouches for the fast decode).
        `on_body(content)` sees each 2xx body as soon as it is read, before it is parsed (so
        a cache write can start meanwhile); a body that then fails to parse is followed by the
        retry's body or by the exception."""
        method = method.upper()
        url = self.url_for(path_or_url)
        if params and FORBIDDEN_PARAMS & set(params):
            bad = ", ".join(sorted(FORBIDDEN_PARAMS & set(params)))
            raise PaginationError(f"Refusing to send the parameter(s) {bad} in a URL.")
        retryable = method == "GET" if idempotent is None else idempotent
        is_query = method == "POST" and urlsplit(url).path.rstrip("/").endswith("/query")
        if not is_query:
            return self._send_with_retries(method, url, params, json, retryable, exact_if, on_body)
        with self.query_slots.slot():
            answer = self._send_with_retries(
                method, url, params, json, retryable, exact_if, on_body
            )
        self.query_slots.answered()
        return answer

    def _send_with_retries(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        retryable: bool,
        exact_if: Callable[[Any], bool] | None,
        on_body: Callable[[bytes], None] | None,
    ) -> Response:
        retry = self._new_retry(retryable)
        while True:
            self._await_pause(method, url)
            self._pace(url)
            try:
                return self._send_once(method, url, params, json_body, exact_if, on_body)
            except (TransportError, ResponseFormatError, RateLimitError, ServerError) as exc:
                if not getattr(exc, "retryable", True):
                    raise
                if isinstance(exc, RateLimitError) and exc.retry_after is not None:
                    # PostHog's wait holds for every thread, even if this request gives up.
                    self._pause(exc.retry_after)
                if _no_query_slot(exc):
                    self.query_slots.refused()  # other queries hold the slots: run fewer
                retry = self._increment(retry, method, url, exc)
                wait = self._wait_for(retry, exc)
                self.stats.add("retries")
                self.stats.waits.append(wait)
                log.debug("retrying %s %s in %.2fs after: %s", method, redact_url(url), wait, exc)
                if isinstance(exc, RateLimitError):
                    self._pause(wait)  # waited out at the top of the loop, like every thread
                else:
                    self.sleep(wait)

    def _pause(self, seconds: float) -> None:
        """Hold every request of this connection for `seconds` from now (a 429's wait)."""
        with self._pause_lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)

    def _await_pause(self, method: str, url: str) -> None:
        """Wait until no 429's pause is running; raise instead when the rest is too long."""
        served = None  # the pause end already slept to (another 429 may push it further)
        while True:
            with self._pause_lock:
                until = self._paused_until
                remaining = until - self.clock()
            if remaining <= 0 or until == served:
                return
            limit = self.settings.retry.max_wait
            if remaining > limit:
                exc = RateLimitError(
                    f"{method} {redact_url(url)} not sent: PostHog rate-limited this key and "
                    f"asked to wait {remaining:.0f} s more, longer than the configured maximum "
                    f"of {limit:.0f} s; try again later or raise RetrySettings.max_wait.",
                    status=429,
                    method=method,
                    url=redact_url(url),
                )
                exc.retry_after = remaining
                raise exc
            log.debug("waiting %.2fs: PostHog rate-limited this connection", remaining)
            self.sleep(remaining)
            served = until

    def _new_retry(self, retryable: bool) -> Retry:
        cfg = self.settings.retry
        return Retry(
            total=cfg.attempts if retryable else 0,
            connect=cfg.connect_attempts,
            read=None,
            backoff_factor=cfg.backoff_factor,
            backoff_max=cfg.backoff_max,
            backoff_jitter=cfg.jitter,
            allowed_methods=frozenset({"GET", "POST"}),
            status_forcelist=RETRY_STATUSES,
            raise_on_status=False,
        )

    def _increment(self, retry: Retry, method: str, url: str, exc: PostHogError) -> Retry:
        """Count one failure against the budget; re-raise `exc` once the budget is spent."""
        # urllib3 counts a ConnectTimeoutError against `connect` (and `total`), anything else
        # against `total` only.
        connecting = isinstance(exc, TransportError) and exc.connecting
        error = ConnectTimeoutError(str(exc)) if connecting else ProtocolError(str(exc))
        try:
            return retry.increment(method=method, url=redact_url(url), error=error)
        except (MaxRetryError, ProtocolError):
            attempts = len(retry.history) + 1
            if attempts > 1:
                exc.args = (f"{exc.args[0]} (gave up after {attempts} attempts)",)
            raise exc from None

    def _wait_for(self, retry: Retry, exc: PostHogError) -> float:
        """Honour the server's requested wait when it gave one; else backoff with jitter."""
        requested = getattr(exc, "retry_after", None)
        if requested is None:
            return float(retry.get_backoff_time())
        if requested > self.settings.retry.max_wait:
            assert isinstance(exc, RateLimitError)
            exc.args = (
                f"{exc.args[0]} PostHog asked to wait {requested:.0f} s, longer than the "
                f"configured maximum of {self.settings.retry.max_wait:.0f} s; try again later "
                "or raise RetrySettings.max_wait.",
            )
            raise exc
        return float(requested)

    def _pace(self, url: str) -> None:
        path = urlsplit(url).path
        limiter = self._analytics if any(p in path for p in ANALYTICS_PATHS) else self._other
        waited = limiter.acquire()
        if PERSONS_VIEWSET.match(path):
            waited += self._persons.acquire()
        if waited:
            log.debug("paced %.2fs to stay within PostHog's rate limits", waited)

    def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        exact_if: Callable[[Any], bool] | None = None,
        on_body: Callable[[bytes], None] | None = None,
    ) -> Response:
        headers, body, auth = self._auth_parts(method, json_body)
        self.stats.add("requests")
        log.debug("%s %s", method, redact_url(url))
        try:
            raw = self.session.request(
                method,
                url,
                params=_encode_params(params),
                data=body,
                headers=headers,
                auth=auth,
                timeout=self.settings.timeout,
                verify=self.settings.verify,
                allow_redirects=False,
                stream=True,
            )
            # One read for the whole body (a reset mid-body surfaces here). `raw.content` reads
            # small chunks and needs the GIL back after each; while another thread builds a
            # DataFrame, every re-acquisition waits for the interpreter's switch interval, so a
            # large page took many times longer to arrive.
            content = b"".join(raw.iter_content(chunk_size=None))
        except requests.RequestException as exc:
            raise self._transport_error(method, redact_url(url), exc) from exc
        self.stats.add("bytes", len(content))
        if on_body is not None and 200 <= raw.status_code < 300:
            on_body(content)
        return self._parse(method, raw, content, exact_if)

    def _transport_error(
        self, method: str, url: str, exc: requests.RequestException
    ) -> TransportError:
        """The request got no answer: say why, with advice, and whether a retry can help."""
        failure = self._connection_failure(list(_causes(exc)))
        if failure is not None:
            advice, retryable, connecting = failure
            message = f"{advice} ({method} {url})"
        elif isinstance(exc, requests.Timeout):
            message = (
                f"{method} {url} timed out after {self._timeout_text()}. PostHog may be slow "
                "or unreachable; try again, or pass timeout=... to connect()."
            )
            retryable, connecting = True, isinstance(exc, requests.ConnectTimeout)
        else:
            message = (
                f"{method} {url} failed before PostHog answered: {type(exc).__name__}: {exc}. "
                "Check your network and POSTHOG_HOST."
            )
            retryable, connecting = True, False
        error = TransportError(self.credentials.scrub(message), method=method, url=url)
        error.retryable, error.connecting = retryable, connecting
        return error

    def _connection_failure(self, causes: list[BaseException]) -> tuple[str, bool, bool] | None:
        """(message, retryable, connecting) when no connection could be made for a reason
        the user can act on: a certificate, a host name, a refusal; else None."""
        host = urlsplit(self.origin).hostname or self.origin
        for cause in causes:
            if isinstance(cause, ssl.SSLCertVerificationError):
                return _certificate_advice(self.origin, cause, self.settings.verify), False, False
        for cause in causes:
            if isinstance(cause, (socket.gaierror, NameResolutionError)):
                return (
                    f"The host name {host} could not be resolved. Check POSTHOG_HOST (now "
                    f"{self.origin}) for a typo, and that this machine is online; not retried.",
                    False,
                    False,
                )
        if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
            return (
                f"{self.origin} refused the connection: nothing listens at that address and "
                "port. Check POSTHOG_HOST (and its port), or start the server.",
                True,
                True,
            )
        return None

    def _timeout_text(self) -> str:
        connect, read = self.settings.timeout
        return f"{connect:g} s (connect) / {read:g} s (read)"

    def _auth_parts(self, method: str, json_body: Any) -> tuple[dict[str, str], bytes | None, Any]:
        """Headers, encoded body and requests auth for this request's auth mode."""
        creds = self.credentials
        headers: dict[str, str] = dict(self._extra_headers)
        auth: Any = None
        if creds.mode == "bearer" or (creds.mode == "body" and method != "GET"):
            # A POST body is PostHog's schema: QueryRequest (posthog/schema.py) forbids extra
            # fields, so a personal_api_key there is a 400 that echoes the key.
            headers["Authorization"] = f"Bearer {creds.api_key}"
        elif creds.mode == "basic":
            auth = (creds.username or "", creds.password or "")
        elif creds.mode == "body":
            # PostHog parses a JSON body on every method, GET included (posthog-api.md §1.1).
            json_body = {**(json_body or {}), "personal_api_key": creds.api_key}
        body = None if json_body is None else orjson.dumps(json_body)
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers, body, auth

    def _parse(
        self,
        method: str,
        raw: requests.Response,
        content: bytes,
        exact_if: Callable[[Any], bool] | None = None,
    ) -> Response:
        url = redact_url(raw.url)
        if 300 <= raw.status_code < 400:
            return self._follow_redirect(method, raw)
        with self.parse_gate:
            data = _decode_json(content, exact_if if raw.status_code < 300 else None)
        if raw.status_code >= 400:
            raise error_from_response(
                method, url, raw.status_code, data, content, raw.headers, self.credentials
            )
        if data is _NOT_JSON:
            raise ResponseFormatError(
                _not_json_message(method, url, raw.headers.get("Content-Type", ""), content),
                method=method,
                url=url,
                status=raw.status_code,
            )
        return Response(data, content, raw.status_code, raw.url, raw.headers, len(content))

    def _follow_redirect(self, method: str, raw: requests.Response) -> Response:
        target = urljoin(raw.url, raw.headers.get("Location", ""))
        exc = TransportError(
            f"{method} {redact_url(raw.url)} was redirected ({raw.status_code}) to "
            f"{redact_url(target)}. posthog-pandas does not follow redirects, so your key stays "
            f"on {self.origin}; set POSTHOG_HOST to the final address instead.",
            method=method,
            url=redact_url(raw.url),
        )
        exc.retryable = False  # the same request redirects again
        raise exc


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps: requests keeps urllib3's error in args[0], urllib3
    its cause in `reason`, Python in __cause__ / __context__."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__)
        todo += [e for e in (*linked, *current.args) if isinstance(e, BaseException)]


def _certificate_advice(origin: str, error: ssl.SSLCertVerificationError, verify: Any) -> str:
    reason = error.verify_message or error.reason or str(error)
    if isinstance(verify, str):
        fix = (
            f"The CA bundle you passed (verify={verify!r}) does not vouch for it: check that "
            "it holds the certificate of the CA that signed PostHog's."
        )
    else:
        fix = (
            "If your PostHog uses a certificate from a private CA, pass that CA's bundle: "
            'connect(verify="/path/ca.pem"). If the name does not match, check POSTHOG_HOST.'
        )
    return f"The TLS certificate of {origin} could not be verified ({reason}). {fix} Not retried."


_NOT_JSON = object()


def _decode_json(content: bytes, exact_if: Callable[[Any], bool] | None = None) -> Any:
    try:
        return _json.loads(content, exact_if=exact_if)
    except ValueError:  # orjson's and the stdlib's decode errors are both ValueErrors
        return _NOT_JSON


def _encode_params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: _param_value(v) for k, v in params.items() if v is not None}


def _param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)


def _not_json_message(method: str, url: str, content_type: str, content: bytes) -> str:
    head = content[:200].decode("utf-8", "replace").lower()
    if "html" in content_type or "<html" in head or "<!doctype" in head:
        return (
            f"{method} {url} returned an HTML page instead of PostHog's JSON (often a login "
            "page or a proxy's error page). Check POSTHOG_HOST points at the PostHog app "
            "(https://us.posthog.com or https://eu.posthog.com, not the .i. ingestion host)."
        )
    return (
        f"{method} {url} returned a body that is not valid JSON ({len(content)} bytes; it may "
        "have been cut off). Nothing was cached; run the call again."
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    netloc = (parts.hostname or "").lower()
    if port is not None and port != default:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}"


# -- error mapping ---------------------------------------------------------------------------


def error_from_response(
    method: str,
    url: str,
    status: int,
    data: Any,
    content: bytes,
    headers: Mapping[str, str],
    credentials: Credentials,
) -> APIError:
    """Map one error answer to the most specific exception, with advice on what to do."""
    body = data if isinstance(data, dict) else {}
    code = _str_or_none(body.get("code"))
    detail = _str_or_none(body.get("detail"))
    if detail is None and data is _NOT_JSON:
        detail = _text_excerpt(content, headers)
    error_cls, advice = _classify(status, code, detail or "", method, url, credentials)
    # PostHog's own words first: they are what the user can act on, and the first line is
    # all the magics show.
    answered = f"PostHog answered {status} to {method} {url}"
    message = f"{detail} ({answered})" if detail else f"{answered}."
    if advice:
        message += f"\n{advice}"
    exc = error_cls(
        credentials.scrub(message),
        status=status,
        method=method,
        url=url,
        error_type=_str_or_none(body.get("type")),
        code=code,
        detail=credentials.scrub(detail) if detail else None,
        attr=_scrub_json(_str_or_none(body.get("attr")), credentials),
        request_id=headers.get("X-Request-Id") or headers.get("X-Request-ID"),
        body=_scrub_json(body, credentials) or None,
    )
    if isinstance(exc, RateLimitError):
        exc.retry_after = retry_after_seconds(headers, detail)
    if isinstance(exc, PermissionDeniedError) and detail:
        match = _MISSING_SCOPE.search(detail)
        exc.scope = match.group(1) if match else None
    return exc


def _scrub_json(value: Any, credentials: Credentials) -> Any:
    """A decoded JSON value with the secrets scrubbed from every string in it."""
    if isinstance(value, str):
        return credentials.scrub(value)
    if isinstance(value, list):
        return [_scrub_json(v, credentials) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_json(v, credentials) for k, v in value.items()}
    return value


def _classify(
    status: int,
    code: str | None,
    detail: str,
    method: str,
    url: str,
    credentials: Credentials,
) -> tuple[type[APIError], str]:
    """Pick the exception class by PostHog's code first (auth can come back as 403), then status."""
    if code in ("authentication_failed", "not_authenticated") or status == 401:
        return AuthenticationError, _auth_advice(code, method, credentials)
    if status == 403 or code == "permission_denied":
        return PermissionDeniedError, _permission_advice(detail)
    if status == 404:
        return NotFoundError, _not_found_advice(detail)
    if status == 429 or code == "throttled":
        return RateLimitError, "PostHog is rate limiting this key; wait and retry."
    if _is_query_limit(status, code, detail, url):
        return QueryTimeoutError, (
            "PostHog stopped this query at its time or memory limit (a short one applies to "
            "personal API keys): narrow the time range, filter more or aggregate, then retry."
        )
    if status >= 500:
        return ServerError, "PostHog had a server-side problem; try again in a minute."
    if status == 400 and urlsplit(url).path.rstrip("/").endswith("/query"):
        return QueryError, "Fix the HogQL query and run it again."
    if status == 400:
        return BadRequestError, "Check the filters and arguments you passed."
    return APIError, ""


def _no_query_slot(exc: PostHogError) -> bool:
    """PostHog's 429 for its concurrent query limit (another client may hold the slots)."""
    detail = getattr(exc, "detail", None) or ""
    return isinstance(exc, RateLimitError) and CONCURRENCY_LIMIT_TEXT in detail


def _is_query_limit(status: int, code: str | None, detail: str, url: str) -> bool:
    """A query API answer saying the query hit PostHog's time or memory limit."""
    if not urlsplit(url).path.rstrip("/").endswith("/query"):
        return False
    if code == _MEMORY_LIMIT_CODE:
        return not _CLUSTER_FULL.search(detail)
    return status in (504, 512) and bool(_QUERY_LIMIT.search(detail))


def _auth_advice(code: str | None, method: str, credentials: Credentials) -> str:
    if credentials.mode == "basic":
        return (
            "This PostHog did not accept a username and password (HTTP Basic). Current PostHog "
            "versions accept only personal API keys for the API. " + CREATE_KEY_HELP
        )
    if code == "not_authenticated" and credentials.mode == "body" and method != "GET":
        return (
            "PostHog received no credentials. With key_in='body', POST requests (queries) carry "
            "the key in the Authorization header, since PostHog's query body accepts no key "
            "field: something between you and PostHog (a proxy?) removed that header."
        )
    if code == "not_authenticated":
        return "PostHog received no credentials. " + CREATE_KEY_HELP
    return (
        f"The personal API key {credentials.masked} (from {credentials.source}) was not "
        "accepted. Check that it is a personal API key (phx_…) that has not been deleted, and "
        "that POSTHOG_HOST is the region it was created in: US (https://us.posthog.com) and EU "
        "(https://eu.posthog.com) are separate, and a key from one fails on the other."
    )


def _permission_advice(detail: str) -> str:
    match = _MISSING_SCOPE.search(detail)
    if match:
        return (
            f"Add the '{match.group(1)}' scope to this key in PostHog (Settings → Personal API "
            "keys → edit the key), or create a key with it."
        )
    if "requested project" in detail:
        return "The key is limited to other projects; set POSTHOG_PROJECT_ID to one it may read."
    return "Your key or user lacks access; check the key's scopes and project access."


def _not_found_advice(detail: str) -> str:
    if "Project not found" in detail:
        return (
            "Check POSTHOG_PROJECT_ID (the number in your PostHog URL, /project/<id>/); "
            "ph.projects() lists the projects your key can see."
        )
    if "Endpoint not found" in detail:
        return "This PostHog does not have that endpoint (it may be an older version)."
    return ""


def retry_after_seconds(headers: Mapping[str, str], detail: str | None) -> float | None:
    """The wait PostHog asked for: Retry-After (seconds or HTTP date), else the body's text."""
    header = headers.get("Retry-After")
    if header:
        try:
            return float(Retry().parse_retry_after(header))
        except Exception:  # noqa: BLE001 - a bad header is no reason to fail; fall back
            log.debug("ignoring unparseable Retry-After header")
    if detail:
        match = _EXPECTED_AVAILABLE.search(detail)
        if match:
            return float(match.group(1))
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _text_excerpt(content: bytes, headers: Mapping[str, str]) -> str:
    text = content[:300].decode("utf-8", "replace")
    if "html" in headers.get("Content-Type", "") or "<html" in text.lower():
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        return f"an HTML page{f' ({title.group(1).strip()})' if title else ''}, not PostHog's JSON"
    return re.sub(r"\s+", " ", text).strip()[:200] or "(empty body)"
