"""Soak run (not in CI): 1,000,000 events and 20,000 persons pulled under the mixed faults.

    .venv/bin/python benchmarks/soak.py [--events 1000000] [--persons 20000] [--json out.json]

The local PostHog serves the data with the issue's fault mix (10% 429 with Retry-After 1, 5% 503,
2% connection resets mid-body, 1% malformed JSON with 200, 1% HTML login pages, short persons
pages with `next`). The client runs in a child process, so its peak RSS is its own and not the
server's; it pulls once without faults (baseline) and once with them, each into a fresh cache,
then once more from the warm cache. The rows are checked against the server's (ids compared:
no duplicates, no gaps) and the report prints the Markdown section for benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIXED = {
    "rate_429": 0.10,
    "retry_after": 1,
    "rate_503": 0.05,
    "reset_mid_body": 0.02,
    "malformed_json": 0.01,
    "html_login": 0.01,
    "short_pages": True,
    "seed": 1,
}


def digest(ids: Any) -> str:
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode()).hexdigest()


# -- the client (child process) ---------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork + exec,
    so a child would report the (large) server process's peak instead of its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def client(url: str, key: str, cache: str, after: str, before: str) -> None:
    """Pull persons and events; print one JSON line with what was received and what it cost."""
    import posthog_pandas as php

    ph = php.connect(key, host=url, cache_dir=cache, progress=False, dotenv=False, prompt=False)
    started = time.perf_counter()
    persons = ph.persons()
    persons_s = time.perf_counter() - started
    started = time.perf_counter()
    events = ph.events(after=after, before=before)
    events_s = time.perf_counter() - started
    stats = ph.request_stats
    result = {
        "persons": len(persons),
        "persons_unique": int(persons["uuid"].nunique()),
        "persons_digest": digest(persons["uuid"]),
        "persons_seconds": round(persons_s, 2),
        "events": len(events),
        "events_unique": int(events["uuid"].nunique()),
        "events_digest": digest(events["uuid"]),
        "events_seconds": round(events_s, 2),
        "events_columns": len(events.columns),
        "requests": stats.requests,
        "retries": stats.retries,
        "waited_seconds": round(sum(stats.waits), 2),
        "mbytes_received": round(stats.bytes / 1e6, 1),
        "cache_hits": ph.cache_stats.hits,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result))


# -- the driver ---------------------------------------------------------------------------------


def run_client(url: str, key: str, cache: Path, after: str, before: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, __file__, "--client", url, key, str(cache), after, before]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"client failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def soak(events: int, persons: int) -> dict[str, Any]:
    from posthog_pandas.server import Faults, LocalPostHog

    started = time.perf_counter()
    with LocalPostHog(persons=persons, events=events, seed=1) as srv:
        setup = time.perf_counter() - started
        start, end = srv.time_range()
        after, before = start.isoformat(), end.isoformat()
        expected = {
            "persons": persons,
            "persons_digest": digest(srv.dataset().persons["id"]),
            "events": events,
            "events_digest": digest(srv.dataset().events["uuid"]),
        }
        runs: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            srv.set_faults(None)
            runs["baseline"] = run_client(srv.url, srv.api_key, Path(tmp, "a"), after, before)
            srv.set_faults(Faults(**MIXED))  # type: ignore[arg-type]
            runs["mixed faults"] = run_client(srv.url, srv.api_key, Path(tmp, "b"), after, before)
            runs["warm cache"] = run_client(srv.url, srv.api_key, Path(tmp, "b"), after, before)
            statuses: dict[int, int] = {}
            for request in srv.requests:
                statuses[request.status] = statuses.get(request.status, 0) + 1
    for run in runs.values():
        run["correct"] = all(
            [
                run["persons"] == run["persons_unique"] == expected["persons"],
                run["persons_digest"] == expected["persons_digest"],
                run["events"] == run["events_unique"] == expected["events"],
                run["events_digest"] == expected["events_digest"],
            ]
        )
    return {
        "events": events,
        "persons": persons,
        "server_setup_seconds": round(setup, 1),
        "server_statuses": statuses,
        "runs": runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Soak: {report['events']:,} events under mixed faults",
        "",
        f"`benchmarks/soak.py`: {report['events']:,} events and {report['persons']:,} persons "
        "from the local PostHog with 10% 429 (Retry-After 1), 5% 503, 2% resets mid-body, 1% "
        "malformed JSON with 200, 1% HTML login pages and short persons pages; default "
        "RetrySettings. The client runs in its own process (peak RSS is the client's). "
        f"Machine: {report['machine']}. Server data generation: "
        f"{report['server_setup_seconds']} s.",
        "",
        "| Run | Rows correct | Events s | Persons s | Requests | Retries | Waited s | "
        "MB received | Peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in report["runs"].items():
        ok = "yes" if run["correct"] else "**NO**"
        lines.append(
            f"| {name} | {ok} ({run['events']:,} events, {run['persons']:,} persons) | "
            f"{run['events_seconds']} | {run['persons_seconds']} | {run['requests']} | "
            f"{run['retries']} | {run['waited_seconds']} | {run['mbytes_received']} | "
            f"{run['peak_rss_mb']} |"
        )
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report["server_statuses"].items()))
    lines += [
        "",
        f"Server-side status counts over the three runs: {statuses} (a reset or a "
        "malformed body is logged as the 200 it started as). Rows correct means: as many rows "
        "as the server has, no duplicate ids, and the sorted ids hash equal to the server's.",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    report = soak(args.events, args.persons)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    if not all(run["correct"] for run in report["runs"].values()):
        raise SystemExit("rows were not exactly the server's")


if __name__ == "__main__":
    main()
