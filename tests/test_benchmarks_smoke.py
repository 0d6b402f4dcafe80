"""Smoke test of the benchmark harness: `benchmarks/run.py --quick --no-peers` end to end.

It checks that every posthog-pandas row of the table returned every row of the server's
data. No timing is asserted: timings belong to benchmarks/results.md, not to tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_quick_benchmark_runs_and_posthog_pandas_rows_are_correct(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-peers",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("posthog-pandas")]
    cells = {
        tuple(part.strip() for part in line.split("  ") if part.strip())[:2]: line for line in table
    }
    expected = {
        ("posthog-pandas cold", "W1"),
        ("posthog-pandas warm", "W1"),
        ("posthog-pandas, pages from cache", "W1"),
        ("posthog-pandas cold", "W2"),
        ("posthog-pandas warm", "W2"),
        ("posthog-pandas, pages from cache", "W2"),
        ("posthog-pandas cold", "W3-csv"),
        ("posthog-pandas cold", "W3-parquet"),
    }
    assert set(cells) == expected, done.stdout
    for key, line in cells.items():
        assert line.rstrip().endswith("yes"), f"{key}: {line}"
    # The hand-written systems and the raw floor ran too (peers were skipped on purpose).
    assert "hand-written list loop" in done.stdout
    assert "raw transfer (floor)" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    pp = [r for r in results if r["system"].startswith("posthog-pandas")]
    assert len(pp) == len(expected)
    assert all(r["correct"] is True and r["lost"] == 0 for r in pp)
    report = (tmp_path / "results.md").read_text()
    assert "## Machine" in report and "## Commands" in report
    # the report names the code it measured (a commit, marked if the tree differs from it)
    assert re.search(r"code at ([0-9a-f]{7,}( \+ uncommitted changes)?|unknown)", report), report[
        :400
    ]
    # every system's row carries the CPU it used and the CPU the server used meanwhile
    header = next(line for line in done.stdout.splitlines() if line.startswith("system"))
    assert "client CPU (s)" in header and "server CPU (s)" in header
    pp_cold = [r for r in pp if r["system"] == "posthog-pandas cold"]
    assert all(isinstance(r["data"]["cpu"], float) and r["data"]["cpu"] > 0 for r in pp_cold)
    assert all(r["server_cpu"] is None or r["server_cpu"] >= 0 for r in results)


@pytest.mark.integration
def test_quick_ablation_runs_every_variant_with_its_row_count() -> None:
    # ablation.py exits non-zero when a variant shows it did not take effect (rows: 5,000 of
    # 10,000 for half-frames; one column for no-frames; no cached frame for no-cache).
    done = _run_quick("ablation.py")
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["variant", "median"]
    assert [line.split()[0] for line in lines[1:]] == [
        "none", "half-frames", "no-frames", "no-cache",
    ]  # fmt: skip
    assert lines[1].split()[2] == "1.000x"  # each ratio is to `none` of the same round


@pytest.mark.integration
def test_quick_overlap_runs_every_measure_against_the_raw_transfer() -> None:
    # overlap.py exits non-zero when a pull loses rows; each ratio is to the round's raw
    # transfer alone, so that row reads exactly 1.000x, and "overlapped" is the later of the
    # two runs started together, so it is never below either of them.
    done = _run_quick("overlap.py")
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["measure", "median"]
    walls = {line[:46].strip(): float(line[46:].split()[0]) for line in lines[1:]}
    assert list(walls) == [
        "cold pull",
        "client's own work (pages from cache)",
        "raw transfer",
        "own work, run together with the raw transfer",
        "raw transfer, run together with own work",
        "overlapped (the later of those two)",
    ]
    assert lines[3].split()[-2] == "1.000x"
    assert walls["overlapped (the later of those two)"] == max(
        walls["own work, run together with the raw transfer"],
        walls["raw transfer, run together with own work"],
    )
    assert "round 1/1" in done.stderr


@pytest.mark.integration
def test_quick_ab_pulls_with_both_versions_and_reports_their_waits() -> None:
    # ab.py exits non-zero when a pull loses rows or imports another posthog_pandas than the
    # tree it was given; here both trees are this checkout.
    done = _run_quick("ab.py", "--old", str(ROOT))
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["version", "median", "wall"]
    assert [line.split()[0] for line in lines[1:3]] == ["old", "new"]
    assert lines[3].startswith("new/old wall, per round: median ")
    assert "round 1/1: old " in done.stderr


@pytest.mark.integration
def test_small_analytics_benchmark_says_every_answer_agrees(tmp_path: Path) -> None:
    # analytics.py on 20,000 events, one run: for each insight, PostHog's frame equals the
    # twin's cell for cell and the hand-written pandas numbers equal PostHog's.
    results = tmp_path / "analytics-results.md"
    small = ["--events", "20000", "--persons", "1000", "--runs", "1"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "analytics.py"), *small,
         "--results", str(results)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| analysis")
    ]
    approaches = ["pull events + twin", "pull events + hand-written pandas"]
    assert [row[:2] for row in rows] == [
        [name, approach]
        for name in ("trends", "funnel", "retention")
        for approach in [f"PostHog query (`ph.{name}`)", *approaches]
    ]
    assert all(row[-1] == "twin yes, hand yes" for row in rows), done.stdout
    page = results.read_text(encoding="utf-8")
    assert f"Generated by `python benchmarks/analytics.py {' '.join(small)}`" in page
    assert "shared with other jobs" in page and done.stdout.strip() in page


def _run_quick(script: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """benchmarks/<script> --quick, which must exit 0 (each script checks its own results)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *extra],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.integration
def test_quick_cloud_benchmark_checks_rows_groupbys_and_query_slots(tmp_path: Path) -> None:
    # cloud.py exits non-zero when a system loses rows, when the Dask reader's group-by differs
    # from pandas', or when the server ever computed more than PostHog's 3 queries at once.
    done = _run_quick("cloud.py", "--out", str(tmp_path))
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["system", "median", "wall"]
    systems = {line[:40].strip(): line for line in lines[2:10]}
    assert list(systems) == [
        "posthog-pandas cold",
        "raw transfer, 3 at a time (floor)",
        "posthog-pandas cold, 1 query at a time",
        "hand-written HogQL loop (gzip)",
        "ph.events(), then the group-by in pandas",
        "Dask reader, LocalCluster of 2 processes",
        "Dask reader, Arrow's system allocator",
        "Dask over local Parquet (memory floor)",
    ]
    for name, line in systems.items():
        cells = line[40:].split()
        # queries in flight at the server, at most, then "vs pp cold", then rows correct?
        # (none for the Parquet floor, which reads the partitions from local files)
        assert cells[5] == "-" if "Parquet" in name else int(cells[5]) <= 3, line
        expected = "n/a (no rows built)" if name.startswith("raw") else "yes"
        assert line.rstrip().endswith(expected), line
    # the floor replays the pull's requests three at a time; one query at a time is one
    assert int(systems["raw transfer, 3 at a time (floor)"][40:].split()[5]) == 3
    assert int(systems["posthog-pandas cold, 1 query at a time"][40:].split()[5]) == 1
    assert "group-by equal to pandas' in 1 of 1 rounds" in done.stdout
    for reference in ("Arrow's system allocator", "local Parquet (memory floor)"):
        assert re.search(rf"^n/a +Dask workers' peak memory: .*{re.escape(reference)}: largest "
                         r"growth \d+ MB", done.stdout, re.MULTILINE), reference  # fmt: skip
    assert re.search(r"^met +queries in flight at the server", done.stdout, re.MULTILINE)
    report = (tmp_path / "cloud-results.md").read_text()
    assert "## What bounds the cold pull" in report and "## Commands" in report
    assert "--latency cloud" in report
    assert "QUICK MODE" in report
    assert not (tmp_path / "cache").exists()  # the caches of the run are removed
