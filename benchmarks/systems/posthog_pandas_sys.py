"""posthog-pandas: `ph.persons()` (W1), `ph.events(after, before)` (W2), `ph.export()` (W3).

`--cache-dir` names the cache: an empty directory is a cold run; a second process on the same
directory is a warm run (the finished frame comes from the cache, as after a kernel restart).
`--mode rebuild` deletes the cached frames first, so the call rebuilds the DataFrame from the
cached pages without any HTTP: the client's own work (decompress, decode, type, concatenate)
with the server idle.
`--record FILE` writes every HTTP request this process sent (method, URL, headers, body) so the
raw-transfer system can replay exactly those requests; recording is a list append per request.
`--compression gzip|identity|auto` is passed to `connect(compression=...)` (benchmarks/cloud.py
asks for gzip, as from a remote PostHog); `--max-concurrent-queries N` to
`connect(max_concurrent_queries=N)`. Left out, connect()'s defaults apply.
Progress bars are off (they cost time and write to a terminal nobody reads here).
`--ablate PART` (W2 only, for benchmarks/ablation.py) takes one part of the client's work out
of the pull to measure what it costs: `half-frames` builds each page's frame from half its rows,
`no-frames` builds a one-column frame, `no-cache` pulls with `cache=False`. The result is not
a correct W2 frame; the runner never uses it.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path
from typing import Any

import _common
import requests

SYSTEM_NAMES = {
    "cold": "posthog-pandas cold",
    "warm": "posthog-pandas warm",
    "rebuild": "posthog-pandas, pages from cache",
}
ABLATIONS = ("none", "half-frames", "no-frames", "no-cache")


def ablate(part: str) -> None:
    """Swap the events page-to-frame step for a cheaper one (see the module docstring)."""
    import pandas as pd

    from posthog_pandas import events

    build = events.page_frame

    def half_frame(flt: Any, columns: Any, types: Any, rows: Any, options: Any) -> Any:
        return build(flt, columns, types, rows[: len(rows) // 2], options)

    def one_column(flt: Any, columns: Any, types: Any, rows: Any, options: Any) -> Any:
        at = columns.index("uuid")
        return pd.DataFrame({"uuid": pd.array([row[at] for row in rows], dtype="string")})

    if part == "half-frames":
        events.page_frame = half_frame
    elif part == "no-frames":
        events.page_frame = one_column


class RecordingSession(requests.Session):
    """A requests.Session that remembers each prepared request it sends, and when it was sent
    and its response's headers came back (seconds on the perf_counter clock: benchmarks/cloud.py
    draws the pull's timeline from them)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        entry = {
            "method": request.method,
            "url": request.url,
            "headers": dict(request.headers),
            "body": base64.b64encode(body).decode() if body else None,
            "sent": time.perf_counter(),
        }
        self.log.append(entry)
        response = super().send(request, **kwargs)
        entry["answered"] = time.perf_counter()
        return response


def main() -> None:
    p = _common.parser(__doc__ or "")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--mode", choices=["cold", "warm", "rebuild"], required=True)
    p.add_argument("--record", help="write the requests sent to this JSON file")
    p.add_argument("--ablate", choices=ABLATIONS, default="none", help="W2: see above")
    p.add_argument("--compression", choices=["auto", "gzip", "identity"])
    p.add_argument("--max-concurrent-queries", type=int)
    args = p.parse_args()
    import posthog_pandas

    # `import posthog_pandas` is lazy (PEP 562); load the connector's modules (pandas,
    # requests, pyarrow) now, so the clock starts after imports as it does for every system.
    posthog_pandas.connect  # noqa: B018
    ablate(args.ablate)
    if args.mode == "rebuild":
        shutil.rmtree(Path(args.cache_dir) / "frames", ignore_errors=True)
    session = RecordingSession() if args.record else None
    options = connect_options(args)
    clock = _common.Clock()
    ph = posthog_pandas.connect(
        args.key,
        host=args.url,
        project_id=args.project_id,
        cache_dir=args.cache_dir,
        session=session,
        progress=False,
        dotenv=False,
        prompt=False,
        **options,
    )
    if args.workload == "W1":
        df = ph.persons()
        id_column = "id"
    elif args.workload == "W2":
        df = ph.events(after=args.after, before=args.before, cache=args.ablate != "no-cache")
        id_column = "uuid"
    else:
        suffix = "csv" if args.workload == "W3-csv" else "parquet"
        target = Path(args.out) / f"export-{args.tag}.{suffix}"
        summary = ph.export("events", target, after=args.after, before=args.before)
        wall = clock.stop()
        rss = _common.peak_rss_mb()
        ids_list = _read_ids(target, suffix)
        ids = _common.write_ids(args.out, f"pp-{args.mode}-{args.workload}-{args.tag}", ids_list)
        _record(args, session, clock)
        target.unlink()
        _common.emit(
            args, SYSTEM_NAMES[args.mode], rows=summary.rows, wall=wall, rss_mb=rss,
            ids_file=ids, file_bytes=summary.bytes, requests=ph.request_stats.requests,
        )  # fmt: skip
        return
    _common.emit_frame(
        args, SYSTEM_NAMES[args.mode], df, id_column, f"pp-{args.mode}", clock.stop(),
        requests=ph.request_stats.requests, bytes_received=ph.request_stats.bytes,
    )  # fmt: skip
    _record(args, session, clock)


def connect_options(args: Any) -> dict[str, Any]:
    """Only the options asked for, so this script also runs code that predates them; the
    queries in flight go through `pacing=` where connect() has no `max_concurrent_queries=`."""
    import inspect

    import posthog_pandas

    options: dict[str, Any] = {}
    if args.compression is not None:
        options["compression"] = args.compression
    if args.max_concurrent_queries is not None:
        if "max_concurrent_queries" in inspect.signature(posthog_pandas.connect).parameters:
            options["max_concurrent_queries"] = args.max_concurrent_queries
        else:
            pacing = posthog_pandas.PacingSettings(
                max_concurrent_queries=args.max_concurrent_queries
            )
            options["pacing"] = pacing
    return options


def _read_ids(target: Path, suffix: str) -> list[str]:
    if suffix == "parquet":
        import pyarrow.parquet as pq

        return [str(v) for v in pq.read_table(target, columns=["uuid"]).column(0).to_pylist()]
    import pyarrow.csv as pv

    table = pv.read_csv(target, convert_options=pv.ConvertOptions(include_columns=["uuid"]))
    return [str(v) for v in table.column(0).to_pylist()]


def _record(args: Any, session: RecordingSession | None, clock: _common.Clock) -> None:
    """The request log, its times made relative to the clock's start."""
    if session is not None:
        for entry in session.log:
            for name in ("sent", "answered"):
                if name in entry:
                    entry[name] -= clock.started
        Path(args.record).write_text(json.dumps(session.log), encoding="utf-8")


if __name__ == "__main__":
    main()
