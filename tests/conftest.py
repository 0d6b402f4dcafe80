"""Shared fixtures: every test runs with a clean environment and a private cache directory.

POSTHOG_PANDAS_TEST_TIMEZONE=America/Los_Angeles runs the suite against non-UTC projects:
every LocalPostHog a test starts without `timezone=` gets that Team.timezone (.ci/run does
one such run). It is read here, before `isolate` clears POSTHOG_* variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

KEY = "phx_TESTKEY_0123456789abcdefghijklmnopqrstuvwxyz"
PROJECT_TIMEZONE = os.environ.get("POSTHOG_PANDAS_TEST_TIMEZONE") or "UTC"


@pytest.fixture(scope="session", autouse=True)
def project_timezone() -> Iterator[str]:
    """The timezone of the local servers' projects in this run (see the module docstring)."""
    if PROJECT_TIMEZONE == "UTC":
        yield PROJECT_TIMEZONE
        return
    from posthog_pandas.server import LocalPostHog  # only then: unit runs skip the import

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalPostHog, "default_timezone", PROJECT_TIMEZONE)
        yield PROJECT_TIMEZONE


@pytest.fixture(autouse=True)
def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No POSTHOG_* variable, no .env from the repo, no real cache dir, no CI prompt quirks."""
    for name in list(os.environ):
        if name.startswith("POSTHOG_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("POSTHOG_PANDAS_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path


@pytest.fixture()
def ip() -> Iterator[object]:
    """An IPython shell with the magics loaded that re-raises errors (see ipython_shell)."""
    from tests.ipython_shell import magics_shell  # IPython only for the tests that use it

    with magics_shell() as shell:
        yield shell
