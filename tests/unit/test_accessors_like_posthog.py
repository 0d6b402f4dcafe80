"""What the accessors send where the real PostHog differs from a friendly server: insight
refresh modes, group property definitions, the recordings' range (a scripted server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests_mock

import posthog_pandas as php
from tests.conftest import MOCK_HOST, MockConnect

HOST = MOCK_HOST
INSIGHT = f"{HOST}/api/projects/3/insights/7/"
SERIES = [{"label": "$pageview", "days": ["2024-01-01"], "data": [3]}]


def test_insight_asks_posthog_to_compute_when_its_cache_is_empty(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    route = adapter.register_uri("GET", INSIGHT, json={"id": 7, "result": SERIES})
    assert ph.insight(7)["value"].tolist() == [3.0]
    assert route.last_request.qs["refresh"] == ["blocking"]  # not force_cache: never compute
    ph.insight(7, refresh=True)
    assert route.last_request.qs["refresh"] == ["force_blocking"]


def test_an_insight_without_a_result_is_an_error_never_an_empty_frame(
    mock_connect: MockConnect,
) -> None:
    ph, adapter = mock_connect()
    route = adapter.register_uri(
        "GET", INSIGHT, json={"id": 7, "name": "Signups", "result": None, "last_refresh": None}
    )
    with pytest.raises(php.ResponseFormatError) as info:
        ph.insight(7)
    message = str(info.value)
    assert "Insight 7 ('Signups') came back without a result" in message
    assert "Open it in PostHog once, or call ph.insight(7, refresh=True)" in message
    with pytest.raises(php.ResponseFormatError):
        ph.insight(7)
    assert route.call_count == 2  # the empty answer was not cached


def test_an_insight_posthog_failed_to_compute_says_why(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    status = {"complete": True, "error": True, "error_message": "Query exceeded memory"}
    adapter.register_uri("GET", INSIGHT, json={"id": 7, "result": None, "query_status": status})
    with pytest.raises(php.ResponseFormatError, match="failed to compute it \\(Query exceeded"):
        ph.insight(7)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda ph: ph.property_definitions(type="group"),
            "property_definitions(type='group') needs group_type_index=0..4",
        ),
        (
            lambda ph: ph.property_definitions(type="group", group_type_index=5),
            "group_type_index must be an integer from 0 to 4, got 5",
        ),
        (
            lambda ph: ph.property_definitions(type="person", group_type_index=0),
            "property_definitions(type='person') takes no group_type_index",
        ),
    ],
)
def test_group_property_definitions_need_a_group_type_before_any_request(
    mock_connect: MockConnect, call, message: str
) -> None:
    ph, adapter = mock_connect()
    before = adapter.call_count
    with pytest.raises(php.ConfigurationError) as info:
        call(ph)
    assert message in str(info.value)
    assert adapter.call_count == before


def test_group_property_definitions_send_the_group_type(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    route = adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/3/property_definitions/",
        json={"count": 1, "next": None, "results": [{"id": "x", "name": "industry"}]},
    )
    frame = ph.property_definitions(type="group", group_type_index=0)
    assert frame["name"].tolist() == ["industry"]
    assert route.last_request.qs["type"] == ["group"]
    assert route.last_request.qs["group_type_index"] == ["0"]


def recordings_route(adapter: requests_mock.Adapter) -> requests_mock.adapter._Matcher:
    return adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/3/session_recordings/",
        json={"results": [], "has_next": False, "version": 3},
    )


def test_recordings_without_dates_ask_for_everything_posthog_keeps(
    mock_connect: MockConnect,
) -> None:
    ph, adapter = mock_connect()
    route = recordings_route(adapter)
    ph.session_recordings()
    sent = route.last_request.qs
    start = datetime.fromisoformat(sent["date_from"][0].upper().replace("Z", "+00:00"))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert start == today - timedelta(days=5 * 365)  # PostHog's longest retention, 5y
    assert "date_to" not in sent


def test_recordings_with_dates_send_them(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    route = recordings_route(adapter)
    ph.session_recordings(date_from="2024-01-02", date_to="2024-01-05T12:00:00Z")
    sent = route.last_request.qs
    assert sent["date_from"] == ["2024-01-02t00:00:00.000000z"]  # requests_mock lowercases
    assert sent["date_to"] == ["2024-01-05t12:00:00.000000z"]
