"""The Cloud-like latency profile: delays per query, per row, per list request, and a bandwidth
cap. Asserted through the delays the server asks for (a recorded wait), never wall-clock time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from posthog_pandas.server import LocalPostHog
from posthog_pandas.server.latency import LATENCY_PROFILES, Latency, latency_named

PERSONS = "/api/projects/1/persons/"
QUERY = "/api/projects/1/query/"


class RecordedWaits(threading.Event):
    """A stopping event whose wait() records the seconds asked for and returns at once."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout:
            self.asked.append(round(timeout, 6))
        return False


@pytest.fixture
def srv() -> Iterator[LocalPostHog]:
    server = LocalPostHog(persons=30, events=200, latency="cloud").start()
    try:
        yield server
    finally:
        server.close()


def _record_waits(server: LocalPostHog) -> RecordedWaits:
    waits = RecordedWaits()
    server._state.stopping = waits
    return waits


def _post_query(server: LocalPostHog, sql: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {"query": {"kind": "HogQLQuery", "query": sql}}
    return requests.post(server.url + QUERY, json=body, headers=headers, timeout=10)


def test_the_cloud_profile_has_the_issues_figures() -> None:
    assert LATENCY_PROFILES["cloud"] == Latency(
        per_query=1.0, per_row=10e-6, per_list=0.15, bandwidth=25e6
    )
    assert latency_named(None) == Latency() == LATENCY_PROFILES["none"]
    assert not Latency().active and LATENCY_PROFILES["cloud"].active
    with pytest.raises(ValueError, match="latency='mars' is not a profile; use one of 'none'"):
        latency_named("mars")


def test_a_query_holds_its_slot_one_second_plus_ten_microseconds_a_row(srv: LocalPostHog) -> None:
    waits = _record_waits(srv)
    answer = _post_query(srv, "select uuid from events limit 150")
    assert answer.status_code == 200 and len(answer.json()["results"]) == 150
    assert waits.asked == [1.0015]  # 1.0 s + 150 rows x 10 us; no list delay for /query/


def test_a_list_request_waits_a_round_trip(srv: LocalPostHog) -> None:
    waits = _record_waits(srv)
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    assert requests.get(srv.url + PERSONS, headers=headers, timeout=10).status_code == 200
    assert waits.asked == [0.15]


def test_the_default_server_adds_no_delay() -> None:
    server = LocalPostHog(persons=5, events=20).start()
    try:
        waits = _record_waits(server)
        assert _post_query(server, "select 1").status_code == 200
        assert waits.asked == [] and server.latency == Latency()
    finally:
        server.close()


def test_bodies_are_sent_in_chunks_paced_to_the_bandwidth() -> None:
    now = [0.0]  # writes take no time; only the pauses move the clock

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    pauses: list[float] = []
    written: list[bytes] = []
    Latency(bandwidth=65536.0).write(written.append, b"x" * 200_000, pause, lambda: now[0])
    assert [len(w) for w in written] == [65536, 65536, 65536, 3392]
    assert pauses == [1.0, 1.0, 1.0, 3392 / 65536]
    assert now[0] == 200_000 / 65536  # the whole body took exactly size / bandwidth


def test_the_server_counts_the_most_queries_in_flight_at_once(srv: LocalPostHog) -> None:
    srv.latency = Latency()
    assert srv.query_peak == 0
    assert _post_query(srv, "select 1").status_code == 200
    assert srv.query_peak == 1
