"""The benchmark's server process: a LocalPostHog plus the ids every system must return.

`python benchmarks/server.py --persons N --events N --seed S --info info.json` generates the
data, starts the server on 127.0.0.1, writes the expected person ids and event uuids (one per
line) and `info.json` (url, api_key, project_id, after, before, files), then serves until its
standard input closes (the runner holds the pipe) or it is terminated.

A runner may also write commands to standard input, one a line: `cold` forgets the answers
the server's query cache holds (PostHog's result cache: a pull right after another would get
its pages without their latency) and restarts the count of queries in flight; `peak` prints
`{"query_peak": N}` on standard output, the most queries computed at once since the last
`cold` (benchmarks/cloud.py checks that a pull never has more than PostHog's 3 in flight).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from posthog_pandas.server import LocalPostHog


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--persons", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", default="2024-01-01")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--info", required=True, help="where to write the JSON description")
    p.add_argument("--latency", default="none", choices=("none", "cloud"))
    args = p.parse_args()
    srv = LocalPostHog(
        persons=args.persons,
        events=args.events,
        seed=args.seed,
        start=args.start,
        days=args.days,
        port=args.port,
        # PostHog's per-user 180/min on persons would make airbyte's 100-row pages (200+
        # requests for W1) wait a minute: the benchmark times transfers, not that throttle.
        persons_throttle=False,
        latency=args.latency,
    )
    srv.start()
    info_path = Path(args.info)
    folder = info_path.parent
    ds = srv.dataset()
    after, before = srv.time_range()
    persons_file = folder / "expected-persons.ids"
    events_file = folder / "expected-events.ids"
    persons_file.write_text("".join(f"{v}\n" for v in ds.persons["id"]), encoding="utf-8")
    in_range = ds.events[(ds.events["timestamp"] >= after) & (ds.events["timestamp"] < before)]
    events_file.write_text("".join(f"{v}\n" for v in in_range["uuid"]), encoding="utf-8")
    info = {
        "url": srv.url,
        "api_key": srv.api_key,
        "project_id": srv.project_id,
        "after": after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "before": before.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "persons": len(ds.persons),
        "events": len(in_range),
        "persons_ids": str(persons_file),
        "events_ids": str(events_file),
    }
    tmp = info_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    tmp.replace(info_path)  # the runner polls for this file
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for line in sys.stdin:  # ends when the runner closes the pipe (or dies)
            command(srv, line.strip())
    finally:
        srv.close()


def command(srv: LocalPostHog, name: str) -> None:
    """Answer one line of the runner (see the module docstring). The query cache is reached
    directly: emptying it is a benchmark control, not part of LocalPostHog's API."""
    if name == "cold":
        for cache in srv._state.query_cache.values():
            cache.clear()
        srv.reset_query_peak()
    elif name == "peak":
        print(json.dumps({"query_peak": srv.query_peak}), flush=True)


if __name__ == "__main__":
    main()
