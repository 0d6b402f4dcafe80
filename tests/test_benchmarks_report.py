"""The benchmark report's arithmetic: targets are medians of ratios paired by round.

benchmarks/run.py is a script, not a package module; it is loaded from its path. The numbers
below are made up to make each rule visible; no timing of this machine is asserted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

RUN_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks_run"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def result(run: ModuleType, system: str, workload: str, wall: float, rnd: int, **kw: Any) -> Any:
    r = run.Result(system, workload, wall, 100.0, 10, 10, **kw)
    r.round = rnd
    return r


def target(checks: list[Any], name: str) -> Any:
    return next(t for t in checks if t.name == name)


def test_a_slow_round_moves_both_sides_of_a_ratio(run: ModuleType) -> None:
    # Round 2 ran with the machine twice as slow. Ratio of medians: 2.0 / 1.0 = 2.0x, as if
    # posthog-pandas were slow; paired by round the ratio is 1.2x in every round.
    walls = {1: (1.2, 1.0), 2: (2.4, 2.0), 3: (1.2, 1.0)}
    results = []
    for rnd, (mine, raw) in walls.items():
        results.append(result(run, run.PP_COLD, "W2", mine, rnd))
        results.append(result(run, run.RAW, "W2", raw, rnd))
    checks = run.targets(run.summarise(results), bare_mb=100.0, scale=5.0)
    raw_target = target(checks, "W2 cold vs raw transfer")
    assert raw_target.met is True
    assert raw_target.measured == (
        "1.200x (median of 3 per-round ratios, 1.20-1.20x; medians 1.20 s / 1.00 s)"
    )


def test_rounds_where_only_one_side_ran_are_not_paired(run: ModuleType) -> None:
    results = [
        result(run, run.PP_COLD, "W1", 0.4, 1),
        result(run, run.LIST, "W1", 1.0, 1),
        result(run, run.PP_COLD, "W1", 0.9, 2),  # the loop failed in round 2: no pair
        run.Result(run.LIST, "W1", None, None, None, None, error="timed out"),
    ]
    results[-1].round = 2
    checks = run.targets(run.summarise(results), bare_mb=100.0, scale=5.0)
    w1 = target(checks, "W1 cold vs hand-written list loop")
    assert w1.met is True
    assert w1.measured.startswith("0.400x (median of 1 per-round ratio; medians ")


def test_w3_is_paired_with_the_same_rounds_w2_cold_time_scaled(run: ModuleType) -> None:
    results = [
        result(run, run.PP_COLD, "W2", 1.0, 1),
        result(run, run.PP_COLD, "W2", 2.0, 2),
        result(run, run.PP_COLD, "W3-csv", 7.0, 1),  # 7 / (1.0 x 5) = 1.4x
        result(run, run.PP_COLD, "W3-csv", 16.0, 2),  # 16 / (2.0 x 5) = 1.6x
    ]
    checks = run.targets(run.summarise(results), bare_mb=100.0, scale=5.0)
    w3 = target(checks, "W3 csv time vs W2 fetch scaled")
    assert w3.measured.startswith("1.50x (median of 2 per-round ratios, 1.40-1.60x;")
    assert w3.met is True


def test_warm_speed_up_is_paired_too(run: ModuleType) -> None:
    results = [
        result(run, run.PP_COLD, "W2", 1.5, 1),
        result(run, run.PP_WARM, "W2", 0.05, 1),
        result(run, run.PP_COLD, "W2", 3.0, 2),
        result(run, run.PP_WARM, "W2", 0.5, 2),
    ]
    checks = run.targets(run.summarise(results), bare_mb=100.0, scale=5.0)
    warm = target(checks, "W2 warm speed-up over cold")
    assert warm.measured == (
        "18.0x (median of 2 per-round ratios, 6.00-30.00x; medians 2.25 s / 0.28 s)"
    )
    assert warm.met is True


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_a_system_reports_its_own_peak_not_the_runners(tmp_path: Path) -> None:
    import subprocess

    systems = RUN_PY.parent / "systems"
    code = "import _common; print(_common.peak_rss_mb())"
    ballast = bytearray(300 * 2**20)  # the runner's memory, touched page by page
    ballast[::4096] = b"x" * len(ballast[::4096])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=systems
    )
    del ballast
    # a bare interpreter is ~10-30 MB; ru_maxrss would have said 300+ here
    assert float(done.stdout) < 100


def test_a_clock_told_a_start_instant_starts_no_sooner() -> None:
    # benchmarks/overlap.py starts two processes together this way; without the variable a
    # clock starts at once (every other harness run).
    import subprocess

    systems = RUN_PY.parent / "systems"
    code = (
        "import os, time, _common\n"
        "at = time.time() + 0.3\n"
        "os.environ[_common.START_AT_VARIABLE] = repr(at)\n"
        "clock = _common.Clock()\n"
        "print(time.time() >= at, clock.seconds is None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=systems
    )
    assert done.stdout.split() == ["True", "True"]


CLOUD_PY = RUN_PY.parent / "cloud.py"


@pytest.fixture(scope="module")
def cloud(run: ModuleType) -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_cloud", CLOUD_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks_cloud"] = module
    spec.loader.exec_module(module)
    return module


def test_the_cloud_timeline_counts_requests_waiting_at_once(cloud: ModuleType) -> None:
    # One request alone 0-2 s, then three at once 3-4 s (one answered at 3.5 s), the frame
    # ready at 5 s: none waiting 2-3 s and 4-5 s, one 0-2 s, three 3-3.5 s, two 3.5-4 s.
    log = [
        {"sent": 0.0, "answered": 2.0},
        {"sent": 3.0, "answered": 4.0},
        {"sent": 3.0, "answered": 3.5},
        {"sent": 3.0, "answered": 4.0},
        {"sent": 4.5},  # no answer recorded (the process failed): not counted
    ]
    spent = cloud.timeline(log, wall=5.0)
    assert spent == {
        "0": 2.0, "1": 2.0, "3": 0.5, "2": 0.5, "first_answer": 2.0, "last_answer": 4.0,
    }  # fmt: skip


def test_a_dask_worker_holding_more_than_its_partitions_misses(
    run: ModuleType, cloud: ModuleType
) -> None:
    def dask_run(rnd: int, peak: float) -> Any:
        r = result(run, cloud.DASK, "W2", 10.0, rnd)
        worker = {"rss_mb": peak, "start_rss_mb": 200.0, "partitions": 15,
                  "partitions_mb": 150.0, "largest_partition_mb": 11.0}  # fmt: skip
        r.data["workers"] = [worker, {**worker, "rss_mb": 250.0}]
        return r

    held = run.Row(cloud.DASK, "W2", [dask_run(1, 320.0), dask_run(2, 300.0)])
    target = cloud.worker_memory(held, "<= its partitions")
    assert target.met is True
    assert target.measured.startswith("largest growth 120 MB (peak 320 MB from 200 MB; ")
    held.runs.append(dask_run(3, 351.0))  # 151 MB more than at the start: all 15 and then some
    assert cloud.worker_memory(held, "<= its partitions").met is False
    # the reference rows are reported, never judged
    reference = run.Row(cloud.DASK_PARQUET, "W2", [dask_run(1, 400.0)])
    assert cloud.worker_memory(reference, "report").met is None
    assert cloud.worker_memory(reference, "report").name.endswith(cloud.DASK_PARQUET)
