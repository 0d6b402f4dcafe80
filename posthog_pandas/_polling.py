"""Waiting for a query PostHog runs asynchronously, and cancelling it.

PostHog answers an asynchronous query (`refresh: "async"`) with 202 and a `query_status` whose
`complete` is false; GET `query/{id}/` reports the status (202 while running, 200 when complete,
400 with a message on an error) and, with `show_progress=true`, ClickHouse's progress. DELETE
`query/{id}/` cancels it: PostHog revokes the queued task and kills the query on ClickHouse
(posthog/api/query.py `QueryViewSet.retrieve`, `destroy`; posthog/clickhouse/client/
execute_async.py `cancel_query`). The id is the `client_query_id` the client sent, so a query
can be cancelled even before PostHog has answered the POST.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from posthog_pandas._core import Connection
from posthog_pandas.exceptions import (
    PostHogError,
    QueryError,
    QueryStillRunningError,
    ResponseFormatError,
)

log = logging.getLogger("posthog_pandas")

POLL_INTERVAL = 0.5
QUERY_TIMEOUT = 600.0  # how long to poll an asynchronous query before giving up


def incomplete_status(data: Any) -> dict[str, Any] | None:
    """The answer's `query_status` while PostHog is still running the query, else None."""
    status = data.get("query_status") if isinstance(data, dict) else None
    return status if isinstance(status, dict) and status.get("complete") is False else None


@contextlib.contextmanager
def cancelled_on_interrupt(conn: Connection, url: str, query_id: str) -> Iterator[None]:
    """On KeyboardInterrupt, ask PostHog to cancel query `query_id` (DELETE `{url}{id}/`),
    then re-raise: an interrupted notebook cell leaves nothing running on PostHog."""
    try:
        yield
    except KeyboardInterrupt:
        cancel(conn, url, query_id)
        raise


def cancel(conn: Connection, url: str, query_id: str) -> None:
    """DELETE query/{id}/; a failure to cancel is logged, never raised over the interrupt."""
    try:
        conn.http.send("DELETE", f"{url}{query_id}/")
        log.info("cancelled query %s on PostHog", query_id)
    except (PostHogError, requests.RequestException) as exc:
        log.warning("could not cancel query %s on PostHog: %s", query_id, exc)


def await_completion(
    conn: Connection,
    url: str,
    data: Any,
    *,
    progress: bool | None = None,
    desc: str = "query",
) -> Any:
    """Poll an answer PostHog is still computing until it is complete; return the complete
    answer. A bar shows ClickHouse's rows read (unless `progress` is False); Ctrl-C cancels
    the query on PostHog before the interrupt goes on."""
    status = incomplete_status(data)
    if status is None:
        return data
    query_id = status.get("id")
    if not isinstance(query_id, str) or not query_id:
        raise ResponseFormatError(
            f"The query API at {url} answered with an incomplete query_status that has no id "
            "to poll."
        )
    with cancelled_on_interrupt(conn, url, query_id), _bar(progress, desc) as show:
        deadline = time.monotonic() + QUERY_TIMEOUT
        while True:
            if time.monotonic() > deadline:
                cancel(conn, url, query_id)
                raise QueryStillRunningError(
                    f"Query {query_id} was still running on PostHog after {QUERY_TIMEOUT:.0f} s "
                    "(it was cancelled); narrow the time range or aggregate more, then run it "
                    "again."
                )
            time.sleep(POLL_INTERVAL)
            polled = conn.fetcher.get(
                f"{url}{query_id}/", {"show_progress": "true"}, resource="query", cache=False
            )
            current = polled.get("query_status") if isinstance(polled, dict) else None
            if not isinstance(current, dict):
                raise ResponseFormatError(f"Polling query {query_id} answered without a status.")
            if current.get("error"):
                raise QueryError(
                    f"The query failed on PostHog: {current.get('error_message') or 'unknown'}",
                    status=400,
                )
            show(current.get("query_progress"))
            if current.get("complete"):
                results = current.get("results")
                return results if isinstance(results, dict) else polled


@contextlib.contextmanager
def _bar(progress: bool | None, desc: str) -> Iterator[Callable[[Any], None]]:
    """A tqdm bar fed with ClickHouse's progress (`rows_read` of `estimated_rows_total`)."""
    if progress is False:
        yield lambda _progress: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=None, desc=desc, unit="rows", leave=False)

    def show(query_progress: Any) -> None:
        if not isinstance(query_progress, dict):
            bar.refresh()
            return
        total, done = query_progress.get("estimated_rows_total"), query_progress.get("rows_read")
        if isinstance(total, int) and total > 0:
            bar.total = total
        if isinstance(done, int) and done >= bar.n:
            bar.update(done - bar.n)

    try:
        yield show
    finally:
        bar.close()
