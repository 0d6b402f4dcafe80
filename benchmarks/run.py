"""Measure posthog-pandas side by side with its peers on one local server, in one run.

    python benchmarks/run.py            # full sizes, medians of 3 runs, writes results.md
    python benchmarks/run.py --quick    # small sizes, 1 run: a smoke test, not a measurement

The server runs in its own process (benchmarks/server.py); every system runs in a fresh
subprocess (benchmarks/systems/*.py) that prints one JSON line: rows, wall seconds (start of
fetch to DataFrame or file ready), peak RSS and a file of the ids it returned. The runner
checks those ids against the server's data, takes medians, prints the table with ratios to
posthog-pandas cold, checks the targets of issue 8 and writes results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SYSTEMS = HERE / "systems"
PEERS = ROOT / ".peers"
PYTHON = sys.executable

FULL = {"persons": 20_000, "events": 200_000, "export_events": 1_000_000}
QUICK = {"persons": 2_000, "events": 10_000, "export_events": 20_000}
PEER_PACKAGES = {
    "airbyte": ["airbyte-source-posthog"],
    "dlt": ["dlt", "requests"],  # pandas is added at the main venv's version
}


# -- peers -------------------------------------------------------------------------------------


def peer_python(name: str) -> Path:
    return PEERS / name / "bin" / "python"


def airbyte_connector() -> Path:
    return PEERS / "airbyte" / "bin" / "source-posthog"


def peer_ready(name: str) -> bool:
    if name == "airbyte":
        return airbyte_connector().exists()
    probe = [str(peer_python(name)), "-c", "import dlt, pandas, requests"]
    return peer_python(name).exists() and subprocess.run(probe, capture_output=True).returncode == 0


def install_peer(name: str) -> bool:
    """`python -m venv .peers/<name>` and pip install the peer from PyPI into it."""
    import pandas

    venv = PEERS / name
    packages = list(PEER_PACKAGES[name])
    if name == "dlt":
        packages.append(f"pandas=={pandas.__version__}")
    log(f"installing {name} into {venv} ({' '.join(packages)}) ...")
    commands = [
        [PYTHON, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *packages],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            log(f"  failed: {' '.join(command)}\n{done.stderr[-2000:]}")
            return False
    return peer_ready(name)


def peer_version(name: str) -> str:
    package = {"airbyte": "airbyte-source-posthog", "dlt": "dlt"}[name]
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run([str(peer_python(name)), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or "?"


def prepare_peers(args: argparse.Namespace) -> dict[str, str]:
    """Peers available for this run -> version. --quick uses them only if already installed."""
    ready: dict[str, str] = {}
    if args.no_peers:
        return ready
    for name in ("airbyte", "dlt"):
        if name in args.skip:
            continue
        if not peer_ready(name) and not args.quick:
            install_peer(name)
        if peer_ready(name):
            ready[name] = peer_version(name)
        else:
            log(f"{name}: not available, skipped")
    return ready


# -- the server ----------------------------------------------------------------------------------


class Server:
    """benchmarks/server.py in its own process; stops when its stdin pipe closes."""

    def __init__(
        self, out: Path, persons: int, events: int, seed: int, extra: Sequence[str] = ()
    ) -> None:
        """`extra`: more arguments of benchmarks/server.py (cloud.py: `--latency cloud`)."""
        self.folder = out / f"server-{events}"
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        info = self.folder / "info.json"
        self.command = [
            PYTHON, str(HERE / "server.py"), "--persons", str(persons), "--events", str(events),
            "--seed", str(seed), "--info", str(info), *extra,
        ]  # fmt: skip
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        while not info.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"the benchmark server exited ({self.proc.returncode})")
            if time.perf_counter() - started > 600:
                self.stop()
                raise SystemExit("the benchmark server did not start within 10 minutes")
            time.sleep(0.1)
        self.info: dict[str, Any] = json.loads(info.read_text())
        self.startup = time.perf_counter() - started
        self.expected = {
            "W1": set(Path(self.info["persons_ids"]).read_text().split()),
            "events": set(Path(self.info["events_ids"]).read_text().split()),
        }
        log(
            f"server on {self.info['url']}: {self.info['persons']:,} persons, "
            f"{self.info['events']:,} events ({self.startup:.1f} s to start)"
        )

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process has used so far (Linux /proc), or None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cold(self) -> None:
        """Empty the server's query cache and restart its count of queries in flight."""
        self._tell("cold")

    def query_peak(self) -> int:
        """The most queries the server computed at once since the last `cold()`."""
        self._tell("peak")
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith('{"query_peak"'):
                return int(json.loads(line)["query_peak"])
        raise SystemExit("the benchmark server exited while asked for its query peak")

    def _tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expected_ids(self, workload: str) -> set[str]:
        return self.expected["W1" if workload == "W1" else "events"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def temporary_server(
    prefix: str, sizes: dict[str, int], seed: int
) -> Iterator[tuple[Server, Path]]:
    """A server of `sizes` with a scratch folder for its data and the runs' files, both removed
    afterwards (benchmarks/ablation.py and overlap.py)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        out = Path(tmp)
        server = Server(out, sizes["persons"], sizes["events"], seed)
        try:
            yield server, out
        finally:
            server.stop()


def median_and_ratio(walls: Sequence[float], bases: Sequence[float]) -> str:
    """Median wall, then the median and range of the per-round ratios `walls / bases`."""
    ratios = [w / b for w, b in zip(walls, bases, strict=True)]
    return (
        f"{statistics.median(walls):15.3f}  "
        f"{statistics.median(ratios):7.3f}x  {min(ratios):.2f}-{max(ratios):.2f}x"
    )


# -- running one system --------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    workload: str
    wall: float | None
    rss_mb: float | None
    rows: int | None
    expected: int | None
    lost: int = 0
    duplicates: int = 0
    extra_ids: int = 0
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    round: int = 0  # every system runs once per round; ratios pair runs of the same round
    server_cpu: float | None = None  # CPU seconds the server used during this run

    @property
    def correct(self) -> bool | None:
        if self.error:
            return False
        if self.expected is None:
            return None
        return self.lost == 0 and self.duplicates == 0 and self.extra_ids == 0


@dataclass
class Spec:
    """One system on one workload: its name, interpreter, script and arguments."""

    system: str
    workload: str
    python: str
    script: str
    args: list[str]
    checks_ids: bool = True


def run_system(
    spec: Spec,
    server: Server,
    out: Path,
    tag: str,
    timeout: float,
    extra_env: dict[str, str] | None = None,
) -> Result:
    info = server.info
    command = [
        spec.python, str(SYSTEMS / spec.script),
        "--url", info["url"], "--key", info["api_key"], "--project-id", str(info["project_id"]),
        "--workload", spec.workload, "--after", info["after"], "--before", info["before"],
        "--out", str(out / "ids"), "--tag", tag, *spec.args,
    ]  # fmt: skip
    if spec.system != "warm-up":
        COMMANDS.setdefault((spec.system, spec.workload), redact(command, info["api_key"]))
    server_before = server.cpu_seconds()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        **(extra_env or {}),
    }
    for name in ("POSTHOG_PERSONAL_API_KEY", "POSTHOG_HOST", "POSTHOG_PROJECT_ID"):
        env.pop(name, None)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
        )
    except subprocess.TimeoutExpired:
        return Result(spec.system, spec.workload, None, None, None, None, error="timed out")
    line = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        why = (done.stderr or done.stdout).strip().splitlines()[-3:]
        log(f"  {spec.system} {spec.workload} failed: {' | '.join(why)}")
        return Result(spec.system, spec.workload, None, None, None, None, error=" ".join(why))
    data = json.loads(line)
    result = Result(
        system=spec.system,
        workload=spec.workload,
        wall=data["wall"],
        rss_mb=data["rss_mb"],
        rows=data["rows"],
        expected=None,
        data=data,
    )
    server_after = server.cpu_seconds()
    if server_before is not None and server_after is not None:
        # the whole process's run, start-up included: the server is idle in between
        result.server_cpu = server_after - server_before
    if spec.checks_ids and data.get("ids_file"):
        check_ids(result, Path(data["ids_file"]), server.expected_ids(spec.workload))
        Path(data["ids_file"]).unlink()
    return result


def check_ids(result: Result, path: Path, expected: set[str]) -> None:
    ids = path.read_text(encoding="utf-8").split()
    got = set(ids)
    result.expected = len(expected)
    result.lost = len(expected - got)
    result.extra_ids = len(got - expected)
    result.duplicates = len(ids) - len(got)


def redact(command: Sequence[str], key: str) -> list[str]:
    out = []
    for part in command:
        part = part.replace(key, "$KEY") if key else part
        out.append(os.path.relpath(part, ROOT) if part.startswith(str(ROOT)) else part)
    return out


COMMANDS: dict[tuple[str, str], list[str]] = {}


# -- the plan ------------------------------------------------------------------------------------


PP_COLD, PP_WARM, RAW = "posthog-pandas cold", "posthog-pandas warm", "raw transfer (floor)"
PP_CLIENT = "posthog-pandas, pages from cache"
LIST, HOGQL_GZ, HOGQL_ID = (
    "hand-written list loop",
    "hand-written HogQL loop (gzip)",
    "hand-written HogQL loop (identity)",
)
AIRBYTE, DLT = "airbyte-source-posthog", "dlt rest_api"


def in_memory_plan(
    workload: str, run: int, out: Path, peers: dict[str, str]
) -> list[tuple[Spec, str]]:
    """The systems of W1 or W2 for one run, in order; the second item is the result tag."""
    cache = out / "cache" / f"{workload}-{run}"
    shutil.rmtree(cache, ignore_errors=True)
    requests_log = out / "requests" / f"{workload}-{run}.json"
    requests_log.parent.mkdir(parents=True, exist_ok=True)
    tag = f"r{run}"
    specs = [
        Spec(PP_COLD, workload, PYTHON, "posthog_pandas_sys.py",
             ["--cache-dir", str(cache), "--mode", "cold", "--record", str(requests_log)]),
        Spec(PP_WARM, workload, PYTHON, "posthog_pandas_sys.py",
             ["--cache-dir", str(cache), "--mode", "warm"]),
        Spec(PP_CLIENT, workload, PYTHON, "posthog_pandas_sys.py",
             ["--cache-dir", str(cache), "--mode", "rebuild"]),
        Spec(RAW, workload, PYTHON, "raw_transfer.py", ["--replay", str(requests_log)],
             checks_ids=False),
        Spec(LIST, workload, PYTHON, "handwritten_list.py", []),
    ]  # fmt: skip
    if workload == "W2":
        specs += [
            Spec(HOGQL_GZ, workload, PYTHON, "handwritten_hogql.py", ["--encoding", "gzip"]),
            Spec(HOGQL_ID, workload, PYTHON, "handwritten_hogql.py", ["--encoding", "identity"]),
        ]
    if "dlt" in peers:
        specs.append(Spec(DLT, workload, str(peer_python("dlt")), "dlt_sys.py", []))
    if "airbyte" in peers:
        specs.append(
            Spec(AIRBYTE, workload, PYTHON, "airbyte_sys.py",
                 ["--connector", str(airbyte_connector())])
        )  # fmt: skip
    return [(spec, tag) for spec in specs]


def export_plan(run: int, out: Path) -> list[tuple[Spec, str]]:
    plan = []
    for fmt in ("csv", "parquet"):
        cache = out / "cache" / f"W3-{fmt}-{run}"
        shutil.rmtree(cache, ignore_errors=True)
        spec = Spec(PP_COLD, f"W3-{fmt}", PYTHON, "posthog_pandas_sys.py",
                    ["--cache-dir", str(cache), "--mode", "cold"])  # fmt: skip
        plan.append((spec, f"r{run}"))
    return plan


def start_server(
    out: Path, persons: int, events: int, args: argparse.Namespace, startup: dict[str, float]
) -> Server:
    server = Server(out, persons, events, args.seed)
    SERVER_COMMANDS.append(" ".join(redact(server.command, "")))
    startup[f"{events:,} events"] = server.startup
    return server


def warm_up(server: Server, out: Path, workloads: Sequence[str], timeout: float) -> None:
    """One untimed pass per workload, so no system pays the server's first-request costs
    (DuckDB's first queries, the persons list's row cache)."""
    for workload in workloads:
        cache = out / "cache" / f"warm-up-{workload}"
        shutil.rmtree(cache, ignore_errors=True)
        spec = Spec("warm-up", workload, PYTHON, "posthog_pandas_sys.py",
                    ["--cache-dir", str(cache), "--mode", "cold"])  # fmt: skip
        log(f"warm-up {workload} (not timed) ...")
        run_system(spec, server, out, "warm-up", timeout)
        shutil.rmtree(cache, ignore_errors=True)


def bare_pandas_rss() -> float:
    """Peak RSS (MB) of a bare interpreter that has imported pandas."""
    code = "import pandas, _common; print(_common.peak_rss_mb())"  # measured as the systems are
    done = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, check=True, cwd=SYSTEMS
    )
    return float(done.stdout.strip())


# -- summarising ---------------------------------------------------------------------------------


@dataclass
class Row:
    system: str
    workload: str
    runs: list[Result]

    @property
    def ok_runs(self) -> list[Result]:
        return [r for r in self.runs if r.wall is not None]

    @property
    def wall(self) -> float | None:
        values = [r.wall for r in self.ok_runs if r.wall is not None]
        return statistics.median(values) if values else None

    @property
    def rss(self) -> float | None:
        values = [r.rss_mb for r in self.ok_runs if r.rss_mb is not None]
        return statistics.median(values) if values else None

    @property
    def cpu(self) -> float | None:
        return self.median_of("cpu")

    @property
    def server_cpu(self) -> float | None:
        values = [r.server_cpu for r in self.ok_runs if r.server_cpu is not None]
        return statistics.median(values) if values else None

    def wall_by_round(self) -> dict[int, float]:
        return {r.round: r.wall for r in self.ok_runs if r.wall is not None}

    def median_of(self, key: str) -> float | None:
        values = [r.data[key] for r in self.ok_runs if r.data.get(key) is not None]
        return statistics.median(values) if values else None

    @property
    def correct(self) -> str:
        if not self.ok_runs:
            return "FAILED: " + (self.runs[0].error or "no result")[:60]
        states = [r.correct for r in self.runs]
        if all(s is None for s in states):
            return "n/a (no rows built)"
        if all(states):
            return "yes"
        worst = max(self.runs, key=lambda r: (r.lost, r.duplicates, r.extra_ids))
        parts = []
        if worst.lost:
            parts.append(f"lost {worst.lost:,} of {worst.expected:,}")
        if worst.duplicates:
            parts.append(f"{worst.duplicates:,} duplicates")
        if worst.extra_ids:
            parts.append(f"{worst.extra_ids:,} unknown ids")
        if worst.error:
            parts.append(worst.error[:60])
        return "NO: " + ", ".join(parts)


def summarise(results: list[Result]) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    for result in results:
        rows.setdefault((result.system, result.workload), Row(result.system, result.workload, []))
        rows[(result.system, result.workload)].runs.append(result)
    return list(rows.values())


def find(rows: list[Row], system: str, workload: str) -> Row | None:
    return next((r for r in rows if r.system == system and r.workload == workload), None)


def ratio_text(row: Row, rows: list[Row]) -> str:
    base = find(rows, PP_COLD, row.workload)
    if base is None or base.wall is None or row.wall is None:
        return "-"
    text = f"{row.wall / base.wall:.2f}x"
    return text if row.correct.startswith(("yes", "n/a")) else f"({text}, incomplete)"


def table(rows: list[Row]) -> list[list[str]]:
    out = [
        ["system", "workload", "median wall (s)", "client CPU (s)", "server CPU (s)",
         "peak RSS (MB)", "vs pp cold", "rows correct?"]
    ]  # fmt: skip
    for row in rows:
        out.append(
            [
                row.system,
                row.workload,
                "-" if row.wall is None else f"{row.wall:.2f}",
                "-" if row.cpu is None else f"{row.cpu:.2f}",
                "-" if row.server_cpu is None else f"{row.server_cpu:.2f}",
                "-" if row.rss is None else f"{row.rss:.0f}",
                ratio_text(row, rows),
                row.correct,
            ]
        )
    return out


def render_text(cells: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None

    def line(self) -> str:
        """The target as the console prints it."""
        met = "n/a" if self.met is None else ("met" if self.met else "MISSED")
        return f"{met:6}  {self.name}: {self.measured} (goal {self.goal})"

    def row(self) -> str:
        """The target as a row of the results file's Markdown table (TARGETS_HEADER)."""
        met = "n/a" if self.met is None else ("yes" if self.met else "**NO**")
        return f"| {self.name} | {self.goal} | {self.measured} | {met} |"


TARGETS_HEADER = ["| target | goal | measured | met? |", "|---|---|---|---|"]


def paired_ratios(mine: Row, theirs: Row) -> list[float]:
    """mine / theirs for every round in which both ran: each ratio compares two runs made
    back to back, so a slow spell of the machine (seen here as +-30% within minutes) moves
    both sides of a ratio instead of one median."""
    a, b = mine.wall_by_round(), theirs.wall_by_round()
    return [a[r] / b[r] for r in sorted(a.keys() & b.keys()) if b[r] > 0]


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.1 else f"{value:.3f} s"


def ratio_summary(ratios: list[float], mine: float, theirs: float, digits: int = 3) -> str:
    """E.g. 0.637x (median of 7 per-round ratios, 0.50-0.73x; medians 0.51 s / 0.81 s)."""
    value = statistics.median(ratios)
    counted = f"{len(ratios)} per-round ratio" + ("s" if len(ratios) > 1 else "")
    spread = f", {min(ratios):.2f}-{max(ratios):.2f}x" if len(ratios) > 1 else ""
    return (
        f"{value:.{digits}f}x (median of {counted}{spread}; "
        f"medians {seconds(mine)} / {seconds(theirs)})"
    )


def targets(rows: list[Row], bare_mb: float, scale: float) -> list[Target]:
    """The targets of issue 8. A ratio target is the median of the per-round ratios: both
    systems ran in the same round, minutes apart at most (W3's ratio is its time over the
    same round's W2 cold time scaled to its size)."""
    out: list[Target] = []

    def wall(system: str, workload: str) -> float | None:
        row = find(rows, system, workload)
        return None if row is None else row.wall

    def ratio_target(name: str, workload: str, other: str, limit: float) -> None:
        mine_row, row = find(rows, PP_COLD, workload), find(rows, other, workload)
        ratios = [] if mine_row is None or row is None else paired_ratios(mine_row, row)
        mine, theirs = wall(PP_COLD, workload), wall(other, workload)
        if not ratios or mine is None or theirs is None:
            out.append(Target(name, f"<= {limit}x", "not measured", None))
            return
        incomplete = row is not None and row.correct.startswith("NO")
        note = f" ({other}: {row.correct})" if row is not None and incomplete else ""
        value = statistics.median(ratios)
        text = ratio_summary(ratios, mine, theirs) + note
        met: bool | None = value <= limit
        if incomplete and not met:
            # A peer that stopped early would only take longer to finish: its time bounds a
            # complete run from below, so it can prove a target met, never missed.
            met = None
            text += "; undetermined: its time is not that of a complete pull"
        out.append(Target(name, f"<= {limit}x", text, met))

    ratio_target("W2 cold vs hand-written list loop", "W2", LIST, 0.25)
    ratio_target("W2 cold vs airbyte", "W2", AIRBYTE, 0.1)
    ratio_target("W2 cold vs hand-written HogQL loop (gzip)", "W2", HOGQL_GZ, 1.0)
    ratio_target("W2 cold vs hand-written HogQL loop (identity)", "W2", HOGQL_ID, 1.0)
    ratio_target("W2 cold vs raw transfer", "W2", RAW, 1.5)
    cold, warm = wall(PP_COLD, "W2"), wall(PP_WARM, "W2")
    cold_row, warm_row = find(rows, PP_COLD, "W2"), find(rows, PP_WARM, "W2")
    speedups = [] if cold_row is None or warm_row is None else paired_ratios(cold_row, warm_row)
    if cold and warm and speedups:
        speedup = statistics.median(speedups)
        out.append(
            Target("W2 warm speed-up over cold", ">= 10x",
                   ratio_summary(speedups, cold, warm, digits=1), speedup >= 10)
        )  # fmt: skip
    ratio_target("W1 cold vs hand-written list loop", "W1", LIST, 0.5)
    w2 = find(rows, PP_COLD, "W2")
    if w2 is not None and w2.rss is not None and w2.median_of("df_bytes") is not None:
        df_mb = (w2.median_of("df_bytes") or 0) / 2**20
        bound = 2.5 * (df_mb + bare_mb)
        text = (
            f"{w2.rss:.0f} MB vs 2.5 x ({df_mb:.0f} MB frame + {bare_mb:.0f} MB bare "
            f"interpreter with pandas) = {bound:.0f} MB"
        )
        out.append(Target("W2 peak RSS", "<= 2.5 x (frame + bare)", text, w2.rss <= bound))
    for fmt in ("csv", "parquet"):
        row = find(rows, PP_COLD, f"W3-{fmt}")
        if row is None or row.rss is None or row.wall is None:
            continue
        out.append(
            Target(f"W3 {fmt} peak RSS", "< 400 MB", f"{row.rss:.0f} MB", row.rss < 400)
        )  # fmt: skip
        if cold and cold_row is not None:
            ratios = [value / scale for value in paired_ratios(row, cold_row)]
            if ratios:
                value = statistics.median(ratios)
                text = ratio_summary(ratios, row.wall, cold, digits=2) + (
                    f"; W2 cold x {scale:g} = {cold * scale:.1f} s"
                )
                out.append(
                    Target(f"W3 {fmt} time vs W2 fetch scaled", "<= 1.5x", text, value <= 1.5)
                )  # fmt: skip
    return out


# -- the report ----------------------------------------------------------------------------------


def code_version() -> str:
    """The commit being measured, marked when the code differs from it (read at the start:
    a run takes a quarter of an hour, and its results file is its own output)."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--",
             ".", ":(exclude)benchmarks/results.md"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes" if changed else commit


def machine() -> dict[str, str]:
    import pandas

    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "pandas": pandas.__version__,
    }


def write_report(
    path: Path,
    args: argparse.Namespace,
    sizes: dict[str, int],
    rows: list[Row],
    checks: list[Target],
    peers: dict[str, str],
    bare_mb: float,
    startup: dict[str, float],
) -> None:
    info = machine()
    flags = " --quick" if args.quick else ""
    if args.runs != (1 if args.quick else 3):
        flags += f" --runs {args.runs}"
    if args.no_peers:
        flags += " --no-peers"
    if args.skip:
        flags += f" --skip {','.join(sorted(args.skip))}"
    quick_note = " QUICK MODE: small sizes, one run; not a measurement." if args.quick else ""
    lines = [
        "# posthog-pandas benchmark results",
        "",
        f"Generated by `python benchmarks/run.py{flags}` on {info['date']}, code at "
        f"{args.code}.{quick_note}",
        "",
        "## Machine",
        "",
        f"- cores: {info['cores']} ({info['cpu']}); memory: {info['memory']}; {info['os']}",
        f"- Python {info['python']}, pandas {info['pandas']}",
        f"- peers: {', '.join(f'{k} {v}' for k, v in peers.items()) or 'none (--no-peers)'}",
        f"- bare interpreter with pandas imported: {bare_mb:.0f} MB peak RSS",
        "",
        "## Data",
        "",
        f"- W1: {sizes['persons']:,} persons. W2: {sizes['events']:,} events over 30 days "
        "(2024-01-01 to 2024-01-31). W3: export of "
        f"{sizes['export_events']:,} events over the same 30 days, to CSV and to Parquet.",
        "- Server: `benchmarks/server.py` (posthog_pandas.server.LocalPostHog, DuckDB behind a "
        "threaded http.server) in its own process on 127.0.0.1; server start-up "
        + ", ".join(f"{k}: {v:.1f} s" for k, v in startup.items())
        + " (not timed).",
        f"- {args.runs} round(s); in each round every system runs once on every workload, "
        "each run a fresh process, one after another (the machine has "
        f"{info['cores']} cores: the server and one client at a time).",
        "",
        "## Results (medians)",
        "",
        render_markdown(table(rows)),
        "",
        "Wall: measured inside each process from the start of the fetch (posthog-pandas: from "
        "`connect()`) to the finished DataFrame or file. Client CPU: user + system CPU of that "
        "process (and of the subprocesses it waited for: airbyte's connector) over the same "
        "span. Server CPU: what the server process used while the system ran (its start-up "
        "included; the server is otherwise idle); on 2 cores, a wall close to client CPU "
        "means the client was the bottleneck. Peak RSS: the process's own high-water mark "
        "(VmHWM; airbyte: the larger of the connector's and the normalizing process's). "
        "`vs pp cold`: this system's median wall over posthog-pandas cold's on the same "
        "workload; a system that did not return every row is shown in parentheses as "
        "incomplete.",
        "",
        "## Targets (issue 8)",
        "",
        "Each ratio is the median of the per-round ratios (the two runs of a round are minutes "
        "apart at most), so a slow spell of the machine moves both sides of a ratio; the "
        "range shows how far the rounds disagreed.",
        "",
        *TARGETS_HEADER,
        *(t.row() for t in checks),
    ]
    lines += [
        "",
        "## Notes on fairness",
        "",
        "- Content encoding: posthog-pandas asks for `Accept-Encoding: identity` on loopback "
        "hosts (gzip costs CPU on both ends there and saves nothing); on a remote host it "
        "takes gzip. The hand-written loops, dlt and airbyte use their defaults (gzip). The "
        "HogQL loop is measured both ways so the comparison is fair in both directions.",
        "- The events list endpoint clamps to 1,000 rows per request and moves `before` to "
        "the last row's timestamp, skipping the other events of that second (as PostHog "
        "does): list-based systems lose rows. airbyte ignores `next` and stops at the first "
        "page shorter than its page size (10,000), so it keeps 1,000 events per 30-day slice.",
        "- posthog-pandas cold includes caching every page (zstd in SQLite, on a writer "
        "thread, flushed before the call returns); the Parquet copy of the finished frame is "
        "written on a background thread after the DataFrame is returned (the process waits for "
        "it at exit), as it would be in a notebook. Warm is a second process on the same cache "
        "directory. `pages from cache` deletes the cached frame first, so it rebuilds the "
        "DataFrame from the cached pages with no HTTP: the client's own work, server idle.",
        "- The raw transfer replays the exact requests (URL, headers, body) that the cold "
        "posthog-pandas run of the same round sent, with a plain requests.Session, reading "
        "and discarding the bodies: the floor for this server.",
        "",
        "## Commands",
        "",
        "Server:",
        "",
        "```",
        *SERVER_COMMANDS,
        "```",
        "",
        "Systems (one fresh process per run; `$KEY` is the server's demo key, `rN` the run):",
        "",
        "```",
    ]
    for (system, workload), command in COMMANDS.items():
        lines.append(f"# {system}, {workload}")
        lines.append(" ".join(command))
    lines += ["```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + _kept_sections(path), encoding="utf-8")


def _kept_sections(path: Path) -> str:
    """The soak section (written by hand from `benchmarks/soak.py`) survives a rerun."""
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    start = old.find("\n## Soak")
    return "" if start == -1 else old[start:]


SERVER_COMMANDS: list[str] = []


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, 1 run (CI smoke test)")
    p.add_argument("--runs", type=int, help="runs per system (default 3; 1 with --quick)")
    p.add_argument("--no-peers", action="store_true", help="skip airbyte and dlt")
    p.add_argument("--skip", default="", help="comma list: airbyte,dlt,W1,W2,W3")
    p.add_argument("--out", default=str(HERE / "out"), help="artifacts directory")
    p.add_argument("--results", help="results file (default benchmarks/results.md; "
                   "with --quick: OUT/results.md)")  # fmt: skip
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--timeout", type=float, default=1800, help="seconds per system run")
    args = p.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.code = code_version()
    sizes = QUICK if args.quick else FULL
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results) if args.results else (
        out / "results.md" if args.quick else HERE / "results.md"
    )  # fmt: skip
    peers = prepare_peers(args)
    bare_mb = bare_pandas_rss()
    results: list[Result] = []
    startup: dict[str, float] = {}
    workloads = [w for w in ("W1", "W2") if w not in args.skip]
    servers: dict[str, Server] = {}
    try:
        # Both servers run for the whole benchmark and every round runs every workload, so a
        # slow spell of the machine lands on one round of everything, not on one workload.
        if workloads:
            servers["W1/W2"] = start_server(out, sizes["persons"], sizes["events"], args, startup)
            warm_up(servers["W1/W2"], out, workloads, args.timeout)
        if "W3" not in args.skip:
            servers["W3"] = start_server(
                out, sizes["persons"], sizes["export_events"], args, startup
            )
            warm_up(servers["W3"], out, ["W2"], args.timeout)
        for run in range(1, args.runs + 1):
            plan = [
                (servers["W1/W2"], item)
                for workload in workloads
                for item in in_memory_plan(workload, run, out, peers)
            ]
            if "W3" in servers:
                plan += [(servers["W3"], item) for item in export_plan(run, out)]
            for server, (spec, tag) in plan:
                log(f"run {run}/{args.runs} {spec.workload}: {spec.system} ...")
                result = run_system(spec, server, out, tag, args.timeout)
                result.round = run
                results.append(result)
                log(f"  {describe(result)}")
    finally:
        for server in servers.values():
            server.stop()
    rows = summarise(results)
    checks = targets(rows, bare_mb, sizes["export_events"] / sizes["events"])
    print(render_text(table(rows)))
    print()
    for t in checks:
        print(t.line())
    write_report(results_path, args, sizes, rows, checks, peers, bare_mb, startup)
    raw = [r.__dict__ | {"correct": r.correct} for r in results]
    (out / "results.json").write_text(json.dumps(raw, indent=1, default=str), encoding="utf-8")
    for leftover in ("cache", "ids", *(p.name for p in out.glob("server-*"))):
        shutil.rmtree(out / leftover, ignore_errors=True)  # caches of a full run: ~600 MB
    log(f"wrote {results_path} and {out / 'results.json'}")
    return 0


def describe(result: Result) -> str:
    if result.error:
        return f"error: {result.error[:200]}"
    state = {True: "rows ok", False: f"LOST {result.lost:,}", None: "no ids"}[result.correct]
    if result.duplicates:
        state += f", {result.duplicates:,} duplicates"
    return f"{result.wall:.2f} s, {result.rss_mb:.0f} MB, {result.rows} rows, {state}"


if __name__ == "__main__":
    raise SystemExit(main())
