"""One local PostHog per module (small data), and a connector factory bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import posthog_pandas as php
from posthog_pandas.server import LocalPostHog
from tests.conftest import local_connection


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=1500, events=12000, seed=7) as srv:
        yield srv


@pytest.fixture()
def connect(server: LocalPostHog, tmp_path: Path) -> Callable[..., php.PostHog]:
    """connect() to the module's server with a private cache; keyword arguments override."""
    server.clear_log()
    server.set_faults(None)

    def factory(**overrides: Any) -> php.PostHog:
        return local_connection(server, tmp_path / "cache", **overrides)

    return factory
