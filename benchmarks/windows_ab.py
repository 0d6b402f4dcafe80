"""Three windows at once against one query at a time, on loopback: the W2 cold pull (200,000
events) with `max_concurrent_queries` 3 and 1, alternating by round, each run a fresh process
with an empty cache and the server's query cache emptied first. Prints each run and the
per-round ratios 3/1.

    python benchmarks/windows_ab.py [--runs 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import run

SIZES = {"persons": 20_000, "events": 200_000}


def pull(server: run.Server, out: Path, tag: str, workers: int) -> dict[str, float]:
    """One cold W2 pull with `workers` queries at once; its result line."""
    server.cold()
    command = [
        run.PYTHON, str(run.HERE / "systems" / "posthog_pandas_sys.py"),
        "--url", server.info["url"], "--key", server.info["api_key"], "--workload", "W2",
        "--out", str(out), "--tag", tag, "--cache-dir", tempfile.mkdtemp(dir=out),
        "--mode", "cold", "--max-concurrent-queries", str(workers),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=run.ROOT)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    walls: dict[int, list[float]] = {1: [], 3: []}
    with run.temporary_server("windows-ab-", SIZES, seed=42) as (server, out):
        for round_ in range(args.runs):
            for workers in (1, 3) if round_ % 2 == 0 else (3, 1):
                result = pull(server, out, f"{round_}-{workers}", workers)
                walls[workers].append(result["wall"])
                print(f"round {round_}: {workers} at once: {result['wall']:.2f} s, "
                      f"{result['rss_mb']:.0f} MB", flush=True)  # fmt: skip
    ratios = [three / one for three, one in zip(walls[3], walls[1], strict=True)]
    print(
        f"median wall: 3 at once {statistics.median(walls[3]):.2f} s, one at a time "
        f"{statistics.median(walls[1]):.2f} s; per-round ratio 3/1: median "
        f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
