"""Fixtures of the reliability suite (helpers live in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture()
def scripts(tmp_path: Path) -> Iterator[Path]:
    """A directory for the small scripts that child processes run."""
    directory = tmp_path / "scripts"
    directory.mkdir()
    yield directory
