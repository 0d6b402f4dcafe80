"""Settings: named defaults, the host rules, and the frozen objects that carry configuration."""

from __future__ import annotations

import ipaddress
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from posthog_pandas._version import __version__
from posthog_pandas.exceptions import ConfigurationError

ENV_API_KEY = "POSTHOG_PERSONAL_API_KEY"
ENV_HOST = "POSTHOG_HOST"
ENV_PROJECT_ID = "POSTHOG_PROJECT_ID"
ENV_USERNAME = "POSTHOG_USERNAME"
ENV_PASSWORD = "POSTHOG_PASSWORD"

DEFAULT_HOST = "https://us.posthog.com"
HOST_ALIASES = {"us": "https://us.posthog.com", "eu": "https://eu.posthog.com"}
# The ".i." hosts serve ingestion only; the read API lives on the app host (posthog-api.md §2).
INGESTION_TO_APP_HOST = {
    "us.i.posthog.com": "us.posthog.com",
    "eu.i.posthog.com": "eu.posthog.com",
}

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0  # PostHog cuts synchronous queries at about 60 s; leave headroom.
USER_AGENT = f"posthog-pandas/{__version__}"

AUTH_MODES = ("bearer", "body", "basic")


@dataclass(frozen=True)
class RetrySettings:
    """How hard to retry a failed idempotent request.

    Attributes:
        attempts: retries after the first try (429, 5xx, resets, malformed bodies).
        connect_attempts: of those, how many may follow a connection that was refused or
            timed out: a restarting server is back within seconds, a wrong address never.
            A certificate that cannot be verified and a host name that does not resolve are
            not retried at all.
        backoff_factor: base of the exponential backoff, in seconds.
        backoff_max: cap of one backoff wait, in seconds.
        jitter: random seconds added to each backoff so parallel clients spread out.
        max_wait: the longest server-requested wait (Retry-After) we sleep through; a longer
            one raises RateLimitError carrying the wait instead of stalling a notebook.
    """

    attempts: int = 6
    connect_attempts: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.25
    max_wait: float = 120.0


# PostHog's concurrent queries per organization (posthog/clickhouse/client/limit.py).
MAX_CONCURRENT_QUERIES = 3


@dataclass(frozen=True)
class PacingSettings:
    """Client-side pacing that keeps a long pull inside PostHog's documented limits.

    Attributes:
        analytics_per_minute: persons, events, query, insights, recordings (240/min).
        other_per_minute: every other endpoint (480/min).
        persons_per_minute: the persons endpoints again, in any 60 s: PostHog's per-user
            break-glass throttle (180/min; its 1,200/h is left to Retry-After).
        max_concurrent_queries: HogQL queries in flight at once on this connection, 1 to 3
            (PostHog runs 3 per organization and answers more with 429); an events pull
            reads that many windows at once. None (default): 3 queries, and windows as
            `windows_at_once` chooses for the host.
    """

    analytics_per_minute: int = 240
    other_per_minute: int = 480
    persons_per_minute: int = 180
    max_concurrent_queries: int | None = None

    def __post_init__(self) -> None:
        if self.max_concurrent_queries is not None:
            check_concurrent_queries(self.max_concurrent_queries)

    @property
    def query_slots(self) -> int:
        """Queries the connection runs at once: the setting, or PostHog's 3."""
        return self.max_concurrent_queries or MAX_CONCURRENT_QUERIES


def check_concurrent_queries(value: object) -> int:
    """`value` when it is a whole number from 1 to PostHog's 3; otherwise an error saying why."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"max_concurrent_queries={value!r}: give a whole number of queries from 1 to "
            f"{MAX_CONCURRENT_QUERIES} (1 reads an events range one page after another)."
        )
    if value > MAX_CONCURRENT_QUERIES:
        raise ConfigurationError(
            f"max_concurrent_queries={value}: PostHog runs at most {MAX_CONCURRENT_QUERIES} "
            "queries at once per organization and answers more with 429 (Exceeded maximum "
            f"concurrency limit), so more would only be refused; use 1 to {MAX_CONCURRENT_QUERIES}."
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the transport needs except the secret, which lives in Credentials."""

    host: str = DEFAULT_HOST
    project_id: int | None = None
    timeout: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    retry: RetrySettings = field(default_factory=RetrySettings)
    pacing: PacingSettings = field(default_factory=PacingSettings)
    verify: bool | str = True
    compression: str = "auto"  # one of COMPRESSIONS


def windows_at_once(settings: Settings) -> int:
    """How many time windows an events pull reads at once: `max_concurrent_queries` when
    given; by default PostHog's 3 from a remote host and 1 from a loopback one. A server on
    this machine shares its cores with the client, so windows at once only contend there
    (measured in docs/design/performance.md, "Loopback reads one window at a time"), while a
    remote PostHog spends seconds per page that windows overlap."""
    chosen = settings.pacing.max_concurrent_queries
    if chosen is not None:
        return chosen
    return 1 if is_loopback(urlsplit(settings.host).hostname or "") else MAX_CONCURRENT_QUERIES


# What connect(compression=...) accepts: "auto" asks a loopback host for plain bodies (gzip costs
# CPU on both ends and saves no time there) and any other host for gzip.
COMPRESSIONS = ("auto", "gzip", "identity")


def check_compression(value: str) -> str:
    """`value` when it is one of COMPRESSIONS; otherwise an error that lists them."""
    if value not in COMPRESSIONS:
        allowed = ", ".join(repr(c) for c in COMPRESSIONS)
        raise ConfigurationError(
            f"compression={value!r} is not supported; use one of {allowed} ('auto': plain "
            "bodies from a loopback host, gzip from any other)."
        )
    return value


def accept_encoding(compression: str, hostname: str) -> str:
    """The Accept-Encoding header a connection sends for its compression setting."""
    if compression == "identity" or (compression == "auto" and is_loopback(hostname)):
        return "identity"
    return "gzip"


def normalize_host(raw: str) -> str:
    """Return the origin (scheme://host[:port]) for a host setting, or raise ConfigurationError.

    Accepts "us"/"eu", a bare domain (https assumed), or a URL; maps the ingestion hosts
    (us.i.posthog.com) to the app hosts that serve the read API.
    """
    value = raw.strip().rstrip("/")
    if value.lower() in HOST_ALIASES:
        return HOST_ALIASES[value.lower()]
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    unsafe = any(ch.isspace() or ch in "<>\\\"'{}|^`" for ch in value)
    if parts.scheme not in ("http", "https") or not parts.hostname or unsafe:
        raise ConfigurationError(
            f"POSTHOG_HOST {raw!r} is not a URL. Use https://us.posthog.com (US Cloud), "
            "https://eu.posthog.com (EU Cloud) or your self-hosted address, e.g. "
            "https://posthog.example.com."
        )
    if parts.path not in ("", "/"):
        raise ConfigurationError(
            f"POSTHOG_HOST {raw!r} has a path ({parts.path!r}); give only the origin, "
            f"e.g. {parts.scheme}://{parts.netloc}."
        )
    hostname = parts.hostname.lower()
    if hostname in INGESTION_TO_APP_HOST:
        app = INGESTION_TO_APP_HOST[hostname]
        warnings.warn(
            f"{hostname} is PostHog's ingestion host; the read API is served from {app}. "
            f"Using https://{app}.",
            UserWarning,
            stacklevel=3,
        )
        return f"https://{app}"
    host_part = f"[{hostname}]" if ":" in hostname else hostname  # an IPv6 address keeps its []
    netloc = host_part if parts.port is None else f"{host_part}:{parts.port}"
    if parts.scheme == "http" and not is_loopback(hostname):
        warnings.warn(
            f"{raw} uses plain http: your key would cross the network unencrypted. "
            "Use https unless this is a local test server.",
            UserWarning,
            stacklevel=3,
        )
    return f"{parts.scheme}://{netloc}"


def is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_project_id(raw: int | str | None, *, source: str) -> int | None:
    """Project ids are positive integers; say where a bad one came from."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise ConfigurationError(f"project_id from {source} must be an integer, got {raw!r}.")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigurationError(
            f"project_id from {source} must be a positive integer (the number in your "
            f"PostHog URL, /project/<id>/), got {raw!r}."
        ) from None
    if value <= 0:
        raise ConfigurationError(f"project_id from {source} must be positive, got {value}.")
    return value
