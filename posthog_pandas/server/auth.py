"""Who is calling the local server: personal keys, legacy Basic auth, scopes and rate limits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from posthog_pandas.server.web import ApiError, Request

__all__ = [
    "ApiKey",
    "Credentials",
    "KeyRing",
    "PERSONS_BREAK_GLASS",
    "Principal",
    "RateLimiter",
    "UserThrottle",
    "fingerprint",
]

DEFAULT_EMAIL = "demo@posthog-pandas.local"
AuthSource = Literal["bearer", "body", "query", "basic"]
_BEARER = re.compile(r"^Bearer\s+(\S.+)$")  # keyword is case-sensitive, as in PostHog
_SOURCE_WORDS = {"bearer": "Authorization header", "body": "body", "query": "query string"}


@dataclass(frozen=True)
class ApiKey:
    """A personal API key the local server accepts.

    `project_ids=()` means the key is not scoped to projects (it sees every project);
    `scopes=()` is a legacy key with every permission, `("*",)` likewise.
    """

    key: str
    project_ids: tuple[int, ...] = (1,)
    scopes: tuple[str, ...] = ("*",)
    user_email: str = DEFAULT_EMAIL
    rate_limit_per_minute: int | None = None


@dataclass(frozen=True)
class Credentials:
    """What the request presented, before checking it (never holds the raw key in logs)."""

    source: AuthSource | None
    secret: str | None  # the key, or "email:password" for Basic

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.secret) if self.secret is not None else None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a key, or a legacy Basic-auth user (all projects, all scopes)."""

    source: AuthSource
    email: str
    key: ApiKey | None
    current_project: int

    def can_see(self, project_id: int) -> bool:
        return self.key is None or not self.key.project_ids or project_id in self.key.project_ids


def fingerprint(secret: str) -> str:
    """sha256[:12] of a key: enough to tell keys apart in a log, useless to an attacker."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def find_credentials(request: Request) -> Credentials:
    """PostHog's `find_key_with_source`: header, then body, then query string; first one wins."""
    header = request.headers.get("authorization", "")
    match = _BEARER.match(header)
    if match and not match.group(1).startswith("pha_"):  # pha_ belongs to OAuth
        return Credentials("bearer", match.group(1).strip())
    body = request.json
    if isinstance(body, dict) and body.get("personal_api_key"):
        return Credentials("body", str(body["personal_api_key"]))
    params = request.params
    if params.get("personal_api_key"):
        return Credentials("query", params["personal_api_key"])
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        return Credentials("basic", decoded)
    return Credentials(None, None)


class KeyRing:
    """The keys and legacy users of one server, and the checks PostHog runs on them."""

    def __init__(self, keys: list[ApiKey], users: dict[str, str], legacy: bool) -> None:
        self._keys = {k.key: k for k in keys}
        self._users = dict(users)
        self._legacy = legacy

    @property
    def emails(self) -> list[str]:
        return sorted({k.user_email for k in self._keys.values()} | set(self._users))

    def authenticate(self, creds: Credentials, *, sharing: bool = False) -> Principal:
        """Raise 401 (403 on sharing viewsets such as /query/) with PostHog's exact detail."""
        status = 403 if sharing else 401
        headers = {} if sharing else {"WWW-Authenticate": 'Bearer realm="api"'}
        if creds.source in _SOURCE_WORDS and creds.secret is not None:
            key = self._keys.get(creds.secret)
            if key is None:
                word = _SOURCE_WORDS[creds.source]
                detail = f"Personal API key found in request {word} is invalid."
                raise ApiError(
                    status, "authentication_error", "authentication_failed", detail, None, headers
                )
            current = key.project_ids[0] if key.project_ids else 1
            return Principal(creds.source, key.user_email, key, current)
        if creds.source == "basic" and self._legacy:
            email, _, password = (creds.secret or "").partition(":")
            if self._users.get(email) != password or not email:
                raise ApiError(
                    status,
                    "authentication_error",
                    "authentication_failed",
                    "Invalid username/password.",
                    None,
                    {"WWW-Authenticate": 'Basic realm="api"'},
                )
            return Principal("basic", email, None, 1)
        # No authenticator claimed the request (PostHog has no Basic authenticator).
        raise ApiError(
            status,
            "authentication_error",
            "not_authenticated",
            "Authentication credentials were not provided.",
            None,
            headers,
        )


def check_project_access(principal: Principal, project_id: int) -> None:
    if not principal.can_see(project_id):
        raise ApiError(
            403,
            "authentication_error",
            "permission_denied",
            f"API key does not have access to the requested project: ID {project_id}.",
        )


def check_scope(principal: Principal, scope_object: str, action: str) -> None:
    """`X:write` also grants `X:read`; an empty scope list (legacy key) or `*` grants all."""
    if principal.key is None:
        return
    scopes = principal.key.scopes
    required = f"{scope_object}:{action}"
    if not scopes or "*" in scopes or required in scopes:
        return
    if action == "read" and f"{scope_object}:write" in scopes:
        return
    raise ApiError(
        403,
        "authentication_error",
        "permission_denied",
        f"API key missing required scope '{required}'",
    )


@dataclass(frozen=True)
class UserThrottle:
    """A DRF SimpleRateThrottle keyed by the user (PostHog's `UserOrEmailRateThrottle`):
    at most `rate` requests in any `seconds`-long window, whatever key the user sends."""

    scope: str
    rate: int
    seconds: int


# posthog/api/person.py: PersonViewSet.throttle_classes adds these to ClickHouseBurstRateThrottle;
# they count every request of the user to the persons endpoints, per user, not per key.
PERSONS_BREAK_GLASS = (
    UserThrottle("persons_burst", 180, 60),  # PersonsBreakGlassBurstThrottle, "180/minute"
    UserThrottle("persons_sustained", 1200, 3600),  # PersonsBreakGlassSustainedThrottle
)


class RateLimiter:
    """DRF's SimpleRateThrottle: sliding windows of request times, per key (a key's own
    `rate_limit_per_minute`) and per user (a route's UserThrottles). As in DRF, every throttle
    of a request is checked, a request is counted only by the throttles that let it through,
    and a refusal waits for the slowest of those that refused."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._history: dict[str, deque[float]] = {}

    def check(self, principal: Principal, throttles: tuple[UserThrottle, ...] = ()) -> None:
        now = self.clock()
        windows = [(f"{t.scope}:{principal.email}", t.rate, t.seconds) for t in throttles]
        key = principal.key
        if key is not None and key.rate_limit_per_minute is not None:
            windows.append((f"key:{key.key}", key.rate_limit_per_minute, 60))
        waits = []
        with self._lock:
            for name, rate, seconds in windows:
                history = self._history.setdefault(name, deque())
                while history and history[0] <= now - seconds:
                    history.popleft()
                if len(history) >= rate:
                    waits.append(seconds - (now - history[0]))
                else:
                    history.append(now)
        if waits:
            raise ApiError.throttled(max(1, math.ceil(max(waits))))

    def reset(self) -> None:
        with self._lock:
            self._history.clear()
