"""posthog-pandas: PostHog analytics data in pandas and Jupyter.

    import posthog_pandas as php
    ph = php.connect()              # key from argument, environment, .env, or a prompt
    persons = ph.persons()          # every page, typed columns, cached on disk
    daily = ph.query("select toDate(timestamp) as day, count() from events group by day")

In IPython/Jupyter, `%load_ext posthog_pandas` adds the `%posthog` and `%%posthog` magics.

Layers. Imports point down only (lazy ones included; only `if TYPE_CHECKING:` imports are
exempt), and tests/unit/test_import_graph.py fails on any cycle:

    front doors  cli · magics · readers · demo
    the API      client: connect() and PostHog, the user's methods over the parts below
    notebook     widgets (the login form) · _session (default connection, remembered login)
                 · _display (the text a connection, whoami and an error show)
    parts        export.Exporter ─▶ events.Events ─▶ resources.Lists · query.QueryRunner
                                    each handed ─▶ _frame_cache.FrameCache ─▶ _core.Connection
                 analytics.runner (ph.trends, ...) ─▶ query.QueryRunner; analytics.insights
                 (PostHog's query kinds and their tidy frames) · analytics.twins and its
                 DataFrame.posthog accessor (the same frames computed offline in pandas)
    data         _registry (one entry per resource) · frames (schemas, dtypes) · _checks
    transport    _fetcher (cache policy) ─▶ cache (storage) · _http · _pagination · _live
    basics       exceptions · _tracebacks · _config · _credentials · _dates · _urls · _progress
                 · _json · _gc

`server` (the local PostHog) imports nothing of the layers above; `testing` is its pytest
plugin. This module loads its public names lazily, so `import posthog_pandas` stays light.
"""

from __future__ import annotations

import importlib
import sys
import typing

from posthog_pandas._config import PacingSettings, RetrySettings
from posthog_pandas._version import __version__
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
    QueryStillRunningError,
    QueryTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    TransportError,
    TruncationError,
)

if typing.TYPE_CHECKING:
    from posthog_pandas._fetcher import CacheTTL
    from posthog_pandas.client import PostHog, connect
    from posthog_pandas.export import ExportSummary
    from posthog_pandas.frames import FrameOptions
    from posthog_pandas.readers import read_hogql, read_posthog

# Loaded on first use: `import posthog_pandas` (and the pytest plugin, which every pytest run
# of a project with posthog-pandas installed loads) stays free of pandas, requests and pyarrow.
_LAZY = {
    "CacheTTL": "posthog_pandas._fetcher",
    "ExportSummary": "posthog_pandas.export",
    "FrameOptions": "posthog_pandas.frames",
    "PostHog": "posthog_pandas.client",
    "connect": "posthog_pandas.client",
    "read_hogql": "posthog_pandas.readers",
    "read_posthog": "posthog_pandas.readers",
}


def __getattr__(name: str) -> typing.Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        _register_accessor()
        return value
    raise AttributeError(f"module 'posthog_pandas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CacheError",
    "CacheTTL",
    "ConfigurationError",
    "CredentialsError",
    "ExportSummary",
    "FrameOptions",
    "NotFoundError",
    "PacingSettings",
    "PaginationError",
    "PermissionDeniedError",
    "PostHog",
    "PostHogError",
    "QueryError",
    "QueryStillRunningError",
    "QueryTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "RetrySettings",
    "ServerError",
    "TransportError",
    "TruncationError",
    "__version__",
    "connect",
    "load_ipython_extension",
    "read_hogql",
    "read_posthog",
]


def _register_accessor() -> None:
    """`DataFrame.posthog` (the local twins of insights) once pandas is loaded; importing
    posthog_pandas never loads pandas for it."""
    if "pandas" in sys.modules:
        importlib.import_module("posthog_pandas.analytics")


_register_accessor()


def load_ipython_extension(ipython: typing.Any) -> None:
    """`%load_ext posthog_pandas`: register the %posthog and %%posthog magics."""
    from posthog_pandas.magics import load_ipython_extension as _load

    _load(ipython)
