"""Pytest support: the `local_posthog` fixture (a small embedded PostHog) and the server classes.

Registered as a pytest11 plugin, so any project with posthog-pandas installed can write
`def test_x(local_posthog): ...`. The server is imported lazily, when a test uses it: plugin
loading stays fast, and pytest runs where the server extra is not installed (a test that uses
the fixture then errors with MissingExtraError, which names the extra to install).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from posthog_pandas.server import ApiKey, Faults, LocalPostHog

__all__ = ["ApiKey", "Faults", "LocalPostHog", "local_posthog"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports: `from posthog_pandas.testing import LocalPostHog` works without making
    # every pytest run import numpy, duckdb and the data generator.
    if name in ("ApiKey", "Faults", "LocalPostHog"):
        from posthog_pandas import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@pytest.fixture
def local_posthog() -> Iterator[LocalPostHog]:
    """A running LocalPostHog with 500 persons and 5,000 events (seed 42), closed afterwards."""
    from posthog_pandas.server import LocalPostHog

    with LocalPostHog(persons=500, events=5000, seed=42) as srv:
        yield srv
