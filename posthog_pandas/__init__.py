"""posthog-pandas: PostHog analytics data in pandas and Jupyter.

    import posthog_pandas as php
    ph = php.connect()              # key from argument, environment, .env, or a prompt
    persons = ph.persons()          # every page, typed columns, cached on disk
    daily = ph.query("select toDate(timestamp) as day, count() from events group by day")

In IPython/Jupyter, `%load_ext posthog_pandas` adds the `%posthog` and `%%posthog` magics.
"""

from __future__ import annotations

from typing import Any

from posthog_pandas._config import PacingSettings, RetrySettings
from posthog_pandas._fetcher import CacheTTL
from posthog_pandas._version import __version__
from posthog_pandas.client import PostHog, connect
from posthog_pandas.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CacheError,
    ConfigurationError,
    CredentialsError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    PostHogError,
    QueryError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    TransportError,
)
from posthog_pandas.frames import FrameOptions
from posthog_pandas.readers import read_hogql, read_posthog

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CacheError",
    "CacheTTL",
    "ConfigurationError",
    "CredentialsError",
    "FrameOptions",
    "NotFoundError",
    "PacingSettings",
    "PaginationError",
    "PermissionDeniedError",
    "PostHog",
    "PostHogError",
    "QueryError",
    "RateLimitError",
    "ResponseFormatError",
    "RetrySettings",
    "ServerError",
    "TransportError",
    "__version__",
    "connect",
    "load_ipython_extension",
    "read_hogql",
    "read_posthog",
]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext posthog_pandas`: register the %posthog and %%posthog magics."""
    from posthog_pandas.magics import load_ipython_extension as _load

    _load(ipython)
