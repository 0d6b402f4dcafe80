"""What each part of the client's work costs a W2 cold pull: the pull with that part taken out.

    python benchmarks/ablation.py              # 200,000 events, 10 rounds
    python benchmarks/ablation.py --quick      # 10,000 events, 1 round: a smoke test

The W2 target "within 1.5x of the raw transfer" is missed by little on a 2-core machine, where
the client shares the cores with the server. This answers where the rest of the time goes:
every round pulls W2 cold once per variant (`none`, `half-frames`, `no-frames`, `no-cache`;
see `--ablate` in systems/posthog_pandas_sys.py), each in a fresh process with an empty cache,
interleaved so that a slow spell of the machine lands on every variant. It prints each
variant's median wall and the median of its per-round ratios to `none`. The variants' frames
are not correct W2 frames, so they are not checked against the server's ids; each variant is
checked to have taken effect instead (`check`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402 - benchmarks/run.py: the server and the sizes

from posthog_pandas.query import MAX_PAGE_ROWS  # noqa: E402 - the keyset page size of ph.events

VARIANTS = ("none", "half-frames", "no-frames", "no-cache")


def expected_rows(variant: str, events: int, page_rows: int = MAX_PAGE_ROWS) -> int:
    """Rows a variant returns: `half-frames` keeps the first half of every keyset page."""
    if variant != "half-frames":
        return events
    full, last = divmod(events, page_rows)
    return full * (page_rows // 2) + last // 2


def check(variant: str, line: dict[str, Any], cache: Path, events: int) -> str | None:
    """Why a pull's result line shows its variant did not take effect, or None."""
    if line["rows"] != expected_rows(variant, events):
        return f"{line['rows']} rows, expected {expected_rows(variant, events)}"
    if (line["columns"] == 1) != (variant == "no-frames"):
        return f"{line['columns']} columns"
    if (variant == "no-cache") == (cache / "frames").is_dir():  # the finished frame's copy
        return "the cache was written" if variant == "no-cache" else "nothing was cached"
    return None


def pull(server: run.Server, variant: str, out: Path, events: int) -> float:
    """One cold W2 pull of `variant` in a fresh process: its wall seconds."""
    info = server.info
    cache = out / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    command = [
        run.PYTHON, str(run.SYSTEMS / "posthog_pandas_sys.py"),
        "--url", info["url"], "--key", info["api_key"], "--project-id", str(info["project_id"]),
        "--workload", "W2", "--after", info["after"], "--before", info["before"],
        "--out", str(out), "--cache-dir", str(cache), "--mode", "cold", "--ablate", variant,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=run.ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed: {done.stderr.strip()[-2000:]}")
    line = json.loads(done.stdout.strip().splitlines()[-1])
    Path(line["ids_file"]).unlink()
    problem = check(variant, line, cache, events)
    if problem:
        raise SystemExit(f"--ablate {variant} did not take effect: {problem}")
    return float(line["wall"])


def report(walls: dict[str, list[float]]) -> list[str]:
    """One line per variant: median wall and median of per-round ratios to `none`."""
    lines = [f"{'variant':12}  {'median wall (s)':>15}  {'vs none':>8}  range"]
    for variant, values in walls.items():
        lines.append(f"{variant:12}  {run.median_and_ratio(values, walls['none'])}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10,000 events, 1 round (smoke test)")
    p.add_argument("--runs", type=int, help="rounds (default 10; 1 with --quick)")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    sizes = run.QUICK if args.quick else run.FULL
    runs = args.runs or (1 if args.quick else 10)
    with run.temporary_server("pp-ablation-", sizes, args.seed) as (server, out):
        pull(server, "none", out, sizes["events"])  # untimed: first queries are slower
        walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for round_ in range(1, runs + 1):
            for variant in VARIANTS:
                walls[variant].append(pull(server, variant, out, sizes["events"]))
                run.log(f"round {round_}/{runs} {variant}: {walls[variant][-1]:.3f} s")
    print("\n".join(report(walls)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
