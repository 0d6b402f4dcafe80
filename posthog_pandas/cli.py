"""The `posthog-pandas` command line: subcommands dispatched from one argparse parser.

`export` and `query` stream to a file through `ph.export()` / `ph.export_query()`; `serve` and
`demo` run the embedded local PostHog.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from posthog_pandas._extras import MissingExtraError
from posthog_pandas._registry import EXPORTABLE
from posthog_pandas.exceptions import ConfigurationError, PostHogError
from posthog_pandas.export import FORMATS

if TYPE_CHECKING:
    from posthog_pandas.client import PostHog
    from posthog_pandas.export import ExportSummary

__all__ = ["build_parser", "main"]


# -- export and query ------------------------------------------------------------------------


def _add_connection_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="output path (instead of the PATH argument)")
    p.add_argument("--api-key", help="personal API key (default: POSTHOG_PERSONAL_API_KEY)")
    p.add_argument("--host", help="PostHog origin, 'us' or 'eu' (default: POSTHOG_HOST)")
    p.add_argument("--project-id", help="project id (default: POSTHOG_PROJECT_ID or yours)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--format", choices=[*FORMATS, "dataset"], help="override the suffix")
    p.add_argument("--partition-by", help="'day', 'month' or a column: a Parquet dataset")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`posthog-pandas export RESOURCE PATH [--after ...]`."""
    p = sub.add_parser("export", help="stream a resource to CSV, CSV.gz or Parquet")
    p.add_argument("resource", help=f"one of: {', '.join(EXPORTABLE)}")
    p.add_argument("path", nargs="?", help="output: x.csv, x.csv.gz, x.parquet or a directory/")
    p.add_argument("--after", help="events: start (ISO date or -7d)")
    p.add_argument("--before", help="events: end, exclusive")
    p.add_argument("--event", action="append", help="events: event name (repeatable)")
    p.add_argument("--where", help="events: a HogQL condition evaluated by PostHog")
    p.add_argument("--columns", help="events: comma-separated columns, e.g. event,properties.$os")
    p.add_argument(
        "--filter", action="append", default=[], metavar="NAME=VALUE", help="other filters"
    )
    _add_connection_arguments(p)


def add_query_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`posthog-pandas query "SELECT ..." PATH [--value name=value]`."""
    p = sub.add_parser("query", help="stream a HogQL query's result to CSV or Parquet")
    p.add_argument("hogql", help="a HogQL SELECT statement")
    p.add_argument("path", nargs="?", help="output: x.csv, x.csv.gz, x.parquet or a directory/")
    p.add_argument(
        "--value", action="append", default=[], metavar="NAME=VALUE", help="{name} placeholders"
    )
    _add_connection_arguments(p)


def run_export_command(args: argparse.Namespace) -> int:
    """Run `posthog-pandas export`: progress bar, then the summary line. Returns the exit code."""

    def run(ph: PostHog) -> ExportSummary:
        filters: dict[str, Any] = dict(_pairs(getattr(args, "filter", None) or [], "--filter"))
        for name in ("after", "before", "where"):
            if getattr(args, name, None) is not None:
                filters[name] = getattr(args, name)
        events = getattr(args, "event", None)
        if events:
            filters["event"] = events[0] if len(events) == 1 else list(events)
        if getattr(args, "columns", None):
            filters["columns"] = [c.strip() for c in args.columns.split(",") if c.strip()]
        return ph.export(
            args.resource,
            _output_path(args),
            format=_cli_format(args),
            partition_by=getattr(args, "partition_by", None),
            progress=not getattr(args, "no_progress", False),
            **filters,
        )

    return _run_command(args, run)


def run_query_command(args: argparse.Namespace) -> int:
    """Run `posthog-pandas query`: progress bar, then the summary line. Returns the exit code."""

    def run(ph: PostHog) -> ExportSummary:
        values = dict(_pairs(getattr(args, "value", None) or [], "--value"))
        return ph.export_query(
            args.hogql,
            _output_path(args),
            values=values or None,
            format=_cli_format(args),
            partition_by=getattr(args, "partition_by", None),
            progress=not getattr(args, "no_progress", False),
        )

    return _run_command(args, run)


def _output_path(args: argparse.Namespace) -> str:
    """The output from PATH or -o/--output (one of them, or both the same)."""
    given = {str(p) for p in (getattr(args, "path", None), getattr(args, "output", None)) if p}
    if len(given) != 1:
        raise ConfigurationError(
            "Give one output path, as PATH or -o PATH (e.g. -o events.parquet)."
            if not given
            else f"Two different output paths given: {' and '.join(sorted(given))}."
        )
    return given.pop()


def _cli_format(args: argparse.Namespace) -> str | None:
    fmt = getattr(args, "format", None)
    return None if fmt is None else str(fmt)


def _pairs(items: Sequence[str], flag: str) -> Iterator[tuple[str, str]]:
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"{flag} {item!r}: use NAME=VALUE.")
        yield name.strip(), value


def _run_command(args: argparse.Namespace, run: Callable[[PostHog], ExportSummary]) -> int:
    from posthog_pandas.client import connect

    try:
        ph = connect(
            getattr(args, "api_key", None),
            host=getattr(args, "host", None),
            project_id=getattr(args, "project_id", None),
            cache=not getattr(args, "no_cache", False),
            progress=not getattr(args, "no_progress", False),
            prompt=False,
        )
        summary = run(ph)
    except PostHogError as exc:
        print(f"posthog-pandas: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0


# -- serve and demo --------------------------------------------------------------------------


def _wait_forever() -> None:
    threading.Event().wait()


def _serve(args: argparse.Namespace) -> int:
    """Run the embedded local PostHog until Ctrl-C."""
    from posthog_pandas.server import LocalPostHog

    srv = LocalPostHog(
        persons=args.persons,
        events=args.events,
        seed=args.seed,
        legacy=args.legacy,
        port=args.port,
        timezone=args.timezone,
        latency=args.latency,
    )
    srv.start()
    print(f"Local PostHog listening on {srv.url}")
    print(f"Project id: {srv.project_id}")
    print(f"Personal API key (demo): {srv.api_key}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        _wait_forever()
    except KeyboardInterrupt:
        print("\nStopping.", file=sys.stderr)
    finally:
        srv.close()
    return 0


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run a local PostHog-compatible server with demo data (server extra)"
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    p.add_argument("--persons", type=int, default=2000, help="persons to generate")
    p.add_argument("--events", type=int, default=20000, help="events to generate")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated data and key")
    p.add_argument("--legacy", action="store_true", help="also accept Basic auth and old routes")
    p.add_argument(
        "--timezone", default="UTC", help="the projects' timezone (IANA name, e.g. Asia/Kolkata)"
    )
    p.add_argument(
        "--latency",
        default="none",
        choices=("none", "cloud"),
        help="answer at loopback speed (none) or as PostHog Cloud over the internet would "
        "(cloud: 1 s per query + 10 us per row, 150 ms per list request, 25 MB/s)",
    )


def _demo(args: argparse.Namespace) -> int:
    """Pull persons, events and a HogQL aggregate from the embedded server; write CSVs."""
    from pathlib import Path

    from posthog_pandas.demo import run_demo

    return run_demo(persons=args.persons, events=args.events, seed=args.seed, out=Path(args.out))


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="try posthog-pandas end to end against the embedded server (server extra)"
    )
    p.add_argument("--persons", type=int, default=5_000, help="persons to generate")
    p.add_argument("--events", type=int, default=100_000, help="events to generate")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated data")
    p.add_argument("--out", default="posthog-demo", help="folder for the CSV files")


# Subcommand name -> (parser builder, runner). Add new subcommands here.
COMMANDS: dict[
    str,
    tuple[
        Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None],
        Callable[[argparse.Namespace], int],
    ],
] = {
    "demo": (_add_demo, _demo),
    "export": (add_export_parser, run_export_command),
    "query": (add_query_parser, run_query_command),
    "serve": (_add_serve, _serve),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posthog-pandas", description="Get PostHog analytics data into pandas."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except MissingExtraError as exc:  # `serve` and `demo` without the server extra
        print(f"posthog-pandas {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
