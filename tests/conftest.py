"""Shared fixtures: every test runs with a clean environment and a private cache directory.

Two connection factories, each a plain function (for module-scoped or non-fixture code) and a
fixture bound to the test's tmp_path: `local_connection` connects to a LocalPostHog, and
`mocked_connection` connects through a requests-mock adapter that answers /api/users/@me/.

POSTHOG_PANDAS_TEST_TIMEZONE=America/Los_Angeles runs the suite against non-UTC projects:
every LocalPostHog a test starts without `timezone=` gets that Team.timezone (.ci/run does
one such run). It is read here, before `isolate` clears POSTHOG_* variables.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the server is an extra, and requests_mock only matters to unit tests
    import requests_mock

    import posthog_pandas as php
    from posthog_pandas.server import LocalPostHog

KEY = "phx_TESTKEY_0123456789abcdefghijklmnopqrstuvwxyz"
PROJECT_TIMEZONE = os.environ.get("POSTHOG_PANDAS_TEST_TIMEZONE") or "UTC"

MOCK_HOST = "https://ph.test"
MOCK_ME = {"email": "a@b.c", "team": {"id": 3, "project_id": 3, "name": "P"}}
NONE_DEFINED = {"count": 0, "next": None, "previous": None, "results": []}  # property_definitions


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


# -- connection factories --------------------------------------------------------------------------


def local_connection(server: LocalPostHog, cache_dir: Path | None, **overrides: Any) -> php.PostHog:
    """connect() to a local server with no prompt, no .env, no progress bars; overrides win.

    cache_dir=None connects with cache=False; api_key= overrides the server's key.
    """
    import posthog_pandas as php

    options: dict[str, Any] = {
        "host": server.url,
        "progress": False,
        "dotenv": False,
        "prompt": False,
        # What connect() does for a remote PostHog, the users' case: windows at once. (From a
        # loopback host it reads one window at a time unless told; tests of that say so.)
        "max_concurrent_queries": 3,
    }
    if cache_dir is None:
        options["cache"] = False
    else:
        options["cache_dir"] = cache_dir
    options.update(overrides)
    key = options.pop("api_key", server.api_key)
    return php.connect(key, **options)


def mocked_connection(
    tmp_path: Path, **overrides: Any
) -> tuple[php.PostHog, requests_mock.Adapter]:
    """connect() to MOCK_HOST through a requests-mock adapter that already answers @me, and
    property_definitions with none (so properties are typed by value).

    No retries unless `retry=` says otherwise; the cache lives in tmp_path/c.
    """
    import requests
    import requests_mock

    import posthog_pandas as php

    session = requests.Session()
    adapter = requests_mock.Adapter()
    session.mount("https://", adapter)
    adapter.register_uri("GET", f"{MOCK_HOST}/api/users/@me/", json=MOCK_ME)
    adapter.register_uri(
        "GET", f"{MOCK_HOST}/api/projects/3/property_definitions/", json=NONE_DEFINED
    )
    options: dict[str, Any] = {
        "host": MOCK_HOST,
        "session": session,
        "cache_dir": tmp_path / "c",
        "progress": False,
        "retry": php.RetrySettings(attempts=0),
    }
    options.update(overrides)
    return php.connect(KEY, **options), adapter


MockConnect = Callable[..., "tuple[php.PostHog, requests_mock.Adapter]"]


@pytest.fixture()
def mock_connect(tmp_path: Path) -> MockConnect:
    """mocked_connection bound to this test's tmp_path; keyword arguments override."""

    def factory(**overrides: Any) -> tuple[php.PostHog, requests_mock.Adapter]:
        return mocked_connection(tmp_path, **overrides)

    return factory


def open_files_of(path: Path) -> int:
    """How many of this process's file descriptors are `path` or its WAL and shared memory."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") in names
        except OSError:  # closed meanwhile
            pass
    return count


def wait_until(condition: Callable[[], object], seconds: float = 5) -> None:
    """Poll `condition` until it holds or `seconds` pass, for what another thread finishes
    just after the call that waited for it returns; the test then asserts it."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
