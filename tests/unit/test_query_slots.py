"""The connection's query slots: connect(max_concurrent_queries=) checked against PostHog's 3,
and a 429 for PostHog's concurrency limit lowering the limit until queries are answered again."""

from __future__ import annotations

import threading
import time

import pytest

import posthog_pandas as php
from posthog_pandas._config import windows_at_once
from posthog_pandas._query_slots import RECOVER_AFTER, QuerySlots


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True])
def test_max_concurrent_queries_must_be_a_whole_number_from_one(value: object) -> None:
    with pytest.raises(php.ConfigurationError, match="give a whole number of queries from 1 to 3"):
        php.PacingSettings(max_concurrent_queries=value)  # type: ignore[arg-type]


def test_more_than_posthogs_three_is_refused_with_the_reason() -> None:
    with pytest.raises(php.ConfigurationError) as info:
        php.connect("phx_" + "a" * 40, host="https://us.posthog.com", project_id=1,
                    max_concurrent_queries=4, dotenv=False, prompt=False, cache=False)  # fmt: skip
    assert str(info.value) == (
        "max_concurrent_queries=4: PostHog runs at most 3 queries at once per organization and "
        "answers more with 429 (Exceeded maximum concurrency limit), so more would only be "
        "refused; use 1 to 3."
    )


@pytest.mark.parametrize(
    ("host", "chosen", "windows"),
    [
        ("https://us.posthog.com", None, 3),  # a remote PostHog: its 3 slots
        ("https://posthog.example.com:8443", None, 3),
        ("http://127.0.0.1:8000", None, 1),  # a server sharing this machine's cores
        ("http://localhost:8000", None, 1),
        ("http://[::1]:8000", None, 1),
        ("http://127.0.0.1:8000", 3, 3),  # asked for: a tunnel to a remote PostHog
        ("https://us.posthog.com", 2, 2),
    ],
)
def test_windows_at_once_default_to_three_remote_and_one_on_loopback(
    host: str, chosen: int | None, windows: int
) -> None:
    ph = php.connect(host=host, project_id=1, max_concurrent_queries=chosen, login=False,
                     dotenv=False, prompt=False, cache=False)  # fmt: skip
    assert windows_at_once(ph.settings) == windows
    # the slots every query shares stay PostHog's 3 unless asked: only windows default lower
    assert ph.settings.pacing.query_slots == (chosen or 3)


def test_refusals_lower_the_limit_to_one_and_answers_raise_it_back() -> None:
    slots = QuerySlots(3)
    slots.refused()
    assert slots.limit == 2
    slots.refused()
    slots.refused()
    assert slots.limit == 1 and slots.lowest == 1  # never below one
    for _ in range(RECOVER_AFTER):
        slots.answered()
    assert slots.limit == 2
    for _ in range(2 * RECOVER_AFTER):
        slots.answered()
    assert slots.limit == 3  # never above what was asked


def test_a_lowered_limit_holds_the_next_query_until_a_slot_frees() -> None:
    slots = QuerySlots(2)
    slots.refused()
    order: list[str] = []
    with slots.slot():
        waiting = threading.Thread(target=lambda: _hold(slots, order))
        waiting.start()
        time.sleep(0.05)
        order.append("first done")
    waiting.join()
    assert order == ["first done", "second ran"]


def _hold(slots: QuerySlots, order: list[str]) -> None:
    with slots.slot():
        order.append("second ran")
