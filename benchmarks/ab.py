"""Two versions of posthog-pandas against one server: the W2 cold pull, alternately with each.

    python benchmarks/ab.py --old DIR [--new DIR] [--runs 8]   # 200,000 events
    python benchmarks/ab.py --old DIR --quick                   # 10,000 events, 1 round

DIR holds a `posthog_pandas` package, e.g. the code of a commit:
`mkdir DIR && git archive <commit> posthog_pandas | tar -x -C DIR`. `--new` defaults to this
checkout. Each round pulls W2 cold once with each version, each in a fresh process with an
empty cache, in an order that alternates from round to round, so that a slow spell of the
machine lands on both. Besides its wall, each pull reports how long its events fetcher waited
in `Fetcher.flush()` for the page before to be in the cache (exact resume needs that wait: see
docs/design/performance.md), the part of the pull a change to the cache write moves. Prints
each version's median wall and wait, and the median and range of the per-round ratios new/old.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VERSIONS = ("old", "new")


def child(info_file: str, cache: str) -> None:
    """One cold W2 pull with the posthog_pandas on PYTHONPATH; prints wall and wait as JSON."""
    import posthog_pandas as php
    from posthog_pandas import _fetcher

    waited: list[float] = []
    flush = _fetcher.Fetcher.flush

    def timed_flush(self: Any) -> None:
        started = time.perf_counter()
        flush(self)
        waited.append(time.perf_counter() - started)

    _fetcher.Fetcher.flush = timed_flush  # type: ignore[method-assign]
    info = json.loads(Path(info_file).read_text())
    ph = php.connect(
        info["api_key"], host=info["url"], project_id=info["project_id"], cache_dir=cache,
        progress=False, dotenv=False, prompt=False,
    )  # fmt: skip
    waited.clear()  # only the pull's own waits
    started = time.perf_counter()
    frame = ph.events(after=info["after"], before=info["before"])
    wall = time.perf_counter() - started
    if len(frame) != info["events"]:
        raise SystemExit(f"{len(frame)} rows, expected {info['events']}")
    print(json.dumps({"wall": wall, "waited": sum(waited), "version": php.__file__}))


def pull(info_file: Path, tree: Path, cache: Path) -> dict[str, Any]:
    shutil.rmtree(cache, ignore_errors=True)
    command = [sys.executable, __file__, "--child", str(info_file), str(cache)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the pull with {tree} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["version"].startswith(str(tree.resolve())):
        raise SystemExit(f"the pull with {tree} imported {result['version']}")
    return result


def report(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [f"{'version':8}  {'median wall (s)':>15}  {'median wait (ms)':>16}"]
    for version in VERSIONS:
        walls = [r["wall"] for r in results[version]]
        waits = [r["waited"] * 1000 for r in results[version]]
        lines.append(
            f"{version:8}  {statistics.median(walls):15.3f}  {statistics.median(waits):16.0f}"
        )
    ratios = [n["wall"] / o["wall"] for o, n in zip(results["old"], results["new"], strict=True)]
    lines.append(
        f"new/old wall, per round: median {statistics.median(ratios):.3f}x, "
        f"{min(ratios):.2f}-{max(ratios):.2f}x"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--old", type=Path, help="a directory holding the old posthog_pandas")
    p.add_argument("--new", type=Path, default=HERE.parent, help="default: this checkout")
    p.add_argument("--quick", action="store_true", help="10,000 events, 1 round (smoke test)")
    p.add_argument("--runs", type=int, help="rounds (default 8; 1 with --quick)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.old is None:
        p.error("--old is required")
    sys.path.insert(0, str(HERE))
    import run  # benchmarks/run.py: the server and the sizes

    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():
        if not (tree / "posthog_pandas" / "__init__.py").is_file():
            raise SystemExit(f"{tree} holds no posthog_pandas package")
    sizes = run.QUICK if args.quick else run.FULL
    runs = args.runs or (1 if args.quick else 8)
    with run.temporary_server("pp-ab-", sizes, args.seed) as (server, out):
        info_file = server.folder / "info.json"
        pull(info_file, trees["new"], out / "cache")  # untimed: first queries are slower
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in VERSIONS}
        for round_ in range(1, runs + 1):
            order = VERSIONS if round_ % 2 else VERSIONS[::-1]
            for version in order:
                results[version].append(pull(info_file, trees[version], out / "cache"))
            run.log(
                f"round {round_}/{runs}: "
                + ", ".join(
                    f"{v} {results[v][-1]['wall']:.3f} s (waited {results[v][-1]['waited']:.3f})"
                    for v in VERSIONS
                )
            )
    print("\n".join(report(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
