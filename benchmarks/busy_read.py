"""Reading a large response while another thread is busy: `response.content` vs one read.

    .venv/bin/python benchmarks/busy_read.py [--rows 50000] [--runs 3]

posthog-pandas fetches page N+1 on a background thread while the main thread turns page N into
a DataFrame. requests' `response.content` reads the body 10 kB at a time, and after each read
the reading thread must win the GIL back from the busy main thread, which holds it for up to
the switch interval (5 ms): a 14 MB page then takes seconds. Reading the body in one call
(`iter_content(chunk_size=None)`, what `posthog_pandas._http` does) avoids the convoy.

This script starts the local server, asks for one HogQL page of `--rows` events, and times
both ways of reading it with the main thread idle and busy (a pure-Python loop), printing the
medians and the busy/idle ratios measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posthog_pandas.server import LocalPostHog  # noqa: E402


def _spin(stop: threading.Event) -> None:
    total = 0
    while not stop.is_set():
        for i in range(1000):
            total += i


def _timed_read(
    session: requests.Session, url: str, body: dict[str, Any], one_read: bool, busy: bool
) -> float:
    stop = threading.Event()
    spinner = threading.Thread(target=_spin, args=(stop,))
    if busy:
        spinner.start()
    started = time.perf_counter()
    try:
        response = session.post(url, json=body, stream=True)
        if one_read:
            size = len(b"".join(response.iter_content(chunk_size=None)))
        else:
            size = len(response.content)
    finally:
        stop.set()
        if busy:
            spinner.join()
    assert response.status_code == 200 and size > 0, response.status_code
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    with LocalPostHog(persons=1_000, events=args.rows) as server:
        session = requests.Session()
        session.headers.update(
            {"Authorization": f"Bearer {server.api_key}", "Accept-Encoding": "identity"}
        )
        url = f"{server.url}/api/projects/{server.project_id}/query/"
        sql = (
            f"SELECT uuid, event, distinct_id, timestamp, properties FROM events LIMIT {args.rows}"
        )
        body = {"query": {"kind": "HogQLQuery", "query": sql}}
        session.post(url, json=body).raise_for_status()  # warm the server's engine
        results: dict[tuple[str, str], float] = {}
        for one_read in (False, True):
            for busy in (False, True):
                times = [_timed_read(session, url, body, one_read, busy) for _ in range(args.runs)]
                way = "one read" if one_read else "response.content"
                results[(way, "busy" if busy else "idle")] = statistics.median(times)
    print(f"{'read':<18} {'main thread':<12} {'median (s)':>10}")
    for (way, state), seconds in results.items():
        print(f"{way:<18} {state:<12} {seconds:>10.3f}")
    for way in ("response.content", "one read"):
        ratio = results[(way, "busy")] / results[(way, "idle")]
        print(f"{way}: busy / idle = {ratio:.1f}x")


if __name__ == "__main__":
    main()
