"""Analytics benchmark: an insight asked of PostHog (one query) vs pulling the events and
computing it locally, with the local twins (`events.posthog.trends(...)`) and with
hand-written pandas, on the same 1,000,000 events: wall time and bytes received, and whether
the three answers agree cell for cell.

    python benchmarks/analytics.py                   # 1,000,000 events, 3 runs, medians
    python benchmarks/analytics.py --events 50000 --runs 1   # a quick look
    python benchmarks/analytics.py --results benchmarks/analytics-results.md   # for the docs

The server is `benchmarks/server.py` in its own process (LocalPostHog on 127.0.0.1). Each
approach runs in this process, in turn, every run; bytes are the response bodies the
connection received (`ph.request_stats`). Ratios are against the baseline: pulling the events
and computing with hand-written pandas.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import posthog_pandas as php

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402 - benchmarks/run.py: the machine and the commit measured

AFTER, BEFORE = "2024-01-01", "2024-01-31"  # the generated data's 30 days
TREND = {"events": "$pageview", "math": "dau", "interval": "day"}
FUNNEL = ["$pageview", "signed_up", "purchase"]
WINDOW_DAYS = 14
RETENTION = {
    "start_event": "signed_up",
    "return_event": "$pageview",
    "period": "day",
    "periods": 14,
}


class Meter:
    """Bytes the connection received since the last `take()` (its `request_stats`: response
    bodies as read, after any gzip decoding)."""

    def __init__(self, ph: php.PostHog) -> None:
        self.ph = ph
        self.seen = ph.request_stats.bytes

    def take(self) -> int:
        now = self.ph.request_stats.bytes
        taken, self.seen = now - self.seen, now
        return taken


# -- the hand-written pandas versions: what an analyst writes without the twins ------------------


def local_days(stamps: pd.Series, timezone: str) -> pd.Series:
    return stamps.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()


def hand_trends(events: pd.DataFrame, timezone: str) -> pd.Series:
    """Daily active persons of $pageview, every day of the range."""
    seen = events[events["event"] == TREND["events"]]
    daily = seen.groupby(local_days(seen["timestamp"], timezone))["person_id"].nunique()
    days = pd.date_range(AFTER, BEFORE, freq="D", inclusive="left")
    return daily.reindex(days, fill_value=0).astype("int64")


def hand_funnel(events: pd.DataFrame) -> list[int]:
    """Persons reaching each ordered step within the window: each step-1 event starts an
    attempt, followed by the first later event of each next step (merge_asof)."""
    window = pd.Timedelta(days=WINDOW_DAYS)
    ordered = events.sort_values("timestamp")
    attempt = ordered.loc[ordered["event"] == FUNNEL[0], ["person_id", "timestamp"]]
    attempt = attempt.rename(columns={"timestamp": "t0"}).reset_index(drop=True)
    attempt["depth"], previous = 1, "t0"
    for k, step in enumerate(FUNNEL[1:], start=1):
        later = ordered.loc[ordered["event"] == step, ["person_id", "timestamp"]]
        later = later.rename(columns={"timestamp": f"t{k}"})
        attempt = pd.merge_asof(
            attempt.sort_values(previous).dropna(subset=[previous]),
            later,
            left_on=previous,
            right_on=f"t{k}",
            by="person_id",
            direction="forward",
            allow_exact_matches=False,
        ).pipe(lambda a: pd.concat([a, attempt[attempt[previous].isna()]]))  # noqa: B023
        reached = attempt[f"t{k}"].notna() & (attempt[f"t{k}"] - attempt["t0"] <= window)
        attempt["depth"] += reached.astype(int)
        previous = f"t{k}"
    best = attempt.groupby("person_id")["depth"].max()
    return [int((best >= k).sum()) for k in range(1, len(FUNNEL) + 1)]


def hand_retention(events: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """First-time daily retention: cohort = day of a person's first start event; cell i = the
    cohort's persons with a return event i days later (within the 14 cohort days)."""
    first = pd.Timestamp(AFTER)
    days = events.assign(day=(local_days(events["timestamp"], timezone) - first).dt.days)
    starts = days[days["event"] == RETENTION["start_event"]].groupby("person_id")["day"].min()
    starts = starts[(starts >= 0) & (starts < RETENTION["periods"])].rename("cohort")
    back = days[days["event"] == RETENTION["return_event"]][["person_id", "day"]]
    back = back.drop_duplicates().merge(starts, left_on="person_id", right_index=True)
    back["period"] = back["day"] - back["cohort"]
    back = back[(back["period"] >= 1) & (back["day"] < RETENTION["periods"])]
    cells = back.groupby(["cohort", "period"])["person_id"].nunique()
    sizes = starts.value_counts().rename_axis("cohort")
    table = cells.unstack(fill_value=0).reindex(range(RETENTION["periods"]), fill_value=0)
    table[0] = sizes.reindex(table.index, fill_value=0)
    return table.sort_index(axis=1).astype("int64")


# -- the three approaches -------------------------------------------------------------------------


@dataclass
class Timing:
    approach: str
    analysis: str
    seconds: list[float] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def run_queries(ph: php.PostHog, meter: Meter, timings: dict[str, Timing]) -> dict[str, Any]:
    answers = {}
    calls = {
        "trends": lambda: ph.trends(after=AFTER, before=BEFORE, refresh=True, **TREND),
        "funnel": lambda: ph.funnel(
            FUNNEL, window_days=WINDOW_DAYS, after=AFTER, before=BEFORE, refresh=True
        ),
        "retention": lambda: ph.retention(after=AFTER, refresh=True, **RETENTION),
    }
    for name, call in calls.items():
        meter.take()
        seconds, answers[name] = timed(call)
        timings[f"query/{name}"].seconds.append(seconds)
        timings[f"query/{name}"].bytes.append(meter.take())
    return answers


def pull(ph: php.PostHog, meter: Meter, timings: dict[str, Timing]) -> pd.DataFrame:
    meter.take()
    seconds, events = timed(
        lambda: ph.events(
            after=AFTER,
            before=BEFORE,
            event=sorted({*FUNNEL, RETENTION["start_event"], RETENTION["return_event"]}),
            columns=["uuid", "event", "person_id", "timestamp"],
            refresh=True,
        )
    )
    timings["pull/events"].seconds.append(seconds)
    timings["pull/events"].bytes.append(meter.take())
    return events


def run_local(
    events: pd.DataFrame, timezone: str, timings: dict[str, Timing]
) -> tuple[dict[str, Any], dict[str, Any]]:
    twin: dict[str, Any] = {}
    hand: dict[str, Any] = {}
    local = {
        "trends": (
            lambda: events.posthog.trends(after=AFTER, before=BEFORE, timezone=timezone, **TREND),
            lambda: hand_trends(events, timezone),
        ),
        "funnel": (
            lambda: events.posthog.funnel(
                FUNNEL, window_days=WINDOW_DAYS, after=AFTER, before=BEFORE, timezone=timezone
            ),
            lambda: hand_funnel(events),
        ),
        "retention": (
            lambda: events.posthog.retention(after=AFTER, timezone=timezone, **RETENTION),
            lambda: hand_retention(events, timezone),
        ),
    }
    for name, (with_twin, by_hand) in local.items():
        seconds, twin[name] = timed(with_twin)
        timings[f"twin/{name}"].seconds.append(seconds)
        seconds, hand[name] = timed(by_hand)
        timings[f"hand/{name}"].seconds.append(seconds)
    return twin, hand


def agreement(query: dict[str, Any], twin: dict[str, Any], hand: dict[str, Any]) -> dict[str, str]:
    """Whether the three answers agree: the query's frame equals the twin's cell for cell, and
    the hand-written numbers equal the query's."""
    out = {}
    for name in ("trends", "funnel", "retention"):
        same_twin = query[name].reset_index(drop=True).equals(twin[name].reset_index(drop=True))
        if name == "trends":
            same_hand = query[name]["value"].astype("int64").tolist() == hand[name].tolist()
        elif name == "funnel":
            same_hand = query[name]["count"].astype("int64").tolist() == hand[name]
        else:
            frame = query[name]
            table = frame.pivot(index="cohort", columns="period", values="persons")
            mine = hand[name].to_numpy()
            theirs = table.to_numpy(dtype="float64", na_value=np.nan)
            same_hand = bool(((mine == theirs) | np.isnan(theirs)).all())
        out[name] = f"twin {'yes' if same_twin else 'NO'}, hand {'yes' if same_hand else 'NO'}"
    return out


# -- the run --------------------------------------------------------------------------------------


def start_server(
    args: argparse.Namespace, folder: Path
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    info_path = folder / "info.json"
    command = [
        sys.executable,
        str(HERE / "server.py"),
        "--persons", str(args.persons),
        "--events", str(args.events),
        "--seed", str(args.seed),
        "--info", str(info_path),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdin=subprocess.PIPE)
    deadline = time.monotonic() + args.timeout
    while not info_path.exists() or not info_path.read_text(encoding="utf-8").strip():
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the benchmark server did not start")
        time.sleep(0.2)
    time.sleep(0.2)  # the file is written in one call, but let the writer finish
    return server, json.loads(info_path.read_text(encoding="utf-8"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--persons", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--results", type=Path, help="also write the report, with the machine and "
                   "the commit measured, to this Markdown file")  # fmt: skip
    args = p.parse_args()
    code, load_at_start = run.code_version(), os.getloadavg()[0]
    names = [
        f"{a}/{n}" for a in ("query", "twin", "hand") for n in ("trends", "funnel", "retention")
    ]
    timings = {n: Timing(*n.split("/")) for n in [*names, "pull/events"]}
    with tempfile.TemporaryDirectory() as folder:
        server, info = start_server(args, Path(folder))
        try:
            ph = php.connect(
                info["api_key"],
                host=info["url"],
                project_id=info["project_id"],
                cache=False,
                progress=False,
                dotenv=False,
                prompt=False,
            )
            meter = Meter(ph)
            timezone = "UTC"
            verdict: dict[str, str] = {}
            for _ in range(args.runs):
                answers = run_queries(ph, meter, timings)
                events = pull(ph, meter, timings)
                twin, hand = run_local(events, timezone, timings)
                verdict = agreement(answers, twin, hand)
                rows = len(events)
        finally:
            server.stdin.close()  # type: ignore[union-attr]
            server.wait(timeout=60)
    table = report(args, timings, verdict, rows)
    print(table)
    if args.results is not None:
        loads = (load_at_start, os.getloadavg()[0])
        page = results_page(sys.argv[1:], code, loads, table)
        args.results.write_text(page, encoding="utf-8")


def size(count: float) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"


def report(
    args: argparse.Namespace, timings: dict[str, Timing], verdict: dict[str, str], rows: int
) -> str:
    pulled = timings["pull/events"]
    pull_s, pull_b = statistics.median(pulled.seconds), statistics.median(pulled.bytes)
    lines = [
        f"{args.events:,} events generated ({args.persons:,} persons, 30 days); the local "
        f"approaches pull the {rows:,} events of the analysed names (4 columns). Medians of "
        f"{args.runs} run(s); ratios against the baseline, pulling + hand-written pandas.",
        "",
        "| analysis | approach | wall (s) | received | time vs baseline | bytes vs baseline "
        "| answers agree? |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("trends", "funnel", "retention"):
        base = pull_s + statistics.median(timings[f"hand/{name}"].seconds)
        query = timings[f"query/{name}"]
        approaches = [
            (
                f"PostHog query (`ph.{name}`)",
                statistics.median(query.seconds),
                statistics.median(query.bytes),
            ),
            (
                "pull events + twin",
                pull_s + statistics.median(timings[f"twin/{name}"].seconds),
                pull_b,
            ),
            ("pull events + hand-written pandas", base, pull_b),
        ]
        for approach, seconds, received in approaches:
            lines.append(
                f"| {name} | {approach} | {seconds:.2f} | {size(received)} | "
                f"{seconds / base:.3f}x | {received / pull_b:.5f}x | {verdict.get(name, '')} |"
            )
    local = ", ".join(
        f"{n}: twin {statistics.median(timings[f'twin/{n}'].seconds):.2f} s, hand-written "
        f"{statistics.median(timings[f'hand/{n}'].seconds):.2f} s"
        for n in ("trends", "funnel", "retention")
    )
    lines += ["", f"The pull alone: {pull_s:.2f} s, {size(pull_b)}. After it, {local}."]
    return "\n".join(lines)


def results_page(argv: list[str], code: str, loads: tuple[float, float], table: str) -> str:
    """The report as benchmarks/analytics-results.md: the command, the commit, the machine and
    how busy it was (the walls are only as good as that)."""
    info = run.machine()
    flags = list(argv)
    if "--results" in flags:  # the file written is not part of what was measured
        at = flags.index("--results")
        del flags[at : at + 2]
    command = " ".join(["python benchmarks/analytics.py", *flags])
    return "\n".join(
        [
            "# posthog-pandas analytics benchmark results",
            "",
            f"Generated by `{command}` on {info['date']}, code at {code}.",
            "",
            f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory']}, {info['os']}; "
            f"Python {info['python']}, pandas {info['pandas']}. It was shared with other jobs "
            f"during the run (load average over one minute: {loads[0]:.1f} at the start, "
            f"{loads[1]:.1f} at the end), so the walls are upper bounds and their ratios rough; "
            "the bytes are exact.",
            "",
            table,
            "",
        ]
    )


if __name__ == "__main__":
    main()
