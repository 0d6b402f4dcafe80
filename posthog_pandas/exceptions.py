"""The exceptions posthog-pandas raises: one tree, one base.

    PostHogError
    ├── ConfigurationError        a bad argument or setting (also a ValueError)
    ├── CredentialsError          no key found, or a key of the wrong kind (phc_, phs_)
    ├── APIError                  PostHog answered with an error status
    │   ├── BadRequestError       400 (bad filter, bad parameter)
    │   │   └── QueryError        400 on the query API: bad HogQL, OFFSET, a failed query
    │   ├── AuthenticationError   401, or 403 with an authentication code
    │   ├── PermissionDeniedError 403 (missing scope, no access to the project)
    │   ├── NotFoundError         404
    │   ├── RateLimitError        429 past the retry budget, or a wait longer than allowed
    │   └── ServerError           5xx past the retry budget
    │       └── QueryTimeoutError PostHog stopped a query at its time or memory limit (504/512)
    ├── TransportError            the request never got an HTTP answer (DNS, reset, timeout)
    ├── ResponseFormatError       200 but not PostHog's JSON (HTML login page, truncated body)
    ├── PaginationError           a `next` link that repeats or leaves the configured origin
    ├── TruncationError           a query result PostHog cut that cannot be paged to its end
    ├── QueryStillRunningError    PostHog was still running a query when the wait ran out
    └── CacheError                the cache cannot serve the request (offline miss, unwritable)

Library code raises these plain classes so scripts and tests can catch them; the
notebook magics turn them into one-line IPython errors at the edge, and IPython shows them
without the frames inside posthog-pandas (see _tracebacks).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CacheError",
    "ConfigurationError",
    "CredentialsError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "PostHogError",
    "QueryError",
    "QueryStillRunningError",
    "QueryTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
    "TruncationError",
]


class PostHogError(Exception):
    """Base class of every error posthog-pandas raises."""

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: show the user's frames and this message, not our internals."""
        from posthog_pandas._tracebacks import user_traceback

        return user_traceback(self)


class ConfigurationError(PostHogError, ValueError):
    """An argument or setting is invalid; the message names it and the accepted values."""


class CredentialsError(PostHogError):
    """No usable credentials: none found, or a project (phc_) / secret (phs_) key given."""


class CacheError(PostHogError):
    """The on-disk cache cannot serve or store a response (offline miss, unwritable dir)."""


class PaginationError(PostHogError):
    """A `next` link repeats an earlier page or points at another origin."""


class _RequestError(PostHogError):
    """Common fields of errors tied to one HTTP request (URL already redacted)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class TransportError(_RequestError):
    """The request got no HTTP answer: connection refused or reset, DNS failure, timeout.

    ``retryable`` is False when no retry can help: a certificate that cannot be verified, a
    host name that does not resolve, a redirect; those fail at the first attempt.
    ``connecting`` is True when no connection was made (refused, connect timeout): those get
    the short budget of ``RetrySettings.connect_attempts``, seconds rather than minutes.
    """

    retryable: bool = True
    connecting: bool = False


class ResponseFormatError(_RequestError):
    """A 2xx answer that is not PostHog's JSON: an HTML page, a truncated or malformed body."""

    def __init__(
        self, message: str, *, method: str = "", url: str = "", status: int | None = None
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status


class APIError(_RequestError):
    """PostHog answered with an error status.

    Attributes mirror PostHog's error JSON (``type``, ``code``, ``detail``, ``attr``) plus the
    HTTP ``status``, the ``method``, the redacted ``url`` and the ``request_id`` if one was sent.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str = "",
        url: str = "",
        error_type: str | None = None,
        code: str | None = None,
        detail: str | None = None,
        attr: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.type = error_type
        self.code = code
        self.detail = detail
        self.attr = attr
        self.request_id = request_id
        self.body = body


class BadRequestError(APIError):
    """400: PostHog rejected a parameter or filter."""


class QueryError(BadRequestError):
    """The query API rejected a HogQL query (syntax, unknown column, OFFSET), or PostHog
    reported that an asynchronous query failed."""


class TruncationError(PostHogError):
    """PostHog returned a query result that may be cut (at 100 rows without LIMIT, at 50,000
    rows with one) and posthog-pandas cannot page to its end, so it refuses to hand back a
    silently truncated table. The message says how to change the query (aggregate, LIMIT, or
    ORDER BY <...>, uuid for keyset paging)."""


class QueryStillRunningError(PostHogError):
    """PostHog was still running an asynchronous query when posthog-pandas stopped polling
    it (after _polling.QUERY_TIMEOUT seconds). Narrow the range or aggregate more."""


class AuthenticationError(APIError):
    """401 (or 403 with an authentication code): the key or password was not accepted."""


class PermissionDeniedError(APIError):
    """403: the key lacks a scope or access to the project. ``scope`` names what is missing."""

    scope: str | None = None


class NotFoundError(APIError):
    """404: unknown project, object or endpoint."""


class RateLimitError(APIError):
    """429 past the retry budget, or a requested wait longer than allowed.

    ``retry_after`` is the wait in seconds PostHog asked for, when it said.
    """

    retry_after: float | None = None


class ServerError(APIError):
    """5xx past the retry budget."""


class QueryTimeoutError(ServerError):
    """PostHog stopped a query at its execution-time or memory limit, or refused one it
    estimated too slow: a 504 whose detail says "max execution time" / "max memory limit", a
    512 "Estimated query execution time ... is too long", or (newer PostHog) a 512/513 with
    code ``clickhouse_memory_limit_exceeded`` (posthog/exceptions.py). Not retried as it is:
    the same query would hit the same limit. ``ph.events()`` splits its time range instead;
    for ``ph.query()``, narrow the range or aggregate more.
    """

    retryable = False
