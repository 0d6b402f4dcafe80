"""The progress bars of real pulls (terminal tqdm): a total when one is knowable, else none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def first_bar(err: str) -> str:
    """The bar as first drawn (later refreshes depend on the clock)."""
    return err.split("\r")[1]


def test_events_with_a_limit_count_towards_it(
    connect: Callable[..., Any], server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    after, before = server.time_range()
    frame = connect(progress=True).events(after=after, before=before, limit=5)
    assert len(frame) == 5
    assert (
        first_bar(capsys.readouterr().err)
        == "events:   0%|          | 0/5 rows [00:00<?, ? rows/s]"
    )


def test_events_without_a_limit_show_rows_and_rate_only(
    connect: Callable[..., Any], server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    after, before = server.time_range()
    connect(progress=True).events(after=after, before=before)
    assert first_bar(capsys.readouterr().err) == "events: 0 rows [00:00, ? rows/s]"
