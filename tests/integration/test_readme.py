"""Every Python snippet in the README runs, in order, against the local server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posthog_pandas.server import LocalPostHog

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_python_snippets() -> None:
    assert len(python_blocks()) >= 4


def test_readme_snippets_run(server: LocalPostHog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", server.api_key)
    monkeypatch.setenv("POSTHOG_HOST", server.url)
    namespace: dict[str, object] = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert Path("events.parquet").exists() and Path("persons.csv.gz").exists()
