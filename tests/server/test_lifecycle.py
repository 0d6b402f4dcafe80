"""LocalPostHog's lifecycle: stop() means no request is still being handled, and leaving the
`with` block releases DuckDB (a DuckDB query or connection alive at interpreter exit can abort
the process, duckdb/duckdb#13904)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from posthog_pandas.server import LocalPostHog
from posthog_pandas.server import query as server_query

QUERY = "/api/projects/1/query/"


def post_query(srv: LocalPostHog, sql: str, timeout: float = 30) -> requests.Response:
    return requests.post(
        srv.url + QUERY,
        json={"query": {"kind": "HogQLQuery", "query": sql}},
        headers={"Authorization": f"Bearer {srv.api_key}"},
        timeout=timeout,
    )


def handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_stop_returns_only_when_the_query_in_progress_has_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, finished = threading.Event(), threading.Event()
    real_engine = server_query.create_engine

    class SlowEngine:  # a long DuckDB query: it does not watch for the server stopping
        def __init__(self, conn: Any, timezone: str = "UTC") -> None:
            self.inner = real_engine(conn, timezone)

        def run(self, query: str, values: Any = None) -> Any:
            started.set()
            time.sleep(0.5)
            result = self.inner.run(query, values)
            finished.set()
            return result

    monkeypatch.setattr(server_query, "create_engine", SlowEngine)
    srv = LocalPostHog(persons=20, events=50, seed=1).start()
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            post_query(srv, "select count() from events")
        except requests.RequestException as exc:  # stop() cut the connection: expected
            outcome.append(exc)

    client = threading.Thread(target=call)
    client.start()
    assert started.wait(10)
    srv.close()
    assert finished.is_set()  # stop() waited for the handler, which finished its query
    assert handler_threads() == []
    client.join(10)
    assert len(outcome) == 1  # the client saw the connection closed, not an answer


def test_leaving_the_block_releases_duckdb_and_start_reopens_it() -> None:
    with LocalPostHog(persons=20, events=50, seed=1) as srv:
        assert post_query(srv, "select count() from events").json()["results"] == [[50]]
    store = srv._state.projects[1]
    assert store._conn is None  # closed at exit, not left to interpreter shutdown
    assert len(srv.dataset().events) == 50  # the generated rows stay readable
    srv.start()
    try:
        assert post_query(srv, "select count() from events").json()["results"] == [[50]]
    finally:
        srv.close()
    srv.close()  # twice is harmless
