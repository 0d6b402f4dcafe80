"""The optional local server: the packages it needs and the error that names its pip extra.

`pip install posthog-pandas` reads PostHog. The embedded local server (`posthog_pandas.server`,
the `serve` and `demo` commands, the pytest `local_posthog` fixture) also needs DuckDB and
sqlglot, which `pip install "posthog-pandas[server]"` adds, with PostHog's HogQL parser.
"""

from __future__ import annotations

import importlib

__all__ = ["SERVER_INSTALL", "MissingExtraError", "require_server_extra"]

SERVER_INSTALL = 'pip install "posthog-pandas[server]"'
# What the server cannot start without. The extra also brings hogql-parser, but the server
# runs without it, as on Windows where it has no wheel: sqlglot alone then parses.
_SERVER_MODULES = ("duckdb", "sqlglot")


class MissingExtraError(ImportError):
    """A part of posthog-pandas was used without the pip extra that installs its packages."""


def require_server_extra() -> None:
    """Raise MissingExtraError, naming the extra, unless the local server's packages import."""
    for module in _SERVER_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"The local PostHog server needs {module}, which cannot be imported here. "
                f"Install the server extra: {SERVER_INSTALL}",
                name=module,
            ) from exc
