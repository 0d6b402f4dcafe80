"""How close a W2 cold pull could get to the raw transfer if its work overlapped perfectly.

    python benchmarks/overlap.py              # 200,000 events, 8 rounds
    python benchmarks/overlap.py --pin        # the server on one CPU, every client on another
    python benchmarks/overlap.py --quick      # 10,000 events, 1 round: a smoke test

A cold pull is a chain: the server computes a page, the client reads and decodes it, sends the
next request, and builds the page's frame while the server works on the next one. The pull
cannot beat the later of two things: the server's work (the raw transfer) and the client's own
work (the `pages from cache` rebuild: the same pages, decoded and built with the server idle).
This measures that bound. Every round runs, each in a fresh process: the cold pull (recording
its requests), the rebuild, the raw transfer, then the rebuild and the raw transfer started at
the same instant (`PP_BENCH_START_AT`), so they share the machine as a perfectly overlapped pull
would, with nothing waiting on anything. It prints each measure's median wall and the median of
its per-round ratios to that round's raw transfer alone.

With `--pin` the server runs on one CPU and the clients on another: no sharing of cores between
the two sides, so what remains between the cold pull and the bound is the chain itself (the
first page, which the client waits for; the decode between a response and the next request;
the last page's frame, which the server waits for).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "systems"))

import _common  # noqa: E402 - benchmarks/systems/_common.py: the clock's start variable
import run  # noqa: E402 - benchmarks/run.py: the server, the sizes, running one system

MEASURES = (
    "cold pull",
    "client's own work (pages from cache)",
    "raw transfer",
    "own work, run together with the raw transfer",
    "raw transfer, run together with own work",
    "overlapped (the later of those two)",
)
START_DELAY = 2.0  # seconds for both processes to import everything before the common start
TIMEOUT = 600.0  # seconds one run may take


def specs(out: Path, round_: int) -> tuple[run.Spec, run.Spec, run.Spec]:
    """The cold pull (recording its requests), the rebuild from its pages, the raw transfer."""
    cache = out / "cache" / f"W2-{round_}"
    requests_log = out / "requests" / f"W2-{round_}.json"
    requests_log.parent.mkdir(parents=True, exist_ok=True)
    cold = run.Spec(
        run.PP_COLD,
        "W2",
        run.PYTHON,
        "posthog_pandas_sys.py",
        ["--cache-dir", str(cache), "--mode", "cold", "--record", str(requests_log)],
    )
    rebuild = run.Spec(
        run.PP_CLIENT,
        "W2",
        run.PYTHON,
        "posthog_pandas_sys.py",
        ["--cache-dir", str(cache), "--mode", "rebuild"],
    )
    raw = run.Spec(
        run.RAW,
        "W2",
        run.PYTHON,
        "raw_transfer.py",
        ["--replay", str(requests_log)],
        checks_ids=False,
    )
    return cold, rebuild, raw


def wall(result: run.Result) -> float:
    """The measured wall of a run that returned every row (or, for the floor, any rows)."""
    if result.wall is None or result.correct is False:
        why = result.error or f"lost {result.lost} of {result.expected} rows"
        raise SystemExit(f"{result.system}: {why}")
    return result.wall


def together(server: run.Server, out: Path, tag: str, *pair: run.Spec) -> list[float]:
    """Run the specs in parallel processes whose clocks start at the same instant."""
    start = {_common.START_AT_VARIABLE: f"{time.time() + START_DELAY:.6f}"}
    with ThreadPoolExecutor(len(pair)) as pool:
        results = pool.map(
            lambda spec: run.run_system(spec, server, out, tag, TIMEOUT, extra_env=start), pair
        )
        return [wall(r) for r in results]


def one_round(server: run.Server, out: Path, round_: int) -> list[float]:
    """The walls of one round, in the order of MEASURES."""
    cold, rebuild, raw = specs(out, round_)
    tag = f"o{round_}"
    alone = [wall(run.run_system(s, server, out, tag, TIMEOUT)) for s in (cold, rebuild, raw)]
    own, floor = together(server, out, tag, rebuild, raw)
    return [*alone, own, floor, max(own, floor)]


def report(rounds: list[list[float]]) -> list[str]:
    """One line per measure: median wall and median of per-round ratios to the raw transfer."""
    lines = [f"{'measure':46}  {'median wall (s)':>15}  {'vs raw':>8}  range"]
    floors = [r[2] for r in rounds]
    for i, name in enumerate(MEASURES):
        lines.append(f"{name:46}  {run.median_and_ratio([r[i] for r in rounds], floors)}")
    return lines


@contextmanager
def pinned(server: run.Server) -> Iterator[None]:
    """The server's threads on one CPU, this process (and so every client it starts) on another.

    The first two CPUs this process may use; the others stay idle.
    """
    mine = os.sched_getaffinity(0)
    if len(mine) < 2:
        raise SystemExit("--pin needs two CPUs this process may run on; it may use one")
    server_cpu, client_cpu = sorted(mine)[:2]
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {server_cpu})
    os.sched_setaffinity(0, {client_cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10,000 events, 1 round (smoke test)")
    p.add_argument("--runs", type=int, help="rounds (default 8; 1 with --quick)")
    p.add_argument(
        "--pin", action="store_true", help="the server on one CPU, the clients on another"
    )
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    sizes = run.QUICK if args.quick else run.FULL
    runs = args.runs or (1 if args.quick else 8)
    with run.temporary_server("pp-overlap-", sizes, args.seed) as (server, out):
        with pinned(server) if args.pin else nullcontext():
            one_round(server, out, 0)  # untimed: the first queries of a server are slower
            rounds = []
            for round_ in range(1, runs + 1):
                rounds.append(one_round(server, out, round_))
                walls = ", ".join(f"{w:.3f}" for w in rounds[-1])
                run.log(f"round {round_}/{runs}: {walls} s")
    print("\n".join(report(rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
