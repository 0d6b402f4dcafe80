"""Shared fixtures: every test runs with a clean environment and a private cache directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

KEY = "phx_TESTKEY_0123456789abcdefghijklmnopqrstuvwxyz"


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
