"""posthog-pandas under the Cloud-like latency profile: 1,000,000 events, every system on gzip.

    python benchmarks/cloud.py                # 1,000,000 events, 3 rounds; writes cloud-results.md
    python benchmarks/cloud.py --events 200000 --runs 1
    python benchmarks/cloud.py --quick        # 120,000 events over 6 days, 1 round: a smoke test

The server (benchmarks/server.py --latency cloud) adds per query 1.0 s plus 10 us per row
returned, caps each response at 25 MB/s and keeps PostHog's 3 query slots; its query cache is
emptied before every run, so every run is cold on both sides. In each round, each in a fresh
process (benchmarks/systems/*.py), one after another:

- posthog-pandas cold: `ph.events(after, before)` with an empty cache directory, recording
  the requests it sends;
- the floor: those exact requests replayed with plain requests, three at a time, bodies read
  and dropped (raw_transfer.py --concurrency 3);
- the sequential hand-written HogQL keyset loop (handwritten_hogql.py --encoding gzip);
- `ph.events()` then events per day per event name in pandas, against the Dask reader
  (`posthog_pandas.dask.read_events(partition="1D")`) on a LocalCluster of 2 worker processes
  computing the same group-by (dask_sys.py);
- for the workers' memory, the Dask reader again with the workers on Arrow's system allocator
  (ARROW_DEFAULT_MEMORY_POOL=system, as docs/dask.md suggests), and the floor of any Dask
  reader: the same partitions as local Parquet files read by dd.from_map on the same cluster.

It checks every row (uuids against the server's; the group-bys against each other and their
total against the server's count), prints the table and the targets of issue 25 (ratios are
medians of per-round ratios, as in run.py) and writes the Markdown report.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402 - benchmarks/run.py: the server, running one system, the medians

FULL = {"persons": 20_000, "events": 1_000_000, "days": 30}
QUICK = {"persons": 500, "events": 120_000, "days": 6}  # 3 pages: two windows run at once
DEFAULT_RESULTS = HERE / "cloud-results.md"

PP_COLD = "posthog-pandas cold"
PP_ONE = "posthog-pandas cold, 1 query at a time"
FLOOR = "raw transfer, 3 at a time (floor)"
LOOP = "hand-written HogQL loop (gzip)"
PANDAS_FIRST = "ph.events(), then the group-by in pandas"
DASK = "Dask reader, LocalCluster of 2 processes"
# Names under 40 characters: tests/test_benchmarks_smoke.py reads the table by that width.
DASK_SYSTEM_POOL = "Dask reader, Arrow's system allocator"
DASK_PARQUET = "Dask over local Parquet (memory floor)"
DASK_SYSTEMS = (DASK, DASK_SYSTEM_POOL, DASK_PARQUET)
SYSTEM_ORDER = (PP_COLD, FLOOR, PP_ONE, LOOP, PANDAS_FIRST, *DASK_SYSTEMS)
SLOTS = 3  # PostHog's concurrent queries per project


def round_plan(out: Path, round_: int, skip: set[str]) -> list[run.Spec]:
    """The systems of one round, in the order they run (the floor replays the cold pull)."""
    cache = out / "cache"
    requests_log = out / "requests" / f"r{round_}.json"
    requests_log.parent.mkdir(parents=True, exist_ok=True)
    # The profile stands for a remote PostHog: ask for what connect() chooses for a remote host
    # (gzip, 3 windows at once), which its loopback defaults would not pick for 127.0.0.1.
    python, gzip = run.PYTHON, ["--compression", "gzip"]
    remote = [*gzip, "--max-concurrent-queries", str(SLOTS)]
    plan = [
        run.Spec(PP_COLD, "W2", python, "posthog_pandas_sys.py",
                 ["--cache-dir", str(cache / f"pp-{round_}"), "--mode", "cold",
                  "--record", str(requests_log), *remote]),
        run.Spec(FLOOR, "W2", python, "raw_transfer.py",
                 ["--replay", str(requests_log), "--concurrency", str(SLOTS)], checks_ids=False),
        run.Spec(PP_ONE, "W2", python, "posthog_pandas_sys.py",
                 ["--cache-dir", str(cache / f"pp-one-{round_}"), "--mode", "cold", *gzip,
                  "--max-concurrent-queries", "1"]),
        run.Spec(LOOP, "W2", python, "handwritten_hogql.py", ["--encoding", "gzip"]),
    ]  # fmt: skip
    if "dask" not in skip:
        plan += [
            run.Spec(PANDAS_FIRST, "W2", python, "dask_sys.py",
                     ["--mode", "pandas", "--cache-dir", str(cache / f"pandas-{round_}")]),
            run.Spec(DASK, "W2", python, "dask_sys.py",
                     ["--mode", "dask", "--cache-dir", str(cache / f"dask-{round_}")]),
            run.Spec(DASK_SYSTEM_POOL, "W2", python, "dask_sys.py",
                     ["--mode", "dask", "--cache-dir", str(cache / f"dask-system-{round_}"),
                      "--arrow-pool", "system"]),
            # reads the partitions the Dask reader cached above: no query reaches the server
            run.Spec(DASK_PARQUET, "W2", python, "dask_sys.py",
                     ["--mode", "parquet", "--cache-dir", str(cache / f"dask-{round_}")]),
        ]  # fmt: skip
    skipped = {LOOP} if "loop" in skip else set()
    if "sequential" in skip or not connect_takes("max_concurrent_queries"):
        skipped.add(PP_ONE)  # the code measured may predate concurrent pulls
    return [spec for spec in plan if spec.system not in skipped]


def connect_takes(option: str) -> bool:
    """Whether the posthog_pandas measured has connect(option=...), or a PacingSettings field
    of that name (where the queries in flight were set before connect() took them)."""
    import dataclasses
    import inspect

    import posthog_pandas

    pacing = {field.name for field in dataclasses.fields(posthog_pandas.PacingSettings)}
    return option in inspect.signature(posthog_pandas.connect).parameters or option in pacing


def run_round(server: run.Server, out: Path, round_: int, args: argparse.Namespace) -> list[Any]:
    """Every system once, each on a cold server; the group-bys of the round checked."""
    results = []
    for spec in round_plan(out, round_, args.skip):
        run.log(f"round {round_}/{args.runs}: {spec.system} ...")
        server.cold()
        result = run.run_system(spec, server, out, f"c{round_}", args.timeout)
        result.round = round_
        result.data["query_peak"] = server.query_peak()
        if "groupby_file" in result.data:
            count_rows(result, len(server.expected_ids("W2")))
        if spec.system == PP_COLD and result.wall is not None:
            log = json.loads(Path(spec.args[spec.args.index("--record") + 1]).read_text())
            result.data["timeline"] = timeline(log, result.wall)
        results.append(result)
        run.log(f"  {run.describe(result)}, {result.data['query_peak']} queries in flight at most")
    compare_groupbys(results)
    return results


def timeline(log: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Seconds of the pull with 0, 1, 2, 3... requests waiting for their answer (sent until
    the response's headers came back), and when the last answer came.

    Under the profile a query's answer waits for its delay, then its body streams at 25 MB/s:
    the time with none waiting is the client reading bodies and building frames."""
    edges = sorted(
        [(entry["sent"], 1) for entry in log if "answered" in entry]
        + [(entry["answered"], -1) for entry in log if "answered" in entry]
    )
    spent: dict[str, float] = {}
    waiting, at = 0, 0.0
    for when, step in [*edges, (wall, 0)]:
        spent[str(waiting)] = spent.get(str(waiting), 0.0) + max(0.0, when - at)
        waiting, at = waiting + step, max(at, when)
    spent["last_answer"] = max((entry.get("answered", 0.0) for entry in log), default=0.0)
    spent["first_answer"] = min((entry.get("answered", wall) for entry in log), default=0.0)
    return spent


def count_rows(result: Any, expected: int) -> None:
    """A group-by's rows are its counts' total: lost or extra against the server's events."""
    result.expected = expected
    result.lost = max(0, expected - (result.rows or 0))
    result.extra_ids = max(0, (result.rows or 0) - expected)


def compare_groupbys(results: list[Any]) -> None:
    """Mark each Dask run of a round equal or not to the pandas group-by of the same round."""
    files = {r.system: r.data.get("groupby_file") for r in results if r.wall is not None}
    if files.get(PANDAS_FIRST) is None:
        return
    pandas = read_groupby(files[PANDAS_FIRST])
    for result in results:
        if result.system in DASK_SYSTEMS and files.get(result.system) is not None:
            result.data["groupby_equal"] = read_groupby(files[result.system]) == pandas


def read_groupby(path: str) -> dict[tuple[str, str], int]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {(row["day"], row["event"]): int(row["n"]) for row in csv.DictReader(fh)}


# -- summarising -------------------------------------------------------------------------------


def per_million(row: run.Row) -> float | None:
    """Client CPU seconds per 1,000,000 events (the rows the system returned)."""
    values = [r.data["cpu"] / r.rows * 1e6 for r in row.ok_runs if r.data.get("cpu") and r.rows]
    return statistics.median(values) if values else None


def peak_queries(row: run.Row) -> int | None:
    values = [r.data["query_peak"] for r in row.runs if r.data.get("query_peak") is not None]
    return max(values) if values else None


def table(rows: list[run.Row]) -> list[list[str]]:
    base = find(rows, PP_COLD)
    out = [
        ["system", "median wall (s)", "client CPU (s)", "client CPU per 1M events (s)",
         "server CPU (s)", "peak RSS (MB)", "queries in flight (max)", "vs pp cold",
         "rows correct?"]
    ]  # fmt: skip
    for row in sorted(rows, key=lambda r: SYSTEM_ORDER.index(r.system)):
        vs = "-"
        if base is not None and base.wall and row.wall:
            vs = f"{row.wall / base.wall:.2f}x"
        cpu_m = per_million(row)
        out.append(
            [
                row.system,
                fmt(row.wall),
                fmt(row.cpu),
                "-" if cpu_m is None else f"{cpu_m:.1f}",
                fmt(row.server_cpu),
                "-" if row.rss is None else f"{row.rss:.0f}",
                str(peak_queries(row) or "-"),
                vs,
                row.correct,
            ]
        )
    return out


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def find(rows: list[run.Row], system: str) -> run.Row | None:
    return run.find(rows, system, "W2")


def targets(rows: list[run.Row]) -> list[run.Target]:
    out: list[run.Target] = []
    pp, floor, loop = find(rows, PP_COLD), find(rows, FLOOR), find(rows, LOOP)
    pandas, dask = find(rows, PANDAS_FIRST), find(rows, DASK)
    if pp is not None and loop is not None and pp.wall and loop.wall:
        speedups = run.paired_ratios(loop, pp)
        same = pp.correct == "yes" and loop.correct == "yes"
        value = statistics.median(speedups) if speedups else 0.0
        text = run.ratio_summary(speedups, loop.wall, pp.wall, digits=2) if speedups else "-"
        text = text.replace("medians", "medians loop / pp")
        text += f"; rows: pp {pp.correct}, loop {loop.correct}"
        out.append(
            Target("pp cold faster than the sequential hand-written HogQL loop, same rows",
                   ">= 2.5x", text, value >= 2.5 and same)
        )  # fmt: skip
    if pp is not None and floor is not None and pp.wall and floor.wall:
        ratios = run.paired_ratios(pp, floor)
        text = run.ratio_summary(ratios, pp.wall, floor.wall, digits=2) if ratios else "-"
        out.append(Target("pp cold vs the floor (its requests, 3 at a time)", "report",
                          text, None))  # fmt: skip
    for row in (pp, loop):
        cpu_m = None if row is None else per_million(row)
        if row is not None and cpu_m is not None:
            out.append(Target(f"client CPU per 1,000,000 events: {row.system}", "report",
                              f"{cpu_m:.1f} s", None))  # fmt: skip
    if pandas is not None and dask is not None and pandas.wall and dask.wall:
        ratios = run.paired_ratios(dask, pandas)
        equal = [r.data.get("groupby_equal") for r in dask.ok_runs]
        text = run.ratio_summary(ratios, dask.wall, pandas.wall, digits=2) if ratios else "-"
        text += (
            f"; group-by equal to pandas' in {sum(e is True for e in equal)} of {len(equal)} rounds"
        )
        out.append(Target("Dask reader vs pull into pandas first (wall)", "report, same result",
                          text, bool(equal) and all(e is True for e in equal)))  # fmt: skip
        out.append(worker_memory(dask, "<= its partitions"))
    for system in (DASK_SYSTEM_POOL, DASK_PARQUET):
        row = find(rows, system)
        if row is not None and row.ok_runs:
            out.append(worker_memory(row, "report"))
    peaks = [p for p in (peak_queries(r) for r in rows) if p is not None]
    if peaks:
        by_system = ", ".join(f"{r.system}: {peak_queries(r)}" for r in rows)
        out.append(Target("queries in flight at the server", f"<= {SLOTS}", by_system,
                          max(peaks) <= SLOTS))  # fmt: skip
    return out


Target = run.Target


def worker_memory(dask: run.Row, goal: str) -> run.Target:
    """Each worker's peak RSS growth over the pull against the partitions it pulled: a target
    for the Dask reader as users run it, a report for the other Dask rows."""
    worst: dict[str, Any] | None = None
    held_more = False
    for result in dask.ok_runs:
        for worker in result.data.get("workers", []):
            start = worker["start_rss_mb"] or 0.0
            growth = worker["rss_mb"] - start
            worker["growth_mb"] = growth
            worker["kept_mb"] = (worker.get("end_rss_mb") or start) - start
            held_more = held_more or growth > worker["partitions_mb"]
            if worst is None or growth > worst["growth_mb"]:
                worst = worker
    name = "Dask workers' peak memory" + ("" if dask.system == DASK else f": {dask.system}")
    if worst is None:
        return Target(name, goal, "not measured", None)
    text = (
        f"largest growth {worst['growth_mb']:.0f} MB (peak {worst['rss_mb']:.0f} MB from "
        f"{worst['start_rss_mb']:.0f} MB; {worst['kept_mb']:.0f} MB still resident after the "
        f"pull) for {worst['partitions']} partitions of {worst['partitions_mb']:.0f} MB "
        f"together, the largest {worst['largest_partition_mb']:.1f} MB"
    )
    return Target(name, goal, text, None if goal == "report" else not held_more)


# -- the report ----------------------------------------------------------------------------------


def write_report(
    path: Path, args: argparse.Namespace, server: dict[str, Any], rows: list[run.Row],
    checks: list[run.Target], load: tuple[str, str],
) -> None:  # fmt: skip
    info = run.machine()
    pp = find(rows, PP_COLD)
    quick = " QUICK MODE: small sizes; not a measurement." if args.quick else ""
    lines = [
        "# posthog-pandas under the Cloud-like profile",
        "",
        f"Generated by `python benchmarks/cloud.py{flags(args)}` on {info['date']}, code at "
        f"{args.code}.{quick}",
        "",
        "## Machine",
        "",
        f"- cores: {info['cores']} ({info['cpu']}); memory: {info['memory']}; {info['os']}",
        f"- Python {info['python']}, pandas {info['pandas']}",
        f"- load average (1 min) at the start: {load[0]}, at the end: {load[1]}. The machine "
        "is shared: other work ran on the same cores during the run.",
        "",
        "## Data and profile",
        "",
        f"- {server['events']:,} events over {args.days} days from {server['after'][:10]}; "
        "`benchmarks/server.py --latency cloud` in its own process on 127.0.0.1: per query "
        "1.0 s plus 10 us per row returned, each response at most 25 MB/s, 150 ms per list "
        "request, 3 query slots (more are answered 429). Its query cache is emptied before "
        "every run: every run is cold.",
        "- Every system asks for gzip bodies, as from a remote PostHog.",
        f"- {args.runs} round(s); in each round every system runs once, each a fresh process, "
        "one after another.",
        "",
        "## Results (medians)",
        "",
        run.render_markdown(table(rows)),
        "",
        "Wall: measured inside each process from the start of the pull to the finished "
        "DataFrame (or group-by). Client CPU: user + system CPU of the client process over the "
        "same span; for the Dask reader, the driver's plus both workers'. Server CPU: what the "
        "server process used during the run. Queries in flight: the most the server computed "
        "at once, over every run of that system. The Dask reader's and pandas' rows are the "
        "total of their group-by's counts, checked against the server's number of events.",
        "",
        "## Targets (issue 25)",
        "",
        *run.TARGETS_HEADER,
        *(t.row() for t in checks),
    ]
    if pp is not None:
        lines += ["", "## What bounds the cold pull", "", bound_text(pp, find(rows, FLOOR))]
    lines += ["", "## Commands", "", "```", *run.SERVER_COMMANDS]
    for (system, _), command in run.COMMANDS.items():
        lines += [f"# {system}", " ".join(command)]
    lines += ["```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def bound_text(pp: run.Row, floor: run.Row | None) -> str:
    """The cold pull's wall next to the floor and its own CPU: the larger one bounds it."""
    requests = pp.median_of("requests")
    received = pp.median_of("bytes_received")
    wall, cpu = pp.wall or 0.0, pp.cpu or 0.0
    parts = [
        f"The cold pull took {wall:.2f} s (median) for {int(requests or 0)} requests and "
        f"{(received or 0) / 2**20:.0f} MB of bodies (decompressed; gzip on the wire); its "
        "client process used "
        f"{cpu:.2f} s of CPU ({cpu / wall:.0%} of the wall) on {os.cpu_count()} cores shared "
        f"with the server ({fmt(pp.server_cpu)} s CPU)."
    ]
    shares = [r.data["timeline"] for r in pp.ok_runs if "timeline" in r.data]
    if shares:
        keys = sorted({k for t in shares for k in t if k.isdigit()}, key=int)
        spent = {k: statistics.median(t.get(k, 0.0) for t in shares) for k in keys}
        waiting = ", ".join(f"{k}: {v:.2f} s" for k, v in spent.items())
        first = statistics.median(t["first_answer"] for t in shares)
        last = statistics.median(t["last_answer"] for t in shares)
        parts.append(
            f"Requests waiting for their answer, by how many at once (medians): {waiting}; "
            f"the first answer came at {first:.2f} s, the last at {last:.2f} s: the time "
            "with none waiting is the client reading bodies and building frames with nothing "
            "asked of the server."
        )
    if floor is not None and floor.wall:
        parts.append(
            f"The same requests, three at a time and with nothing parsed, took {floor.wall:.2f} s."
        )
        bound = "the client's own CPU" if cpu >= floor.wall else "the transfers (the floor)"
        parts.append(
            f"The larger of the two, {bound}, is the bound a perfectly overlapped pull would "
            f"meet; the pull's median wall is {wall / max(cpu, floor.wall):.2f}x that bound's."
        )
    return " ".join(parts)


def flags(args: argparse.Namespace) -> str:
    text = " --quick" if args.quick else ""
    if not args.quick and args.events != FULL["events"]:
        text += f" --events {args.events}"
    if not args.quick and args.days != FULL["days"]:
        text += f" --days {args.days}"
    if args.runs != (1 if args.quick else 3):
        text += f" --runs {args.runs}"
    if args.skip:
        text += f" --skip {','.join(sorted(args.skip))}"
    return text


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="120,000 events, 6 days, 1 round")
    p.add_argument("--events", type=int, help="events on the server (default 1,000,000)")
    p.add_argument("--days", type=int, help="days the events span (default 30; 6 with --quick)")
    p.add_argument("--runs", type=int, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--skip", default="", help="comma list: loop,sequential,dask")
    p.add_argument("--out", default=str(HERE / "out" / "cloud"), help="artifacts directory")
    p.add_argument("--results", help="report (default benchmarks/cloud-results.md; "
                   "with --quick: OUT/cloud-results.md)")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the caches and request logs")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--timeout", type=float, default=1800, help="seconds per system run")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.events = args.events or sizes["events"]
    args.persons, args.days = sizes["persons"], args.days or sizes["days"]
    args.runs = args.runs or (1 if args.quick else 3)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.code = run.code_version()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results) if args.results else (
        out / "cloud-results.md" if args.quick else DEFAULT_RESULTS
    )  # fmt: skip
    load_start = f"{os.getloadavg()[0]:.2f}"
    extra = ["--latency", "cloud", "--days", str(args.days)]
    server = run.Server(out, args.persons, args.events, args.seed, extra)
    run.SERVER_COMMANDS.append(" ".join(run.redact(server.command, "")))
    results = []
    try:
        if not args.quick:  # untimed: a new server's first queries are slower (DuckDB)
            run.log("warm-up: posthog-pandas cold (not timed) ...")
            server.cold()
            run.run_system(round_plan(out, 0, args.skip)[0], server, out, "warm-up", args.timeout)
        for round_ in range(1, args.runs + 1):
            results += run_round(server, out, round_, args)
    finally:
        server.stop()
    rows = run.summarise(results)
    checks = targets(rows)
    print(run.render_text(table(rows)))
    print()
    for t in checks:
        print(t.line())
    load = (load_start, f"{os.getloadavg()[0]:.2f}")
    write_report(results_path, args, server.info, rows, checks, load)
    raw = [r.__dict__ | {"correct": r.correct} for r in results]
    (out / "cloud-results.json").write_text(json.dumps(raw, indent=1, default=str))
    if not args.keep:  # a full run's caches and logs: gigabytes
        for leftover in (
            "cache",
            "requests",
            "ids",
            "groupby",
            *(p.name for p in out.glob("server-*")),
        ):
            shutil.rmtree(out / leftover, ignore_errors=True)
    run.log(f"wrote {results_path} and {out / 'cloud-results.json'}")
    return 0 if correct(rows, checks) else 1


def correct(rows: list[run.Row], checks: list[run.Target]) -> bool:
    """Every system returned every row, the group-bys agree, and no run had more than 3
    queries in flight (speed targets are reported, not enforced: --quick is no measurement)."""
    rows_ok = all(r.correct.startswith(("yes", "n/a")) for r in rows)
    enforced = ("Dask reader vs pull into pandas first (wall)", "queries in flight at the server")
    return rows_ok and all(t.met is not False for t in checks if t.name in enforced)


if __name__ == "__main__":
    raise SystemExit(main())
