"""_property_types: PostHog's property definitions type the properties.* columns; read once
per connection, and a key that may not read them gets today's typing by value, silently."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests_mock

from tests.conftest import MOCK_HOST, MockConnect

DEFINITIONS = f"{MOCK_HOST}/api/projects/3/property_definitions/"
PERSONS = f"{MOCK_HOST}/api/projects/3/persons/"
QUERY = f"{MOCK_HOST}/api/projects/3/query/"

PERSON_ROWS = [
    {
        "id": "p1",
        "uuid": "p1",
        "distinct_ids": ["a"],
        "properties": {"first_seen": "2024-01-02T03:04:05+00:00", "n": 3, "beta": "true"},
    },
    {"id": "p2", "uuid": "p2", "distinct_ids": ["b"], "properties": {"n": "7", "beta": False}},
]
PERSON_DEFINITIONS = [
    {"id": "1", "name": "first_seen", "property_type": "DateTime", "is_numerical": False},
    {"id": "2", "name": "n", "property_type": "Numeric", "is_numerical": True},
    {"id": "3", "name": "beta", "property_type": "Boolean", "is_numerical": False},
]


def definitions_page(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(rows), "next": None, "previous": None, "results": rows}


def serve_persons(adapter: requests_mock.Adapter, definitions: Any) -> Any:
    adapter.register_uri("GET", PERSONS, json={"results": PERSON_ROWS, "next": None})
    return adapter.register_uri("GET", DEFINITIONS, **definitions)


def test_person_properties_are_typed_by_their_definitions(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    route = serve_persons(adapter, {"json": definitions_page(PERSON_DEFINITIONS)})
    frame = ph.persons()
    assert {c: str(t) for c, t in frame.dtypes.items() if c.startswith("properties.")} == {
        "properties.beta": "boolean",
        "properties.first_seen": "datetime64[ns, UTC]",
        "properties.n": "Int64",
    }
    assert frame["properties.n"].tolist() == [3, 7]
    assert frame["properties.beta"].tolist() == [True, False]
    assert route.call_count == 1
    assert route.last_request.qs == {"type": ["person"], "limit": ["1000"]}


def test_definitions_are_read_once_per_connection(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    route = serve_persons(adapter, {"json": definitions_page(PERSON_DEFINITIONS)})
    ph.persons(cache=False)
    ph.persons(cache=False)
    assert route.call_count == 1
    ph.persons(refresh=True)  # a refresh reads them again
    assert route.call_count == 2


def test_cohort_persons_share_the_person_definitions(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    route = serve_persons(adapter, {"json": definitions_page(PERSON_DEFINITIONS)})
    adapter.register_uri(
        "GET",
        f"{MOCK_HOST}/api/projects/3/cohorts/4/persons/",
        json={"results": PERSON_ROWS, "next": None},
    )
    ph.persons()
    members = ph.cohort_persons(4)
    assert str(members["properties.first_seen"].dtype) == "datetime64[ns, UTC]"
    assert route.call_count == 1


@pytest.mark.parametrize("status", [403, 404])
def test_a_key_that_may_not_read_them_gets_typing_by_value(
    mock_connect: MockConnect, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    ph, adapter = mock_connect()
    body = {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'property_definition:read'",
        "attr": None,
    }
    route = serve_persons(adapter, {"status_code": status, "json": body})
    with caplog.at_level(logging.INFO, logger="posthog_pandas"):
        frame = ph.persons()
        ph.persons(cache=False)
    assert str(frame["properties.first_seen"].dtype) == "string"
    assert frame["properties.n"].tolist() == ["3", "7"]  # an int and text: the mixed rule
    assert route.call_count == 1  # remembered for the connection
    assert any("typing properties by value" in r.getMessage() for r in caplog.records)


def test_event_properties_use_the_event_definitions(mock_connect: MockConnect) -> None:
    ph, adapter = mock_connect()
    route = adapter.register_uri(
        "GET",
        DEFINITIONS,
        json=definitions_page([{"id": "9", "name": "revenue", "property_type": "Numeric"}]),
    )
    adapter.register_uri(
        "POST",
        QUERY,
        json={
            "columns": ["uuid", "event", "distinct_id", "timestamp", "properties"],
            "types": ["UUID", "String", "String", "DateTime64(6, 'UTC')", "String"],
            "results": [
                ["u1", "purchase", "a", "2024-01-02T00:00:00Z", '{"revenue": "12.5"}'],
                ["u2", "purchase", "a", "2024-01-03T00:00:00Z", '{"revenue": 3}'],
            ],
            "hasMore": False,
        },
    )
    ph.events(after="2024-01-01", before="2024-02-01", columns=["event"])
    assert route.call_count == 0  # a projection without properties: nothing to type
    frame = ph.events(after="2024-01-01", before="2024-02-01")
    assert str(frame["properties.revenue"].dtype) == "Float64"
    assert frame["properties.revenue"].tolist() == [12.5, 3.0]
    assert route.call_count == 1
    assert route.last_request.qs == {"type": ["event"], "limit": ["1000"]}
