"""The Dask reader against pulling into pandas first, both computing events per day per event.

`--mode dask`: `posthog_pandas.dask.read_events(after, before, partition="1D")` on a distributed
LocalCluster of 2 worker processes (2 threads each: four partitions may run at once, PostHog's
3 query slots let three of them pull), then the group-by computed on the cluster. The cluster
starts before the clock (a pipeline on a cluster has one already); the clock covers
read_events (its schema probe included) and compute. The workers find the key in the
environment they inherit, as the Dask page says; each reports its peak RSS, CPU, requests and
the sizes of the partitions it pulled.
`--mode pandas`: `ph.events(after, before)`, then the same group-by in this process.
`--mode parquet`: the floor of the workers' memory, not a way to pull: the same partitions
(read untimed from the cache a `--mode dask` run left in `--cache-dir`) written as one local
Parquet file each, then read by `dd.from_map` on the same cluster and the same group-by:
what any Dask reader of these partitions would hold, with no JSON to decode.
`--arrow-pool system` starts the workers with ARROW_DEFAULT_MEMORY_POOL=system (the setting
docs/dask.md gives), where Arrow's default allocator (mimalloc) keeps freed memory per thread.

Both read gzip bodies from an empty cache directory. The group-by is written as CSV (day,
event, n) for the runner to compare; `rows` is the sum of its counts. `cpu` is the CPU of the
whole client side: this process, plus the workers' in Dask mode.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import _common
import _dask_worker

HERE = Path(__file__).resolve().parent
PARTITION = "1D"
WORKERS, THREADS = 2, 2


def main() -> None:
    p = _common.parser(__doc__ or "")
    p.add_argument("--mode", choices=["dask", "pandas", "parquet"], required=True)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--arrow-pool", choices=["default", "system"], default="default")
    args = p.parse_args()
    import posthog_pandas as php

    ph = php.connect(
        args.key,
        host=args.url,
        project_id=args.project_id,
        cache_dir=args.cache_dir,
        compression="gzip",  # as from a remote PostHog, which the profile stands for
        max_concurrent_queries=3,
        progress=False,
        dotenv=False,
        prompt=False,
    )
    if args.mode == "pandas":
        clock = _common.Clock()
        frame = ph.events(after=args.after, before=args.before)
        counts = _dask_worker.events_per_day(frame)
        clock.stop()
        extra: dict[str, Any] = {"df_bytes": _common.deep_bytes(frame), "frame_rows": len(frame)}
        system = "ph.events(), then the group-by in pandas"
    else:
        counts, extra = on_cluster(args, ph)
        system = f"Dask {args.mode}, LocalCluster of {WORKERS} processes, {args.arrow_pool} pool"
    rss = _common.peak_rss_mb()
    path = Path(args.out).parent / "groupby" / f"{args.mode}-{args.tag}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    counts.rename("n").reset_index().to_csv(path, index=False)
    assert _common._stopped, "the clock was stopped"
    cpu = (_common._stopped[-1].cpu or 0.0) + extra.pop("workers_cpu", 0.0)
    _common.emit(
        args, system, rows=int(counts.sum()), wall=_common._stopped[-1].seconds, rss_mb=rss,
        ids_file=None, groupby_file=str(path), cpu=cpu, **extra,
    )  # fmt: skip


def on_cluster(args: Any, ph: Any) -> tuple[Any, dict[str, Any]]:
    """The group-by over read_events (or the same partitions' Parquet files) on a fresh
    LocalCluster, and what its workers report."""
    import distributed

    from posthog_pandas.dask import Source, read_events

    files = partition_files(args) if args.mode == "parquet" else []
    env = {"ARROW_DEFAULT_MEMORY_POOL": "system"} if args.arrow_pool == "system" else {}

    # What the worker processes inherit: the key (never in the task graph) and this folder,
    # so that they import _dask_worker by name and keep its state per process.
    os.environ["POSTHOG_PERSONAL_API_KEY"] = args.key
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    with (
        distributed.LocalCluster(
            n_workers=WORKERS, threads_per_worker=THREADS, processes=True,
            dashboard_address=None, silence_logs=40, env=env,
            # Dask's HTTP routes listen even without a dashboard, by default on 8787.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        compression = client.run(_dask_worker.worker_compression, Source.of(ph))
        if set(compression.values()) != {"gzip"}:
            sys.exit(f"the workers' connections do not ask for gzip: {compression}")
        before = client.run(_dask_worker.start, Source.of(ph), files[:1])
        clock = _common.Clock()
        frame = read_events(args.after, args.before, partition=PARTITION, ph=ph)
        if files:  # the same meta and partitions, from local files
            import dask.dataframe as dd

            reader = functools.partial(_dask_worker.read_partition, meta=frame._meta)
            frame = dd.from_map(reader, files, meta=frame._meta, enforce_metadata=False)
        sized = frame.map_partitions(_dask_worker.note_size, meta=frame._meta)
        counts = _dask_worker.events_per_day(sized).compute()
        clock.stop()
        after = client.run(_dask_worker.report)
    workers = []
    for address, report in after.items():
        report["start_rss_mb"] = before[address]["rss_mb"]
        report["cpu"] -= before[address]["cpu"]
        workers.append(report)
    if not files and sum(w["requests"] for w in workers) == 0:
        sys.exit("the workers sent no request: posthog_pandas.dask did not use their connections")
    extra = {
        "partitions": frame.npartitions,
        "workers": workers,
        "workers_cpu": sum(w["cpu"] for w in workers),
    }
    return counts, extra


def partition_files(args: Any) -> list[str]:
    """Each partition of read_events as a Parquet file, from the frames a `--mode dask` run
    cached in --cache-dir (so no query reaches the server)."""
    import posthog_pandas as php
    from posthog_pandas.dask import time_windows

    cached = php.connect(
        args.key, host=args.url, project_id=args.project_id, cache_dir=args.cache_dir,
        offline=True, progress=False, dotenv=False, prompt=False,
    )  # fmt: skip
    folder = Path(args.out).parent / "parquet-partitions" / args.tag
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, (start, end) in enumerate(time_windows(args.after, args.before, PARTITION)):
        path = folder / f"{index:03d}.parquet"
        cached.events(after=start, before=end).to_parquet(path)
        files.append(str(path))
    return files


if __name__ == "__main__":
    main()
