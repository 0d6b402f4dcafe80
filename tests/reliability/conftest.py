"""Fixtures of the reliability suite (helpers live in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posthog_pandas.server import LocalPostHog


@pytest.fixture()
def scripts(tmp_path: Path) -> Iterator[Path]:
    """A directory for the small scripts that child processes run."""
    directory = tmp_path / "scripts"
    directory.mkdir()
    yield directory


@pytest.fixture()
def server(srv: LocalPostHog) -> Iterator[LocalPostHog]:
    """The module's `srv` without faults and with an empty request log, for one test."""
    srv.set_faults(None)
    srv.clear_log()
    yield srv
    srv.set_faults(None)
